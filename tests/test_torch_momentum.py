"""momentum with dampening, nesterov and weight decay exactly as torch.optim.SGD (issue 10): the buffer
starts at the first gradient (no dampening on step 1). The engine is compared with torch itself, and
the sheet's formula (one template for all steps) with the engine through the checker's evaluator."""
from __future__ import annotations

import itertools

import pytest

from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import load_lesson, override, with_optimizer, validate
from sheetsgd.check.checker import check
from sheetsgd.lessons.sgd.spec import step_columns
from sheetsgd.lessons.sgd.workbook import build_workbook

CASES = [dict(momentum=m, dampening=d, nesterov=n, weight_decay=w)
         for m, d, n, w in itertools.product([0.9, 0.5], [0.0, 0.1, 0.7], [0.0, 1.0], [0.0, 0.01]) if not (n and d)]


def momentum_lesson(batch, **hyper):
    lesson = override(load_lesson("linear"), batch_size=batch, epochs=2)
    return validate(with_optimizer(lesson, "momentum", lr=1e-5, **hyper))


@pytest.mark.parametrize("hyper", CASES, ids=lambda h: ",".join(f"{k}={v:g}" for k, v in h.items()))
@pytest.mark.parametrize("batch", [1, 4])
def test_momentum_equals_torch_sgd(hyper, batch):
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    lesson = momentum_lesson(batch, **hyper)
    trace = train(lesson)
    a = torch.tensor(lesson.init["a"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(lesson.init["b"], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([a, b], lr=lesson.hyper["lr"], momentum=hyper["momentum"], dampening=hyper["dampening"],
                          nesterov=bool(hyper["nesterov"]), weight_decay=hyper["weight_decay"])
    X, Y = torch.tensor(lesson.data.x), torch.tensor(lesson.data.y)
    for i, idx in enumerate(trace.batches):
        opt.zero_grad()
        loss = ((a * X[idx] + b - Y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        assert trace.steps["buf_a"][i] == pytest.approx(opt.state[a]["momentum_buffer"].item(), rel=1e-10, abs=1e-12)
        assert trace.steps["new_a"][i] == pytest.approx(a.item(), rel=1e-10, abs=1e-12), i
        assert trace.steps["new_b"][i] == pytest.approx(b.item(), rel=1e-10, abs=1e-12), i


def test_dampening_skips_step_one_as_torch_does():
    lesson = momentum_lesson(1, momentum=0.9, dampening=0.1)
    s = train(lesson).steps
    g = s["grad_a"]
    assert s["buf_a"][0] == g[0]  # no dampening on the first step
    assert s["buf_a"][1] == pytest.approx(0.9 * g[0] + 0.9 * g[1], rel=1e-12)  # (1 − 0.1)·g from step 2


@pytest.mark.parametrize("hyper", [dict(momentum=0.9, dampening=0.1), dict(momentum=0.5, dampening=0.7, weight_decay=0.01)])
def test_the_sheet_formula_equals_the_engine(hyper, tmp_path):
    """The buf column's pattern (one for all steps), evaluated by the checker on the workbook's cached engine
    values, gives the engine's buf in every step: the checker judges the column correct."""
    lesson = momentum_lesson(1, **hyper)
    assert "({step}>1)" in {c.key: c for c in step_columns(lesson)}["buf_a"].formula
    path = tmp_path / "momentum.xlsx"
    build_workbook(lesson, path)
    report = check(str(path))
    buf = next(c for c in report.columns if c.key == "buf_a")
    assert report.status == "correct" and buf.status == "correct" and buf.correct == buf.total == lesson.n_steps
