"""The engine against independent computations: written-out textbook loops, PyTorch, finite differences."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sheetsgd.lessons.sgd.engine import make_batches, train
from sheetsgd.lessons.sgd.lesson import load_lesson, override, with_optimizer
from sheetsgd.lessons.sgd.losses import LOSSES
from sheetsgd.lessons.sgd.models import MODELS


def lesson_with(name="linear", opt="sgd", batch=1, epochs=2, shuffle=None, **hyper):
    lesson = override(load_lesson(name), optimizer=opt, batch_size=batch, epochs=epochs, shuffle=shuffle)
    return with_optimizer(lesson, opt, **{**lesson.optimizer_tables.get(opt, {}), **hyper}) if hyper else lesson


def linear_grads(a, b, xs, ys):
    """Mean-squared-error gradients of y ≈ a·x + b, written out by hand."""
    ga = sum(2 * (a * x + b - y) * x for x, y in zip(xs, ys)) / len(xs)
    gb = sum(2 * (a * x + b - y) for x, y in zip(xs, ys)) / len(xs)
    return ga, gb


def textbook_run(lesson):
    """Each optimizer's update exactly as its paper / torch docs state it, one plain loop, no numpy."""
    hp = lesson.hyper
    a, b = lesson.init["a"], lesson.init["b"]
    state = {"a": {}, "b": {}}
    out = []
    for t, (_, idx) in enumerate(make_batches(lesson), start=1):
        xs = [lesson.data.x[i] for i in idx]
        ys = [lesson.data.y[i] for i in idx]
        grads = dict(zip("ab", linear_grads(a, b, xs, ys)))
        params = {"a": a, "b": b}
        new = {}
        for name, p in params.items():
            g = grads[name]
            s = state[name]
            wd = hp.get("weight_decay", 0.0)
            if lesson.optimizer == "sgd":
                new[name] = p - hp["lr"] * (g + wd * p)
            elif lesson.optimizer == "momentum":
                g = g + wd * p
                s["buf"] = g if t == 1 else hp["momentum"] * s["buf"] + (1 - hp["dampening"]) * g
                step = g + hp["momentum"] * s["buf"] if hp["nesterov"] else s["buf"]
                new[name] = p - hp["lr"] * step
            elif lesson.optimizer == "rmsprop":
                g = g + wd * p
                s["v"] = hp["alpha"] * s.get("v", 0.0) + (1 - hp["alpha"]) * g * g
                new[name] = p - hp["lr"] * g / (math.sqrt(s["v"]) + hp["eps"])
            else:  # adam / adamw (Kingma & Ba, Algorithm 1; Loshchilov & Hutter for AdamW)
                if lesson.optimizer == "adamw":
                    p = p * (1 - hp["lr"] * wd)
                else:
                    g = g + wd * p
                s["m"] = hp["beta1"] * s.get("m", 0.0) + (1 - hp["beta1"]) * g
                s["v"] = hp["beta2"] * s.get("v", 0.0) + (1 - hp["beta2"]) * g * g
                m_hat = s["m"] / (1 - hp["beta1"] ** t) if hp["bias_correction"] else s["m"]
                v_hat = s["v"] / (1 - hp["beta2"] ** t) if hp["bias_correction"] else s["v"]
                new[name] = p - hp["lr"] * m_hat / (math.sqrt(v_hat) + hp["eps"])
        a, b = new["a"], new["b"]
        out.append((a, b))
    return np.array(out)


OPTIMIZER_CASES = [
    ("sgd", {}), ("sgd", {"weight_decay": 0.1}),
    ("momentum", {}), ("momentum", {"nesterov": 1.0}), ("momentum", {"weight_decay": 0.01}),
    ("momentum", {"dampening": 0.1}), ("momentum", {"dampening": 0.5, "weight_decay": 0.01}),
    ("rmsprop", {}), ("rmsprop", {"weight_decay": 0.01}),
    ("adam", {}), ("adam", {"bias_correction": 0.0}), ("adam", {"weight_decay": 0.01}),
    ("adamw", {}), ("adamw", {"weight_decay": 0.1}),
]


