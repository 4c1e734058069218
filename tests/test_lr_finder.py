"""The lr finder: LibreOffice's recalculation equals the engine, suggestions included; fastai's recipe by hand."""
from __future__ import annotations

import json
import math

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.lr_finder.finder import finder_columns, train_finder

from conftest import cell_values, close, formula_cells, read_manifest




def fastai_by_hand(lesson):
    """fastai's LRFinder + lr_find suggestions, written out from its source, on plain Python lists."""
    base, f = lesson.base, lesson.finder
    a, b = base.init["a"], base.init["b"]
    n, beta = int(f["num_it"]), f["smooth_beta"]
    avg, best, lrs, losses = 0.0, math.inf, [], []
    for i, (_, idx) in enumerate(lesson.batches()):
        lr = f["start_lr"] * (f["end_lr"] / f["start_lr"]) ** (i / (n - 1))
        xs, ys = base.data.x[idx], base.data.y[idx]
        err = [a * x + b - y for x, y in zip(xs, ys)]
        loss = sum(e * e for e in err) / len(err)
        avg = beta * avg + (1 - beta) * loss
        smooth = avg / (1 - beta ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        ga = sum(2 * e * x for e, x in zip(err, xs)) / len(err)
        gb = sum(2 * e for e in err) / len(err)
        a, b = a - lr * ga, b - lr * gb
        if smooth > f["stop_factor"] * best:
            break  # CancelFitException after recording this batch
    lrs = lrs[int(f["skip_start"]):len(lrs) - int(f["skip_end"])]
    losses = losses[int(f["skip_start"]):len(losses) - int(f["skip_end"])]
    lr_min = lrs[int(np.argmin(losses))] / 10
    grads = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return {"lr_min": lr_min, "lr_steep": lrs[int(np.argmin(grads))]}, len(losses) + int(f["skip_start"]) + int(f["skip_end"])


def test_engine_follows_fastais_recipe():
    lesson = kinds.load("lr-finder")
    trace = train_finder(lesson)
    expected, recorded = fastai_by_hand(lesson)
    assert trace.n_recorded == recorded < lesson.num_it  # the loss blew up and the test stopped
    assert trace.suggestions["lr_min"] == pytest.approx(expected["lr_min"], rel=1e-12)
    assert trace.suggestions["lr_steep"] == pytest.approx(expected["lr_steep"], rel=1e-12)
    assert 1e-5 < trace.suggestions["lr_steep"] < 1e-3  # where the curve really falls, below the blow-up


# one example per row stops at row 2 (the second example's loss is > 4× the first's): no suggestion
@pytest.mark.parametrize("options", [{}, {"batch_size": 1, "epochs": 60}, {"optimizer": "adam", "batch_size": "full"}])
def test_sheet_equals_engine_and_suggests_the_same_lr(tmp_path, recalc, options):
    lesson = kinds.load("lr-finder", **options)
    path = tmp_path / "lr-finder.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    [recalculated] = recalc([path])
    trace = train_finder(lesson)
    m = read_manifest(path)
    values = cell_values(recalculated)["Finder"]
    first = m["first_step_row"]
    for column in finder_columns(lesson):
        if column.formula is None:
            continue
        letter = m["columns"][column.key]["column"]
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{first + i}")
            if column.key == "plot" and not math.isfinite(expected):
                assert found == "#N/A", (i + 1, found)
            elif column.key in ("slope", "smooth_used") and not math.isfinite(expected):
                assert found in (None, ""), (column.key, i + 1, found)
            else:
                assert isinstance(found, (int, float)), (column.key, i + 1, found)
                assert close(expected, found), (column.key, i + 1, expected, found)
    # the suggested learning rates, read from the recalculated sheet
    wb = openpyxl.load_workbook(recalculated, data_only=True)
    for name, key in (("lr_suggest_min", "lr_min"), ("lr_suggest_steep", "lr_steep"), ("n_recorded", None)):
        sheet, ref = wb.defined_names[name].attr_text.split("!")
        found = wb[sheet.strip("'")][ref.replace("$", "")].value
        expected = trace.n_recorded if key is None else trace.suggestions[key]
        if math.isnan(expected):  # too few recorded rows: no suggestion on either side
            assert found in ("#N/A", "#VALUE!", "#NUM!"), (name, found)
        else:
            assert close(expected, found), (name, expected, found)
    for (sheet, ref), formula in formula_cells(path).items():
        assert "_xlfn" not in formula


def test_cli_and_options(tmp_path):
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["trace", "lr-finder", "--format", "json"]).output)
    assert data["suggestions"]["lr_steep"] == pytest.approx(train_finder(kinds.load("lr-finder")).suggestions["lr_steep"])
    assert len(data["steps"]) == 100
    assert runner.invoke(cli, ["trace", "lr-finder", "--epochs", "30"]).output.count("\n") == 31  # --epochs = rows
    bad = runner.invoke(cli, ["build", "lr-finder", "--lr", "0.1", "-o", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2 and "does not apply to an lr finder" in bad.stderr


@pytest.mark.parametrize("finder,expected", [("start_lr = 10\nend_lr = 1", "start_lr < end_lr"),
                                             ("num_it = 1", "num_it"), ("smooth_beta = 1", "smooth_beta"),
                                             ("stop_factor = 0.5", "stop_factor"), ("colour = 1", "unknown key")])
def test_bad_finder_tables(tmp_path, finder, expected):
    _, _, source = kinds.read_template("lr-finder")
    text = open(source, encoding="utf-8").read()
    text = text[:text.index("[finder]")] + "[finder]\n" + finder + "\n"
    path = tmp_path / "f.toml"
    path.write_text(text)
    with pytest.raises(SheetsgdError, match=expected):
        kinds.load(str(path))
