"""The too-high lesson: LibreOffice's recalculation equals the engine, overflow included."""
from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.formula import check_portable
from sheetsgd.lessons.function import FunctionLesson, Run, function_columns, train_function, validate

from conftest import cell_values, close, formula_cells, read_manifest

ERRORS = {"#NUM!", "#VALUE!", "#DIV/0!", "#N/A", "#REF!", "#NAME?", "#NULL!"}




def first_error_step(values, column, first_row, n):
    for i in range(n):
        if values.get(f"{column}{first_row + i}") in ERRORS:
            return i + 1
    return None


def test_sheet_equals_engine_and_both_overflow_at_the_same_step(tmp_path, recalc):
    lesson = kinds.load("too-high")
    path = tmp_path / "too-high.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    [recalculated] = recalc([path])
    trace = train_function(lesson)  # independent of the workbook
    m = read_manifest(path)
    values = cell_values(recalculated)["Runs"]
    first = m["first_step_row"]
    for column in function_columns(lesson):
        letter = m["columns"][column.key]["column"]
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{first + i}")
            if math.isfinite(expected):
                assert isinstance(found, (int, float)), (column.key, i + 1, found)
                assert close(expected, found), (column.key, i + 1, expected, found)
            else:  # where the engine overflows the sheet shows an error value, and only there
                assert found in ERRORS, (column.key, i + 1, found)
    # the diverging run: the same first overflowing step on both sides
    run3 = [i for i, r in enumerate(lesson.runs, start=1) if r.x0 == 6 and r.lr == 0.1][0]
    assert trace.first_overflow[run3] == 6
    sheet_first = min(first_error_step(values, m["columns"][c.key]["column"], first, trace.n_steps) or 10**9
                      for c in function_columns(lesson) if c.key.startswith(f"r{run3}_"))
    assert sheet_first == trace.first_overflow[run3]
    assert all(trace.first_overflow[i] is None for i in (1, 2, 4))
    # every formula is portable, and the cached values the writer stored are the ones LibreOffice computed
    cached = cell_values(path)["Runs"]
    for (sheet, ref), formula in formula_cells(path).items():
        assert check_portable(formula) == []
        if sheet == "Runs" and isinstance(cached[ref], float):
            assert close(cached[ref], values[ref])
        elif sheet == "Runs":
            assert cached[ref] == "#NUM!" and values[ref] in ERRORS


def test_the_runs_show_what_the_lesson_says():
    trace = train_function(kinds.load("too-high"))
    s = trace.steps
    assert abs(s["r2_new"][-1] - 3) < 1e-9  # plain GD from 1 with lr 0.01 reaches 3
    late = s["r1_new"][20:]
    assert late.min() < 1.5 and late.max() > 4  # with accumulated gradients it keeps swinging
    assert s["r3_new"][0] == pytest.approx(6 - 0.1 * 4 * 6 * 27)  # −58.8
    assert abs(s["r4_new"][-1] - 3) < 0.05


def test_first_steps_by_hand():
    lesson = validate(FunctionLesson("t", "t", "", [], 9.0, 3, [Run("a", 1.0, 0.01), Run("b", 1.0, 0.01, True)]))
    s = train_function(lesson).steps
    x1 = 1 - 0.01 * 4 * 1 * (1 - 9)
    assert s["r1_new"][0] == pytest.approx(x1)
    g1, g2 = 4 * 1 * (1 - 9), 4 * x1 * (x1**2 - 9)
    assert s["r2_acc"][1] == pytest.approx(g1 + g2)
    assert s["r2_new"][1] == pytest.approx(x1 - 0.01 * (g1 + g2))


def test_cli_trace_and_options():
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["trace", "too-high", "--format", "json"]).output)
    assert [r["first_overflow_step"] for r in data["runs"]] == [None, None, 6, None]
    assert data["steps"][5]["r3_f"] is None  # an overflow is null in JSON, for every kind
    result = runner.invoke(cli, ["trace", "too-high", "--lr", "0.001", "--epochs", "5"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 6
    bad = runner.invoke(cli, ["build", "too-high", "--optimizer", "adam", "-o", "x.xlsx"])
    assert bad.exit_code == 2 and "does not apply to a function lesson" in bad.stderr


def test_bad_function_templates(tmp_path):
    for text, expected in [("[lesson]\nkind='function'", "[[runs]]"),
                           ("[lesson]\nkind='function'\n[[runs]]\nx0=1", "x0 and lr"),
                           ("[lesson]\nkind='function'\n[[runs]]\nx0=1\nlr=-1", "must be > 0"),
                           ("[lesson]\nkind='nope'", "unknown lesson kind")]:
        path = tmp_path / "f.toml"
        path.write_text(text)
        with pytest.raises(SheetsgdError, match=expected.replace("[", r"\[")):
            kinds.load(str(path))
