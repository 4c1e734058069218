"""The lr finder on the Titanic logistic model: LibreOffice's recalculation equals the engine in every formula
cell (Finder, Examples, Data, Chart), the suggestions too, and the engine follows fastai's recipe by hand.

Both workbooks are built first and recalculated in ONE LibreOffice run.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.formula import check_portable
from sheetsgd.lessons.sgd.lesson import read_template, template_kind
from sheetsgd.lessons.lr_finder.finder import finder_columns, train_finder
from sheetsgd.lessons.tabular.workbook import TitanicWorkbook

from conftest import cell_values, close, formula_cells, read_manifest

NAME = "lr-finder-titanic"
# (options, [finder] changes): the bundled lesson (SGD), and momentum so that optimizer state columns meet
# the finder's stop too (its momentum keeps the BCE loss from rising 4-fold before the scores overflow EXP)
CASES = {"sgd": ({}, {}), "momentum": ({"optimizer": "momentum", "epochs": 50}, {"end_lr": 300, "stop_factor": 1.5})}


def load(case):
    options, finder = CASES[case]
    lesson = kinds.load(NAME, **options)
    return replace(lesson, finder={**lesson.finder, **finder})


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def fastai_by_hand(lesson):
    """fastai's LRFinder + lr_find suggestions on σ(w·x) with binary cross-entropy, written out on plain lists.

    The features are the lesson's (tested against a pandas preprocessing in test_titanic); the prediction,
    the clamped BCE, its gradient (torch.clamp passes no gradient outside [ε, 1 − ε]) and SGD are by hand.
    """
    base, f = lesson.base, lesson.finder
    X, Y, eps = base.data.X.tolist(), base.data.y.tolist(), base.clip_eps
    w = base.init.tolist()
    n, beta = int(f["num_it"]), f["smooth_beta"]
    avg, best, lrs, losses = 0.0, math.inf, [], []
    n_train, bs = base.data.n_train, base.batch_size
    order = [i for _ in range(math.ceil(n * bs / n_train) + 1) for i in range(n_train)]
    batches, start = [], 0
    while len(batches) < n:  # data order, the last batch of an epoch smaller (drop_last=False)
        epoch_end = (start // n_train + 1) * n_train
        stop = min(start + bs, epoch_end)
        batches.append(order[start:stop])
        start = stop
    for i, idx in enumerate(batches):
        lr = f["start_lr"] * (f["end_lr"] / f["start_lr"]) ** (i / (n - 1))
        loss, grad = 0.0, [0.0] * len(w)
        for j in idx:
            p = sigmoid(sum(wk * xk for wk, xk in zip(w, X[j])))
            pc = min(max(p, eps), 1 - eps)
            loss -= Y[j] * math.log(pc) + (1 - Y[j]) * math.log(1 - pc)
            dz = 0.0 if (p < eps or p > 1 - eps) else p - Y[j]
            grad = [g + dz * xk for g, xk in zip(grad, X[j])]
        loss /= len(idx)
        avg = beta * avg + (1 - beta) * loss
        smooth = avg / (1 - beta ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        w = [wk - lr * g / len(idx) for wk, g in zip(w, grad)]
        if smooth > f["stop_factor"] * best:
            break  # CancelFitException after recording this batch
    recorded = len(losses)
    lrs = lrs[int(f["skip_start"]):recorded - int(f["skip_end"])]
    losses = losses[int(f["skip_start"]):recorded - int(f["skip_end"])]
    grads = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    return {"lr_min": lrs[int(np.argmin(losses))] / 10, "lr_steep": lrs[int(np.argmin(grads))]}, recorded, losses


def test_engine_follows_fastais_recipe():
    lesson = kinds.load(NAME)
    trace = train_finder(lesson)
    expected, recorded, losses = fastai_by_hand(lesson)
    assert trace.n_recorded == recorded < lesson.num_it  # the loss blew up and the test stopped
    assert trace.suggestions["lr_min"] == pytest.approx(expected["lr_min"], rel=1e-12)
    assert trace.suggestions["lr_steep"] == pytest.approx(expected["lr_steep"], rel=1e-12)
    used = trace.steps["smooth"][trace.steps["usable"] == 1]
    assert used == pytest.approx(losses, rel=1e-9)
    # the curve falls, then blows up; both suggestions lie on the fall, near the lesson's own SGD lr (2.0)
    smooth = trace.steps["smooth"][:recorded]
    lowest = int(np.argmin(smooth))
    assert smooth[lowest] < 0.9 * smooth[0] and smooth[-1] > 4 * smooth[lowest]
    assert 0.1 < trace.suggestions["lr_min"] < trace.suggestions["lr_steep"] < trace.steps["lr"][lowest]
    # no step's score overflows EXP on the sheet (|z| ≤ 709): the sheet shows the blow-up as numbers
    assert np.abs(trace.examples["z"]).max() < 700


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    """{case: (lesson, trace, original path, recalculated path)}: built, then recalculated in one run."""
    folder = tmp_path_factory.mktemp("lr-finder-titanic")
    cases = {}
    for case in CASES:
        lesson = load(case)
        path = folder / f"{case}.xlsx"
        trace = train_finder(lesson)
        kinds.kind_of(lesson).build(lesson, path)
        cases[case] = (lesson, trace, path)
    recalculated = recalc([path for _, _, path in cases.values()])
    return {case: (*cases[case], again) for case, again in zip(cases, recalculated)}


def expected_cells(lesson, trace, path) -> dict[tuple[str, str], object]:
    """{(sheet, cell): the engine's value} for every formula cell the workbook should have."""
    m = read_manifest(path)
    out = {}
    first = m["first_step_row"]
    for column in finder_columns(lesson):
        if column.formula is None:
            continue
        letter = m["columns"][column.key]["column"]
        for i, value in enumerate(trace.steps[column.key]):
            if not math.isfinite(value):
                value = "#N/A" if column.key == "plot" else ""
            out[("Finder", f"{letter}{first + i}")] = value
    for name, key in (("n_recorded", None), ("lr_suggest_min", "lr_min"), ("lr_suggest_steep", "lr_steep")):
        ref = m["suggestion_cells"][name].split("!")[1].replace("$", "")
        out[("Finder", ref)] = trace.n_recorded if key is None else trace.suggestions[key]
    out.update({("Chart", "B3"): trace.suggestions["lr_steep"], ("Chart", "B4"): trace.suggestions["lr_min"],
                ("Chart", "B5"): trace.n_recorded})
    # the chart's marks: each suggestion a vertical line from the lowest to the highest smoothed loss recorded
    recorded = [float(v) for v in trace.steps["smooth"][:int(trace.n_recorded)]]
    out.update({("Chart", "D3"): trace.suggestions["lr_steep"], ("Chart", "D4"): trace.suggestions["lr_steep"],
                ("Chart", "E3"): trace.suggestions["lr_min"], ("Chart", "E4"): trace.suggestions["lr_min"],
                ("Chart", "F3"): min(recorded), ("Chart", "F4"): max(recorded)})
    data = lesson.base.data
    batches = lesson.batches()  # the row-local lookups: each row's step weights and passenger's features
    order = [int(i) for _, b in batches for i in b]
    step_of = [s for s, (_, b) in enumerate(batches) for _ in b]
    features = list(lesson.base.data.feature_keys)
    for key, letter in m["examples_columns"].items():
        if key in trace.examples:
            out.update({("Examples", f"{letter}{2 + i}"): v for i, v in enumerate(trace.examples[key])})
        elif key in lesson.base.net().params:
            out.update({("Examples", f"{letter}{2 + i}"): trace.steps[key][s] for i, s in enumerate(step_of)})
        elif key.startswith("x_"):
            j = features.index(key[2:])
            out.update({("Examples", f"{letter}{2 + i}"): data.X[k, j] for i, k in enumerate(order)})
    derived = [p for p in TitanicWorkbook(lesson.base).data_plan.columns if p.pattern]
    first_data_row = m["data_rows"][0]
    for j, plan in enumerate(derived):
        letter = openpyxl.utils.get_column_letter(plan.col + 1)
        values = data.unscaled[:, j] if j < len(data.features) else data.X[:, j - len(data.features)]
        out.update({("Data", f"{letter}{first_data_row + i}"): v for i, v in enumerate(values)})
        if j < len(data.features):  # the column maxima the features are divided by
            out[("Data", f"{letter}2")] = data.column_max[j]
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_recalculated_workbook_equals_engine_in_every_formula_cell(built, case):
    lesson, trace, path, recalculated = built[case]
    expected = expected_cells(lesson, trace, path)
    formulas = formula_cells(path)
    assert set(formulas) == set(expected)  # every formula cell is checked, none is missing
    values = cell_values(recalculated)
    mismatches = []
    for (sheet, ref), value in expected.items():
        found = values[sheet].get(ref)
        if isinstance(value, str):
            ok = found == value or (value == "" and found is None)
        else:
            ok = isinstance(found, (int, float)) and close(float(value), found)
        if not ok:
            mismatches.append((sheet, ref, value, found))
    assert not mismatches, mismatches[:10]
    assert 0 < trace.n_recorded < lesson.num_it  # the test stopped: rows after it hold the weights
    m = read_manifest(path)
    stop = m["first_step_row"] + trace.n_recorded  # the first row not recorded
    new_age = m["columns"]["new_w_Age"]["column"]
    assert values["Finder"][f"{new_age}{stop}"] == values["Finder"][f"{new_age}{stop + 5}"]


@pytest.mark.parametrize("case", list(CASES))
def test_suggested_lrs_read_from_the_recalculated_sheet_equal_the_engines(built, case):
    lesson, trace, path, recalculated = built[case]
    wb = openpyxl.load_workbook(recalculated, data_only=True)
    for name, key in (("lr_suggest_min", "lr_min"), ("lr_suggest_steep", "lr_steep"), ("n_recorded", None)):
        sheet, ref = wb.defined_names[name].attr_text.split("!")
        found = wb[sheet.strip("'")][ref.replace("$", "")].value
        expected = trace.n_recorded if key is None else trace.suggestions[key]
        assert math.isfinite(expected) and close(expected, found), (name, expected, found)
    wb.close()


@pytest.mark.parametrize("case", list(CASES))
def test_no_unexpected_error_values(built, case):
    """The only error values after recalculation are the #N/A that end the plotted curve."""
    lesson, trace, path, recalculated = built[case]
    m = read_manifest(path)
    plot = m["columns"]["plot"]["column"]
    allowed = {f"{plot}{m['first_step_row'] + i}" for i in np.flatnonzero(np.isnan(trace.steps["plot"]))}
    values = cell_values(recalculated)
    errors = {(sheet, ref): values[sheet].get(ref) for sheet, ref in formula_cells(path)
              if str(values[sheet].get(ref)).startswith("#")}
    assert errors and {ref for sheet, ref in errors if sheet == "Finder"} == allowed
    assert {sheet for sheet, _ in errors} == {"Finder"} and set(errors.values()) == {"#N/A"}


def test_every_formula_is_portable(built):
    for case in CASES:
        path = built[case][2]
        for (sheet, ref), formula in formula_cells(path).items():
            assert not check_portable(formula), (sheet, ref, formula, check_portable(formula))


def test_cli_builds_traces_and_lists_it(tmp_path):
    raw, _, _ = read_template(NAME)
    assert template_kind(raw) == "lr-finder"  # a Titanic template that names another kind keeps it
    runner = CliRunner()
    listed = runner.invoke(cli, ["lessons"]).output
    assert NAME in listed
    data = json.loads(runner.invoke(cli, ["trace", NAME, "--format", "json"]).output)
    trace = train_finder(kinds.load(NAME))
    assert data["suggestions"]["lr_steep"] == pytest.approx(trace.suggestions["lr_steep"])
    assert len(data["steps"]) == 100 and data["recorded_rows"] == trace.n_recorded
    out = tmp_path / "x.xlsx"
    done = runner.invoke(cli, ["build", NAME, "-o", str(out)])
    assert done.exit_code == 0 and out.exists(), done.output
    bad = runner.invoke(cli, ["build", NAME, "--shuffle", "-o", str(tmp_path / "y.xlsx")])
    assert bad.exit_code == 2 and "data order" in bad.stderr


def test_a_run_whose_scores_overflow_exp_is_refused(tmp_path):
    """Momentum up to lr 1000 drives a score below −709: the sheet's EXP would say #NUM!, numpy 0."""
    lesson = kinds.load(NAME, optimizer="momentum", epochs=40)
    lesson = replace(lesson, finder={**lesson.finder, "end_lr": 1000})
    path = tmp_path / "x.xlsx"
    with pytest.raises(SheetsgdError, match=r"row \d+: a passenger's score z = -\d+.*lower end_lr \(now 1000\)"):
        kinds.kind_of(lesson).build(lesson, path)
    assert not path.exists()
