"""The weight-decay lesson (issue 12, item 3): Adam with L2 weight decay in the gradient vs AdamW
(decoupled), same lr and decay, with each weight's shrinkage per step. The sheets recalculated by
LibreOffice equal the engine; the engine equals torch.optim.Adam(weight_decay) and torch.optim.AdamW
at every step; the shrinkage columns equal what torch's own state gives."""
from __future__ import annotations

import dataclasses
import math

import pytest

from sheetsgd.lessons import kinds
from sheetsgd.lessons.compare import train_compare
from sheetsgd.lessons.sgd.spec import step_columns

from conftest import assert_compare_sheets_equal_engine, assert_recalculated_equals_cached, close, read_manifest

VARIANTS = {"mini-batch": {}, "per-example": {"batch_size": 1, "epochs": 2}, "full": {"batch_size": "full",
                                                                                      "epochs": 30}}


def load(key):
    options = dict(VARIANTS[key])
    if options.get("batch_size") == "full":
        options["batch_size"] = 29
    return kinds.load("weight-decay", **options)


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    out = tmp_path_factory.mktemp("weight-decay")
    lessons = {key: load(key) for key in VARIANTS}
    paths = {key: out / f"{key}.xlsx" for key in lessons}
    for key, lesson in lessons.items():
        kinds.kind_of(lesson).build(lesson, paths[key])
    return {k: (lessons[k], paths[k], r) for k, r in zip(paths, recalc(list(paths.values())))}


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_libreoffice_equals_the_engine_in_every_formula_cell(built, key):
    lesson, path, recalculated = built[key]
    m = read_manifest(path)
    assert set(m["sheets"]) == {"adam", "adamw"}
    assert all({"shrink_a", "shrink_b"} <= set(m["sheets"][name]["columns"]) for name in m["sheets"])
    assert_compare_sheets_equal_engine(lesson, recalculated, m)  # against an engine run of its own
    assert assert_recalculated_equals_cached(path, recalculated) > 1000  # every sheet, no error cells


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_adam_l2_and_adamw_equal_torch_at_every_step(key):
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    lesson = load(key)
    trace = train_compare(lesson)
    data = lesson.base.data
    X, Y = torch.tensor(data.x, dtype=torch.float64), torch.tensor(data.y, dtype=torch.float64)
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        les, tr = lesson.lessons()[name], trace.traces[name]
        hp = les.hyper
        a = torch.tensor(float(les.init["a"]), dtype=torch.float64, requires_grad=True)
        b = torch.tensor(float(les.init["b"]), dtype=torch.float64, requires_grad=True)
        opt = cls([a, b], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                  weight_decay=hp["weight_decay"])
        for i, idx in enumerate(tr.batches):
            t = i + 1
            opt.zero_grad()
            ((a * X[idx] + b - Y[idx]) ** 2).mean().backward()
            opt.step()
            for p, tensor in (("a", a), ("b", b)):
                assert close(tensor.item(), tr.steps[f"new_{p}"][i]), (name, p, t)
                vhat = opt.state[tensor]["exp_avg_sq"].item() / (1 - hp["beta2"] ** t)
                shrink = hp["lr"] * hp["weight_decay"] * (1 if name == "adamw" else 1 / (math.sqrt(vhat) + hp["eps"]))
                assert close(shrink, tr.steps[f"shrink_{p}"][i]), (name, p, t)


def test_the_numbers_show_l2_weakened_where_the_gradient_is_large():
    """The course's argument in the lesson's own numbers: AdamW shrinks both weights by lr·wd = 2% a step;
    Adam's L2 shrinks the slope a (x up to 99: large, noisy gradients) by far less than the intercept b,
    and both by far less than AdamW."""
    lesson = load("mini-batch")
    trace = train_compare(lesson)
    adam, adamw = trace.traces["adam"].steps, trace.traces["adamw"].steps
    hp = lesson.lessons()["adamw"].hyper
    assert set(adamw["shrink_a"]) == set(adamw["shrink_b"]) == {hp["lr"] * hp["weight_decay"]}
    assert max(adam["shrink_a"]) < max(adam["shrink_b"]) / 10
    assert max(adam["shrink_b"]) < hp["lr"] * hp["weight_decay"] / 10
    # and so the decoupled decay pulls b further from the data's intercept 30 than L2 does
    assert adamw["new_b"][-1] < adam["new_b"][-1]


def test_shrinkage_needs_weight_decay_and_is_off_by_default():
    lesson = kinds.load("optimizers", epochs=1)
    assert not any(c.key.startswith("shrink_") for les in lesson.lessons().values() for c in step_columns(les))


@pytest.mark.parametrize("options", [{}, {"batch_size": 1, "epochs": 2}])
def test_size_guard_counts_the_shrinkage_columns(tmp_path, options):
    from sheetsgd.lessons.runbounds import estimate

    lesson = kinds.load("weight-decay", **options)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "wd.xlsx")
    size = estimate(lesson)
    assert report.cells <= size.cells <= 1.1 * report.cells
    assert report.formula_cells <= size.formula_cells
    shrink_cells = 2 * 2 * lesson.base.n_steps  # two weights on two sheets, every step
    # with the switch off, the estimate is smaller by the shrinkage columns' cells (and at most the
    # switch's own row of two cells on each sheet, which the estimate counts as an input)
    tables = {n: {**t, "shrinkage": 0} for n, t in lesson.base.optimizer_tables.items()}
    without = dataclasses.replace(lesson, base=dataclasses.replace(lesson.base, optimizer_tables=tables))
    assert shrink_cells <= estimate(lesson).cells - estimate(without).cells <= shrink_cells + 2 * 2


def test_too_large_a_run_is_refused_in_one_line(tmp_path):
    from click.testing import CliRunner

    from sheetsgd.cli.commands import cli

    out = tmp_path / "big.xlsx"
    result = CliRunner().invoke(cli, ["build", "weight-decay", "--epochs", "200000", "--batch-size", "1",
                                      "-o", str(out)])
    assert result.exit_code == 2 and "workbook too large" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not out.exists()


def test_compare_charts_every_weights_shrinkage_from_its_sheet(tmp_path):
    import re
    import zipfile

    lesson = load("mini-batch")
    path = tmp_path / "wd.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    m = read_manifest(path)
    with zipfile.ZipFile(path) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    [chart] = [c for c in charts if "Shrinkage of each weight" in c]
    refs = re.findall(r"<c:val><c:numRef><c:f>([^<]+)</c:f>", chart)
    first, last = m["sheets"]["adam"]["first_step_row"], m["sheets"]["adam"]["first_step_row"] + lesson.base.n_steps - 1
    expected = [f"{m['sheets'][n]['sheet']}!${m['sheets'][n]['columns'][f'shrink_{p}']['column']}${first}:"
                f"${m['sheets'][n]['columns'][f'shrink_{p}']['column']}${last}" for n in ("adam", "adamw") for p in "ab"]
    assert refs == expected
    # a comparison without the switch has no such chart
    plain = tmp_path / "optimizers.xlsx"
    other = kinds.load("optimizers", epochs=1)
    kinds.kind_of(other).build(other, plain)
    with zipfile.ZipFile(plain) as z:
        assert not any("Shrinkage" in z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/"))
