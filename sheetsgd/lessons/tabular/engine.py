"""The reference for Titanic lessons: trains in numpy and records every number a formula cell shows.

Per step: the batch's per-example quantities (forward, loss, ∂loss/∂ŷ, chain-rule factors), the
batch-mean loss, accuracy and gradients, then the optimizer update of each parameter by the
engine's one loop (:func:`sheetsgd.lessons.sgd.engine.run_steps`, the same as every other lesson's, start state
included: classic RMSProp starts from v0). After each epoch the validation rows are evaluated with
the epoch's final weights. Keys are the sheet's column keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sheetsgd.lessons.sgd.engine import columns_of, make_batches, run_steps
from sheetsgd.lessons.schedules import SCHEDULE_KEYS, scheduled_forward
from .lesson import TitanicLesson
from .nets import batch_loss, evaluate



@dataclass
class TitanicTrace:
    steps: dict[str, np.ndarray]  # step-row quantities, one entry per step
    examples: dict[str, np.ndarray]  # per-example quantities of every step, concatenated in step order
    epochs: dict[str, np.ndarray]
    batches: list[np.ndarray] = field(repr=False)  # 0-based Data-row (sheet order) indices per step
    validation: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)  # per epoch
    final: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        return len(self.batches)

    def summary(self, lesson) -> dict:
        """What `sheetsgd trace --format json` shows beside the steps."""
        return {"optimizer": lesson.optimizer, "hyperparameters": lesson.hyper, "model": lesson.model,
                "loss": lesson.loss, **({"dropout": lesson.dropout, "dropout_seed": lesson.dropout_seed}
                                        if lesson.dropout is not None else {}),
                "epochs": [dict(zip(self.epochs, map(float, vals))) for vals in zip(*self.epochs.values())]}

    def table(self) -> list[dict]:
        whole = {"step", "epoch", "passenger"}
        return [{k: int(v[i]) if k in whole else v[i].item() for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def train(lesson: TitanicLesson, dry: bool = False) -> TitanicTrace:
    """Train as the sheet does; a diverging run yields inf/NaN quietly (the writer refuses to cache them).
    ``dry``: the layout only (:func:`sheetsgd.lessons.sgd.engine.run_steps`): the checker's rebuild."""
    with np.errstate(all="ignore"):
        return _train(lesson, dry)


def first_non_finite(trace: TitanicTrace) -> tuple[int, str] | None:
    """(step, quantity) of the first step whose numbers are not finite, or None."""
    bad = []
    for key, values in trace.steps.items():
        idx = np.flatnonzero(~np.isfinite(values))
        if len(idx):
            bad.append((int(idx[0]) + 1, key))
    if trace.examples:
        step_of = np.repeat(np.arange(1, trace.n_steps + 1), [len(b) for b in trace.batches])
        for key, values in trace.examples.items():
            idx = np.flatnonzero(~np.isfinite(values))
            if len(idx):
                bad.append((int(step_of[idx[0]]), key))
    return min(bad) if bad else None


def _train(lesson: TitanicLesson, dry: bool) -> TitanicTrace:
    net, loss, opt = lesson.net(), lesson.loss_cls(), lesson.optimizer_obj()
    eps = lesson.clip_eps
    data = lesson.data
    X, Y = data.X, data.y
    names = list(net.params)
    batches = make_batches(lesson)  # indices into the training rows, which are Data rows 0..n_train−1
    example_parts: list[dict[str, np.ndarray]] = []
    validation = []
    per_example = lesson.batch_size == 1
    X_valid, Y_valid = X[data.n_train:], Y[data.n_train:]
    passenger_ids = data.ids

    masks = lesson.dropout_mask() if lesson.dropout is not None else None
    starts = np.cumsum([0] + [len(b) for _, b in batches])  # each step's first Examples row (0-based)
    runs = getattr(net, "runs", ("",))

    def forward(t, epoch, idx, params):
        mask = None if masks is None else masks[starts[t - 1]:starts[t]]
        if dry and t > 1:  # the given quantities only; the examples' numbers are zeros
            given = {} if mask is None else net.mask_columns(mask)
            if per_example:
                return {"step": t, "epoch": epoch, "passenger": float(passenger_ids[idx[0]]),
                        **{k: float(v[0]) for k, v in given.items()}}
            example_parts.append({k: given[k] if k in given else np.zeros(len(idx)) for k in example_parts[0]})
            return {"step": t, "epoch": epoch}
        theta = np.array([params[p] for p in names])
        x, y = X[idx], Y[idx]
        q = evaluate(net, loss, theta, x, y, eps, mask=mask)
        row = {"step": t, "epoch": epoch}
        if per_example:
            row["passenger"] = float(passenger_ids[idx[0]])
            row.update(params)
            row.update({k: float(v[0]) for k, v in q.items()})
        else:
            row.update(params)
            example_parts.append(q)
            for run in runs:
                row["loss" + run] = float(np.sum(q["loss" + run]) / len(idx))
                row["correct" + run] = float(np.sum(q["correct" + run]) / len(idx))
        row.update(zip([f"grad_{p}" for p in names], net.gradients(theta, q, q, x).tolist()))
        return row

    def epoch_end(epoch, params):
        if data.n_valid:
            theta = np.array([params[p] for p in names])
            validation.append(evaluate(net, loss, theta, X_valid, Y_valid, eps, with_backward=False))

    init = dict(zip(names, lesson.init.tolist()))
    forward, hyper_of = scheduled_forward(forward, lesson.schedule, lesson.hyper, lesson.optimizer, len(batches), dry)
    rows, params = run_steps(opt, lesson.hyper, init, batches, forward, hyper_of=hyper_of, epoch_end=epoch_end, dry=dry)
    steps = columns_of(rows, dry)
    steps = {k: steps[k] for k in _sheet_order(steps, names)}
    examples = ({k: np.concatenate([part[k] for part in example_parts]) for k in example_parts[0]}
                if example_parts else {})
    theta = np.array([params[p] for p in names])
    return TitanicTrace(steps=steps, examples=examples, epochs=epoch_summary(lesson, steps, examples, batches, validation),
                        batches=[b for _, b in batches], validation=validation, final=theta)


