"""The annotated copy (check --annotate, grade --annotate-dir): student versions of several lesson kinds,
filled in correctly and with catalogued mistakes and recalculated by real LibreOffice, are checked and
annotated. The copy marks exactly the cells the JSON report names (read back with openpyxl, not with
sheetsgd's own reader), every other part of the package is byte-identical or, for the parts edited,
equal cell by cell (formulas, cached values), charts and defined names survive, the input is unchanged,
and LibreOffice opens and recalculates the copy to the same verdict. Hostile inputs end in one line.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.feedback.annotate import FILLS, annotate
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student

from hostile_names import HOSTILE_SHEET, make_hostile  # tests/hostile_names.py

# every lesson kind: a data lesson, a Titanic mini-batch lesson, an optimizers lesson, an lr finder, a function lesson
LESSONS = {"linear": ({"epochs": 1}, ("mse_factor_2_missing", "grad_a")),
           "titanic-linear": ({"epochs": 1}, ("error_reversed", "dloss")),
           "optimizers": ({"epochs": 1}, ("update_sign_flipped", "Adam:new_a")),
           "lr-finder": ({"epochs": 30}, ("lr_additive", "lr")),
           "too-high": ({"epochs": 8}, ("update_sign_flipped", "r2_new"))}
RED, AMBER, GREEN = (FILLS[k] for k in ("root", "knock-on", "correct"))
M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_BUILT: dict = {}


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cells_of(ranges) -> list[str]:
    """'D5:D9' → D5 … D9, written out here rather than taken from sheetsgd."""
    out = []
    for text in ranges:
        first, _, last = text.partition(":")
        col, r1 = re.match(r"([A-Z]+)(\d+)", first).groups()
        r2 = int(re.match(r"[A-Z]+(\d+)", last).group(1)) if last else int(r1)
        out += [f"{col}{r}" for r in range(int(r1), r2 + 1)]
    return out


@pytest.fixture(scope="module")
def made(recalc, tmp_path_factory):
    """{tag: (submission, its JSON report, annotated copy, input hash before annotating)}, plus the
    annotated copies recalculated by LibreOffice under "recalculated"."""
    if _BUILT:
        return _BUILT
    root = tmp_path_factory.mktemp("annotate")
    (root / "in").mkdir()
    for name, (options, flaw) in LESSONS.items():
        lesson = kinds.load(name, **options)
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        for tag, f in ((f"{name}-correct", None), (f"{name}-mistake", Flaw(*flaw))):
            fill_xml_sheets(str(student), str(root / "in" / f"{tag}.xlsx"), fill_sheets(str(student), f))
        if name == "linear":
            make_hostile(str(student), str(root / "hostile.xlsx"))
    # twice, as tests/test_every_lesson_checks.py does (LibreOffice 7.4 settles cross-sheet values in two passes)
    files = {p.stem: p for p in recalc(recalc(sorted(root.joinpath("in").glob("*.xlsx"))))}
    files["hostile"] = root / "hostile.xlsx"
    out = root / "annotated"
    out.mkdir()
    for tag, path in files.items():
        report = check(path, recalc="ironcalc" if tag == "hostile" else "auto").to_dict()
        before = sha(path)
        annotate(path, report, out / f"{tag}.xlsx")
        _BUILT[tag] = (path, report, out / f"{tag}.xlsx", before)
    again = recalc(sorted(out.glob("*.xlsx")))
    _BUILT["recalculated"] = {p.stem: p for p in again}
    return _BUILT


TAGS = [f"{n}-{k}" for n in LESSONS for k in ("correct", "mistake")]


def fills(path) -> dict[str, dict[str, str]]:
    """{sheet: {cell: colour}} of every cell with one of the annotation's fills (openpyxl reading)."""
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                rgb = c.fill.fgColor.rgb if c.fill is not None and c.fill.fill_type == "solid" else None
                if rgb in (RED, AMBER, GREEN) and ws.title != "Feedback":
                    out.setdefault(ws.title, {})[c.coordinate] = rgb
    return out


