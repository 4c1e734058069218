"""Every exercise is one fill-down: a student writes a blank column's first cell and drags it down.

(a) For every bundled lesson and its layouts (per example, mini-batch, shuffled mini-batch, full batch where
    the kind has them), each exercise column's formulas in the full workbook are openpyxl's ``Translator``
    moving the first cell's formula to that row, for every cell (read from the written file).
(b) In real LibreOffice: every bundled lesson's student version, its blank columns filled by typing only
    the first cell of each and filling it down with ``XCellSeries.fillAuto`` (what dragging the fill
    handle does), saved, checks exit 0; with one catalogued mistake in a first cell, exit 1 naming that
    mistake at that column and step 1.
(c) The same filled files saved by openpyxl (no cached values) check the same through IronCalc.

The Titanic family's layouts are another change's; until it lands their cases fail here (expected).
Workbooks built before row-local layouts (layout version 1, tests/fixtures/layout_v1) still check as built.
"""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.formula.translate import Translator

from sheetsgd import api
from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.write.lesson_file import build_student

FIXTURES = Path(__file__).parent / "fixtures" / "layout_v1"
TABULAR = {"titanic-linear", "titanic-logistic", "titanic-relu2", "titanic-mlp", "penguins-softmax", "dropout",
           "lr-finder-titanic"}
SMALL = {"collab-filter": {"epochs": 2}, "attention": {"epochs": 2}, "conv": {"epochs": 1}, "dropout": {"epochs": 1}, "titanic-mlp": {"epochs": 1},
         "titanic-logistic": {"epochs": 1}, "titanic-linear": {"epochs": 1}, "titanic-relu2": {"epochs": 1},
         "penguins-softmax": {"epochs": 1}, "lr-finder-titanic": {"epochs": 12}, "lr-finder": {"epochs": 30},
         "too-high": {"epochs": 8}, "optimizers": {"epochs": 1}, "optimizers-classic": {"epochs": 1},
         "one-cycle": {"epochs": 1}, "weight-decay": {"epochs": 1}, "linear": {"epochs": 1},
         "quadratic": {"epochs": 2}}


def _layouts(name: str) -> list[dict]:
    """The layouts of a lesson: data lessons and optimizer sheets per example, in mini-batches (shuffled too)
    and full batch; Titanic per passenger, mini-batch and full batch; others as bundled."""
    kind = kinds.template_kind(kinds.read_template(name)[0])
    if kind in ("sgd", "optimizers"):
        return [{}, {"batch_size": 1}, {"batch_size": 4}, {"batch_size": 4, "shuffle": True}, {"batch_size": "full"}]
    if kind == "titanic" and name in ("titanic-linear", "titanic-logistic", "titanic-mlp"):
        return [{}, {"batch_size": 1}, {"batch_size": 32}, {"batch_size": "full"}]
    return [{}]


CASES = [(name, options) for name in api.lessons() for options in _layouts(name)]
NOT_YET: dict[str, str] = {}  # lessons whose layouts are not yet one fill-down (none)


def _not_yet(name):
    return [pytest.mark.xfail(reason=NOT_YET[name], strict=True)] if name in NOT_YET else []


def _ids(case):
    name, options = case
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def _exercise_blocks(path: Path) -> tuple[dict, list]:
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb["_sheetsgd"]
    entries: dict[str, str] = {}
    last = None
    for key, value in ws.iter_rows(min_row=2, max_col=2, values_only=True):
        if key is None:
            continue
        if key.endswith("+") and key[:-1] == last:
            entries[last] += value
        else:
            entries[key], last = value, key
    wb.close()
    return json.loads(entries["exercise_blocks"]), json.loads(entries["blocks"])


@pytest.mark.parametrize("name,options", [pytest.param(*c, marks=_not_yet(c[0])) for c in CASES],
                         ids=[_ids(c) for c in CASES])
def test_each_exercise_column_is_one_fill_down_of_its_first_cell(name, options, tmp_path):
    lesson = kinds.load(name, **{**SMALL.get(name, {}), **options})
    kind = kinds.kind_of(lesson)
    student = tmp_path / "student.xlsx"
    report = build_student(kind, lesson, student, "")
    full = tmp_path / "full.xlsx"
    kind.build(lesson, full)
    exercise, blocks = _exercise_blocks(student)
    assert exercise == {k: sorted(v) for k, v in report.exercise.items()} or exercise
    wb = openpyxl.load_workbook(full)
    bad, total = [], 0
    for block in blocks:
        keys = exercise.get(block["name"], [])
        ws = wb[block["sheet"]]
        for key in keys:
            col = block["columns"][key][0] + 1
            top, bottom = block["first_row"] + 1, block["first_row"] + block["n"]
            first = ws.cell(top, col)
            assert isinstance(first.value, str) and first.value.startswith("="), (block["name"], key)
            for row in range(top, bottom + 1):
                cell = ws.cell(row, col)
                total += 1
                moved = Translator(first.value, first.coordinate).translate_formula(cell.coordinate)
                if moved != cell.value:
                    bad.append(f"{block['sheet']}!{cell.coordinate}: {cell.value} (fill-down gives {moved})")
    assert total > 0
    assert not bad, f"{len(bad)} of {total} exercise cells are not a fill-down of their column's first: {bad[:3]}"


