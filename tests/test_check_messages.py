"""Checker messages that are right: a drifting learning-rate reference that reaches text is named as what it
is (lr_relative, with the error values it causes), never as divergence; error cells are never counted right;
columns that only follow from a mistake are listed as such, without a formula to fix."""
from __future__ import annotations

import pytest

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student


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


def test_gradescope_forgives_knock_ons_and_prints_no_float_noise(drifting_lr, tmp_path):
    """The default grading policy in the Gradescope output: the one wrong column fails, the columns that only
    follow from it pass; numbers have at most 6 significant digits."""
    import json
    import re

    from sheetsgd.feedback import gradescope

    report = drifting_lr.to_dict()
    tests = {t["name"].rsplit("(", 1)[1].rstrip(")"): t for t in gradescope.tests(report)}
    assert tests["new_a"]["status"] == "failed" and "lr_relative" in tests["new_a"]["tags"]
    knock_ons = [c["key"] for c in report["columns"] if c["exercise"] and c["status"] == "knock-on"]
    assert knock_ons
    for key in knock_ons:
        # formulas that follow from the student's values pass, but #VALUE! cells never count as right
        assert tests[key]["score"] == next(c["local_correct"] for c in report["columns"] if c["key"] == key)
    strict = {t["name"].rsplit("(", 1)[1].rstrip(")"): t for t in gradescope.tests(report, policy="cells")}
    assert all(strict[k]["status"] == "failed" for k in knock_ons)
    text = json.dumps(gradescope.results(report, "f.xlsx"))
    digits = [len(m.group(1).replace(".", "").lstrip("0")) for m in re.finditer(r"(-?\d+\.\d+)", text)]
    assert digits and max(digits) <= 6


def test_under_the_default_policy_columns_that_only_follow_from_a_slip_pass(tmp_path, recalc):
    from sheetsgd.feedback import gradescope

    lesson = kinds.load("linear")
    build_student(kinds.kind_of(lesson), lesson, tmp_path / "s.xlsx", "")
    fill_xml_sheets(str(tmp_path / "s.xlsx"), str(tmp_path / "f.xlsx"),
                    fill_sheets(str(tmp_path / "s.xlsx"), Flaw("update_sign_flipped", "new_a")))
    [saved] = recalc([tmp_path / "f.xlsx"])
    report = check(str(saved)).to_dict()
    default = {t["name"].rsplit("(", 1)[1].rstrip(")"): t for t in gradescope.tests(report)}
    strict = {t["name"].rsplit("(", 1)[1].rstrip(")"): t for t in gradescope.tests(report, policy="cells")}
    assert default["new_a"]["status"] == strict["new_a"]["status"] == "failed"
    knock_ons = [c["key"] for c in report["columns"] if c["exercise"] and c["status"] == "knock-on"]
    assert set(knock_ons) == {"err", "grad_a", "grad_b", "new_b"}
    for key in knock_ons:
        assert default[key]["status"] == "passed" and default[key]["score"] == default[key]["max_score"]
        assert strict[key]["status"] == "failed" and "knock_on" in default[key]["tags"]


def test_a_report_over_several_sheets_names_each_column_s_sheet(tmp_path):
    """An optimizers lesson has the same exercise columns on four sheets: the text says which sheet each
    line is about, lists each key once, and names the optimizers instead of 'None'."""
    lesson = kinds.load("optimizers", epochs=1)
    build_student(kinds.kind_of(lesson), lesson, tmp_path / "s.xlsx", "new_a")
    fill_xml_sheets(str(tmp_path / "s.xlsx"), str(tmp_path / "f.xlsx"),
                    fill_sheets(str(tmp_path / "s.xlsx"), Flaw("update_sign_flipped", "Adam:new_a")))
    text = check(str(tmp_path / "f.xlsx")).to_text()  # no cached values: IronCalc recalculates
    head = text.splitlines()[0]
    assert "(sgd, momentum, rmsprop, adam, mse, 29 steps)" in head and "None" not in head
    assert head.endswith("exercise: new_a (on SGD, Momentum, RMSProp, Adam)")
    [root] = [line for line in text.splitlines() if line.startswith("  ✗") and "— first at step" in line]
    assert "(new_a, column" in root and " on Adam)" in root
    exercise_lines = [line for line in text.splitlines() if " new_a " in line and line.startswith("  ✓")]
    assert sorted(line.split(" on ")[1].split()[0] for line in exercise_lines) == ["Momentum", "RMSProp", "SGD"]


def test_many_exercise_columns_are_named_by_group():
    """A student version of conv or attention blanks hundreds of grid columns: the report's head names each
    grid once, with its count, instead of a line of thousands of characters; few columns stay as they are."""
    from sheetsgd.check.report import exercise_groups

    grid = [f"z{f}_{i}_{j}" for f in (1, 2) for i in (1, 2, 3, 4) for j in (1, 2, 3, 4)]
    keys = grid + ["ds", "grad_b", "grad_c1", "grad_c2"] + [f"new_f1_{u}_{v}" for u in (1, 2, 3) for v in (1, 2, 3)]
    assert exercise_groups(keys) == ["z… (32 columns)", "ds", "grad_b", "grad_c… (2 columns)", "new_f… (9 columns)"]
    assert exercise_groups(["err", "grad_a", "grad_b", "new_a", "new_b"]) == ["err", "grad_a", "grad_b", "new_a", "new_b"]

