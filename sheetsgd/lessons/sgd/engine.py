"""The reference: trains a lesson in numpy (float64) and records every quantity a sheet column shows.

Per step: take the batch, predict, measure the loss, compute each parameter's gradient (and a
forward finite-difference estimate beside it, as fast.ai's sheet does), let the optimizer update.
Every quantity is recorded under the name of the column that shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from .lesson import Lesson
from sheetsgd.lessons.schedules import scheduled_forward


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
    return float(np.add.reduce(loss.value(model.predict(params, x) - y)) / len(x))


def finite_difference(loss_at, value, h: float, loss_here, central: bool = True):
    """The estimate of ∂L/∂p beside each gradient: central (L(p + h) − L(p − h)) / 2h, or forward
    (L(p + h) − L(p)) / h as workbooks before spec version 3 have it. Works on arrays too.

    The data lessons' loss is a quadratic in each parameter (squared error of a model linear in its
    parameters), so the central difference equals the gradient but for rounding, whatever h; the
    forward one is off by h·∂²L/∂p², which for the quadratic lesson's t² coefficient (t² up to 361) is
    larger than the gradient itself."""
    if central:
        return (loss_at(value + h) - loss_at(value - h)) / (2 * h)
    return (loss_at(value + h) - loss_here) / h


def measure(model, loss, params, x, y, idx, h: float | None, central: bool = True) -> dict[str, float]:
    """One step's forward pass and gradients: the named quantities of a row before the update.

    With one example (``len(idx) == 1``) the row also shows the example, ŷ, the error and ∂loss/∂ŷ.
    ``h`` is the finite-difference nudge; None leaves the estimates out (``central``: which scheme).
    """
    if len(idx) == 1:
        try:
            return measure_one(model, loss, params, float(x[0]), float(y[0]), int(idx[0]) + 1, h, central=central)
        except ArithmeticError:  # Python floats raise where numpy overflows to inf/nan: take the array path
            pass
    per_example = len(idx) == 1
    row = {}
    if per_example:
        row.update(example=int(idx[0]) + 1, x=float(x[0]), y=float(y[0]))
    row.update(params)
    pred = model.predict(params, x)
    err = pred - y
    if per_example:
        row.update(pred=float(pred[0]), err=float(err[0]))
    row["loss"] = float(np.add.reduce(loss.value(err)) / len(x))
    dloss = loss.derivative(err)  # ∂loss/∂ŷ per example
    if per_example:
        row["dloss"] = float(dloss[0])
    features = model.features(x, params)  # ∂ŷ/∂p per example
    derived = getattr(model, "derived_columns", False)  # an own formula's ∂ŷ/∂p: a column of their own
    for p in model.params:
        if derived and per_example:
            row["dpred_" + p] = float(features[p][0])
        row[f"grad_{p}"] = float(np.add.reduce(dloss * features[p]) / len(x))
        if h is not None:
            row[f"fd_{p}"] = finite_difference(lambda v: batch_loss(model, loss, {**params, p: v}, x, y),
                                               params[p], h, row["loss"], central)
    return row


def measure_one(model, loss, params, x: float, y: float, example: int, h: float | None,
                row: dict | None = None, central: bool = True) -> dict[str, float]:
    """``measure`` for one example, in Python floats: the same IEEE operations as on one-element arrays
    (a sum of one term is the term, a division by 1 changes nothing), without numpy's per-call cost.

    Raises ArithmeticError where Python floats do (x ** 2 overflowing, a division by 0); the caller
    then takes the array path, which yields inf/nan as the sheet's #NUM!. ``row``: the dict to fill.
    """
    row = gradient_one(model, loss, params, x, y, example, row)
    predict, value = model.predict, loss.value
    row["loss"] = mean = float(value(row["err"]))
    if h is not None:
        for p in model.params:
            row["fd_" + p] = finite_difference(lambda v: float(value(predict({**params, p: v}, x) - y)),
                                               params[p], h, mean, central)
    return _in_row_order(row, model.params)


def gradient_one(model, loss, params, x: float, y: float, example: int, row: dict | None = None) -> dict:
    """What an optimizer step needs of one example, in Python floats: the row's example, parameters, ŷ,
    error, ∂loss/∂ŷ and gradients. The loss and the finite differences need not be in the loop:
    :func:`add_losses` computes them for every step at once afterwards (the same IEEE operations)."""
    row = {} if row is None else row
    row["example"] = example
    row["x"] = x
    row["y"] = y
    row.update(params)
    row["pred"] = pred = float(model.predict(params, x))
    row["err"] = err = pred - y
    row["dloss"] = dloss = float(loss.derivative(err))
    features = model.features(x, params)
    if getattr(model, "derived_columns", False):  # an own formula's ∂ŷ/∂p: a column of their own
        for p in model.params:
            row["dpred_" + p] = float(features[p])
    for p, key in _grad_keys(model.params):
        row[key] = dloss * features[p]
    return row


def add_losses(steps: dict[str, np.ndarray], model, loss, h: float | None, central: bool = True) -> dict[str, np.ndarray]:
    """Each one-example step's loss and forward finite-difference estimates, from its recorded example
    and parameters, for all steps at once; the columns in the row order of :func:`measure`."""
    x, y = steps["x"], steps["y"]
    params = {p: steps[p] for p in model.params}
    with np.errstate(all="ignore"):  # a diverged run: inf/nan, as in the loop
        steps["loss"] = mean = loss.value(steps["err"]) * 1.0
        if h is not None:
            for p in model.params:
                steps["fd_" + p] = finite_difference(lambda v: loss.value(model.predict({**params, p: v}, x) - y),
                                                     params[p], h, mean, central)
    return _in_row_order(steps, model.params)


def _in_row_order(row: dict, params) -> dict:
    """The keys in the sheet's column order: … err, loss, dloss, grad_a, fd_a, grad_b, fd_b … (the rest
    after, as they came)."""
    order = ["step", "epoch", "example", "x", "y", *params, "pred", "err", "loss", "dloss"]
    for p in params:
        order += ["dpred_" + p, "grad_" + p, "fd_" + p]
    head = [k for k in order if k in row]
    return {**{k: row[k] for k in head}, **{k: v for k, v in row.items() if k not in head}}


_GRAD_KEYS: dict[tuple, tuple] = {}


def _grad_keys(params: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(p, grad_p) of each parameter, the key names made once."""
    keys = _GRAD_KEYS.get(params)
    if keys is None:
        keys = _GRAD_KEYS[params] = tuple((p, "grad_" + p) for p in params)
    return keys


