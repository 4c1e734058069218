"""Optimizer comparison lessons: one problem trained by several optimizers, a sheet each, and a comparison.

Or by several lr schedules (``[schedule] compare = ["constant", "one-cycle"]``): each run is an
(optimizer, schedule) pair with its own key, sheet and prefix (``onecycle_lr``); see sheetsgd.lessons.schedules.

Every optimizer sheet is a full Steps table (its hyperparameters are named ``<optimizer>_<name>``,
e.g. ``adam_lr``, so each sheet can be tuned on its own). The Compare sheet puts their losses side by
side per step and per epoch, with charts. ``classic = true`` switches momentum, RMSProp and Adam to
the formulas of fast.ai's graddesc sheet (see sheetsgd.lessons.optimizers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from xlsxwriter.utility import quote_sheetname, xl_col_to_name

from sheetsgd.sheet import presentation, readable
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.lessons.sgd.engine import Trace, train
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.sgd.lesson import Lesson, override, parse_lesson, validate, with_optimizer
from .optimizers import OPTIMIZERS
from .schedules import sheet_hyper, with_kind
from sheetsgd.lessons.sgd.spec import _sub, step_columns

COMPARE = "Compare"
SHEET_NAMES = {"sgd": "SGD", "momentum": "Momentum", "rmsprop": "RMSProp", "adam": "Adam", "adamw": "AdamW"}


@dataclass
class CompareLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    base: Lesson
    optimizers: list[str]
    classic: bool = False
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    kind: str = "optimizers"
    schedules: list[str] = field(default_factory=list)  # [schedule] compare: a run per optimizer and schedule

    def runs(self) -> list[tuple[str, str, str, str | None]]:
        """(key, sheet name, optimizer, schedule kind or None: the base lesson's) of every run."""
        if not self.schedules:
            return [(name, SHEET_NAMES[name], name, None) for name in self.optimizers]
        out = []
        for name in self.optimizers:
            for kind in self.schedules:
                slug, title = kind.replace("-", ""), kind[:1].upper() + kind[1:]
                if len(self.optimizers) == 1:
                    out.append((slug, title, name, kind))
                else:
                    out.append((f"{name}_{slug}", f"{SHEET_NAMES[name]} {kind}", name, kind))
        return out

    def sheet_names(self) -> dict[str, str]:
        return {key: sheet for key, sheet, _, _ in self.runs()}

    def lessons(self) -> dict[str, Lesson]:
        """The base lesson trained by each run's optimizer (its template table, classic switch) and schedule."""
        out = {}
        for key, _, name, schedule in self.runs():
            switches = {"classic": 1.0} if self.classic and "classic" in OPTIMIZERS[name].defaults else {}
            les = validate(with_optimizer(self.base, name, **{**self.base.optimizer_tables.get(name, {}), **switches}))
            out[key] = les if schedule is None else replace(les, schedule=with_kind(self.base.schedule, schedule))
        return out


@dataclass
class CompareTrace:
    traces: dict[str, Trace]

    @property
    def n_steps(self) -> int:
        return next(iter(self.traces.values())).n_steps

    def summary(self, lesson: CompareLesson) -> dict:
        return {"classic": lesson.classic,
                "optimizers": {name: {"hyperparameters": les.hyper, **trace.summary(les)}
                               for (name, les), trace in zip(lesson.lessons().items(), self.traces.values())}}

    def table(self):
        tables = {name: trace.table() for name, trace in self.traces.items()}
        rows = []
        for i in range(self.n_steps):
            row = {"step": i + 1}
            for name, table in tables.items():
                row.update({f"{name}.{k}": v for k, v in table[i].items() if k != "step"})
            rows.append(row)
        return rows


def parse_compare_lesson(raw: dict, name: str, source: str) -> CompareLesson:
    opt = raw.get("optimizer", {})
    schedules = (raw.get("schedule") or {}).get("compare", [])
    names = opt.get("compare", [opt.get("name", "sgd")] if schedules else ["sgd", "momentum", "rmsprop", "adam"])
    unknown = [n for n in names if n not in OPTIMIZERS] if isinstance(names, list) else [names]
    if unknown or not names:
        raise SheetsgdError(f"compare must list optimizers among {', '.join(OPTIMIZERS)}", f"{source} [optimizer]")
    meta = raw.get("lesson", {})
    base = parse_lesson(raw, name, source)
    lesson = CompareLesson(name=meta.get("name", name), title=meta.get("title", name),
                           description=meta.get("description", ""), tips=list(meta.get("try", [])), base=base,
                           optimizers=list(dict.fromkeys(names)), classic=bool(opt.get("classic", False)),
                           source=source, exercise=list(meta.get("exercise", [])), schedules=list(schedules))
    lesson.lessons()  # validates every optimizer's table now, not at build time
    return lesson


def override_compare(lesson: CompareLesson, *, optimizer=None, lr=None, **options) -> CompareLesson:
    """Data and training options apply to every optimizer; --optimizer and --lr do not apply."""
    if optimizer is not None or lr is not None:
        flag = "--optimizer" if optimizer is not None else "--lr"
        raise SheetsgdError(f"{flag} does not apply to a comparison lesson: each optimizer has its own sheet "
                            "and lr cell (set them in the template's [optimizer.NAME] tables)", lesson.source)
    out = replace(lesson, base=override(lesson.base, **options))
    out.lessons()
    return out


def train_compare(lesson: CompareLesson) -> CompareTrace:
    return CompareTrace({name: train(les) for name, les in lesson.lessons().items()})


def build_compare_workbook(lesson: CompareLesson, path, trace: CompareTrace | None = None, exercise=None):
    from sheetsgd.sheet.book import lesson_entries
    from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
    from sheetsgd.lessons.sgd.workbook import (BATCHES, DATA, INTRO, MANIFEST, Book, _batch_ranges, _data_resolver, _step_values, _write_batches, _write_data,
        finish_workbook, layout_entries, write_intro, write_steps_sheet)
    from .runbounds import guard

    guard(lesson)  # refuse a workbook that will not fit, before training

    trace = trace or train_compare(lesson)
    book = Book(path, exercise)
    wb, fmt, counts, sheet, path = book.wb, book.fmt, book.counts, book.sheet, book.path
    lessons = lesson.lessons()

    intro = sheet(INTRO)
    compare_ws = sheet(COMPARE)
    sheet_names = lesson.sheet_names()
    opt_sheets = {name: sheet(sheet_names[name]) for name in lessons}
    data_ws = sheet(DATA)
    base = lesson.base
    shuffled = base.shuffle and 1 < base.batch_size < len(base.data)
    batches_ws = sheet(BATCHES) if shuffled else None
    manifest = sheet(MANIFEST)
    data_cols = {"x": 1, "y": 2}

    layouts, legends, sheets_manifest = {}, [], {}
    for name, les in lessons.items():
        opt, tr, columns = les.optimizer_obj(), trace.traces[name], step_columns(les)
        start_state = opt.start_state(les.hyper)
        starts = {c.key: (les.init[c.key[4:]], True) if c.start_value == "init"
                  else (start_state[c.key.split("_")[0]], False) for c in columns if c.start_value is not None}
        prefix = f"{name}_"
        what = opt.title + (f", {les.schedule.title}" if les.schedule else "")
        layout = write_steps_sheet(
            opt_sheets[name], wb, fmt, counts, title=f"{lesson.title}: {what}{' (classic)' if lesson.classic else ''}",
            subtitle=f"{what}. Yellow cells are inputs ({prefix}lr, …): change one and this sheet recomputes.",
            hyper=sheet_hyper(opt, les.hyper, les.schedule, tr.n_steps) + [("fd_step", les.fd_step)],
            columns=columns, values={c.key: _step_values(c.key, les, tr) for c in columns}, start_values=starts,
            n_steps=tr.n_steps, data=_data_resolver(les, data_cols, shuffled),
            ranges=_batch_ranges(les, tr, shuffled), name_prefix=prefix,
            exercise=frozenset(book.exercise.get(sheet_names[name], ())), block_name=sheet_names[name])
        layout.data_columns = data_cols
        layouts[name] = layout
        legends.append((sheet_names[name], columns, layout, prefix))
        sheets_manifest[name] = {"sheet": sheet_names[name], **layout_entries(layout, columns, sheet_names[name]),
                                 "hyper_switches": {k: les.hyper[k] for k in opt.switches if k in les.hyper}}
        opt_sheets[name].repeat_rows(layout.header_row)

    _write_compare(compare_ws, wb, fmt, lesson, lessons, trace, layouts, counts)
    _write_data(data_ws, wb, fmt, base, counts,
                [(f"fitted by {sheet_names[n]}", sheet_names[n], layouts[n], trace.traces[n]) for n in lessons])
    if batches_ws is not None:
        _write_batches(batches_ws, fmt, base, next(iter(trace.traces.values())), counts)
    write_intro(intro, fmt, lesson.title, lesson.description, lesson.tips, None, None, legends=legends, how=[
        "Each optimizer has its own sheet: the same data, model and start, its own named inputs (e.g. adam_lr)."
        if not lesson.schedules else "Each schedule has its own sheet: the same data, model, optimizer and start, "
        f"its own named inputs (e.g. {next(iter(lessons))}_lr).",
        "Each row is one step; it starts from the previous row's new parameters, across epochs too.",
        "Compare puts the losses side by side, per step and per epoch, with charts.",
    ], exercise=frozenset().union(*book.exercise.values()) if book.exercise else frozenset(),
        tasks=block_task_lines(book.blocks, book.exercise) if book.exercise else ())
    if book.exercise:
        protect_sheets(book)
    finish_workbook(wb, path, intro, manifest, {
        "kind": "optimizers", "lesson": lesson.name, "model": base.model, "loss": base.loss,
        "batch_size": base.batch_size, "epochs": base.epochs, "shuffle": base.shuffle, "seed": base.seed,
        "classic": lesson.classic, "sheets": sheets_manifest, "data_sheet": DATA,
        "data_rows": [2, len(base.data) + 1], "exercise_defaults": lesson.exercise,
        **lesson_entries(book, lesson, book.exercise)})
    return book.report(trace.n_steps * len(lessons))


def _write_compare(ws, wb, fmt, lesson, lessons, trace, layouts, counts):
    """Loss per step and per epoch of every optimizer, as formulas over their sheets, with charts."""
    from sheetsgd.lessons.sgd.workbook import DATA, _abs_col, _positive, cached

    names = list(lessons)
    sheet_names = lesson.sheet_names()
    base = lesson.base
    model, loss = base.model_cls(), base.loss_cls()
    n_steps = trace.n_steps
    headers = ["step", "epoch"] + [f"loss: {sheet_names[n]}" for n in names]
    first_trace = trace.traces[names[0]]
    # one quantity, one format: every optimizer's loss column shows the same decimals
    losses = np.concatenate([trace.traces[n].steps["loss"] for n in names]
                            + [trace.traces[n].epochs["full_loss"] for n in names])
    step_formats = epoch_formats = [presentation.sheet_format(ws, "loss", losses)] * len(names)
    fit = presentation.widths(ws)
    fit.fit_range(0, 1, presentation.header_width("epoch"))
    for j, name in enumerate(names):
        fit.fit(2 + j, presentation.column_width(f"loss: {sheet_names[name]}", trace.traces[name].steps["loss"],
                                                 step_formats[j], lines=2))
    col0 = 3 + len(names)  # the per-epoch table, right of the per-step one
    fit.fit(col0, presentation.header_width("epoch"))
    for j, name in enumerate(names):
        fit.fit(col0 + 1 + j, presentation.column_width(f"loss after epoch: {sheet_names[name]}",
                                                        trace.traces[name].epochs["full_loss"], epoch_formats[j],
                                                        lines=2))
    readable.write_header_row(ws, 0, 0, headers + [""] + ["epoch"] + [f"loss after epoch: {sheet_names[n]}"
                                                                     for n in names], fmt.header, lines=2)
    n = len(base.data)
    x_range, y_range = _abs_col(DATA, 1, 1, n), _abs_col(DATA, 2, 1, n)
    epochs = first_trace.steps["epoch"].astype(int)
    epoch_formulas = {}  # epoch -> [formula per optimizer]: the loss on all examples after that epoch
    for e in range(1, base.epochs + 1):
        last = max(i for i, v in enumerate(epochs) if v == e)
        epoch_formulas[e] = []
        for name in names:
            layout = layouts[name]
            row = layout.first_step_row + 1 + last
            params = {p: f"{quote_sheetname(sheet_names[name])}!${xl_col_to_name(layout.columns['new_' + p])}${row}"
                      for p in model.params}
            predict = _sub(model.predict_formula, {"X": x_range, **params})
            epoch_formulas[e].append(f"SUMPRODUCT({loss.value_formula(f'{predict}-{y_range}')})/COUNT({x_range})")
    # rows are written in order (constant_memory): each row holds a step and possibly an epoch
    for i in range(1, max(n_steps, base.epochs) + 1):
        if i <= n_steps:
            ws.write_number(i, 0, i)
            ws.write_number(i, 1, int(first_trace.steps["epoch"][i - 1]))
            for j, name in enumerate(names):
                layout = layouts[name]
                ref = (f"{quote_sheetname(sheet_names[name])}!"
                       f"{xl_col_to_name(layout.columns['loss'])}{layout.first_step_row + i}")
                ws.write_formula(i, 2 + j, ref, fmt.number(step_formats[j]), cached(trace.traces[name].steps["loss"][i - 1]))
        if i <= base.epochs:
            ws.write_number(i, col0, i)
            for j, name in enumerate(names):
                ws.write_formula(i, col0 + 1 + j, epoch_formulas[i][j], fmt.number(epoch_formats[j]),
                                 cached(trace.traces[name].epochs["full_loss"][i - 1]))
    counts["value"] += 2 * n_steps + base.epochs
    counts["formula"] += len(names) * (n_steps + base.epochs)
    ws.freeze_panes(1, 2)

    # one small chart per optimizer (four tangled series of every step are unreadable), on one shared axis
    positive = all(_positive(t.steps["loss"]) for t in trace.traces.values())
    losses = np.concatenate([np.asarray(t.steps["loss"], dtype=float) for t in trace.traces.values()])
    y_axis = _shared_axis(losses[np.isfinite(losses)], positive)
    colours = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B"]
    chart_row = base.epochs + 2  # under the per-epoch table, right of the per-step one: the sheet prints readably
    smoothing = max(2, min(base.steps_per_epoch, n_steps // 5))
    for j, name in enumerate(names):
        by_step = wb.add_chart({"type": "line"})
        # the loss of single steps jumps with each example: a moving average over about an epoch reads as a curve
        by_step.add_series({"name": sheet_names[name], "categories": [COMPARE, 1, 0, n_steps, 0],
                            "values": series_range(ws, [COMPARE, 1, 2 + j, n_steps, 2 + j]),
                            "line": {"width": 0.75, "color": colours[j % len(colours)], "transparency": 60},
                            "trendline": {"type": "moving_average", "period": smoothing,
                                          "name": f"moving average of {smoothing} steps",
                                          "line": {"width": 2, "color": colours[j % len(colours)]}}})
        by_step.set_title({"name": f"Loss by step: {sheet_names[name]}", "name_font": {"size": 11}})
        by_step.set_x_axis({"name": "step", "interval_unit": max(1, n_steps // 10)})
        by_step.set_y_axis(y_axis)
        by_step.set_legend({"none": True})
        by_step.set_size({"width": 720, "height": 200})
        ws.insert_chart(chart_row + 10 * j, col0, by_step)
    by_epoch = wb.add_chart({"type": "line"})
    for j, name in enumerate(names):
        by_epoch.add_series({"name": sheet_names[name], "categories": [COMPARE, 1, col0, base.epochs, col0],
                             "values": series_range(ws, [COMPARE, 1, col0 + 1 + j, base.epochs, col0 + 1 + j]),
                             "marker": {"type": "circle"}})
    by_epoch.set_title({"name": "Loss on all examples after each epoch"})
    by_epoch.set_x_axis({"name": "epoch"})
    by_epoch.set_y_axis({"name": "loss", "log_base": 10} if positive else {"name": "loss"})
    by_epoch.set_size({"width": 720, "height": 320})
    ws.insert_chart(chart_row + 10 * len(names), col0, by_epoch)
    _shrinkage_chart(ws, wb, model, names, sheet_names, layouts, n_steps, col0, chart_row + 17 + 10 * len(names))
    _lr_chart(ws, wb, names, sheet_names, layouts, n_steps, col0, chart_row + 17 + 10 * len(names))


def _lr_chart(ws, wb, names, sheet_names, layouts, n_steps, col, row):
    """Where runs have an lr column (a schedule): their lr by step in one chart, read from their sheets."""
    series = [name for name in names if "lr" in layouts[name].columns]
    if not series:
        return
    chart = wb.add_chart({"type": "line"})
    colours = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B"]
    for j, name in enumerate(series):
        layout = layouts[name]
        first, column = layout.first_step_row, layout.columns["lr"]
        chart.add_series({"name": sheet_names[name], "categories": [COMPARE, 1, 0, n_steps, 0],
                          "values": series_range(ws, [sheet_names[name], first, column, first + n_steps - 1, column]),
                          "line": {"width": 1.5, "color": colours[names.index(name) % len(colours)]}})
    chart.set_title({"name": "Learning rate by step"})
    chart.set_x_axis({"name": "step", "interval_unit": max(1, n_steps // 10)})
    chart.set_y_axis({"name": "lr"})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": 320})
    ws.insert_chart(row, col, chart)


def _shared_axis(values, log: bool) -> dict:
    """One y axis for every optimizer's chart: the powers of ten around the losses (log), or their range."""
    if not values.size:
        return {"name": "loss"}
    if log:
        lo, hi = float(values.min()), float(values.max())
        return {"name": "loss", "log_base": 10, "min": 10.0 ** math.floor(math.log10(lo)),
                "max": 10.0 ** math.ceil(math.log10(hi))}
    return {"name": "loss", "min": float(values.min()), "max": float(values.max())}


def _shrinkage_chart(ws, wb, model, names, sheet_names, layouts, n_steps, col, row):
    """Where sheets show weight decay's shrinkage per step (Adam's shrinkage switch): one chart of them all."""
    series = [(name, p) for name in names for p in model.params if f"shrink_{p}" in layouts[name].columns]
    if not series:
        return
    chart = wb.add_chart({"type": "line"})
    for name, p in series:
        layout = layouts[name]
        first, column = layout.first_step_row, layout.columns[f"shrink_{p}"]  # 0-based row of step 1
        chart.add_series({"name": f"{sheet_names[name]}: {p}", "categories": [COMPARE, 1, 0, n_steps, 0],
                          "values": series_range(ws, [sheet_names[name], first, column, first + n_steps - 1, column]),
                          "line": {"width": 1.5}})
    chart.set_title({"name": "Shrinkage of each weight per step (weight decay)"})
    chart.set_x_axis({"name": "step", "interval_unit": max(1, n_steps // 10)})
    chart.set_y_axis({"name": "fraction of the weight", "log_base": 10})
    chart.set_size({"width": 720, "height": 320})
    ws.insert_chart(row, col, chart)
