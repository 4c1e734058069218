"""The grading invariant — status "correct" ⇔ every exercise cell right ⇔ grade 1.0 ⇔ score 1.0 — is audited
over every report the test suite makes (tests/conftest.py); here, that the audit can fail."""
from __future__ import annotations

import os

from sheetsgd.check.report import AUDIT_ENV, ColumnResult, Report, audit, invariant_breach


def _report(status, correct, local):
    return Report("x.xlsx", status, columns=[ColumnResult("new_a", "new a", "P", True, correct, 10, "correct",
                                                          local_correct=local)])


def test_the_invariant_names_each_breach(tmp_path, monkeypatch):
    assert invariant_breach(_report("correct", 10, 10)) is None
    assert invariant_breach(_report("mistakes", 3, 7)) is None
    assert "grade 1.0: True" in invariant_breach(_report("mistakes", 9, 10))  # knock-ons forgiven, status not correct
    assert "status correct: True" in invariant_breach(_report("correct", 10, 9))
    assert invariant_breach(Report("x.xlsx", "error", message="cannot check")) is None
    log = tmp_path / "breaches.txt"
    monkeypatch.setenv(AUDIT_ENV, str(log))
    audit(_report("correct", 9, 9))
    assert "x.xlsx" in log.read_text()
    monkeypatch.setenv(AUDIT_ENV, os.environ.get(AUDIT_ENV, ""))


def test_given_cells_edited_count_only_where_the_exercise_reads_them(tmp_path):
    """A given column no exercise cell reads (the finite-difference estimate) edited: every exercise cell is
    still right, so the status is correct and the edit a note; a given column the exercise reads (the
    prediction) edited: its knock-ons are not forgiven (the edit is not the student's exercise work), so
    grade and score are both below 1."""
    import openpyxl

    from sheetsgd import api
    from sheetsgd.check.checker import check
    from sheetsgd.check.demo import fill_sheets, fill_xml_sheets

    student = tmp_path / "student.xlsx"
    api.load("linear", epochs=1).build(student, exercise=True, progress=False)
    filled = tmp_path / "filled.xlsx"
    fill_xml_sheets(str(student), str(filled), fill_sheets(str(student)))

    def typed(cell: str, out):
        book = openpyxl.load_workbook(filled)
        book["Steps"][cell] = 5.0  # a number typed over a given formula (saved without values: recalculated)
        book.save(out)
        return out

    report = check(typed("M9", tmp_path / "fd.xlsx"))  # ≈ ∂L/∂a at step 1: no exercise cell reads it
    assert report.status == "correct", report.to_text()[:2000]
    assert any(n.startswith("outside the exercise (not graded)") and "fd_a" in n for n in report.notes)
    report = check(typed("H9", tmp_path / "pred.xlsx"))  # ŷ at step 1: the error reads it
    correct, total = report.score
    assert report.status == "mistakes" and correct < total and report.formulas_right < total, report.to_text()[:2000]
