"""Deflated parts are inflated in one bounded call (ISA-L where installed, else zlib), not through
zipfile's chunked reader: the bytes must be zipfile's own, and every check zipfile makes (CRC-32, the
stream's end, the local header) must still refuse a damaged member, in one line."""
from __future__ import annotations

import struct
import zipfile
import zlib

import pytest

from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons import kinds
from sheetsgd.read import package
from sheetsgd.read.workbook import Limits, Workbook


def _zip(members: list[tuple[str, bytes, bytes, int, int]]) -> bytes:
    """A zip written by hand: (name, deflated bytes, bytes the local header names, CRC-32, inflated size)."""
    out, central = b"", b""
    for name, raw, local_name, crc, size in members:
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(raw), size, len(local_name), 0)
        out += local_name + raw
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(raw), size,
                               len(name), 0, 0, 0, 0, 0, offset) + name.encode()
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return out + central + end


def _deflate(data: bytes, final: bool = True) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


WORKBOOK = b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'


def _book(tmp_path, part: bytes, raw: bytes | None = None, local_name: bytes = b"xl/part.xml",
          crc: int | None = None, limits: Limits = Limits()) -> Workbook:
    members = [("xl/workbook.xml", _deflate(WORKBOOK), b"xl/workbook.xml", zlib.crc32(WORKBOOK), len(WORKBOOK)),
               ("xl/part.xml", _deflate(part) if raw is None else raw, local_name,
                zlib.crc32(part) if crc is None else crc, len(part))]
    path = tmp_path / "book.xlsx"
    path.write_bytes(_zip(members))
    book = Workbook.__new__(Workbook)  # the container only: this workbook has no sheets to read
    book.path, book.limits, book._inflated = str(path), limits, 0
    book.zip = zipfile.ZipFile(path)
    book.members = {i.filename: i for i in book.zip.infolist()}
    return book


def test_every_part_of_a_lesson_is_zipfiles_own_bytes(tmp_path, monkeypatch):
    lesson = kinds.load("titanic-logistic", epochs=1)
    path = tmp_path / "t.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    with zipfile.ZipFile(path) as z:
        expected = {i.filename: z.read(i.filename) for i in z.infolist()}
    for inflater in {package._inflater, zlib}:  # ISA-L (where installed) and the zlib fallback
        monkeypatch.setattr(package, "_inflater", inflater)
        book = Workbook(str(path))
        before = book._inflated  # the parts the workbook reads as it opens
        assert {name: book._read(name) for name in expected} == expected
        assert book._inflated - before == sum(map(len, expected.values()))  # counted against --max-total-mb


def test_a_good_hand_written_member_reads(tmp_path):
    assert _book(tmp_path, b"<x>" * 1000)._read("xl/part.xml") == b"<x>" * 1000


@pytest.mark.parametrize("damage, words", [
    (dict(crc=12345), "Bad CRC-32"),
    (dict(raw=_deflate(b"<x>" * 1000, final=False)), "ends before its end marker"),
    (dict(raw=b"\xff" * 40), "corrupt zip member xl/part.xml"),
    (dict(local_name=b"xl/other.xml"), "names another file"),
])
def test_a_damaged_member_is_refused_in_one_line(tmp_path, damage, words):
    book = _book(tmp_path, b"<x>" * 1000, **damage)
    with pytest.raises(SheetsgdError) as exc:
        book._read("xl/part.xml")
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_a_member_that_inflates_past_its_bound_stops_there(tmp_path):
    """The central directory says 1,000 bytes; the stream makes 50 MB of zeros: refused after the bound."""
    zeros = bytes(50_000_000)
    book = _book(tmp_path, b"\0" * 1000, raw=_deflate(zeros), crc=zlib.crc32(zeros),
                 limits=Limits(max_part_mb=2, max_total_mb=256))
    with pytest.raises(SheetsgdError, match="zip bomb"):
        book._read("xl/part.xml")
    book = _book(tmp_path, b"\0" * 1000, raw=_deflate(zeros), crc=zlib.crc32(zeros),
                 limits=Limits(max_part_mb=2000, max_total_mb=3))  # the bound of all parts together
    with pytest.raises(SheetsgdError, match="zip bomb"):
        book._read("xl/part.xml")


def _cells(sheet):
    return [sheet.cell(int(r), int(c)) for r, c in zip(sheet._rows, sheet._cols)]


@pytest.mark.parametrize("threads", [True, False])
def test_sheets_read_together_are_the_sheets_read_one_by_one(tmp_path, monkeypatch, threads):
    """A check reads every sheet at once (inflated in turn, the others scanned in a second thread while the
    biggest is scanned here): the same cells as reading each on its own; without a thread, the same too."""
    lesson = kinds.load("titanic-logistic", epochs=1)
    path = tmp_path / "t.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    alone = Workbook(str(path))
    expected = {name: _cells(alone.sheet(name)) for name in alone.sheet_names}
    if not threads:
        def no_thread(*args, **kwargs):
            raise RuntimeError("can't start new thread")
        monkeypatch.setattr(package.ThreadPoolExecutor, "submit", no_thread)
    together = Workbook(str(path))
    together.read_sheets()
    assert set(together._sheets) == set(expected)
    assert {name: _cells(together.sheet(name)) for name in expected} == expected
    assert together._inflated == alone._inflated  # every part inflated once, counted once


def test_a_sheet_that_cannot_be_read_says_why_when_asked(tmp_path):
    """A sheet over --max-cells is not read by read_sheets; asking for it gives the one-line reason."""
    lesson = kinds.load("linear", epochs=1)
    path = tmp_path / "l.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    book = Workbook(str(path), Limits(max_cells=500))
    book.read_sheets()
    sizes = {name: len(Workbook(str(path)).sheet(name)._rows) for name in book.sheet_names}
    assert {n for n in book._sheets} == {n for n, size in sizes.items() if size <= 500}
    big = max(sizes, key=sizes.get)
    with pytest.raises(SheetsgdError, match="over the 500 limit"):
        book.sheet(big)
