"""grade --assignment: the assignment's student version is graded; another lesson's workbook, the same lesson
with other options or exercise columns, and the lesson's full workbook (any student can build it) are refused
with one line and score 0. The grades CSV names each file's lesson and exercise columns."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from sheetsgd import api
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets


def _filled(path, lesson, exercise=True, **options):
    student = path.with_name(path.stem + "-blank.xlsx")
    api.load(lesson, **options).build(student, exercise=exercise, progress=False)
    fill_xml_sheets(str(student), str(path), fill_sheets(str(student)))
    student.unlink()
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("assignment")
    subs = root / "subs"
    subs.mkdir()
    _filled(subs / "good.xlsx", "linear", epochs=1)
    _filled(subs / "variant.xlsx", "linear", epochs=1, variant="s-7")  # a variant is the same assignment
    api.load("linear", epochs=1).build(subs / "full.xlsx", progress=False)
    _filled(subs / "other_lesson.xlsx", "quadratic", epochs=1)
    _filled(subs / "titanic.xlsx", "titanic-logistic", epochs=1)
    _filled(subs / "other_options.xlsx", "linear", epochs=2)
    _filled(subs / "other_columns.xlsx", "linear", exercise="new_a,new_b", epochs=1)
    return root


def _grade(root, *args):
    out = root / f"grades{len(args)}.csv"
    result = CliRunner().invoke(cli, ["grade", str(root / "subs"), "-o", str(out), "-q", "--jobs", "1",
                                      "--results-json", str(root / "results.json"), *args])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}, json.loads((root / "results.json").read_text())


def test_only_the_assignments_student_version_is_graded(folder):
    rows, results = _grade(folder, "--assignment", "linear", "--epochs", "1")
    for ok in ("good", "variant"):
        assert rows[ok]["status"] == "correct" and float(rows[ok]["grade"]) == 1.0, rows[ok]
        assert rows[ok]["lesson"] == "linear" and rows[ok]["exercise"] == "err grad_a grad_b new_a new_b"
    for refused, why in (("full", "full workbook"), ("other_lesson", "not this assignment's workbook"),
                         ("titanic", "not this assignment's workbook"),
                         ("other_options", "not this assignment's workbook"),
                         ("other_columns", "has exercise columns new_a, new_b")):
        row = rows[refused]
        assert row["status"] == "refused" and float(row["grade"]) == 0 and float(row["score"]) == 0, row
        assert why in row["message"] and "\n" not in row["message"], row["message"]
    assert "quadratic" in rows["other_lesson"]["message"] and "titanic-logistic" in rows["titanic"]["message"]
    by_id = {s["id"]: s for s in results["submissions"]}
    assert by_id["full"]["score"] == 0 and by_id["full"]["tests"] == [] and by_id["good"]["score"] > 0


def test_the_assignments_exercise_columns_can_be_given(folder):
    rows, _ = _grade(folder, "--assignment", "linear", "--epochs", "1", "--exercise", "new_a,new_b")
    assert rows["other_columns"]["status"] == "correct" and rows["other_columns"]["exercise"] == "new_a new_b"
    assert rows["good"]["status"] == "refused" and "has exercise columns" in rows["good"]["message"]


def test_without_an_assignment_the_csv_still_names_the_lesson(folder):
    rows, _ = _grade(folder)
    assert rows["titanic"]["lesson"] == "titanic-logistic" and rows["other_lesson"]["lesson"] == "quadratic"
    assert rows["full"]["status"] == "correct"  # graded as what it is; only an assignment tells it apart
    result = CliRunner().invoke(cli, ["grade", str(folder / "subs"), "-o", str(folder / "x.csv"), "--epochs", "1"])
    assert result.exit_code == 2 and "--assignment" in result.output


@pytest.mark.parametrize("lesson, options", [("titanic-logistic", {"epochs": 1}), ("collab-filter", {"epochs": 2}),
                                             ("optimizers", {"epochs": 1}), ("attention", {"epochs": 1})])
def test_other_kinds_refuse_their_full_workbook_and_another_lesson(lesson, options, folder, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    api.load(lesson, **options).build(subs / "full.xlsx", progress=False)
    (subs / "linear.xlsx").write_bytes((folder / "subs" / "good.xlsx").read_bytes())
    flags = [x for k, v in options.items() for x in (f"--{k}", str(v))]
    rows, results = _grade(tmp_path, "--assignment", lesson, *flags)
    assert rows["full"]["status"] == "refused" and "full workbook" in rows["full"]["message"], rows["full"]
    assert rows["linear"]["status"] == "refused" and "not this assignment's workbook" in rows["linear"]["message"]
    assert all(float(r["grade"]) == 0 and float(r["score"]) == 0 and r["lesson"] for r in rows.values())
    assert all(s["score"] == 0 for s in results["submissions"])