@pytest.mark.parametrize("batch", [1, 5, "full"])
@pytest.mark.parametrize("opt,hyper", OPTIMIZER_CASES)
def test_optimizer_equals_textbook_loop(opt, hyper, batch):
    lesson = lesson_with("linear", opt, batch, epochs=3, **hyper)
    trace = train(lesson)
    expected = textbook_run(lesson)
    found = np.column_stack([trace.steps["new_a"], trace.steps["new_b"]])
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(found[0], [lesson.init["a"], lesson.init["b"]])  # training moved something


def test_classic_momentum_is_the_graddesc_moving_average():
    """classic: buf is fast.ai's m = β·m + (1 − β)·g from m = 0, step 1 damped too (dampening follows torch)."""
    lesson = lesson_with("linear", "momentum", 1, epochs=1, classic=1.0, momentum=0.9)
    trace = train(lesson)
    m, a, b = 0.0, lesson.init["a"], lesson.init["b"]
    for i in range(len(lesson.data)):
        ga, _ = linear_grads(a, b, [lesson.data.x[i]], [lesson.data.y[i]])
        m = 0.9 * m + 0.1 * ga
        assert trace.steps["buf_a"][i] == pytest.approx(m, rel=1e-12)
        a, b = trace.steps["new_a"][i], trace.steps["new_b"][i]


TORCH_OPTIMIZERS = {
    "sgd": lambda p, hp: ("SGD", dict(lr=hp["lr"], weight_decay=hp["weight_decay"])),
    "momentum": lambda p, hp: ("SGD", dict(lr=hp["lr"], momentum=hp["momentum"], nesterov=bool(hp["nesterov"]),
                                           weight_decay=hp["weight_decay"])),
    "rmsprop": lambda p, hp: ("RMSprop", dict(lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"],
                                              weight_decay=hp["weight_decay"])),
    "adam": lambda p, hp: ("Adam", dict(lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                        weight_decay=hp["weight_decay"])),
    "adamw": lambda p, hp: ("AdamW", dict(lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                          weight_decay=hp["weight_decay"])),
}


