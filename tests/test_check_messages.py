"""Checker messages that are right: a drifting learning-rate reference that reaches text is named as what it
is (lr_relative, with the error values it causes), never as divergence; error cells are never counted right;
columns that only follow from a mistake are listed as such, without a formula to fix."""
from __future__ import annotations

import pytest

from sheetsgd import kinds
from sheetsgd.check import check
from sheetsgd.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.exercise import build_student


@pytest.fixture(scope="module")
def drifting_lr(tmp_path_factory, recalc):
    work = tmp_path_factory.mktemp("drift")
    lesson = kinds.load("linear")
    build_student(kinds.kind_of(lesson), lesson, work / "s.xlsx", "")
    fill_xml_sheets(str(work / "s.xlsx"), str(work / "f.xlsx"),
                    fill_sheets(str(work / "s.xlsx"), Flaw("lr_relative", "new_a")))
    [saved] = recalc([work / "f.xlsx"])  # B4 filled down: B5, B6, … then the header's text: #VALUE!
    return check(str(saved))


def test_a_drifting_lr_is_named_with_its_error_values_not_divergence(drifting_lr):
    report = drifting_lr.to_dict()
    [m] = report["mistakes"]
    assert (m["column"], m["mistake"], m["step"]) == ("new_a", "lr_relative", 2)
    assert m["errors"]["mistake"] == "error_value" and m["errors"]["code"] == "#VALUE!"
    assert m["errors"]["cells"] > 50
    assert not any("diverge" in note for note in report["notes"])
    assert "#VALUE!" in drifting_lr.to_text() and "diverge" not in drifting_lr.to_text()


def test_error_cells_are_never_counted_right(drifting_lr):
    report = drifting_lr.to_dict()
    total = report["score"]["total"]
    # every exercise column shows #VALUE! from step 4 or 5 on: at most the first rows can be right
    assert report["score"]["formulas_right"] <= 5 * 5
    assert report["score"]["formulas_right"] < total // 10


def test_knock_on_columns_show_no_formula_to_fix(drifting_lr):
    text = drifting_lr.to_text()
    exercise_table = text.split("Exercise columns:")[1].split("Score:")[0]
    knock_ons = [line for line in exercise_table.splitlines() if "follows from" in line]
    assert len(knock_ons) == 4  # err, grad_a, grad_b, new_b: each follows from new_a
    for line in knock_ons:
        assert "✗" not in line and "formula" not in line and "new_a" in line
    assert sum("✗" in line for line in exercise_table.splitlines()) == 1  # new_a, the one mistake


@pytest.mark.parametrize("resave", [False, True], ids=["as built", "re-saved by openpyxl"])
def test_blanks_are_reported_as_blanks_however_the_file_was_saved(tmp_path, resave):
    import openpyxl

    lesson = kinds.load("linear")
    path = tmp_path / "s.xlsx"
    build_student(kinds.kind_of(lesson), lesson, path, "")
    if resave:
        book = openpyxl.load_workbook(path)
        book.save(tmp_path / "resaved.xlsx")
        path = tmp_path / "resaved.xlsx"
    report = check(str(path)).to_dict()
    assert report["status"] == "mistakes"
    assert {m["mistake"] for m in report["mistakes"]} == {"blank"}
    assert all(m["found"] is None for m in report["mistakes"])
    columns = {c["key"]: c for c in report["columns"]}
    for m in report["mistakes"]:  # the root-cause line and the column table say the same
        first = columns[m["column"]]["first_wrong"]
        assert (first["cell"], first["expected"], first["found"]) == (m["cell"], m["expected"], m["found"])
