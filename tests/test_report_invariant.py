"""The grading invariant — status "correct" ⇔ every exercise cell right ⇔ grade 1.0 ⇔ score 1.0 — is audited
over every report the test suite makes (tests/conftest.py); here, that the audit can fail."""
from __future__ import annotations

import os

from sheetsgd.report import AUDIT_ENV, ColumnResult, Report, audit, invariant_breach


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