@pytest.mark.parametrize("model_name", ["linear", "quadratic"])
@pytest.mark.parametrize("opt", sorted(TORCH_OPTIMIZERS))
@pytest.mark.parametrize("loss_name", ["mse", "mae"])
def test_engine_equals_torch_optim(model_name, opt, loss_name):
    """Same data, init and hyperparameters through torch.autograd and torch.optim (float64)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the textbook-loop tests still ran")
    lesson = override(load_lesson(model_name), optimizer=opt, batch_size=4, epochs=2, loss=loss_name)
    trace = train(lesson)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in lesson.init.items()}
    cls_name, kwargs = TORCH_OPTIMIZERS[opt](params, lesson.hyper)
    optimizer = getattr(torch.optim, cls_name)(list(params.values()), **kwargs)
    X, Y = torch.tensor(lesson.data.x), torch.tensor(lesson.data.y)
    for i, idx in enumerate(trace.batches):
        optimizer.zero_grad()
        x, y = X[idx], Y[idx]
        pred = params["a"] * x + params["b"] if model_name == "linear" else \
            params["a"] * x**2 + params["b"] * x + params["c"]
        err = pred - y
        loss = (err**2).mean() if loss_name == "mse" else err.abs().mean()
        loss.backward()
        for k, p in params.items():
            assert trace.steps[f"grad_{k}"][i] == pytest.approx(p.grad.item(), rel=1e-10, abs=1e-12)
        assert trace.steps["loss"][i] == pytest.approx(loss.item(), rel=1e-12)
        optimizer.step()
        for k, p in params.items():
            assert trace.steps[f"new_{k}"][i] == pytest.approx(p.item(), rel=1e-9, abs=1e-12), (k, i)


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("loss_name", sorted(set(LOSSES) - {"bce"}))  # bce needs probabilities: tests/test_own_data.py
def test_analytic_gradient_equals_central_difference(model_name, loss_name):
    model, loss = MODELS[model_name], LOSSES[loss_name]
    rng = np.random.default_rng(7)
    x = rng.uniform(-3, 3, 25)
    y = rng.normal(size=25) * 4
    params = {p: float(v) for p, v in zip(model.params, rng.normal(size=len(model.params)))}

    def mean_loss(ps):
        return np.mean(loss.value(model.predict(ps, x) - y))

    err = model.predict(params, x) - y
    feats = model.features(x)
    for p in model.params:
        analytic = np.mean(loss.derivative(err) * feats[p])
        h = 1e-6
        numeric = (mean_loss({**params, p: params[p] + h}) - mean_loss({**params, p: params[p] - h})) / (2 * h)
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8), p


def test_trace_gradients_equal_central_difference_at_every_step():
    lesson = lesson_with("quadratic", "adam", "full", epochs=5)
    trace = train(lesson)
    model, loss = lesson.model_cls(), lesson.loss_cls()
    x, y = lesson.data.x, lesson.data.y
    for i in range(trace.n_steps):
        params = {p: trace.steps[p][i] for p in model.params}
        for p in model.params:
            h = 1e-6 * max(1.0, abs(params[p]))
            up = np.mean(loss.value(model.predict({**params, p: params[p] + h}, x) - y))
            down = np.mean(loss.value(model.predict({**params, p: params[p] - h}, x) - y))
            assert trace.steps[f"grad_{p}"][i] == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_difference_columns_are_the_central_and_the_fastai_estimates():
    from dataclasses import replace

    lesson = lesson_with("linear", "sgd", 1, epochs=1)
    h = lesson.fd_step
    central, forward = train(lesson), train(replace(lesson, fd_scheme="forward"))
    for i in (0, 10, 28):
        a, b, x, y = (central.steps[k][i] for k in ("a", "b", "x", "y"))
        sq = lambda a, b: (a * x + b - y) ** 2  # noqa: E731
        assert central.steps["fd_b"][i] == pytest.approx((sq(a, b + h) - sq(a, b - h)) / (2 * h), rel=1e-9)
        assert central.steps["fd_a"][i] == pytest.approx((sq(a + h, b) - sq(a - h, b)) / (2 * h), rel=1e-9)
        assert forward.steps["fd_b"][i] == pytest.approx((sq(a, b + h) - sq(a, b)) / h, rel=1e-9)
        assert forward.steps["fd_a"][i] == pytest.approx((sq(a + h, b) - sq(a, b)) / h, rel=1e-9)


def test_batches_cover_each_epoch_once_and_shuffle_from_the_seed():
    lesson = lesson_with("linear", "sgd", 4, epochs=3, shuffle=True)
    batches = make_batches(lesson)
    assert len(batches) == 3 * math.ceil(29 / 4)
    for epoch in (1, 2, 3):
        seen = np.concatenate([b for e, b in batches if e == epoch])
        assert sorted(seen.tolist()) == list(range(29))
    orders = [np.concatenate([b for e, b in batches if e == k]) for k in (1, 2)]
    assert not np.array_equal(orders[0], orders[1])
    again = make_batches(lesson)
    assert all(np.array_equal(p[1], q[1]) for p, q in zip(batches, again))
    other = make_batches(override(lesson, seed=1))
    assert not all(np.array_equal(p[1], q[1]) for p, q in zip(batches, other))


def test_epochs_continue_from_the_previous_epoch_without_losing_an_update():
    """The graddesc macros copy the last row's inputs and lose its update; rows here do not."""
    lesson = lesson_with("linear", "sgd", 1, epochs=2)
    trace = train(lesson)
    n = len(lesson.data)
    assert trace.steps["a"][n] == trace.steps["new_a"][n - 1]
    assert trace.steps["epoch"][n] == 2


def test_epoch_summary_is_the_full_data_loss_after_each_epoch():
    lesson = lesson_with("linear", "sgd", 1, epochs=3)
    trace = train(lesson)
    n = len(lesson.data)
    for e in range(3):
        a, b = trace.steps["new_a"][(e + 1) * n - 1], trace.steps["new_b"][(e + 1) * n - 1]
        expected = np.mean((a * lesson.data.x + b - lesson.data.y) ** 2)
        assert trace.epochs["full_loss"][e] == pytest.approx(expected, rel=1e-12)
        assert trace.epochs["mean_step_loss"][e] == pytest.approx(trace.steps["loss"][e * n:(e + 1) * n].mean())


def test_linear_sgd_learns_the_line():
    lesson = lesson_with("linear", "adam", 1, epochs=60)
    trace = train(lesson)
    assert trace.final["a"] == pytest.approx(2, abs=0.05)
    assert trace.final["b"] == pytest.approx(30, abs=3)
