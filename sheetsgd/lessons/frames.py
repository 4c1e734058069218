"""Every sheet's quantities as pandas DataFrames, from a lesson and its engine trace (no workbook).

One function per lesson kind returns ``{sheet name: builder}``, in the workbook's tab order; a
builder makes its DataFrame when asked (the Titanic Solver sheet's best fit takes seconds). Column
names are the sheet's column keys (``loss``, ``grad_a``, ``new_a``, …), rows are steps (or
examples, epochs, passengers), and the numbers are the trace's own float64 values: a diverged run
shows inf/NaN where the sheet shows #NUM!.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

WHOLE = ("step", "epoch", "example", "passenger", "first", "last", "first_step", "last_step", "recorded",
         "diverged", "usable")


def frame(columns: dict) -> "pandas.DataFrame":  # noqa: F821
    """A DataFrame of equally long columns; whole-number columns as integers when they are all finite."""
    import pandas as pd

    out = {}
    for key, values in columns.items():
        arr = np.asarray(values)
        if key in WHOLE and arr.dtype.kind == "f" and np.all(np.isfinite(arr)):
            arr = arr.astype(np.int64)
        out[key] = arr
    return pd.DataFrame(out)


def _epoch_bounds(epoch_of_step: np.ndarray, epochs: int) -> dict[str, list[int]]:
    """1-based first and last step of each epoch."""
    first, last = [], []
    for e in range(1, epochs + 1):
        idx = np.flatnonzero(epoch_of_step == e)
        first.append(int(idx[0]) + 1)
        last.append(int(idx[-1]) + 1)
    return {"first_step": first, "last_step": last}


# --------------------------------------------------------------------------------------- data lessons


def shuffled_batches(lesson) -> bool:
    """Whether the workbook has a Batches sheet (shuffled mini-batches: each batch one range there)."""
    return lesson.shuffle and 1 < lesson.batch_size < len(lesson.data)


def steps_frame(lesson, trace):
    """A Steps sheet: the trace's columns, with the batch's first and last example (or Batches row)."""
    columns = dict(trace.steps)
    if lesson.batch_size > 1:
        if shuffled_batches(lesson):
            ends = np.cumsum([len(b) for b in trace.batches])
            columns["first"], columns["last"] = ends - [len(b) for b in trace.batches] + 1, ends
        else:
            columns["first"] = [int(b[0]) + 1 for b in trace.batches]
            columns["last"] = [int(b[-1]) + 1 for b in trace.batches]
    return frame(columns)


def data_frame(lesson, fits: dict[str, dict]):
    """The Data sheet: the examples, and the curve of each fit's final parameters."""
    model, data = lesson.model_cls(), lesson.data
    columns = {"example": np.arange(1, len(data) + 1), "x": data.x, "y": data.y}
    with np.errstate(all="ignore"):
        columns.update({name: model.predict(final, data.x) for name, final in fits.items()})
    return frame(columns)


def batches_frame(lesson, trace):
    """The Batches sheet: the order shuffled mini-batches visit the examples in."""
    example = np.concatenate(trace.batches)
    step = np.repeat(np.arange(1, trace.n_steps + 1), [len(b) for b in trace.batches])
    return frame({"position": np.arange(1, len(example) + 1), "step": step, "example": example + 1,
                  "x": lesson.data.x[example], "y": lesson.data.y[example]})


def sgd_frames(lesson, trace) -> dict[str, Callable]:
    out = {"Steps": lambda: steps_frame(lesson, trace),
           "Epochs": lambda: frame({"epoch": trace.epochs["epoch"],
                                    **_epoch_bounds(trace.steps["epoch"], lesson.epochs),
                                    **{k: v for k, v in trace.epochs.items() if k != "epoch"}}),
           "Data": lambda: data_frame(lesson, {"fitted": trace.final})}
    if shuffled_batches(lesson):
        out["Batches"] = lambda: batches_frame(lesson, trace)
    return out


def function_frames(lesson, trace) -> dict[str, Callable]:
    return {"Runs": lambda: frame(trace.steps)}


def compare_frames(lesson, trace) -> dict[str, Callable]:
    lessons, traces = lesson.lessons(), trace.traces
    first = next(iter(traces.values()))

    def compare():  # the Compare sheet's table per step
        return frame({"step": first.steps["step"], "epoch": first.steps["epoch"],
                      **{f"{name}.loss": t.steps["loss"] for name, t in traces.items()}})

    def epochs():  # the Compare sheet's table per epoch
        return frame({"epoch": first.epochs["epoch"],
                      **{f"{name}.{k}": v for name, t in traces.items() for k, v in t.epochs.items() if k != "epoch"}})

    out = {"Compare": compare, "Epochs": epochs}
    sheet_names = lesson.sheet_names()
    out.update({sheet_names[name]: (lambda les=les, t=traces[name]: steps_frame(les, t))
                for name, les in lessons.items()})
    out["Data"] = lambda: data_frame(lesson.base, {f"fitted.{name}": t.final for name, t in traces.items()})
    if shuffled_batches(lesson.base):
        out["Batches"] = lambda: batches_frame(lesson.base, first)
    return out


# --------------------------------------------------------------------------------------- lr finders


