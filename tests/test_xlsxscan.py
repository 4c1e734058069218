"""The array scanner of worksheet XML reads exactly what the pattern reader reads, or declines.

Every sheet of a built lesson and of a LibreOffice-saved one gives the same cells (all seven parts of
every cell, rows, columns) as the pattern path; sheets outside the plain form are left to the pattern
or general parser (scan returns None), never misread."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.read.scan import scan
from sheetsgd.read.sheet import Sheet

HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main"><sheetData><row r="1">')
TAIL = b"</row></sheetData></worksheet>"


def _same(data: bytes) -> None:
    scanned, fast = scan(data), Sheet._fast(data)
    assert scanned is not None and fast is not None
    (cells, rows, cols), (cells2, rows2, cols2) = scanned, fast
    assert len(cells) == len(cells2)
    assert [tuple(cells[i]) for i in range(len(cells))] == [tuple(c) for c in cells2]
    np.testing.assert_array_equal(rows, rows2)
    np.testing.assert_array_equal(cols, cols2)
    numbers, plain = cells.numbers()
    for i, raw in enumerate(cells2):  # the numbers as Python reads each value text
        if plain[i]:
            assert numbers[i] == float(raw[5])


def _sheets(path):
    with zipfile.ZipFile(path) as z:
        return [z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/sheet")]


@pytest.mark.parametrize("name,options", [("linear", {}), ("titanic-logistic", {"epochs": 1}),
                                          ("lr-finder-titanic", {}), ("too-high", {})])
def test_built_sheets_read_the_same(tmp_path, name, options):
    lesson = kinds.load(name, **options)
    kinds.kind_of(lesson).build(lesson, tmp_path / "l.xlsx")
    for data in _sheets(tmp_path / "l.xlsx"):
        _same(data)


def test_libreoffice_saved_sheets_read_the_same(tmp_path, recalc):
    lesson = kinds.load("quadratic")
    kinds.kind_of(lesson).build(lesson, tmp_path / "q.xlsx")
    [saved] = recalc([tmp_path / "q.xlsx"])  # t="n" on numbers, exponents such as 1E-005
    sheets = _sheets(saved)
    assert any(b't="n"' in d for d in sheets)
    for data in sheets:
        _same(data)


@pytest.mark.parametrize("cells", [
    b'<c r="A1" s="2"/><c r="B1"><v>1.5</v></c><c r="C1" t="s"><v>0</v></c>',
    b'<c r="A1"><f>B1*2</f><v>3</v></c><c r="B1" t="str"><f>"x"&amp;"y"</f><v>xy</v></c>',
    b'<c r="A1"><f t="shared" ref="A1:A3" si="0">B1+1</f><v>2</v></c><c r="AB1"><f t="shared" si="0"/><v>4</v></c>',
    b'<c r="A1" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="B1" t="b"><v>1</v></c><c r="C1"><v/></c>',
    b'<c r="XFD1" t="inlineStr"><is><t>text &lt; here</t></is></c><c r="A1" s="1" t="n"><v>-1.25E-07</v></c>',
    b'<c r="A1"><f></f><v></v></c><c r="B1"><f/></c>',
])
def test_edge_cases_read_the_same(cells):
    _same(HEAD + cells + TAIL)


@pytest.mark.parametrize("cells", [
    b'<c s="2" r="A1"><v>1</v></c>',  # the reference not first
    b'<c r="a1"><v>1</v></c>',  # lower-case reference
    b'<c r="A0"><v>1</v></c>',
    b'<c r="AAAA1"><v>1</v></c>',
    b'<c r="A1"><v>1</v><x/></c>',  # a stray tag inside the cell
    b'<c r="A1"><f>1+1</f><!-- a comment --><v>2</v></c>',
    b'<c r="A1"><is><r><t>rich</t></r></is></c>',  # rich text
    b'<c r="A1"><v><![CDATA[1]]></v></c>',
    b'<c r="A1"><v>1</c>',  # unclosed value
])
def test_anything_else_is_left_to_the_other_readers(cells):
    assert scan(HEAD + cells + TAIL) is None


def test_a_formula_outside_the_plain_form_is_not_missed():
    """A formula the scanner cannot place (here after the value) sends the sheet to the other readers:
    a formula it missed would look like a typed number."""
    assert scan(HEAD + b'<c r="A1"><v>2</v><f>1+1</f></c>' + TAIL) is None


@pytest.mark.parametrize("fast", [True, False])
def test_value_texts_become_the_doubles_pythons_float_reads(fast, monkeypatch):
    """A sheet's value texts are converted in one pass (fastnumbers where installed, else numpy): bit for bit
    what float() reads, for the shortest reprs a writer saves, 15 and 17 digits, extremes and odd texts."""
    import random

    from sheetsgd.read import scan as scan_module

    if not fast:
        monkeypatch.setattr(scan_module, "_try_array", None)
    elif scan_module._try_array is None:
        pytest.skip("fastnumbers is not installed on this platform")
    rng = random.Random(11)
    texts = []
    for _ in range(200_000):
        x = rng.random() * 10.0 ** rng.randint(-320, 308) * rng.choice([1, -1])
        texts.append(rng.choice([repr(x), f"{x:.15g}", f"{x:.17g}", f"{x:.15E}", f"{x:.3f}"]).encode())
    texts += [b"0.0", b"-0.0", b"1", b"4.9e-324", b"1.7976931348623157e308", b"2.2250738585072014e-308",
              b"1e400", b"-1e400", b"1e-400", b"9007199254740993", b"0.1000000000000000055511151231257827",
              b"nan", b"NaN", b"inf", b"-Infinity", b" 2", b"1_0", b"1.", b".5", b"+3"]
    odd = [b"0x10", b"1,5", b"1e", b"--1", b"1.5.2", b"\x00", b"#N/A"]
    values, readable = scan_module.to_floats(np.array(texts + odd))

    def written_out(t):
        try:
            return float(t)
        except ValueError:
            return None
    expected = [written_out(t) for t in texts + odd]
    assert readable.tolist() == [e is not None for e in expected]
    got, want = values[readable], np.array([e for e in expected if e is not None])
    nan = np.isnan(want)  # NaN payloads may differ; every other double bit for bit
    assert np.array_equal(got[~nan].view(np.int64), want[~nan].view(np.int64)) and np.isnan(got[nan]).all()