# --- workbooks built before this layout still check as they were built ---------------------------------

@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*-full.xlsx")), ids=lambda p: p.stem)
def test_a_layout_version_1_workbook_checks_as_built(path):
    with zipfile.ZipFile(path) as z:  # built before layout versions: no layout_version in its manifest
        assert b"layout_version" not in b"".join(z.read(n) for n in z.namelist() if n.startswith("xl/"))
    result = CliRunner().invoke(cli, ["check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["status"] == "correct" and report["score"]["correct"] == report["score"]["total"] > 0


def test_a_layout_version_1_student_version_is_judged_on_its_own_layout(tmp_path):
    """Its blanks filled with the version-1 formulas (per-batch rows): correct; a sign flipped: named."""
    from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets

    student = tmp_path / "student.xlsx"
    shutil.copy(FIXTURES / "linear-b4.xlsx", student)
    cells = fill_sheets(str(student))
    assert any("Data!$B$6:$B$9" in str(v) for v in cells["Steps"].values())  # the rebuild is version 1's
    flawed = fill_sheets(str(student), Flaw("update_sign_flipped", "new_a"))
    for tag, fill in (("correct", cells), ("flipped", flawed)):
        fill_xml_sheets(str(student), str(tmp_path / f"{tag}.xlsx"), fill)
        wb = openpyxl.load_workbook(tmp_path / f"{tag}.xlsx")  # no cached values: IronCalc computes them
        wb.save(tmp_path / f"{tag}.xlsx")
    ok = CliRunner().invoke(cli, ["check", str(tmp_path / "correct.xlsx"), "--json", "--recalc", "ironcalc"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, ["check", str(tmp_path / "flipped.xlsx"), "--json", "--recalc", "ironcalc"])
    assert bad.exit_code == 1, bad.output
    assert "update_sign_flipped" in bad.output


def test_a_tampered_layout_version_is_refused(tmp_path):
    path = tmp_path / "linear.xlsx"
    api.load("linear", batch_size=4, epochs=1).build(path, progress=False)
    wb = openpyxl.load_workbook(path)
    ws = wb["_sheetsgd"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "layout_version":
            assert row[1].value == "2"
            row[1].value = "7"
    wb.save(path)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2 and "layout_version" in result.output and "Traceback" not in result.output


# --- (b), (c): filled in real LibreOffice by a first cell and a fill-down; then through IronCalc ---------

def _mistake(name: str):
    """One catalogued mistake of the lesson at step 1 (tests/test_every_lesson_checks.py's list)."""
    from test_every_lesson_checks import LESSONS

    return next(((m, c) for m, c, step in LESSONS[name][1] if step == 1), None)


@pytest.fixture(scope="module")
def filled_by_libreoffice(tmp_path_factory):
    """{lesson: {"correct": file, "mistake": file, "flaw": (mistake, column)}}: every bundled lesson's student
    version, each blank column's first cell typed and filled down by LibreOffice (one process for all)."""
    from conftest import require_libreoffice
    from lo_fill import fill_down, first_cells, type_first_cells
    from sheetsgd.check.demo import Flaw, _lesson_blocks, fill_sheets
    from test_every_lesson_checks import LESSONS

    require_libreoffice()
    root = tmp_path_factory.mktemp("fill-down")
    jobs, out = [], {}
    for name in api.lessons():
        lesson = kinds.load(name, **SMALL.get(name, LESSONS[name][0]))
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        _, _, blocks, exercise = _lesson_blocks(str(student))
        columns = first_cells(blocks, exercise)
        flaw = _mistake(name)
        out[name] = {"flaw": flaw}
        for tag, f in (("correct", None), ("mistake", flaw)):
            if tag == "mistake" and f is None:
                continue
            typed = root / f"{name}-{tag}-typed.xlsx"
            type_first_cells(student, typed, fill_sheets(str(student), f and Flaw(*f)), columns)
            jobs.append((typed, root / f"{name}-{tag}.xlsx", columns))
            out[name][tag] = root / f"{name}-{tag}.xlsx"
    fill_down(jobs, timeout=900)
    return out


def _check(path: Path, *options):
    result = CliRunner().invoke(cli, ["check", str(path), "--json", *options])
    return result.exit_code, (json.loads(result.output) if result.output.lstrip().startswith("{") else result.output)


def _summary(report) -> tuple:
    if not isinstance(report, dict):
        return (report,)
    return (report["status"], report["score"]["correct"], report["score"]["total"],
            sorted((m["block"], m["column"], m["mistake"], m["step"]) for m in report["mistakes"]))


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", [pytest.param(n, marks=_not_yet(n)) for n in api.lessons()])
def test_a_student_fills_each_blank_column_down_from_its_first_cell(filled_by_libreoffice, name, tmp_path):
    files = filled_by_libreoffice[name]
    code, report = _check(files["correct"])
    assert code == 0, report if isinstance(report, str) else [m for m in report["mistakes"]][:3]
    values_dropped = tmp_path / "no-values.xlsx"
    openpyxl.load_workbook(files["correct"]).save(values_dropped)  # openpyxl keeps formulas, drops cached values
    code2, report2 = _check(values_dropped, "--recalc", "ironcalc")
    assert (code2, _summary(report2)) == (code, _summary(report))


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", api.lessons())
def test_a_mistake_in_a_first_cell_is_named_at_its_column_and_step_1(filled_by_libreoffice, name, tmp_path):
    files = filled_by_libreoffice[name]
    mistake, column = files["flaw"]
    code, report = _check(files["mistake"])
    assert code == 1, report
    block, _, key = column.rpartition(":")
    mine = [m for m in report["mistakes"] if m["column"] == key and (not block or m["block"] == block)]
    assert mine and mine[0]["mistake"] == mistake and mine[0]["step"] == 1, report["mistakes"][:3]
    values_dropped = tmp_path / "no-values.xlsx"
    openpyxl.load_workbook(files["mistake"]).save(values_dropped)
    code2, report2 = _check(values_dropped, "--recalc", "ironcalc")
    assert (code2, _summary(report2)) == (code, _summary(report))


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("mistake,column", [(None, None), ("sum_instead_of_mean", "grad_a"),
                                            ("feature_missing", "grad_a"), ("mse_factor_2_missing", "grad_b"),
                                            ("update_sign_flipped", "new_b")])
def test_row_local_mini_batches_are_judged_as_before(tmp_path, shuffle, mistake, column):
    """A mini-batch student version (layout 2) filled correctly checks clean; each catalogued mistake in a
    gradient of the batch mean is named at its column and step 1 (recalculated by IronCalc)."""
    from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets

    student = tmp_path / "student.xlsx"
    api.load("quadratic", batch_size=4, shuffle=shuffle, epochs=2).build(
        student, exercise="loss,grad_a,grad_b,grad_c,new_a,new_b,new_c", progress=False)
    cells = fill_sheets(str(student), mistake and Flaw(mistake, column))
    assert any(">=C" in str(v) and "<=D" in str(v) for v in cells["Steps"].values())  # the row-local form
    fill_xml_sheets(str(student), str(tmp_path / "filled.xlsx"), cells)
    openpyxl.load_workbook(tmp_path / "filled.xlsx").save(tmp_path / "filled.xlsx")  # no values: IronCalc
    code, report = _check(tmp_path / "filled.xlsx", "--recalc", "ironcalc")
    if mistake is None:
        assert code == 0, report
        return
    assert code == 1, report
    assert [(m["column"], m["mistake"], m["step"]) for m in report["mistakes"]] == [(column, mistake, 1)]


# --- Your task: each blank column's first cell and what it reads, never its formula --------------------

@pytest.mark.parametrize("name", api.lessons())
def test_your_task_names_each_blank_column_first_cell_and_gives_no_formula_away(name, tmp_path):
    lesson = kinds.load(name, **SMALL.get(name, {}))
    kind = kinds.kind_of(lesson)
    student, full = tmp_path / "student.xlsx", tmp_path / "full.xlsx"
    build_student(kind, lesson, student, "")
    kind.build(lesson, full)
    exercise, blocks = _exercise_blocks(student)
    intro = "\n".join(str(v) for row in openpyxl.load_workbook(student, read_only=True)["Introduction"].iter_rows(
        values_only=True) for v in row if v is not None)
    formulas = openpyxl.load_workbook(full)
    assert "Your task" in intro
    for block in blocks:
        for key in exercise.get(block["name"], []):
            col = block["columns"][key][0] + 1
            first = formulas[block["sheet"]].cell(block["first_row"] + 1, col)
            assert f"{block['sheet']}!{first.coordinate}," in intro, (key, first.coordinate)
            if not re.fullmatch(r"[A-Za-z_$][\w.$!]*", first.value[1:]):  # a bare name (=constant_lr) is its input's
                assert first.value[1:] not in intro, f"the Introduction gives {block['sheet']}!{first.coordinate} away"


def test_too_high_blanks_the_asked_columns_in_every_run(tmp_path):
    student = tmp_path / "too-high.xlsx"
    report = api.load("too-high").build(student, exercise=True, progress=False)
    exercise, _ = _exercise_blocks(student)
    runs = {k.split("_")[0] for k in exercise["Runs"]}
    assert runs == {"r1", "r2", "r3", "r4"} and {k.split("_", 1)[1] for k in exercise["Runs"]} == {"grad", "new"}
    assert api.exercise_columns(report) == sorted(exercise["Runs"])
    ws = openpyxl.load_workbook(student)["Runs"]
    formulas = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith("=")]
    assert not any("4*" in f or "-run" in f for f in formulas)  # no run's gradient or update is left to copy


def test_a_layout_version_1_too_high_student_version_asks_run_2_only_as_built():
    code, report = _check(FIXTURES / "too-high.xlsx")
    assert code == 1
    assert {(m["column"], m["mistake"]) for m in report["mistakes"]} == {("r2_grad", "blank"), ("r2_new", "blank")}
