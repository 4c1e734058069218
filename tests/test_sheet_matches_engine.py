"""The sheet computes what the engine computes: build, recalculate in LibreOffice (forced), compare.

Every formula cell is compared: Steps columns against an engine run made here, and every formula
cell of every sheet against the value the writer cached for it.
"""
from __future__ import annotations

import zipfile

import openpyxl
import pytest

from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import load_lesson, override, with_optimizer
from sheetsgd.lessons.optimizers import OPTIMIZERS
from sheetsgd.lessons.sgd.spec import step_columns
from sheetsgd.lessons.sgd.workbook import STEPS, build_workbook

from conftest import assert_recalculated_equals_cached, cell_values, close, read_manifest

CASES = [(lesson, opt, batch) for lesson in ("linear", "quadratic") for opt in sorted(OPTIMIZERS)
         for batch in (1, "full")]
VARIANTS = {  # hyperparameter switches and layouts the plain cases do not reach
    "linear-momentum-nesterov-wd": ("linear", "momentum", 1, {"nesterov": 1.0, "weight_decay": 0.05}),
    "linear-momentum-dampening": ("linear", "momentum", 4, {"dampening": 0.9}),
    "linear-adam-nobias-l2": ("linear", "adam", 1, {"bias_correction": 0.0, "weight_decay": 0.01}),
    "quadratic-sgd-shuffled-b6": ("quadratic", "sgd", 6, {}),
    "linear-rmsprop-shuffled-b1-mae": ("linear", "rmsprop", 1, {}),
}


def make_lesson(name, opt, batch, hyper=None, shuffle=None, loss=None):
    lesson = override(load_lesson(name), optimizer=opt, batch_size=batch, epochs=2, shuffle=shuffle, loss=loss)
    return with_optimizer(lesson, opt, **{**lesson.optimizer_tables.get(opt, {}), **(hyper or {})}) if hyper else lesson


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    out = tmp_path_factory.mktemp("built")
    lessons = {f"{n}-{o}-{b}": make_lesson(n, o, b) for n, o, b in CASES}
    for key, (n, o, b, hyper) in VARIANTS.items():
        lessons[key] = make_lesson(n, o, b, hyper, shuffle="shuffled" in key, loss="mae" if "mae" in key else None)
    paths = {}
    for key, lesson in lessons.items():
        paths[key] = out / f"{key}.xlsx"
        build_workbook(lesson, paths[key])
    recalculated = dict(zip(paths, recalc(list(paths.values()))))
    return {k: (lessons[k], paths[k], recalculated[k]) for k in lessons}




def assert_steps_equal_engine(lesson, recalculated_path, manifest):
    trace = train(lesson)  # an independent run: nothing read from the workbook
    values = cell_values(recalculated_path)[STEPS]
    first = manifest["first_step_row"]
    checked = 0
    for column in step_columns(lesson):
        letter = manifest["columns"][column.key]["column"]
        if column.key in ("first", "last"):
            continue
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{first + i}")
            assert isinstance(found, (int, float)), f"{column.key} step {i + 1}: {found!r}"
            assert close(expected, found), f"{column.key} step {i + 1}: engine {expected!r}, sheet {found!r}"
            checked += column.formula is not None
    return checked


@pytest.mark.parametrize("key", [f"{n}-{o}-{b}" for n, o, b in CASES] + list(VARIANTS))
def test_recalculated_sheet_equals_engine(built, key):
    lesson, path, recalculated = built[key]
    manifest = read_manifest(path)
    assert lesson.epochs >= 2
    checked = assert_steps_equal_engine(lesson, recalculated, manifest)
    assert checked >= lesson.n_steps * 6

    # every formula cell of every sheet: the recalculated value equals the engine value cached in it
    assert assert_recalculated_equals_cached(path, recalculated) > checked  # Steps' formulas and the other sheets'