@pytest.mark.parametrize("tag", TAGS)
def test_marks_are_exactly_the_cells_the_json_report_names(made, tag):
    path, report, annotated, _ = made[tag]
    expected: dict[str, dict[str, str]] = {}
    for c in report["columns"]:
        sheet = expected.setdefault(c["sheet"], {})
        for colour, key in ((GREEN, "correct_cells"), (AMBER, "knock_on_cells"), (RED, "root_cells")):
            for cell in cells_of(c[key]):
                sheet[cell] = colour  # later keys win: a root cause over a knock-on over a correct cell
    expected = {s: m for s, m in expected.items() if m}
    assert fills(path) == {}, "the submission itself has none of the annotation's colours"
    assert fills(annotated) == expected
    reds = sum(1 for m in expected.values() for v in m.values() if v == RED)
    greens = sum(1 for m in expected.values() for v in m.values() if v == GREEN)
    if tag.endswith("correct"):
        assert report["status"] == "correct" and reds == 0
        assert greens == report["score"]["total"] > 0  # every exercise cell green
    else:
        assert report["status"] == "mistakes" and reds == sum(m["cells"] for m in report["mistakes"]) > 0
        first = report["mistakes"][0]
        assert expected[first["sheet"]][first["cell"]] == RED
        assert any(v == AMBER for m in expected.values() for v in m.values())  # the mistake has knock-ons


@pytest.mark.parametrize("tag", [t for t in TAGS if t.endswith("mistake")])
def test_every_root_cause_cell_has_a_note_and_feedback_sheet_links_to_it(made, tag):
    _, report, annotated, _ = made[tag]
    wb = openpyxl.load_workbook(annotated)
    assert wb.sheetnames[0] == "Feedback"
    for m in report["mistakes"]:
        col = next(c for c in report["columns"] if c["key"] == m["column"] and c["sheet"] == m["sheet"])
        for cell in cells_of(col["root_cells"]):
            note = wb[m["sheet"]][cell].comment
            assert note is not None and m["title"] in note.text and m["hint"] in note.text, cell
        first = wb[m["sheet"]][m["cell"]].comment.text
        assert f"Expected {m['expected']:.10g}, found {m['found']:.10g}" in first
    feedback = wb["Feedback"]
    links = {c.hyperlink.location for row in feedback.iter_rows() for c in row if c.hyperlink}
    for m in report["mistakes"]:
        assert f"'{m['sheet']}'!{m['cell']}" in links


def _cells(xml: bytes) -> dict[str, tuple]:
    out = {}
    for c in ET.fromstring(xml).iter(f"{M}c"):
        f, v = c.find(f"{M}f"), c.find(f"{M}v")
        out[c.get("r")] = (c.get("t"), None if f is None else (f.text, sorted(f.attrib.items())),
                           None if v is None else v.text, "".join(c.find(f"{M}is").itertext()) if c.find(f"{M}is") is not None else None)
    return out


def _names(xml: bytes) -> dict:
    root = ET.fromstring(xml)
    sheets = [s.get("name") for s in root.iter(f"{M}sheet")]
    return {(d.get("name"), None if d.get("localSheetId") is None else sheets[int(d.get("localSheetId"))]): d.text
            for d in root.iter(f"{M}definedName")}


@pytest.mark.parametrize("tag", TAGS + ["hostile"])
def test_everything_else_survives_and_the_input_is_unchanged(made, tag):
    path, _, annotated, before = made[tag]
    assert sha(path) == before, "the submission was modified"
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(annotated) as b:
        old = {n: a.read(n) for n in a.namelist()}
        new = {n: b.read(n) for n in b.namelist()}
    edited = {"xl/styles.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"}
    charts = [n for n in old if n.startswith(("xl/charts/", "xl/drawings/"))]
    assert charts or tag.startswith("lr-finder") or tag.startswith("titanic"), "a lesson with charts"
    for name, data in old.items():
        if name == "xl/calcChain.xml":
            continue
        assert name in new, f"{name} dropped"
        if name in edited or re.match(r"xl/worksheets/(_rels/)?sheet\d+\.xml", name):
            continue
        assert new[name] == data, f"{name} changed"  # charts, drawings, theme, shared strings, docProps …
    for name in old:
        if re.match(r"xl/worksheets/sheet\d+\.xml$", name):
            was, now = _cells(old[name]), _cells(new[name])
            assert {r: now[r] for r in was} == was, f"{name}: a cell's formula or value changed"
            assert all(now[r] == (None, None, None, None) for r in set(now) - set(was))  # added: empty, styled
            prot = lambda x: [sorted(e.attrib.items()) for e in ET.fromstring(x).iter(f"{M}sheetProtection")]
            assert prot(new[name]) == prot(old[name])
    assert _names(new["xl/workbook.xml"]) == _names(old["xl/workbook.xml"])  # names, and the sheets they belong to
    xfs = lambda x: [ET.tostring(e) for e in ET.fromstring(x).find(f"{M}cellXfs")]
    assert xfs(new["xl/styles.xml"])[:len(xfs(old["xl/styles.xml"]))] == xfs(old["xl/styles.xml"])


