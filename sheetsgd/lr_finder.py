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

The schedule, smoothing, stop and suggestions live here, once. What a row trains is pluggable (the
row part, see ``ScalarRows``): a scalar-input lesson (linear, quadratic: spec.step_columns and
engine.measure) or a Titanic model (sheetsgd.titanic.lr_finder: per-passenger rows on an Examples sheet).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .engine import columns_of, make_batches, measure, optimize
from .errors import SheetsgdError
from .lesson import Lesson, override, parse_lesson
from .spec import Column, step_columns
from .titanic.lesson import is_titanic_template, parse_titanic_lesson

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


class ScalarRows:
    """The row part of a scalar-input lesson (linear, quadratic): what one finder row trains and shows.

    A row part gives the finder the base lesson's step columns (``columns``), one step's forward pass
    and gradients (``forward``), and how the workbook shows the data (``step_refs``, ``write_sheets``).
    The finder adds the lr schedule, the smoothed loss, the stop and the suggestions around it.
    """

    sheet_names = ("Data",)  # sheets after Chart, in tab order

    def __init__(self, base: Lesson):
        self.base = base
        self.model, self.loss = base.model_cls(), base.loss_cls()
        self.params = list(self.model.params)
        self.init = dict(base.init)

    def override(self, **options) -> Lesson:
        return override(self.base, **options)

    def columns(self) -> list[Column]:
        """The base lesson's step columns without finite differences (the finder's rows are about the lr)."""
        return [c for c in step_columns(self.base) if not c.key.startswith("fd_")]

    def forward(self, params: dict, idx) -> tuple[dict, dict | None]:
        """(the row's quantities before the update, per-example quantities for another sheet or None)."""
        X, Y = self.base.data.x, self.base.data.y
        return measure(self.model, self.loss, params, X[idx], Y[idx], idx, None), None

    def check(self, lesson, trace):
        """Refuse a run the sheet cannot show (nothing to refuse here: overflow shows as #NUM! on both sides)."""

    def sheet_hyper(self) -> list[tuple[str, float]]:
        """The base lesson's named inputs other than lr (each row has its own)."""
        hp = self.base.hyper
        return [(k, hp[k]) for k in self.base.optimizer_obj().sheet_hyper(hp) if k != "lr"]

    def subtitle(self) -> str:
        return f"batch size {self.base.batch_size}"

    def step_refs(self, batches) -> dict:
        """How the step rows find their batch: keyword arguments of writer.write_steps_sheet."""
        from .writer import _data_resolver

        return {"data": _data_resolver(self.base, {"x": 1, "y": 2}, False),
                "ranges": [(int(b[0]) + 2, int(b[-1]) + 2) for _, b in batches]}  # unshuffled: Data rows

    def value_columns(self, batches) -> dict[str, list]:
        """Value columns the engine does not record: the batch's first and last example."""
        return {"first": [int(b[0]) + 1 for _, b in batches], "last": [int(b[-1]) + 1 for _, b in batches]}

    @property
    def data_columns(self) -> dict[str, int]:
        return {"x": 1, "y": 2}

    def write_sheets(self, book, sheets, trace, layout, batches) -> dict:
        """Write the sheets of ``sheet_names``; returns manifest entries."""
        from .writer import _write_data

        _write_data(sheets["Data"], book.wb, book.fmt, self.base, book.counts, [])
        return {}


