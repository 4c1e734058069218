"""The reference: trains a lesson in numpy (float64) and records every quantity a sheet column shows.

Per step: take the batch, predict, measure the loss, compute each parameter's gradient (and a
forward finite-difference estimate beside it, as fast.ai's sheet does), let the optimizer update.
Every quantity is recorded under the name of the column that shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lesson import Lesson


@dataclass
class Trace:
    """Every step's named quantities (``steps[name][i]`` for step i + 1) and per-epoch summaries."""

    steps: dict[str, np.ndarray]
    epochs: dict[str, np.ndarray]
    batches: list[np.ndarray] = field(repr=False)  # 0-based example indices of each step
    final: dict[str, float] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return len(self.batches)

    def summary(self, lesson) -> dict:
        """What `sheetsgd trace --format json` shows beside the steps."""
        return {"optimizer": lesson.optimizer, "hyperparameters": lesson.hyper,
                "epochs": [dict(zip(self.epochs, map(float, vals))) for vals in zip(*self.epochs.values())]}

    def table(self) -> list[dict[str, float]]:
        keys = list(self.steps)
        whole = {"step", "epoch", "example"}
        return [{k: int(self.steps[k][i]) if k in whole else self.steps[k][i].item() for k in keys}
                for i in range(self.n_steps)]


def visit_order(lesson: Lesson) -> list[np.ndarray]:
    """Each epoch's example order: data order, or a fresh seeded permutation per epoch when shuffling.

    A full batch is never shuffled (the order would only change the summation order).
    """
    n = len(lesson.data)
    if not lesson.shuffle or lesson.full_batch:
        return [np.arange(n)] * lesson.epochs
    rng = np.random.default_rng(lesson.seed)
    return [rng.permutation(n) for _ in range(lesson.epochs)]


def make_batches(lesson: Lesson) -> list[tuple[int, np.ndarray]]:
    """(epoch, example indices) per step; the last batch of an epoch may be smaller (drop_last=False)."""
    out = []
    for epoch, order in enumerate(visit_order(lesson), start=1):
        for start in range(0, len(order), lesson.batch_size):
            out.append((epoch, order[start:start + lesson.batch_size]))
    return out


def batch_loss(model, loss, params, x, y) -> float:
    """Mean loss of a batch: Σ loss(ŷ − y) / n, summed in batch order as SUMPRODUCT does."""
    return float(np.sum(loss.value(model.predict(params, x) - y)) / len(x))


def measure(model, loss, params, x, y, idx, h: float | None) -> dict[str, float]:
    """One step's forward pass and gradients: the named quantities of a row before the update.

    With one example (``len(idx) == 1``) the row also shows the example, ŷ, the error and ∂loss/∂ŷ.
    ``h`` is the finite-difference nudge; None leaves the estimates out.
    """
    per_example = len(idx) == 1
    row = {}
    if per_example:
        row.update(example=int(idx[0]) + 1, x=float(x[0]), y=float(y[0]))
    row.update(params)
    pred = model.predict(params, x)
    err = pred - y
    if per_example:
        row.update(pred=float(pred[0]), err=float(err[0]))
    row["loss"] = float(np.sum(loss.value(err)) / len(x))
    dloss = loss.derivative(err)  # ∂loss/∂ŷ per example
    if per_example:
        row["dloss"] = float(dloss[0])
    features = model.features(x)  # ∂ŷ/∂p per example
    for p in model.params:
        row[f"grad_{p}"] = float(np.sum(dloss * features[p]) / len(x))
        if h is not None:
            shifted = {**params, p: params[p] + h}
            row[f"fd_{p}"] = (batch_loss(model, loss, shifted, x, y) - row["loss"]) / h
    return row


def optimize(opt, hp, params, row, state, t) -> dict[str, float]:
    """Apply the optimizer to every parameter; record its state and new values in ``row``; new params.

    numpy scalars, so a diverging run overflows to inf/nan (the sheet's #NUM!) instead of raising.
    """
    for p in params:
        g = np.float64(row[f"grad_{p}"])
        if opt.uses_l2(hp):
            g = g + hp["weight_decay"] * params[p]
            row[f"gwd_{p}"] = float(g)
        with np.errstate(over="ignore", invalid="ignore"):
            out = opt.update(hp, np.float64(params[p]), g, state[p], t)
        for name, value in out.items():
            row[f"{name}_{p}"] = float(value)
        state[p] = {s: out[s] for s in opt.state}
    return {p: row[f"new_{p}"] for p in params}


def columns_of(rows: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in rows[0]}


def train(lesson: Lesson) -> Trace:
    model, loss, opt = lesson.model_cls(), lesson.loss_cls(), lesson.optimizer_obj()
    hp = lesson.hyper
    X, Y = lesson.data.x, lesson.data.y
    params = dict(lesson.init)
    state = {p: opt.start_state(hp) for p in model.params}
    batches = make_batches(lesson)
    rows: list[dict[str, float]] = []
    epoch_full_loss = []

    for t, (epoch, idx) in enumerate(batches, start=1):
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is a result: inf/nan, #NUM! on the sheet
            row = {"step": t, "epoch": epoch, **measure(model, loss, params, X[idx], Y[idx], idx, lesson.fd_step)}
        params = optimize(opt, hp, params, row, state, t)
        rows.append(row)
        if t == len(batches) or batches[t][0] != epoch:  # last step of this epoch
            with np.errstate(over="ignore", invalid="ignore"):
                epoch_full_loss.append(batch_loss(model, loss, params, X, Y))

    steps = columns_of(rows)
    epoch_ids = steps["epoch"].astype(int)
    epochs = {
        "epoch": np.arange(1, lesson.epochs + 1, dtype=float),
        "mean_step_loss": np.array([steps["loss"][epoch_ids == e].mean() for e in range(1, lesson.epochs + 1)]),
        "full_loss": np.array(epoch_full_loss),
    }
    return Trace(steps=steps, epochs=epochs, batches=[b for _, b in batches], final=params)