@pytest.mark.libreoffice
@pytest.mark.parametrize("tag", TAGS + ["hostile"])
def test_libreoffice_opens_and_recalculates_the_annotated_copy(made, tag):
    path, report, _, _ = made[tag]
    recalculated = made["recalculated"][tag]
    again = check(recalculated).to_dict()
    assert again["status"] == report["status"]
    assert [(m["mistake"], m["sheet"], m["cell"]) for m in again["mistakes"]] == \
           [(m["mistake"], m["sheet"], m["cell"]) for m in report["mistakes"]]
    assert again["score"] == report["score"]
    wb = openpyxl.load_workbook(recalculated, data_only=True)
    assert wb.sheetnames[0] == "Feedback" and str(wb["Feedback"]["A1"].value).startswith("Feedback on")
    steps = report["lesson"]["steps_sheet"]
    original = openpyxl.load_workbook(path, data_only=True)
    last = [c for c in report["columns"] if c["sheet"] == steps and c["exercise"]][-1]
    cell = cells_of((last["root_cells"] + last["knock_on_cells"] + last["correct_cells"])[-1:])[-1]
    if report["mistakes"]:  # LibreOffice's value of the first wrong cell is the one the check found in the input
        m = report["mistakes"][0]  # (recalculated by LibreOffice, or IronCalc for the hostile file)
        assert wb[m["sheet"]][m["cell"]].value == pytest.approx(m["found"], rel=1e-9)
    else:
        assert wb[steps][cell].value == pytest.approx(original[steps][cell].value, rel=1e-9)  # a value read back
    for m in report["mistakes"]:  # notes survive LibreOffice (it shows and keeps them)
        assert m["title"] in wb[m["sheet"]][m["cell"]].comment.text


def test_hostile_sheet_name_is_text_in_the_feedback_sheet(made):
    _, report, annotated, _ = made["hostile"]
    assert report["lesson"]["steps_sheet"] == HOSTILE_SHEET
    wb = openpyxl.load_workbook(annotated)
    assert HOSTILE_SHEET in wb.sheetnames
    feedback = wb["Feedback"]
    texts = [str(c.value) for row in feedback.iter_rows() for c in row if c.value is not None]
    assert f"{HOSTILE_SHEET}!L9" in texts and any("<script>alert(2)</script>" in t for t in texts)
    quoted = "'" + HOSTILE_SHEET.replace("'", "''") + "'!L9"
    assert quoted in {c.hyperlink.location for row in feedback.iter_rows() for c in row if c.hyperlink}


def test_not_a_zip_same_path_and_missing_folder_are_one_line_errors(tmp_path):
    runner = CliRunner()
    text = tmp_path / "notes.xlsx"
    text.write_text("name,score\nada,1\n")
    out = tmp_path / "out.xlsx"
    r = runner.invoke(cli, ["check", str(text), "--annotate", str(out)])
    assert r.exit_code == 2 and not out.exists()
    assert len(r.stderr.strip().splitlines()) == 1 and "not an .xlsx workbook" in r.stderr
    zipped = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    r = runner.invoke(cli, ["check", str(zipped), "--annotate", str(out)])
    assert r.exit_code == 2 and not out.exists() and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception) as info:
        annotate(str(zipped), {"status": "error", "message": "x"}, str(out))
    assert "cannot annotate" in str(info.value)


def test_output_equal_to_input_is_refused(made, tmp_path):
    path, report, _, _ = made["linear-mistake"]
    mine = tmp_path / "sub.xlsx"
    shutil.copy(path, mine)
    before = sha(mine)
    runner = CliRunner()
    for target in (str(mine), str(tmp_path / "." / "sub.xlsx")):
        r = runner.invoke(cli, ["check", str(mine), "--annotate", target])
        assert r.exit_code == 2 and "would overwrite an input" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    link = tmp_path / "link.xlsx"
    link.symlink_to(mine)
    r = runner.invoke(cli, ["check", str(mine), "--annotate", str(link)])
    assert r.exit_code == 2 and sha(mine) == before


