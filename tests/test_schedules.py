"""Learning-rate schedules (sheetsgd.lessons.schedules): each schedule's values against its formula written out
here and against torch's schedulers; one-cycle against fastai's formula, and training with it against
torch float64 step by step; every kind with a schedule recalculated in LibreOffice; bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import bundled_lessons
from sheetsgd.lessons.schedules import Schedule, parse_schedule
from sheetsgd.lessons.sgd.spec import step_columns
from sheetsgd.lessons.sgd.workbook import estimate_size

from conftest import assert_recalculated_equals_cached, close

ONE_CYCLE = {"div": 25.0, "div_final": 1e5, "pct_start": 0.25, "moms": [0.95, 0.85, 0.95]}


def fastai_combined_cos(pos, pct, start, middle, end):
    """fastai's combined_cos(pct, start, middle, end)(pos), written out: two SchedCos, the first over [0, pct)."""
    if pos < pct:
        p, a, b = pos / pct, start, middle
    else:
        p, a, b = (pos - pct) / (1 - pct), middle, end
    return a + (1 + math.cos(math.pi * (1 - p))) * (b - a) / 2


def with_schedule(tmp_path, lesson: str, table: str, name: str | None = None, replace=()):
    """A bundled template with a [schedule] table appended (and text replacements), as a file."""
    text = bundled_lessons()[lesson].read_text(encoding="utf-8")
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{name or lesson}.toml"
    path.write_text(text + f"\n[schedule]\n{table}\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ the values

@pytest.mark.parametrize("n", [7, 40])
def test_step_and_cosine_equal_their_closed_forms(n):
    lr = 0.3
    step = Schedule("step", {"step_size": 3, "gamma": 0.5}).values(lr, n, "sgd")["lr"]
    cosine = Schedule("cosine", {"eta_min": 0.01}).values(lr, n, "sgd")["lr"]
    for t in range(1, n + 1):
        assert close(lr * 0.5 ** ((t - 1) // 3), step[t - 1])
        assert close(0.01 + (lr - 0.01) * (1 + math.cos(math.pi * (t - 1) / n)) / 2, cosine[t - 1])
    assert list(Schedule("constant").values(lr, n, "sgd")["lr"]) == [lr] * n


def test_step_and_cosine_equal_torch_schedulers():
    torch = pytest.importorskip("torch")
    n, lr = 30, 0.2
    for schedule, make in [
        (Schedule("step", {"step_size": 4, "gamma": 0.3}), lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.3)),
        (Schedule("cosine", {"eta_min": 0.001}),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n, eta_min=0.001)),
    ]:
        opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=lr)
        scheduler = make(opt)
        ours = schedule.values(lr, n, "sgd")["lr"]
        for t in range(n):  # the lr step t + 1 trains with: after t scheduler steps
            assert close(opt.param_groups[0]["lr"], ours[t], rel=1e-12), (schedule.kind, t)
            opt.step()
            scheduler.step()


@pytest.mark.parametrize("n, pct", [(87, 0.25), (10, 0.3), (100, 0.5)])
def test_one_cycle_equals_fastai_formula(n, pct):
    lr = 0.7
    params = {**ONE_CYCLE, "pct_start": pct}
    for optimizer, key in [("momentum", "mom"), ("adam", "beta1")]:
        values = Schedule("one-cycle", params).values(lr, n, optimizer)
        for t in range(1, n + 1):
            pos = (t - 1) / n  # fastai's ParamScheduler: pct_train before the batch
            assert close(fastai_combined_cos(pos, pct, lr / 25, lr, lr / 1e5), values["lr"][t - 1])
            assert close(fastai_combined_cos(pos, pct, 0.95, 0.85, 0.95), values[key][t - 1])
    assert set(Schedule("one-cycle", params).values(lr, n, "rmsprop")) == {"lr"}  # nothing to cycle
    first = Schedule("one-cycle", params).values(lr, n, "sgd")["lr"]
    assert close(first[0], lr / 25) and max(first) <= lr and first[-1] < first[-2]  # annealing at the end