def rows_of(base):
    """The row part for a base lesson: a Titanic model or a scalar-input lesson."""
    if getattr(base, "kind", "sgd") == "titanic":
        from .titanic.lr_finder import TitanicRows  # the Titanic package is only needed for its lessons
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
        whole = {"step", "epoch", "example", "recorded", "diverged", "usable"}
        return [{k: (int(v[i]) if k in whole else _json(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def _json(value):
    value = float(value)
    return value if math.isfinite(value) else None


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
    opt = base.optimizer_obj()
    params = dict(part.init)
    state = {p: opt.start_state(base.hyper) for p in part.params}
    beta, n = f["smooth_beta"], lesson.num_it
    avg, best, recorded, diverged = 0.0, math.inf, 1, 0
    rows, examples = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for t, (epoch, idx) in enumerate(lesson.batches(), start=1):
            recorded = recorded * (1 - diverged)  # still recording unless the previous row diverged
            lr = f["start_lr"] * (f["end_lr"] / f["start_lr"]) ** ((t - 1) / (n - 1))
            measured, per_example = part.forward(params, idx)
            row = {"step": t, "epoch": epoch, "lr": lr, **measured}
            if per_example is not None:
                examples.append(per_example)
            avg = beta * avg + (1 - beta) * row["loss"]
            smooth = avg / (1 - beta**t)
            best = min(best, smooth)
            diverged = 1 if smooth > f["stop_factor"] * best else 0
            row.update(avg=avg, smooth=smooth, best=best, diverged=diverged, recorded=recorded)
            updated = optimize(opt, {**base.hyper, "lr": lr}, params, row, state, t)
            if not recorded:  # the test has stopped: the parameters stay
                for p in part.params:
                    row[f"new_{p}"] = params[p]
                updated = params
            params = updated
            rows.append(row)
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
            c = replace(c, formula=c.formula.replace("{hp:lr}", "{lr}"))
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


def build_finder_workbook(lesson: FinderLesson, path, trace: FinderTrace | None = None):
    from .writer import INTRO, MANIFEST, Book, finish_workbook, layout_entries, write_intro, write_steps_sheet

    from .runbounds import guard

    guard(lesson)  # refuse a workbook that will not fit, before training
    trace = trace or train_finder(lesson)
    base, part = lesson.base, lesson.rows
    part.check(lesson, trace)  # before any file is written
    book = Book(path)
    wb, fmt, counts = book.wb, book.fmt, book.counts
    intro, ws, chart_ws = book.sheet(INTRO), book.sheet(FINDER), book.sheet(CHART)
    sheets = {name: book.sheet(name) for name in part.sheet_names}
    manifest = book.sheet(MANIFEST)
    columns = finder_columns(lesson)
    opt = base.optimizer_obj()
    hyper = part.sheet_hyper()
    hyper += [(k, float(lesson.finder[k])) for k in ("start_lr", "end_lr", "num_it", "smooth_beta", "stop_factor",
                                                      "skip_start", "skip_end")]
    start_state = opt.start_state(base.hyper)
    starts = {}
    for c in columns:
        if c.start_value == "init":
            starts[c.key] = (part.init[c.key[4:]], True)
        elif c.key == "recorded":
            starts[c.key] = (1, False)
        elif c.key == "avg":
            starts[c.key] = (0, False)
        elif c.start_value is not None:
            starts[c.key] = (start_state[c.key.split("_")[0]], False)
    starts["diverged"] = (0, False)
    batches = lesson.batches()
    values = part.value_columns(batches)
    values.update({c.key: _values(trace, c.key) for c in columns if c.key not in values})
    layout = write_steps_sheet(
        ws, wb, fmt, counts, title=lesson.title, hyper_notes={**FINDER_NOTES, **getattr(part, "hyper_notes", {})},
        columns=columns, start_values=starts,
        subtitle=f"{opt.title} · {part.loss.title} · {part.subtitle()}. The lr grows each row; "
                 "the suggestions (right) are formulas over the table.",
        hyper=hyper, values=values, n_steps=trace.n_steps, **part.step_refs(batches), extras=[
            ("n_recorded", "rows recorded", "SUM({all:recorded})", float(trace.n_recorded),
             "rows up to and including the first diverged one"),
            ("lr_suggest_min", "suggested lr: minimum/10",
             "INDEX({all:lr},MATCH(MIN({all:smooth_used}),{all:smooth_used},0))/10", _suggestion(trace, "lr_min"),
             "the lr of the lowest smoothed loss, ÷ 10"),
            ("lr_suggest_steep", "suggested lr: steepest",
             "INDEX({all:lr},MATCH(MIN({all:slope}),{all:slope},0)-1)", _suggestion(trace, "lr_steep"),
             "where the smoothed loss falls fastest against ln(lr)"),
        ])
    layout.data_columns = part.data_columns
    _write_chart(chart_ws, wb, fmt, lesson, trace, layout, counts)
    entries = part.write_sheets(book, sheets, trace, layout, batches)
    write_intro(intro, fmt, lesson.title, lesson.description, lesson.tips, columns, layout, FINDER, how=[
        "Each row is one mini-batch step with its own learning rate (the lr column), growing from start_lr to end_lr.",
        "The smoothed loss is fastai's debiased moving average; the test stops after the first row where it "
        "exceeds stop_factor × the best so far.",
        "The suggested learning rates, top right, are formulas over the recorded rows.",
    ] + list(getattr(part, "how", [])))
    finish_workbook(wb, book.path, intro, manifest, {"kind": "lr-finder", "lesson": lesson.name,
                                                **layout_entries(layout, columns, FINDER),
                                                "suggestion_cells": layout.extra_cells,
                                                "exercise_defaults": lesson.exercise, **entries})
    return book.report(trace.n_steps)


def _write_chart(ws, wb, fmt, lesson, trace, layout, counts):
    """Smoothed loss against lr on a logarithmic axis, and the suggestions beside it."""
    from .writer import cached

    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 14)
    ws.write(0, 0, "The lr range test", fmt.title)
    for row, (name, label) in enumerate((("lr_suggest_steep", "suggested lr: steepest"),
                                         ("lr_suggest_min", "suggested lr: minimum/10"),
                                         ("n_recorded", "rows recorded")), start=2):
        ws.write(row, 0, label, fmt.bold)
        value = float(trace.n_recorded) if name == "n_recorded" else _suggestion(trace, name.replace("_suggest", ""))
        ws.write_formula(row, 1, name, fmt.number("0.00E+00" if name != "n_recorded" else "0"), cached(value))
    counts["formula"] += 3
    first, last = layout.first_step_row, layout.first_step_row + trace.n_steps - 1
    lr_col, plot_col = layout.columns["lr"], layout.columns["plot"]
    chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
    chart.add_series({"name": "smoothed loss", "categories": [FINDER, first, lr_col, last, lr_col],
                      "values": [FINDER, first, plot_col, last, plot_col], "marker": {"type": "none"},
                      "line": {"width": 2}})
    chart.set_title({"name": "Smoothed loss against learning rate"})
    chart.set_x_axis({"name": "learning rate (log scale)", "log_base": 10, "num_format": "0.0E+0",
                      "min": lesson.finder["start_lr"], "max": lesson.finder["end_lr"]})
    chart.set_y_axis({"name": "smoothed loss"})
    chart.set_legend({"none": True})
    chart.show_na_as_empty_cell()
    chart.set_size({"width": 760, "height": 420})
    ws.insert_chart(6, 0, chart)


def _suggestion(trace: FinderTrace, key: str):
    """A suggestion's cached value; #N/A when too few rows were recorded to suggest anything (MATCH finds none)."""
    value = trace.suggestions[key]
    return value if math.isfinite(value) else "#N/A"


def _values(trace: FinderTrace, key: str) -> list:
    values = trace.steps[key].tolist()
    if key == "plot":
        return [v if math.isfinite(v) else "#N/A" for v in values]
    if key in ("slope", "smooth_used"):
        return [v if math.isfinite(v) else "" for v in values]
    return values