def test_grade_writes_an_annotated_copy_and_a_page_per_submission(made, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(made["linear-mistake"][0], subs / "ada.xlsx")
    shutil.copy(made["linear-correct"][0], subs / "bob.xlsx")
    (subs / "eve.xlsx").write_bytes(b"not a zip")
    r = CliRunner().invoke(cli, ["grade", str(subs), "-o", str(tmp_path / "g.csv"), "-j", "1", "-q",
                                 "--annotate-dir", str(tmp_path / "ann"), "--feedback-dir", str(tmp_path / "html")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["ada.xlsx", "bob.xlsx"]
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == ["ada.html", "bob.html", "eve.html"]
    assert fills(tmp_path / "ann" / "ada.xlsx") == fills(made["linear-mistake"][2])
    assert "Cannot check" in (tmp_path / "html" / "eve.html").read_text()
    report = json.loads(CliRunner().invoke(cli, ["check", str(subs / "ada.xlsx"), "--json"]).stdout)
    assert report["mistakes"][0]["title"] in (tmp_path / "html" / "ada.html").read_text()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A linear submission with a mistake, not recalculated (checked through IronCalc), and its report."""
    root = tmp_path_factory.mktemp("plain")
    lesson = kinds.load("linear", epochs=1)
    build_student(kinds.kind_of(lesson), lesson, root / "student.xlsx", "")
    path = root / "ada.xlsx"
    fill_xml_sheets(str(root / "student.xlsx"), str(path), fill_sheets(str(root / "student.xlsx"),
                                                                      Flaw("update_sign_flipped", "new_a")))
    return path, check(path, recalc="ironcalc").to_dict()


def _rewrite(src, dst, part, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, edit(data) if item.filename == part else data)


@pytest.mark.parametrize("case", ["dtd", "entity", "self-closing fills", "not xml"])
def test_hostile_or_odd_parts_the_check_does_not_read_are_one_line_errors(plain, tmp_path, case):
    path, report = plain
    bad = tmp_path / "bad.xlsx"
    edit = {"dtd": lambda d: d.replace(b"<styleSheet", b'<!DOCTYPE styleSheet [<!ENTITY x "y">]><styleSheet', 1),
            "entity": lambda d: d.replace(b"?>", b'?><!DOCTYPE s [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1),
            "self-closing fills": lambda d: re.sub(rb"<fills\b.*?</fills>", b'<fills count="0"/>', d, flags=re.S),
            "not xml": lambda d: d[: len(d) // 2]}[case]
    _rewrite(path, bad, "xl/styles.xml", edit)
    out = tmp_path / "out.xlsx"
    r = CliRunner().invoke(cli, ["check", str(bad), "--recalc", "ironcalc", "--annotate", str(out)])
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xlsx"]  # no copy, no temporary file left


def test_a_deleted_step_row_and_strict_findings_are_annotated(plain, tmp_path):
    """A deleted step row has no cell: it is named in the Feedback sheet and the page, without a note;
    --strict (a hard-coded number) marks the cells its second judgement finds wrong."""
    from sheetsgd.feedback.html import render

    path, report = plain
    report = json.loads(json.dumps(report))
    report["mistakes"] = report["mistakes"] + [{  # as sheetsgd.check.structural.deleted_row_mistakes writes it
        "column": "step", "header": "step", "letter": "", "mistake": "step_row_deleted", "title": "a step row was deleted",
        "hint": "put the row back", "step": 5, "cell": "Steps: the row of step 5, after row 12", "expected": 5,
        "found": None, "formula": None, "cells": 1, "exercise": False}]
    annotate(path, report, tmp_path / "a.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "a.xlsx")
    texts = [str(c.value) for row in wb["Feedback"].iter_rows() for c in row if c.value is not None]
    assert "Steps: the row of step 5, after row 12" in texts
    assert "Steps: the row of step 5, after row 12" in render(report)
    lesson = kinds.load("linear", epochs=1)
    build_student(kinds.kind_of(lesson), lesson, tmp_path / "s.xlsx", "")
    typed = tmp_path / "typed.xlsx"
    fill_xml_sheets(str(tmp_path / "s.xlsx"), str(typed), fill_sheets(str(tmp_path / "s.xlsx"), Flaw("hard_coded", "new_a")))
    strict = check(typed, recalc="ironcalc", strict=True).to_dict()
    assert [m["mistake"] for m in strict["mistakes"]] == ["hard_coded"]
    annotate(typed, strict, tmp_path / "t.xlsx")
    col = next(c for c in strict["columns"] if c["key"] == "new_a")
    assert col["root_cells"] and {c for c, v in fills(tmp_path / "t.xlsx")["Steps"].items() if v == RED} == \
        set(cells_of(col["root_cells"]))


def test_a_sheet_with_notes_of_its_own_keeps_them(plain, tmp_path):
    path, report = plain  # the same cells with a note added by openpyxl (which IronCalc cannot read back):
    wb = openpyxl.load_workbook(path)  # the report of the file without the note is the report of this one
    wb["Steps"]["A1"].comment = openpyxl.comments.Comment("my own note", "student")
    wb.save(tmp_path / "noted.xlsx")
    annotate(tmp_path / "noted.xlsx", report, tmp_path / "out.xlsx")
    out = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert out["Steps"]["A1"].comment.text == "my own note"
    m = report["mistakes"][0]
    assert out["Steps"][m["cell"]].comment is None  # colours only on this sheet
    assert out["Steps"][m["cell"]].fill.fgColor.rgb == RED
