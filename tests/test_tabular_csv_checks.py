"""Author tabular lessons (examples/tabular: a CSV of the author's) hold what every lesson holds: the student
version is one fill-down per exercise (each blank column's first cell typed, LibreOffice's fill handle
does the rest) and checks clean, a catalogued mistake is named as the one root cause at its column and
first step, variants differ and check, the autograder scores the filled version fully and the blank one
zero, and the size guard refuses a run too large in one line."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.write.lesson_file import build_student

from test_bad_input import assert_one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tabular"
LESSONS = {
    "clinic": (EXAMPLES / "clinic-logistic.toml", [("sigmoid_derivative_incomplete", "dz", 1),
                                                   ("log_base_swapped", "loss", 1)]),
    "flowers": (EXAMPLES / "flowers-softmax.toml", [("softmax_not_normalised", "p2", 1),
                                                    ("one_hot_wrong_class", "y_versicolor", 0),
                                                    ("error_reversed", "dz3", 1),
                                                    ("bias_gradient_summed_over_classes", "grad_b1", 1)]),
}
CASES = [(name, m, c, s) for name, (_, flaws) in LESSONS.items() for m, c, s in flaws]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """{lesson: {"correct" | "mistake-column": file}}: the student version, each blank column's first cell
    typed (right, or with one mistake) and filled down by LibreOffice (one process for all)."""
    from conftest import require_libreoffice
    from lo_fill import fill_down, first_cells, type_first_cells
    from sheetsgd.check.demo import Flaw, _lesson_blocks, fill_sheets

    require_libreoffice()
    root = tmp_path_factory.mktemp("tabular-fill-down")
    jobs, out = [], {}
    for name, (template, flaws) in LESSONS.items():
        lesson = kinds.load(str(template))
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        _, _, blocks, exercise = _lesson_blocks(str(student))
        columns = first_cells(blocks, exercise)
        out[name] = {"student": student}
        for flaw in [None] + flaws:
            tag = "correct" if flaw is None else f"{flaw[0]}-{flaw[1]}"
            typed = root / f"{name}-{tag}-typed.xlsx"
            type_first_cells(student, typed, fill_sheets(str(student), flaw and Flaw(flaw[0], flaw[1])), columns)
            jobs.append((typed, root / f"{name}-{tag}.xlsx", columns))
            out[name][tag] = root / f"{name}-{tag}.xlsx"
    fill_down(jobs, timeout=900)
    return out


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(LESSONS))
def test_the_student_version_filled_down_checks_clean(filled, name):
    report = check(filled[name]["correct"])
    assert report.status == "correct" and report.exit_code == 0, report.to_text()[:3000]
    correct, total = report.score
    assert total > 100 and correct == total


@pytest.mark.libreoffice
@pytest.mark.parametrize("name,mistake,column,step", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_a_catalogued_mistake_is_the_one_root_cause(filled, name, mistake, column, step):
    report = check(filled[name][f"{mistake}-{column}"])
    assert report.exit_code == 1, report.to_text()[:2000]
    assert [(m["column"], m["mistake"], m["step"]) for m in report.mistakes] == [(column, mistake, step)], \
        report.to_text()[:2000]


@pytest.mark.libreoffice
def test_the_autograder_scores_the_filled_version_fully_and_the_blank_one_zero(filled, tmp_path):
    from sheetsgd.grade.autograder_run import run

    bundle = tmp_path / "ag.zip"
    result = CliRunner().invoke(cli, ["autograder", str(LESSONS["clinic"][0]), "-o", str(bundle), "--points", "10",
                                      "-q"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    scores = {}
    for what, source in (("blank", root / "source" / "assignment.xlsx"), ("filled", filled["clinic"]["correct"])):
        shutil.rmtree(root / "submission", ignore_errors=True)
        (root / "submission").mkdir()
        shutil.copy(source, root / "submission" / f"{what}.xlsx")
        scores[what] = run(root)["score"]
        assert json.loads((root / "results" / "results.json").read_text())["score"] == scores[what]
    assert scores == {"blank": 0, "filled": pytest.approx(10)}


@pytest.mark.libreoffice
def test_grade_scores_the_filled_versions_and_names_the_mistake(filled, tmp_path):
    import csv

    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copy(filled["flowers"]["correct"], folder / "right.xlsx")
    shutil.copy(filled["flowers"]["error_reversed-dz3"], folder / "wrong.xlsx")
    result = CliRunner().invoke(cli, ["grade", str(folder), "-o", str(tmp_path / "grades.csv"), "-q"])
    assert result.exit_code in (0, 1), result.output
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as fh:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(fh)}
    assert rows["right.xlsx"]["status"] == "correct", rows["right.xlsx"]
    assert rows["wrong.xlsx"]["status"] != "correct" and "error_reversed" in json.dumps(rows["wrong.xlsx"])


def test_variants_differ_and_each_full_workbook_checks(tmp_path):
    built = {}
    for variant in ("ada", "grace"):
        lesson = kinds.load(str(LESSONS["clinic"][0]), variant=variant)
        built[variant] = lesson
        path = tmp_path / f"{variant}.xlsx"
        kinds.kind_of(lesson).build(lesson, path)
        report = check(path)
        assert report.status == "correct", report.to_text()[:2000]
    a, b = built["ada"], built["grace"]
    assert list(a.init) != list(b.init) and list(a.data.ids) != list(b.data.ids)  # start values and split


def test_a_run_too_large_is_refused_before_training(tmp_path):
    result = CliRunner().invoke(cli, ["build", str(LESSONS["clinic"][0]), "--batch-size", "1", "--epochs", "20000",
                                      "-o", str(tmp_path / "x.xlsx")])
    assert_one_line_error(result, "fewer epochs")
    assert not (tmp_path / "x.xlsx").exists()
