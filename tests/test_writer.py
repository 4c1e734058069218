"""The written workbook, part by part: sheets, names, cached values, the row-to-row chain, charts."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.lessons.sgd.spec import step_columns
from sheetsgd.lessons.sgd.workbook import build_workbook

from conftest import read_manifest

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture(scope="module")
def adam_book(tmp_path_factory):
    lesson = override(load_lesson("linear"), optimizer="adam", epochs=2)
    path = tmp_path_factory.mktemp("w") / "adam.xlsx"
    report = build_workbook(lesson, path)
    return lesson, path, report




def test_sheets_names_and_hidden_manifest(adam_book):
    lesson, path, _ = adam_book
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Introduction", "Steps", "Epochs", "Data", "_sheetsgd"]
    assert wb["_sheetsgd"].sheet_state == "hidden"
    for name in ("lr", "beta1", "beta2", "eps", "fd_step"):
        sheet, ref = wb.defined_names[name].attr_text.split("!")
        assert sheet == "Steps" and ref.startswith("$")
        value = wb[sheet][ref.replace("$", "")].value
        assert value == (lesson.fd_step if name == "fd_step" else lesson.hyper[name])
    m = read_manifest(path)
    assert m["lesson"] == "linear" and m["optimizer"] == "adam" and m["spec_version"] == 3  # 3: central finite differences
    assert {b["name"] for b in m["blocks"]} == {"Steps", "Data"}  # (no origin: built without kinds.load)
    assert set(m["columns"]) == {c.key for c in step_columns(lesson)}


def test_every_formula_cell_caches_the_engine_value(adam_book):
    lesson, path, report = adam_book
    trace = train(lesson)
    m = read_manifest(path)
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet2.xml").decode()
    cells = re.findall(r'<c r="([A-Z]+)(\d+)"[^>]*><f>([^<]*)</f><v>([^<]*)</v></c>', xml)
    assert len(cells) == sum(c.formula is not None for c in step_columns(lesson)) * trace.n_steps
    letters = {v["column"]: k for k, v in m["columns"].items()}
    for letter, row, formula, cached in cells:
        step = int(row) - m["first_step_row"]
        assert float(cached) == pytest.approx(trace.steps[letters[letter]][step], rel=1e-15, abs=1e-300), formula
    assert report.formula_cells >= len(cells)
    assert xml.count("<f>") == xml.count("</f><v>")  # no formula without its cached value


def test_each_row_starts_from_the_previous_rows_update(adam_book):
    lesson, path, _ = adam_book
    m = read_manifest(path)
    ws = openpyxl.load_workbook(path)["Steps"]
    start, first = m["start_row"], m["first_step_row"]
    cols = m["columns"]
    for p in ("a", "b"):
        assert ws[f"{cols['new_' + p]['column']}{start}"].value == lesson.init[p]
        for r in (first, first + 28, first + 29, first + lesson.n_steps - 1):  # across the epoch boundary too
            assert ws[f"{cols[p]['column']}{r}"].value == f"={cols['new_' + p]['column']}{r - 1}"
    for state in ("m_a", "v_b"):
        assert ws[f"{cols[state]['column']}{start}"].value == 0
    # the update refers to the named hyperparameters, never to a relative cell
    assert "lr" in ws[f"{cols['new_a']['column']}{first + 5}"].value
    assert ws.freeze_panes == f"C{start}"


def test_charts_and_data(adam_book):
    lesson, path, _ = adam_book
    with zipfile.ZipFile(path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 3
        assert "vbaProject" not in " ".join(z.namelist())
    ws = openpyxl.load_workbook(path)["Data"]
    assert [ws.cell(r, 2).value for r in range(2, 31)] == lesson.data.x.tolist()
    assert ws["D2"].value.startswith("=Steps!$")


def test_build_report_counts_cells(adam_book):
    lesson, path, report = adam_book
    assert report.steps == lesson.n_steps == 58
    assert report.bytes == path.stat().st_size
    per_row_formulas = sum(c.formula is not None for c in step_columns(lesson))
    assert report.formula_cells == per_row_formulas * 58 + 29 + 2 * 2  # steps, fitted curve, epoch rows


def test_quadratic_data_is_fastbooks_curve():
    """speed = 3·noise + 0.75·(t − 9.5)² + 1 with numpy's seeded normal draws, rounded to 4 decimals."""
    import numpy as np

    lesson = load_lesson("quadratic")
    t = np.arange(20.0)
    noise = np.random.default_rng(42).standard_normal(20)
    np.testing.assert_allclose(lesson.data.x, t)
    np.testing.assert_allclose(lesson.data.y, np.round(0.75 * (t - 9.5) ** 2 + 1 + 3 * noise, 4), atol=1e-12)
    assert lesson.full_batch and lesson.hyper["lr"] == 1e-5


def test_linear_lesson_is_the_graddesc_setup():
    lesson = load_lesson("linear")
    assert len(lesson.data) == 29
    assert (lesson.data.y == 2 * lesson.data.x + 30).all()
    assert lesson.init == {"a": 1.0, "b": 1.0} and lesson.hyper["lr"] == 1e-4 and lesson.batch_size == 1


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("layout", [dict(batch_size=1), dict(batch_size=4, shuffle=True), dict(batch_size="full")])
def test_size_estimate_equals_what_is_written(tmp_path, layout, optimizer):
    from sheetsgd.lessons.sgd.workbook import estimate_size

    lesson = override(load_lesson("quadratic"), epochs=3, optimizer=optimizer, **layout)
    report = build_workbook(lesson, tmp_path / "q.xlsx")
    size = estimate_size(lesson, step_columns(lesson))
    assert size.cells == report.cells
    assert size.formula_cells <= report.formula_cells


@pytest.mark.parametrize("schedule", [{"kind": "one-cycle"}, {"kind": "cosine"}, {"kind": "step", "step_size": 5}])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_size_estimate_counts_a_schedule_s_inputs_and_columns(tmp_path, schedule, optimizer):
    import tomllib

    from sheetsgd.lessons import kinds
    from sheetsgd.lessons.sgd.workbook import estimate_size

    raw = tomllib.loads((TEMPLATES / "linear.toml").read_text())
    raw = {**raw, "schedule": schedule, "optimizer": {**raw["optimizer"], "name": optimizer}}
    lesson = kinds.from_raw(raw, "scheduled", "scheduled.toml", {"epochs": 1})
    report = build_workbook(lesson, tmp_path / "s.xlsx")
    assert estimate_size(lesson, step_columns(lesson)).cells == report.cells


def test_too_large_a_workbook_is_refused_before_training(tmp_path):
    from click.testing import CliRunner

    from sheetsgd.cli.commands import cli

    out = tmp_path / "big.xlsx"
    result = CliRunner().invoke(cli, ["build", "linear", "--epochs", "40000", "-o", str(out)])
    assert result.exit_code == 2
    assert "workbook too large" in result.stderr and "fewer epochs or a larger batch" in result.stderr
    assert "more than Excel's 1,048,576" in result.stderr  # 29 × 40,000 = 1,160,000 step rows
    assert not out.exists()