def test_editing_lr_recomputes_the_whole_trajectory(tmp_path, recalc):
    lesson = make_lesson("linear", "momentum", 1)
    path = tmp_path / "linear.xlsx"
    build_workbook(lesson, path)
    manifest = read_manifest(path)
    new_lr = lesson.hyper["lr"] * 3
    wb = openpyxl.load_workbook(path)
    sheet, ref = manifest["hyperparameters"]["lr"].split("!")
    wb[sheet][ref.replace("$", "")].value = new_lr
    edited = tmp_path / "edited" / "linear-lr.xlsx"
    edited.parent.mkdir()
    wb.save(edited)
    [recalculated] = recalc([edited])
    expected = with_optimizer(lesson, "momentum", **{**lesson.optimizer_tables["momentum"], "lr": new_lr})
    assert_steps_equal_engine(expected, recalculated, manifest)
    # and the trajectory really moved: the old engine run no longer matches
    with pytest.raises(AssertionError):
        assert_steps_equal_engine(lesson, recalculated, manifest)


def test_recalculation_really_runs(tmp_path, recalc):
    """A cached value made wrong on purpose is replaced by the true one: LibreOffice did recalculate."""
    lesson = make_lesson("linear", "sgd", 1)
    good = tmp_path / "good.xlsx"
    build_workbook(lesson, good)
    manifest = read_manifest(good)
    ref = f"{manifest['columns']['new_a']['column']}{manifest['first_step_row']}"
    bad = tmp_path / "wrongcache.xlsx"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        sheet_part = "xl/worksheets/sheet2.xml"  # Steps is the second sheet
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == sheet_part:
                text = data.decode()
                start = text.index(f'<c r="{ref}"')
                v0 = text.index("<v>", start) + 3
                v1 = text.index("</v>", v0)
                text = text[:v0] + "12345" + text[v1:]
                data = text.encode()
            zout.writestr(item, data)
    assert cell_values(bad)[STEPS][ref] == 12345
    [recalculated] = recalc([bad])
    assert close(train(lesson).steps["new_a"][0], cell_values(recalculated)[STEPS][ref])


def test_a_diverging_lesson_overflows_where_the_engine_does(tmp_path, recalc):
    """lr far too high: the sheet shows error values exactly in the cells where the engine overflows."""
    import math

    lesson = override(load_lesson("linear"), lr=0.01, epochs=30)
    trace = train(lesson)
    assert not all(math.isfinite(v) for v in trace.steps["new_a"])  # it does diverge
    path = tmp_path / "diverging.xlsx"
    build_workbook(lesson, path)
    [recalculated] = recalc([path])
    manifest = read_manifest(path)
    values = cell_values(recalculated)[STEPS]
    first, overflowed = manifest["first_step_row"], 0
    for column in step_columns(lesson):
        if column.formula is None:
            continue
        letter = manifest["columns"][column.key]["column"]
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{first + i}")
            if math.isfinite(expected):
                # a finite difference of a huge loss carries an absolute uncertainty of ~eps·loss/h, and
                # LibreOffice snaps differences within ~2^-48 of their operands to 0 (spreadsheet-compat.md)
                noise = 1e-12 * abs(trace.steps["loss"][i]) / lesson.fd_step if column.key.startswith("fd_") else 0
                assert isinstance(found, (int, float)), (column.key, i + 1, found)
                assert close(expected, found, rel=1e-9, abs_tol=max(1e-12, noise)), (column.key, i + 1, expected, found)
            else:
                assert isinstance(found, str) and found.startswith("#"), (column.key, i + 1, expected, found)
                overflowed += 1
    assert overflowed > 100


def test_trace_json_of_a_diverging_run_is_valid_json():
    import json

    from click.testing import CliRunner

    from sheetsgd.cli.commands import cli

    result = CliRunner().invoke(cli, ["trace", "linear", "--lr", "0.01", "--epochs", "30", "--format", "json"])
    data = json.loads(result.output)  # NaN/Infinity would not parse strictly below
    json.dumps(data, allow_nan=False)
    assert data["steps"][-1]["new_a"] is None