# ------------------------------------------------------------------------------- training against torch

@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_one_cycle_training_equals_torch_float64(tmp_path, optimizer):
    torch = pytest.importorskip("torch")
    lr = {"momentum": 5e-5, "adam": 1.0}[optimizer]
    path = with_schedule(tmp_path, "linear", 'kind = "one-cycle"', replace=[
        ('name = "sgd"', f'name = "{optimizer}"'), ("momentum = { lr = 1e-5, momentum = 0.9 }", "momentum = { lr = 5e-5 }"),
        ("adam = { lr = 0.5 }", "adam = { lr = 1.0 }")])
    lesson = kinds.load(str(path), epochs=2)
    steps = train(lesson).steps
    x, y = lesson.data.x, lesson.data.y
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    if optimizer == "momentum":
        opt = torch.optim.SGD([a, b], lr=lr, momentum=0.9, foreach=False)
    else:
        opt = torch.optim.Adam([a, b], lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    n = 2 * len(x)
    for t in range(n):
        pos = t / n
        group = opt.param_groups[0]
        group["lr"] = fastai_combined_cos(pos, 0.25, lr / 25, lr, lr / 1e5)
        mom = fastai_combined_cos(pos, 0.25, 0.95, 0.85, 0.95)
        if optimizer == "momentum":
            group["momentum"] = mom
        else:
            group["betas"] = (mom, 0.999)
        i = t % len(x)
        opt.zero_grad()
        ((a * float(x[i]) + b - float(y[i])) ** 2).backward()
        opt.step()
        assert close(group["lr"], steps["lr"][t])
        assert close(a.item(), steps["new_a"][t]), (t, a.item(), steps["new_a"][t])
        assert close(b.item(), steps["new_b"][t]), (t, b.item(), steps["new_b"][t])


# ---------------------------------------------------------------------------- the sheets, in LibreOffice

def scheduled_lessons(tmp_path):
    """(name, template path or bundled name, options) of every kind with a schedule."""
    return [
        ("linear-one-cycle", with_schedule(tmp_path, "linear", 'kind = "one-cycle"', "linear-one-cycle",
                                           [('name = "sgd"', 'name = "momentum"')]), {"epochs": 2}),
        ("linear-cosine-adam", with_schedule(tmp_path, "linear", 'kind = "cosine"\neta_min = 0.01', "linear-cosine",
                                             [('name = "sgd"', 'name = "adam"')]), {"epochs": 1}),
        ("quadratic-step", with_schedule(tmp_path, "quadratic", 'kind = "step"\nstep_size = 5\ngamma = 0.5'), {}),
        ("optimizers-one-cycle", with_schedule(tmp_path, "optimizers", 'kind = "one-cycle"\npct_start = 0.3'),
         {"epochs": 1}),
        ("one-cycle", "one-cycle", {"epochs": 2}),
        ("titanic-logistic-one-cycle", with_schedule(tmp_path, "titanic-logistic", 'kind = "one-cycle"',
                                                     replace=[('split_seed = 42', 'split_seed = 42\nrows = 120'),
                                                              ('name = "sgd"', 'name = "momentum"')]), {"epochs": 2}),
        ("penguins-cosine", with_schedule(tmp_path, "penguins-softmax", 'kind = "cosine"',
                                          replace=[('name = "sgd"', 'name = "adam"')]), {"epochs": 1}),
        ("too-high-one-cycle", with_schedule(tmp_path, "too-high", 'kind = "one-cycle"'), {}),
        ("collab-filter-one-cycle", with_schedule(tmp_path, "collab-filter", 'kind = "one-cycle"'), {"epochs": 3}),
    ]


def test_every_scheduled_sheet_recalculates_to_the_engine(tmp_path, recalc):
    built = []
    for name, template, options in scheduled_lessons(tmp_path):
        lesson = kinds.load(str(template), **options)
        path = tmp_path / f"{name}.xlsx"
        kinds.kind_of(lesson).build(lesson, path)
        built.append(path)
    recalculated = recalc(built)  # one LibreOffice run for all of them
    for path, fresh in zip(built, recalculated):
        assert assert_recalculated_equals_cached(path, fresh) > 0
        report = check(str(fresh))  # rebuilt from the manifest's template, [schedule] included
        assert report.exit_code == 0, (path.name, report.render() if hasattr(report, "render") else report)


def test_schedule_columns_and_named_inputs(tmp_path):
    path = with_schedule(tmp_path, "linear", 'kind = "one-cycle"', replace=[('name = "sgd"', 'name = "adam"')])
    lesson = kinds.load(str(path))
    columns = step_columns(lesson)
    keys = [c.key for c in columns]
    assert keys[keys.index("epoch") + 1: keys.index("epoch") + 3] == ["lr", "beta1"]
    update = next(c for c in columns if c.key == "new_a").formula
    assert "{lr}" in update and "{hp:lr}" not in update
    mhat = next(c for c in columns if c.key == "mhat_a").formula
    assert "{beta1}" in mhat and "{hp:beta1}" not in mhat  # bias correction with the row's β1, as torch's
    plain = kinds.load("linear")
    size, size_plain = estimate_size(lesson, columns), estimate_size(plain, step_columns(plain))
    # the size guard counts the schedule's columns (and Adam's): every step row is wider
    assert size.max_columns == len(columns) and size.cells >= size_plain.cells + 2 * lesson.n_steps


def test_lr_option_scales_the_schedule(tmp_path):
    path = with_schedule(tmp_path, "linear", 'kind = "one-cycle"')
    lesson = kinds.load(str(path), lr=2e-4)
    lr = train(lesson).steps["lr"]
    assert close(lr[0], 2e-4 / 25) and 0.999 * 2e-4 < max(lr) <= 2e-4


# ------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("table, lesson, words", [
    ('kind = "triangular"', "linear", ["[schedule]", "unknown schedule kind", "triangular"]),
    ('kind = "one-cycle"\npct_start = 1.0', "linear", ["[schedule]", "pct_start"]),
    ('kind = "one-cycle"\npct_start = 0', "quadratic", ["[schedule]", "pct_start"]),
    ('kind = "cosine"\ngamma = 0.5', "linear", ["[schedule]", "gamma"]),
    ('kind = "one-cycle"', "lr-finder", ["[schedule]", "lr finder"]),
    ('compare = ["constant", "cosine"]', "linear", ["[schedule]", "compare", "optimizers"]),
    ('kind = "cosine"\ncompare = ["constant", "cosine"]', "optimizers", ["[schedule]", "not both"]),
    ('kind = "one-cycle"\nmoms = [0.95, 0.85]', "linear", ["[schedule]", "moms"]),
])
def test_bad_schedule_is_one_line_exit_2(tmp_path, table, lesson, words):
    path = with_schedule(tmp_path, lesson, table)
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "out.xlsx")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert all(w in lines[0] for w in words), lines[0]


def test_parse_schedule_defaults_are_fastai_s():
    assert parse_schedule({"schedule": {"kind": "one-cycle"}}, "x").params == ONE_CYCLE
    assert parse_schedule({}, "x") is None


@pytest.mark.parametrize("lesson, epochs", [("one-cycle", 200_000), ("too-high", 3_000_000)])
def test_size_guard_refuses_huge_scheduled_runs_before_training(tmp_path, lesson, epochs):
    template = "one-cycle" if lesson == "one-cycle" else str(with_schedule(tmp_path, lesson, 'kind = "cosine"'))
    result = CliRunner().invoke(cli, ["build", template, "--epochs", str(epochs), "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "too large" in result.output and not (tmp_path / "x.xlsx").exists()


def test_function_size_counts_the_lr_columns(tmp_path):
    from sheetsgd.lessons.runbounds import _function_size

    plain = kinds.load("too-high")
    scheduled = kinds.load(str(with_schedule(tmp_path, "too-high", 'kind = "cosine"')))
    assert _function_size(scheduled).max_columns == _function_size(plain).max_columns + len(plain.runs)