def optimize(opt, hp, params, row, state, t) -> dict[str, float]:
    """Apply the optimizer to every parameter; record its state and new values in ``row``; new params."""
    return Updater(opt, list(params))(hp, params, row, state, t)


class Updater:
    """One optimizer step of every parameter, with the row's key names worked out once.

    In Python floats where they can (the same IEEE arithmetic as numpy scalars, faster); where they
    raise (an overflowing power, a division by 0) the update is redone in numpy scalars, so a
    diverging run overflows to inf/nan (the sheet's #NUM!) instead of raising.
    """

    def __init__(self, opt, params):
        self.opt = opt
        self.keys = {p: ("grad_" + p, "gwd_" + p, "new_" + p) for p in params}
        self.out_keys: dict[str, list[tuple[str, str]]] = {}  # per parameter: (quantity, row key), once known
        self._hp, self._l2 = None, False

    def __call__(self, hp, params, row, state, t) -> dict[str, float]:
        opt = self.opt
        if hp is not self._hp:  # the same hyperparameters every step, unless a schedule changes them
            self._hp, self._l2 = hp, opt.uses_l2(hp)
        l2, names, out_keys = self._l2, opt.state, self.out_keys
        new = {}
        for p, value in params.items():
            grad, gwd, new_key = self.keys[p]
            g = row[grad]
            if l2:
                g = g + hp["weight_decay"] * value
                row[gwd] = float(g)
            try:
                out = opt.update(hp, value, g, state[p], t)
            except ArithmeticError:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    out = opt.update(hp, np.float64(value), np.float64(g), state[p], t)
            keys = out_keys.get(p)
            if keys is None:  # an optimizer's quantities are the same every step
                keys = out_keys[p] = [(name, f"{name}_{p}") for name in out]
            for name, key in keys:
                row[key] = float(out[name])
            if names:
                state[p] = {s: out[s] for s in names}
            new[p] = row[new_key]
        return new