def _sheet_order(steps, names) -> list[str]:
    """Each weight's gradient just before its optimizer quantities (grad_w, gwd_w, …, new_w), as the trace
    has always listed them (the shared loop records every gradient first, then each weight's update)."""
    scheduled = [k for k in steps if k in SCHEDULE_KEYS]  # the schedule's columns, after epoch
    keys = [k for k in steps if k not in SCHEDULE_KEYS]
    keys[2:2] = scheduled
    first = keys.index("grad_" + names[0])
    head, tail = keys[:first], keys[first + len(names):]
    m = len(tail) // len(names)  # each weight's update quantities, one block per weight in order
    return head + [k for i, p in enumerate(names) for k in ["grad_" + p] + tail[i * m:(i + 1) * m]]


def epoch_summary(lesson, steps, examples, batches, validation) -> dict[str, np.ndarray]:
    """Per epoch: mean training loss and accuracy over the epoch's examples; validation after the epoch."""
    source = steps if lesson.batch_size == 1 else examples
    sizes = np.array([len(b) for _, b in batches])
    epoch_of_example = np.repeat([e for e, _ in batches], sizes) if lesson.batch_size > 1 else steps["epoch"]
    out = {"epoch": np.arange(1, lesson.epochs + 1, dtype=float)}
    runs = getattr(lesson.net(), "runs", ("",))  # a dropout lesson: its net, then the twin without dropout (_0)
    for run in runs:
        for key, name in (("loss", "train_loss"), ("correct", "train_accuracy")):
            out[name + run] = np.array([source[key + run][epoch_of_example == e].mean()
                                        for e in range(1, lesson.epochs + 1)])
    for run in runs if validation else ():
        out["valid_loss" + run] = np.array([v["loss" + run].mean() for v in validation])
        out["valid_accuracy" + run] = np.array([v["correct" + run].mean() for v in validation])
    return out


# ---------------------------------------------------------------------------------------------- best fit


def best_fit(lesson: TitanicLesson) -> tuple[np.ndarray, str]:
    """The engine's optimum on the training rows, and how it was found.

    Linear regression with squared error has a closed form (least squares); everything else gets a
    long full-batch Adam run from the lesson's initial weights, keeping the best point seen.
    """
    with np.errstate(all="ignore"):  # a wild start may overflow on the way; the best finite point is kept
        return _best_fit(lesson)


def _best_fit(lesson: TitanicLesson) -> tuple[np.ndarray, str]:
    net, loss, eps = lesson.net(), lesson.loss_cls(), lesson.clip_eps
    X, y = lesson.data.X[:lesson.data.n_train], lesson.data.y[:lesson.data.n_train]
    if lesson.model == "linear" and lesson.loss == "mse":
        theta = np.linalg.lstsq(X, y, rcond=None)[0]
        return theta, "closed-form least squares (numpy lstsq)"
    theta = lesson.init.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    lr, b1, b2 = 0.01, 0.9, 0.999
    best, best_loss = theta.copy(), np.inf
    steps = lesson.best_fit_steps
    for t in range(1, steps + 1):
        q = evaluate(net, loss, theta, X, y, eps)  # loss and gradient of the current point in one pass
        current = float(np.mean(q["loss"]))
        if current < best_loss:
            best, best_loss = theta.copy(), current
        g = net.gradients(theta, q, q, X)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + 1e-8)
    if batch_loss(net, loss, theta, X, y, eps) < best_loss:
        best = theta
    return best, f"engine: {steps} full-batch Adam steps (lr 0.01) from the initial weights, the best point seen"
