"""`sheetsgd grade` over a folder of generated submissions: right, wrong, corrupt and not workbooks at all."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sheetsgd.grade.batch as grading
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_cells, fill_xml
from sheetsgd.grade.batch import grade, safe_cell
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.lessons.sgd.student import resolve_exercise
from sheetsgd.lessons.sgd.workbook import build_workbook

INJECTIONS = ["=cmd|' -C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)"]


@pytest.fixture(scope="module")
def submissions(tmp_path_factory, recalc):
    """≥ 50 files: correct and mistaken fills saved by LibreOffice, an unfilled student version,
    truncated and garbled zips, CSV/PNG/PDF renamed .xlsx, an empty file; some ids look like formulas."""
    root = tmp_path_factory.mktemp("grade")
    lesson = override(load_lesson("linear"), epochs=1)
    student = root / "student.xlsx"
    build_workbook(lesson, student, exercise=resolve_exercise(lesson, None))
    kinds = {"correct": None, "sign": Flaw("update_sign_flipped", "new_a"), "pasted": Flaw("constant_typed", "new_b"),
             "factor2": Flaw("mse_factor_2_missing", "grad_a")}
    (root / "fills").mkdir()
    fills = []
    for kind, flaw in kinds.items():
        path = root / "fills" / f"{kind}.xlsx"
        fill_xml(str(student), str(path), fill_cells(str(student), flaw))
        fills.append(path)
    saved = dict(zip(kinds, recalc(fills)))
    folder = root / "submissions"
    folder.mkdir()
    expected = {}  # id -> (status, score or None)
    n = len(lesson.data) * lesson.epochs
    for i in range(40):
        kind = list(kinds)[i % 4]
        sid = INJECTIONS[i // 4] if i // 4 < len(INJECTIONS) and i % 4 == 0 else f"student{i:02d}-{kind}"
        shutil.copy(saved[kind], folder / f"{sid}.xlsx")
        expected[sid] = {"correct": ("correct", 1.0), "pasted": ("mistakes", 4 * n / (5 * n))}.get(kind, ("mistakes", None))
    for i in range(4):
        shutil.copy(student, folder / f"unfilled{i}.xlsx")
        expected[f"unfilled{i}"] = ("mistakes", 0.0)
    good = saved["correct"].read_bytes()
    broken = {"truncated": good[: len(good) // 2], "garbled": good[:200] + bytes(range(256)) * 20,
              "empty": b"", "csv": b"x,y\n1,2\n", "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
              "pdf": b"%PDF-1.4\n%\xe2\xe3\n", "ole": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600}
    for i, (name, data) in enumerate(broken.items()):
        for copy in range(2):
            (folder / f"{name}{copy}.xlsx").write_bytes(data)
            expected[f"{name}{copy}"] = ("error", None)
    assert len(expected) >= 50
    return {"folder": folder, "expected": expected, "saved": saved, "steps": n}


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_grade_a_folder(submissions, tmp_path):
    folder, expected = submissions["folder"], submissions["expected"]
    before = digest(folder)
    out, results = tmp_path / "grades.csv", tmp_path / "results.json"
    result = CliRunner().invoke(cli, ["grade", str(folder), "-o", str(out), "--results-json", str(results),
                                      "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert digest(folder) == before  # inputs untouched
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(expected) == len(list(folder.iterdir()))
    by_id = {}
    for row in rows:
        sid = row["id"]
        if sid.startswith("'"):  # neutralised: a spreadsheet shows it as text, never runs it
            sid = sid[1:]
            assert sid.startswith(("=", "+", "-", "@"))
        by_id[sid] = row
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), row
    assert set(by_id) == set(expected)
    for sid, (status, score) in expected.items():
        row = by_id[sid]
        assert row["status"] == status, (sid, row)
        if score is not None:
            assert float(row["score"]) == pytest.approx(score), (sid, row)
        if status == "error":
            assert row["message"] and row["score"] == ""
        if status == "mistakes" and score is None:
            assert 0 < float(row["score"]) < 1 and row["mistakes"]
    assert "update_sign_flipped" in by_id["student01-sign"]["mistakes"]
    assert "truncated" in by_id["truncated0"]["message"] or "corrupt" in by_id["truncated0"]["message"]
    assert "text file" in by_id["csv0"]["message"] and "legacy .xls" in by_id["ole0"]["message"]
    # a row's score equals what `check` says about the same file
    one = check(str(folder / "student03-factor2.xlsx"))
    correct, total = one.score
    row = by_id["student03-factor2"]
    assert (int(row["correct"]), int(row["total"])) == (correct, total)
    assert float(row["score"]) == pytest.approx(correct / total, abs=1e-6)
    data = json.loads(results.read_text(encoding="utf-8"))
    subs = {s["id"]: s for s in data["submissions"]}
    assert len(subs) == len(expected)
    assert subs["student02-pasted"]["max_score"] == 5 * submissions["steps"]
    assert all(t["status"] in ("passed", "failed") for s in subs.values() for t in s["tests"])


def test_safe_cell():
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@x") == "'@x" and safe_cell("-1") == "'-1"
    assert safe_cell("\t=x") == "'\t=x" and safe_cell("ok") == "ok" and safe_cell(0.5) == 0.5


def test_a_file_that_hangs_is_a_timeout_not_a_stall(submissions, tmp_path, monkeypatch):
    real = grading.check

    def slow_check(path, **kw):  # runs inside the forked workers
        if "hang" in path:
            time.sleep(60)
        return real(path, **kw)
    monkeypatch.setattr(grading, "check", slow_check)
    hang = tmp_path / "hang.xlsx"
    shutil.copy(submissions["saved"]["correct"], hang)
    files = [hang, submissions["saved"]["correct"], submissions["saved"]["sign"]]
    start = time.monotonic()
    graded = grade(files, jobs=2, timeout=3, progress=False)
    assert time.monotonic() - start < 30
    assert [row["status"] for row, _, _ in graded] == ["timeout", "correct", "mistakes"]