def finder_frames(lesson, trace) -> dict[str, Callable]:
    from sheetsgd.lessons.lr_finder.finder import CHART, FINDER

    def finder():
        values = lesson.rows.value_columns(lesson.batches())  # first and last example (or Examples row)
        return frame({**{k: v for k, v in trace.steps.items()}, **values})

    def chart():  # the suggestions beside the chart (the sheet's named cells)
        return frame({"lr_suggest_steep": [trace.suggestions["lr_steep"]],
                      "lr_suggest_min": [trace.suggestions["lr_min"]], "n_recorded": [trace.n_recorded]})

    out = {FINDER: finder, CHART: chart}
    base = lesson.base
    if getattr(base, "kind", "sgd") == "titanic":
        out["Examples"] = lambda: examples_frame(base, [b for _, b in lesson.batches()], trace.examples)
        out["Data"] = lambda: titanic_data_frame(base)
    else:
        out["Data"] = lambda: data_frame(base, {})
    return out


# --------------------------------------------------------------------------------------- Titanic


def examples_frame(lesson, batches, examples):
    """Per passenger of every step's batch: the step, the PassengerId and the per-example quantities."""
    index = np.concatenate(batches)
    step = np.repeat(np.arange(1, len(batches) + 1), [len(b) for b in batches])
    return frame({"step": step, "passenger": lesson.data.ids[index], **examples})


def titanic_data_frame(lesson):
    """The Data sheet: raw columns, the set (train/valid), and each feature as the model sees it."""
    import pandas as pd

    data = lesson.data
    columns = {name: data.passengers[name] for name in data.raw_columns}
    columns["set"] = np.array(["train"] * data.n_train + ["valid"] * data.n_valid, dtype=object)
    if data.scale_by_max:
        columns.update({f"raw_{k}": data.unscaled[:, i] for i, k in enumerate(data.feature_keys)})
    columns.update({f"x_{k}": data.X[:, i] for i, k in enumerate(data.feature_keys)})
    columns.update({t.key: data.y[:, j] for j, t in enumerate(data.targets)})
    df = pd.DataFrame(columns)
    df[data.id_column] = df[data.id_column].astype(np.int64)
    return df


def titanic_frames(lesson, trace) -> dict[str, Callable]:
    data = lesson.data

    def steps():
        columns = dict(trace.steps)
        if lesson.batch_size > 1:  # the batch's rows on the Examples sheet (row 1 is the header)
            ends = np.cumsum([len(b) for b in trace.batches]) + 1
            columns["first"], columns["last"] = ends - [len(b) for b in trace.batches] + 1, ends
        return frame(columns)

    def validation():
        n = data.n_valid
        keys = list(trace.validation[0])
        return frame({"epoch": np.repeat(np.arange(1, len(trace.validation) + 1), n),
                      "passenger": np.tile(data.ids[data.n_train:], len(trace.validation)),
                      **{k: np.concatenate([v[k] for v in trace.validation]) for k in keys}})

    out = {"Steps": steps}
    if lesson.batch_size > 1:
        out["Examples"] = lambda: examples_frame(lesson, trace.batches, trace.examples)
    out["Epochs"] = lambda: frame({"epoch": trace.epochs["epoch"], **_epoch_bounds(trace.steps["epoch"], lesson.epochs),
                                   **{k: v for k, v in trace.epochs.items() if k != "epoch"}})
    if trace.validation:
        out["Validation"] = validation
    out["Data"] = lambda: titanic_data_frame(lesson)
    out["Solver"] = lambda: solver_frame(lesson, trace)
    return out


def solver_frame(lesson, trace):
    """The Solver sheet's weight rows: the initial weights, SGD's last ones, the engine's best fit."""
    from sheetsgd.lessons.sgd.data import sheet_float
    from sheetsgd.lessons.tabular.engine import best_fit
    from sheetsgd.lessons.tabular.nets import evaluate

    net, loss, data = lesson.net(), lesson.loss_cls(), lesson.data
    best, _ = best_fit(lesson)
    rows = {"solver": lesson.init, "sgd": trace.final, "best": np.array([sheet_float(v) for v in best])}
    X, y = data.X[:data.n_train], data.y[:data.n_train]
    table = {"weights": list(rows), "loss": [], "correct": []}
    for theta in rows.values():
        with np.errstate(all="ignore"):
            q = evaluate(net, loss, theta, X, y, lesson.clip_eps, with_backward=False)
        table["loss"].append(float(np.mean(q["loss"])))
        table["correct"].append(float(np.mean(q["correct"])))
    for i, p in enumerate(net.params):
        table[p] = [float(theta[i]) for theta in rows.values()]
    return frame(table)


def collab_frames(lesson, trace) -> dict[str, Callable]:
    from sheetsgd.lessons.collab.frames import collab_frames as frames

    return frames(lesson, trace)


def attention_frames(lesson, trace) -> dict[str, Callable]:
    from sheetsgd.lessons.attention.frames import attention_frames as frames

    return frames(lesson, trace)


def conv_frames(lesson, trace) -> dict[str, Callable]:
    from sheetsgd.lessons.conv.views import conv_frames as frames

    return frames(lesson, trace)


BY_KIND = {"attention": attention_frames, "conv": conv_frames, "collab": collab_frames, "sgd": sgd_frames,
           "function": function_frames, "optimizers": compare_frames,
           "lr-finder": finder_frames, "titanic": titanic_frames}


def sheet_frames(lesson, trace) -> dict[str, Callable]:
    """{sheet name: a function making its DataFrame} for any kind of lesson, in the workbook's tab order."""
    return BY_KIND[getattr(lesson, "kind", "sgd")](lesson, trace)
