"""A deleted step row is a mistake at that row (exit 1, the rest judged); a circular reference is named
as such, with no divergence note (issue 10). Edits are made by real LibreOffice where it matters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_cells, fill_xml
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.check.recalc.libreoffice import libreoffice_path
from sheetsgd.check.structural import cycle, divergence_step, find_step_rows
from sheetsgd.lessons.sgd.student import resolve_exercise
from sheetsgd.check.submission import locate
from sheetsgd.lessons.sgd.workbook import build_workbook

import numpy as np
from lo_edit import run_macro

_MACRO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">
<script:module xmlns:script="http://openoffice.org/2000/script" script:name="Module1" script:language="StarBasic">
Sub Edit(inpath As String, outpath As String, row As Long)
  Dim args(0) As New com.sun.star.beans.PropertyValue
  args(0).Name = &quot;Hidden&quot; : args(0).Value = True
  doc = StarDesktop.loadComponentFromURL(ConvertToURL(inpath), &quot;_blank&quot;, 0, args())
  steps = doc.getSheets().getByName(&quot;Steps&quot;)
  steps.unprotect(&quot;&quot;)
  steps.getRows().removeByIndex(row, 1)
  doc.calculateAll()
  Dim fargs(0) As New com.sun.star.beans.PropertyValue
  fargs(0).Name = &quot;FilterName&quot; : fargs(0).Value = &quot;Calc MS Excel 2007 XML&quot;
  doc.storeToURL(ConvertToURL(outpath), fargs())
  doc.close(True)
End Sub
</script:module>
"""


def delete_row_in_libreoffice(inpath: Path, outpath: Path, row0: int, timeout: float = 120) -> Path:
    """Delete the Steps sheet's row (0-based index) in real LibreOffice, recalculate and save as .xlsx."""
    return run_macro(_MACRO, inpath, outpath, row0, timeout=timeout)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    root = tmp_path_factory.mktemp("structural")
    lesson = override(load_lesson("linear"), epochs=1)
    path = root / "student.xlsx"
    build_workbook(lesson, path, exercise=resolve_exercise(lesson, None))
    return path


def test_find_step_rows_tolerates_a_gap():
    rows, missing = find_step_rows([1, 2, 4, 5], [10, 11, 12, 13], 5)
    assert rows == [10, 11, None, 12, 13] and missing == [3]
    rows, missing = find_step_rows([1, 2, 3, 4], [10, 11, 12, 13], 5)  # the last row deleted
    assert rows == [10, 11, 12, 13, None] and missing == [5]
    rows, missing = find_step_rows([1, "note", 2, 3], [10, 11, 12, 13], 3)  # an inserted row is skipped
    assert rows == [10, 12, 13] and missing == []
    assert find_step_rows([1], [10], 100)[0] is None  # most steps missing: not a deleted row


def test_a_deleted_step_row_is_a_mistake_at_that_row(tmp_path, student):
    if libreoffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    filled = tmp_path / "filled.xlsx"
    fill_xml(str(student), str(filled), fill_cells(str(student)))
    sub = locate(str(filled))
    row5 = sub.step_rows[4]
    edited = delete_row_in_libreoffice(filled, tmp_path / "deleted.xlsx", row5 - 1)
    result = run("check", edited, "--json")
    report = json.loads(result.output)
    assert result.exit_code == 1, result.output
    assert report["status"] == "mistakes"
    first = report["mistakes"][0]
    assert first["mistake"] == "step_row_deleted" and first["step"] == 5, first
    assert f"after row {row5 - 1}" in first["cell"]
    assert [m["mistake"] for m in report["mistakes"]].count("step_row_deleted") == 1
    assert not any(m["step"] > 6 for m in report["mistakes"])  # later steps: knock-ons at most, judged
    assert not any("diverges" in n for n in report["notes"])
    text = run("check", edited)
    assert text.exit_code == 1 and "step row deleted" in text.output
    # grade gives it a score, not an error
    out = tmp_path / "g.csv"
    graded = run("grade", edited, "-o", out, "-q", "-j", "1")
    assert graded.exit_code == 0 and ",mistakes," in out.read_text()


@pytest.mark.parametrize("flaw,cycle_text", [
    (Flaw("x", "new_a", "{a}-{hp:lr}*{grad_a}+0*{new_a}"), "(P9 → P9)"),
    (Flaw("x", "err", "{pred}-{y}+0*{grad_a}"), "I9 → L9 → K9 → I9"),
])
def test_a_circular_reference_is_named_as_such(tmp_path, student, flaw, cycle_text):
    """IronCalc recalculates (no cached values): #CIRC!. The same file saved by LibreOffice (#VALUE!, Err:522)
    is checked the same way in tests that have LibreOffice; the diagnosis reads formulas, not error kinds."""
    path = tmp_path / "circular.xlsx"
    fill_xml(str(student), str(path), fill_cells(str(student), flaw))
    result = run("check", path, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    [root] = report["mistakes"]
    assert root["column"] == flaw.column and root["step"] == 1
    if root["mistake"] == "own_row_update":  # the new value read back: a cycle by definition, and its title says so
        assert f"(a circular reference: {cycle_text.strip('()')})" in root["title"], root["title"]
    else:
        assert root["mistake"] == "circular_reference" and cycle_text in root["hint"]
    assert not any("diverges" in note for note in report["notes"]), report["notes"]
    text = run("check", path).output
    assert "a circular reference" in text and "wrong_row" not in text and "diverges" not in text


def test_cycle_search():
    refs = {(1, 1): [(1, 2)], (1, 2): [(1, 3)], (1, 3): [(1, 1), (0, 9)], (0, 9): []}
    assert cycle(None, (1, 1), lambda r, c: refs.get((r, c), [])) == [(1, 1), (1, 2), (1, 3)]
    assert cycle(None, (0, 9), lambda r, c: refs.get((r, c), [])) is None
    chain = lambda r, c: [(r + 1, c)]  # an endless chain: the search stops at its bound
    assert cycle(None, (0, 0), chain, limit=100) is None


def test_divergence_needs_huge_numbers_before_the_first_non_finite():
    assert divergence_step(np.array([1.0, 1e150, 1e300, np.nan])) == 3
    assert divergence_step(np.array([1.0, 1.1, np.nan, np.nan])) is None  # an error value, not an overflow
    assert divergence_step(np.array([np.nan, np.nan])) is None
    assert divergence_step(np.array([1.0, 2.0])) is None