def run_steps(opt, hp, params: dict[str, float], batches, forward, *, hyper_of=None, after=None,
              epoch_end=None, dry=False) -> tuple[list[dict], dict[str, float]]:
    """The one optimizer loop of every kind of lesson (data, Titanic, the lr finders).

    ``batches`` are (epoch, example indices) per step. Step t (1-based): ``forward(t, epoch, idx,
    params)`` gives the row's quantities before the update, with ``grad_<p>`` for every parameter;
    the optimizer then updates each parameter from its state, which starts at
    ``opt.start_state(hp)`` (classic RMSProp: v0), recording its quantities in the row.
    ``hyper_of(t, row)``: this step's hyperparameters (default ``hp``). ``after(t, row, params, new)``:
    the parameters to carry on with (default ``new``). ``epoch_end(epoch, params)`` runs after each
    epoch's last step with the updated parameters. Returns (rows, final parameters).

    Runs under np.errstate(over/invalid ignored): divergence is a result (inf/nan, #NUM! on the sheet).

    ``dry``: the run's layout without its numbers, for the checker's rebuild (the file holds the student's
    numbers; the checker needs only which rows exist and what they are given). Step 1 runs; from step 2
    ``forward`` returns only its given quantities (step, epoch, example, …: each kind's forward knows it
    is dry), nothing is updated (``epoch_end`` still runs), and ``columns_of(rows, dry=True)`` gives the
    other quantities of step 1's row 0 from step 2 on.
    """
    state = {p: opt.start_state(hp) for p in params}
    params = dict(params)
    update = Updater(opt, list(params))
    rows = []
    n = len(batches)
    with np.errstate(over="ignore", invalid="ignore"):
        for t, (epoch, idx) in enumerate(batches, start=1):
            if dry and rows:
                row = forward(t, epoch, idx, params)  # its given quantities: columns_of(dry=True) fills in 0
            else:
                row = forward(t, epoch, idx, params)
                new = update(hyper_of(t, row) if hyper_of else hp, params, row, state, t)
                params = after(t, row, params, new) if after else new
            rows.append(row)
            if epoch_end is not None and (t == n or batches[t][0] != epoch):  # the epoch's last step
                epoch_end(epoch, params)
    return rows, params


def columns_of(rows: list[dict], dry: bool = False) -> dict[str, np.ndarray]:
    """The rows' quantities as one array per key (NaN where a row lacks the key; a dry run's rows from
    step 2 on hold only their given quantities: the others are 0)."""
    keys = list(rows[0])
    if dry and len(rows) > 1:
        given = set(rows[1])
        out = {}
        for k in keys:
            out[k] = (np.array([r[k] for r in rows], dtype=float) if k in given
                      else np.concatenate([[float(rows[0][k])], np.zeros(len(rows) - 1)]))
        return out
    try:
        table = np.array([*map(itemgetter(*keys), rows)], dtype=float).reshape(len(rows), len(keys))
    except KeyError:
        return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}
    return {k: table[:, j].copy() for j, k in enumerate(keys)}


def train(lesson: Lesson, dry: bool = False) -> Trace:
    """Every step's quantities (``dry``: the layout only, see :func:`run_steps`)."""
    model, loss, opt = lesson.model_cls(), lesson.loss_cls(), lesson.optimizer_obj()
    X, Y = lesson.data.x, lesson.data.y
    xs, ys = X.tolist(), Y.tolist()
    h, central = lesson.fd_step, lesson.fd_scheme == "central"
    batches = make_batches(lesson)
    per_example = lesson.batch_size == 1
    examples = [int(b[0]) for _, b in batches] if per_example else []  # as Python ints, once
    epoch_full_loss = []

    def forward(t, epoch, idx, params):
        if dry and t > 1:
            given = {"step": t, "epoch": epoch}
            if len(idx) == 1:
                i = int(idx[0])
                given.update(example=i + 1, x=xs[i], y=ys[i])
            return given
        if per_example:  # the loss and the estimates of every step afterwards (add_losses)
            i = examples[t - 1]
            try:
                return gradient_one(model, loss, params, xs[i], ys[i], i + 1, {"step": t, "epoch": epoch})
            except ArithmeticError:
                pass
        return {"step": t, "epoch": epoch, **measure(model, loss, params, X[idx], Y[idx], idx, h, central)}

    def epoch_end(epoch, params):
        epoch_full_loss.append(batch_loss(model, loss, params, X, Y))

    forward, hyper_of = scheduled_forward(forward, lesson.schedule, lesson.hyper, lesson.optimizer, len(batches), dry)
    rows, params = run_steps(opt, lesson.hyper, dict(lesson.init), batches, forward, hyper_of=hyper_of,
                             epoch_end=epoch_end, dry=dry)
    steps = columns_of(rows, dry)
    if per_example:
        steps = add_losses(steps, model, loss, h, central)
    epoch_ids = steps["epoch"].astype(int)
    epochs = {
        "epoch": np.arange(1, lesson.epochs + 1, dtype=float),
        "mean_step_loss": np.array([steps["loss"][epoch_ids == e].mean() for e in range(1, lesson.epochs + 1)]),
        "full_loss": np.array(epoch_full_loss),
    }
    return Trace(steps=steps, epochs=epochs, batches=[b for _, b in batches], final=params)
