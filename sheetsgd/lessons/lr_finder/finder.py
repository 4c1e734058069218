"""The learning-rate range test (Smith 2015; fastai's ``lr_find``), one mini-batch per row.

Row t trains with lr_t = start·(end/start)^((t − 1)/(N − 1)) and records the batch loss, its
exponentially smoothed, debiased value (fastai: avg ← β·avg + (1 − β)·loss, smooth = avg/(1 − βᵗ)),
the best smoothed loss so far, and whether it diverged (smooth > stop_factor·best). After the first
diverged row training stops: later rows keep the parameters and are not recorded (the plotted column
shows #N/A there, so the chart's curve ends).

Suggestions, from the recorded rows after dropping the first N//10 and the last 5 (as fastai does):
  minimum/10: the lr of the lowest smoothed loss, divided by 10;
  steepest:   the lr where the smoothed loss falls fastest against log(lr): for the steepest segment
              (t − 1, t), slope = (smooth_t − smooth_{t−1}) / (ln lr_t − ln lr_{t−1}), the lr of row t − 1.
Both are formulas on the sheet and numbers from the engine.

The schedule, smoothing, stop and suggestions live here, once; training runs the engine's one
optimizer loop (engine.run_steps). What a row trains is pluggable (the row part): a scalar-input
lesson (sheetsgd.lessons.lr_finder.rows: spec.step_columns and engine.measure) or a Titanic model
(sheetsgd.lessons.tabular.lr_finder: per-passenger rows on an Examples sheet). The workbook is written by
sheetsgd.lessons.lr_finder.workbook.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sheetsgd.lessons.sgd.engine import columns_of, make_batches, run_steps
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.sgd.lesson import Lesson, parse_lesson
from .rows import ScalarRows
from sheetsgd.lessons.schedules import read_row_lr
from sheetsgd.lessons.sgd.spec import Column
from sheetsgd.lessons.tabular.lesson import is_titanic_template, parse_titanic_lesson

FINDER, CHART = "Finder", "Chart"
FINDER_DEFAULTS = {"start_lr": 1e-7, "end_lr": 10.0, "num_it": 100, "smooth_beta": 0.98, "stop_factor": 4.0,
                   "skip_end": 5}
FINDER_NOTES = {
    "start_lr": "learning rate of the first row",
    "end_lr": "learning rate of row num_it: each row multiplies lr by (end/start)^(1/(num_it − 1))",
    "num_it": "number of rows (mini-batches) of the test",
    "smooth_beta": "β of the smoothed loss: avg = β·avg + (1 − β)·loss, smooth = avg/(1 − β^t)",
    "stop_factor": "the test stops after the first row whose smoothed loss exceeds stop_factor × the best so far",
    "skip_start": "rows at the start left out of the suggestions (fastai: num_it // 10)",
    "skip_end": "recorded rows at the end left out of the suggestions (fastai: 5)",
}


def rows_of(base):
    """The row part for a base lesson: a Titanic model or a scalar-input lesson."""
    if getattr(base, "kind", "sgd") == "titanic":
        from sheetsgd.lessons.tabular.lr_finder import TitanicRows  # the Titanic package is only needed for its lessons
        return TitanicRows(base)
    return ScalarRows(base)


@dataclass
class FinderLesson:
    base: Lesson  # or a TitanicLesson: its model, data, batch size and optimizer
    finder: dict[str, float]
    name: str
    title: str
    description: str
    tips: list[str]
    source: str = ""
    kind: str = "lr-finder"

    @property
    def exercise(self):
        return self.base.exercise

    @property
    def num_it(self) -> int:
        return int(self.finder["num_it"])

    @property
    def rows(self):
        return rows_of(self.base)

    def batches(self):
        """N mini-batches: as many epochs as needed, cut at N."""
        epochs = math.ceil(self.num_it / self.base.steps_per_epoch)
        return make_batches(replace(self.base, epochs=epochs))[: self.num_it]


@dataclass
class FinderTrace:
    steps: dict[str, np.ndarray]
    suggestions: dict[str, float]
    n_recorded: int
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # per-example values, in step order

    @property
    def n_steps(self) -> int:
        return len(self.steps["step"])

    def summary(self, lesson) -> dict:
        return {"optimizer": lesson.base.optimizer, "finder": lesson.finder, "recorded_rows": self.n_recorded,
                "suggestions": self.suggestions}

    def table(self):
        """One dict per row; nan where a row has nothing to show or overflowed (JSON output: null)."""
        whole = {"step", "epoch", "example", "recorded", "diverged", "usable"}
        return [{k: (int(v[i]) if k in whole else float(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def parse_finder_lesson(raw: dict, name: str, source: str) -> FinderLesson:
    table = raw.get("finder", {})
    where = f"{source} [finder]"
    if not isinstance(table, dict):
        raise SheetsgdError("[finder] must be a table", source)
    unknown = set(table) - set(FINDER_DEFAULTS) - {"skip_start"}
    if unknown:
        raise SheetsgdError(f"unknown key(s) {', '.join(sorted(unknown))}; known: "
                            f"{', '.join(list(FINDER_DEFAULTS) + ['skip_start'])}", where)
    finder = {**FINDER_DEFAULTS, **table}
    finder.setdefault("skip_start", int(finder["num_it"]) // 10)
    meta = raw.get("lesson", {})
    if is_titanic_template(raw):
        base = parse_titanic_lesson(raw, name, source)
        if base.dropout is not None:  # the finder's rows have no mask and no twin net
            raise SheetsgdError("the lr finder does not train with dropout: leave [model] dropout out",
                                f"{source} [model]")
    else:
        base = parse_lesson(raw, name, source)
    lesson = FinderLesson(base=base, finder=finder, name=meta.get("name", name),
                          title=meta.get("title", name), description=meta.get("description", ""),
                          tips=list(meta.get("try", [])), source=source)
    return validate_finder(lesson)


def validate_finder(lesson: FinderLesson) -> FinderLesson:
    f, where = lesson.finder, f"{lesson.source} [finder]"
    for key in f:
        if isinstance(f[key], bool) or not isinstance(f[key], (int, float)):
            raise SheetsgdError(f"{key} must be a number, got {f[key]!r}", where)
    if not 0 < f["start_lr"] < f["end_lr"]:
        raise SheetsgdError(f"need 0 < start_lr < end_lr, got {f['start_lr']:g} and {f['end_lr']:g}", where)
    if f["num_it"] != int(f["num_it"]) or f["num_it"] < 2:
        raise SheetsgdError(f"num_it must be a whole number ≥ 2, got {f['num_it']!r}", where)
    if not 0 <= f["smooth_beta"] < 1:
        raise SheetsgdError(f"smooth_beta must be in [0, 1), got {f['smooth_beta']:g}", where)
    if lesson.base.shuffle:
        raise SheetsgdError("an lr finder takes its mini-batches in data order: set shuffle = false", lesson.source)
    if not f["stop_factor"] > 1:
        raise SheetsgdError(f"stop_factor must be > 1, got {f['stop_factor']:g}", where)
    return lesson


def override_finder(lesson: FinderLesson, *, lr=None, epochs=None, **options) -> FinderLesson:
    """Data and optimizer options apply to the base lesson; --epochs sets num_it; --lr does not apply."""
    if lr is not None:
        raise SheetsgdError("--lr does not apply to an lr finder: its rows sweep the lr from start_lr to end_lr "
                            "(set them in the template's [finder] table)", lesson.source)
    finder = dict(lesson.finder)
    if epochs is not None:
        finder.update(num_it=epochs, skip_start=epochs // 10)
    return validate_finder(replace(lesson, base=lesson.rows.override(**options), finder=finder))


def train_finder(lesson: FinderLesson) -> FinderTrace:
    base, f, part = lesson.base, lesson.finder, lesson.rows
    beta, n = f["smooth_beta"], lesson.num_it
    run = {"avg": 0.0, "best": math.inf, "recorded": 1, "diverged": 0}  # carried from row to row
    examples = []

    def forward(t, epoch, idx, params):
        run["recorded"] = recorded = run["recorded"] * (1 - run["diverged"])  # stops after a diverged row
        lr = f["start_lr"] * (f["end_lr"] / f["start_lr"]) ** ((t - 1) / (n - 1))
        measured, per_example = part.forward(params, idx)
        row = {"step": t, "epoch": epoch, "lr": lr, **measured}
        if per_example is not None:
            examples.append(per_example)
        run["avg"] = avg = beta * run["avg"] + (1 - beta) * row["loss"]
        smooth = avg / (1 - beta**t)
        run["best"] = best = min(run["best"], smooth)
        run["diverged"] = diverged = 1 if smooth > f["stop_factor"] * best else 0
        row.update(avg=avg, smooth=smooth, best=best, diverged=diverged, recorded=recorded)
        return row

    def keep_after_the_stop(t, row, params, new):
        if row["recorded"]:
            return new
        for p in part.params:  # the test has stopped: the parameters stay (the optimizer state runs on)
            row[f"new_{p}"] = params[p]
        return params

    rows, _ = run_steps(base.optimizer_obj(), base.hyper, dict(part.init), lesson.batches(), forward,
                        hyper_of=lambda t, row: {**base.hyper, "lr": row["lr"]}, after=keep_after_the_stop)
    steps = columns_of(rows)
    n_recorded = int(steps["recorded"].sum())
    usable = ((steps["recorded"] == 1) & (steps["step"] > f["skip_start"])
              & (steps["step"] <= n_recorded - f["skip_end"])).astype(float)
    steps["usable"] = usable
    plotted = (steps["recorded"] == 1) & (steps["step"] <= n_recorded - f["skip_end"])
    steps["plot"] = np.where(plotted, steps["smooth"], np.nan)
    slope = np.full(n, np.nan)
    for i in range(1, n):
        if usable[i] and usable[i - 1]:
            slope[i] = (steps["smooth"][i] - steps["smooth"][i - 1]) / (math.log(steps["lr"][i]) - math.log(steps["lr"][i - 1]))
    steps["smooth_used"] = np.where(usable == 1, steps["smooth"], np.nan)
    steps["slope"] = slope
    suggestions = {"lr_min": math.nan, "lr_steep": math.nan}
    if usable.any():
        used = np.where(usable == 1, steps["smooth"], np.inf)
        suggestions["lr_min"] = float(steps["lr"][int(np.argmin(used))] / 10)
    if np.isfinite(slope).any():
        suggestions["lr_steep"] = float(steps["lr"][int(np.nanargmin(slope)) - 1])
    examples = {k: np.concatenate([e[k] for e in examples]) for k in examples[0]} if examples else {}
    return FinderTrace(steps, suggestions, n_recorded, examples)


def finder_columns(lesson: FinderLesson) -> list[Column]:
    """The row part's step columns with the finder's columns woven in: lr after epoch, the rest after loss."""
    out = []
    for c in lesson.rows.columns():
        if c.formula and "{hp:lr}" in c.formula:
            c = replace(c, formula=read_row_lr(c.formula))
        if c.key.startswith("new_"):
            p = c.key[4:]
            c = replace(c, formula=f"IF({{recorded}}=1,{c.formula},{{{p}}})",
                        note=c.note + "; once the test has stopped, it stays")
        out.append(c)
        if c.key == "epoch":
            out.append(Column("lr", "lr this step", "{hp:start_lr}*({hp:end_lr}/{hp:start_lr})^(({step}-1)/({hp:num_it}-1))",
                              "state", "the learning rate grows by a constant factor per row"))
        if c.key == "loss":
            out += [
                Column("avg", "running avg of loss", "{hp:smooth_beta}*{prev:avg}+(1-{hp:smooth_beta})*{loss}", "loss",
                       "exponential moving average of the loss", start_value="zero"),
                Column("smooth", "smoothed loss", "{avg}/(1-{hp:smooth_beta}^{step})", "loss",
                       "the moving average without its bias towards 0"),
                Column("best", "best smoothed so far", "MIN({first:smooth}:{smooth})", "loss", "lowest smoothed loss so far"),
                Column("diverged", "diverged?", "IF({smooth}>{hp:stop_factor}*{best},1,0)", "step",
                       "1 when the smoothed loss exceeds stop_factor × the best"),
                Column("recorded", "recorded?", "{prev:recorded}*(1-{prev:diverged})", "step",
                       "1 until the row after the first divergence: the test stops there", start_value="one"),
                Column("plot", "smoothed loss (plotted)",
                       "IF(AND({recorded}=1,{step}<=n_recorded-{hp:skip_end}),{smooth},NA())", "loss",
                       "#N/A for the last skip_end recorded rows and after the stop, as fastai's plot"),
                Column("usable", "used for suggestions?",
                       "IF(AND({recorded}=1,{step}>{hp:skip_start},{step}<=n_recorded-{hp:skip_end}),1,0)", "step",
                       "recorded, past the first skip_start rows and before the last skip_end recorded ones"),
                Column("smooth_used", "smoothed loss (for suggestions)", 'IF({usable}=1,{smooth},"")', "loss",
                       "the smoothed loss of the rows the suggestions look at"),
                Column("slope", "slope vs ln(lr)",
                       'IF(AND({usable}=1,{prev:usable}=1),({smooth}-{prev:smooth})/(LN({lr})-LN({prev:lr})),"")',
                       "gradient", "how fast the smoothed loss falls per unit of ln(lr)"),
            ]
    return out
