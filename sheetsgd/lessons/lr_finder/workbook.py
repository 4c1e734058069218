"""The lr finder's workbook: the Finder sheet (a row per mini-batch, suggestions beside), the Chart, the
row part's own sheets, the Introduction and the manifest (the lesson and training: sheetsgd.lessons.lr_finder.finder)."""
from __future__ import annotations

import math

import numpy as np
from xlsxwriter.utility import xl_col_to_name

from sheetsgd.sheet import presentation
from sheetsgd.sheet.chart_data import series_range
from .finder import CHART, FINDER, FINDER_NOTES, FinderLesson, FinderTrace, finder_columns, train_finder
from sheetsgd.sheet.book import lesson_entries
from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
from sheetsgd.lessons.sgd.workbook import (INTRO, MANIFEST, Book, cached, finish_workbook, layout_entries, write_intro, write_steps_sheet)


def build_finder_workbook(lesson: FinderLesson, path, trace: FinderTrace | None = None, exercise=None):
    from sheetsgd.lessons.runbounds import guard

    guard(lesson)  # refuse a workbook that will not fit, before training
    trace = trace or train_finder(lesson)
    base, part = lesson.base, lesson.rows
    part.check(lesson, trace)  # before any file is written
    book = Book(path, exercise)
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
        hyper=hyper, values=values, n_steps=trace.n_steps, **part.step_refs(batches),
        exercise=frozenset(book.exercise.get(FINDER, ())), block_name=FINDER, extras=[
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
    entries = part.write_sheets(book, sheets, trace, layout, batches, FINDER)
    write_intro(intro, fmt, lesson.title, lesson.description, lesson.tips, columns, layout, FINDER, how=[
        "Each row is one mini-batch step with its own learning rate (the lr column), growing from start_lr to end_lr.",
        "The smoothed loss is fastai's debiased moving average; the test stops after the first row where it "
        "exceeds stop_factor × the best so far.",
        "The suggested learning rates, top right, are formulas over the recorded rows.",
    ] + list(getattr(part, "how", [])),
                exercise=frozenset().union(*book.exercise.values()) if book.exercise else frozenset(),
                tasks=block_task_lines(book.blocks, book.exercise) if book.exercise else ())
    if book.exercise:
        protect_sheets(book)
    finish_workbook(wb, book.path, intro, manifest, {"kind": "lr-finder", "lesson": lesson.name,
                                                **layout_entries(layout, columns, FINDER),
                                                "suggestion_cells": layout.extra_cells,
                                                "exercise_defaults": lesson.exercise, **entries,
                                                **lesson_entries(book, lesson, book.exercise)})
    return book.report(trace.n_steps)


def _write_chart(ws, wb, fmt, lesson, trace, layout, counts):
    """Smoothed loss against lr on a logarithmic axis, and the suggestions beside it."""
    labels = ("suggested lr: steepest", "suggested lr: minimum/10", "rows recorded")
    presentation.widths(ws).fit_text(0, *labels, bold=True)
    presentation.widths(ws).fit(1, presentation.text_width("-0.00E+00"))
    ws.write(0, 0, "The lr range test", fmt.title)
    first, last = layout.first_step_row, layout.first_step_row + trace.n_steps - 1
    lr_col, plot_col, smooth_col = layout.columns["lr"], layout.columns["plot"], layout.columns["smooth"]
    recorded_last = first + max(1, int(trace.n_recorded)) - 1  # the row the loss blew up in, the last recorded
    L = xl_col_to_name(smooth_col)
    smooth = np.asarray(trace.steps["smooth"], dtype=float)[:max(1, int(trace.n_recorded))]
    smooth = smooth[np.isfinite(smooth)]
    loss_format = fmt.number(presentation.sheet_format(ws, "loss", smooth))
    bounds = [(f"=MIN({FINDER}!${L}${first + 1}:${L}${recorded_last + 1})", float(smooth.min()) if smooth.size else ""),
              (f"=MAX({FINDER}!${L}${first + 1}:${L}${recorded_last + 1})", float(smooth.max()) if smooth.size else "")]
    ws.write_string(1, 3, "marks on the chart", fmt.bold)
    presentation.widths(ws).fit_range(3, 5, presentation.values_width(list(smooth) + [-1e-10], "0.00E+00"))
    for row, (name, label) in enumerate((("lr_suggest_steep", "suggested lr: steepest"),
                                         ("lr_suggest_min", "suggested lr: minimum/10"),
                                         ("n_recorded", "rows recorded")), start=2):
        ws.write(row, 0, label, fmt.bold)
        value = float(trace.n_recorded) if name == "n_recorded" else _suggestion(trace, name.replace("_suggest", ""))
        ws.write_formula(row, 1, name, fmt.number("0.00E+00" if name != "n_recorded" else "0"), cached(value))
        if row < 4:  # each suggestion a vertical line from the lowest to the highest smoothed loss
            steep, low = _suggestion(trace, "lr_steep"), _suggestion(trace, "lr_min")
            ws.write_formula(row, 3, "=lr_suggest_steep", fmt.number("0.00E+00"), cached(steep))
            ws.write_formula(row, 4, "=lr_suggest_min", fmt.number("0.00E+00"), cached(low))
            ws.write_formula(row, 5, bounds[row - 2][0], loss_format, cached(bounds[row - 2][1]))
    counts["formula"] += 9
    chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
    chart.add_series({"name": "smoothed loss, every recorded step (to the blow-up)",
                      "categories": series_range(ws, [FINDER, first, lr_col, recorded_last, lr_col]),
                      "values": series_range(ws, [FINDER, first, smooth_col, recorded_last, smooth_col]),
                      "marker": {"type": "none"}, "line": {"width": 1.25, "color": "#9DC3E6"}})
    chart.add_series({"name": "smoothed loss (plotted as fastai does)",
                      "categories": series_range(ws, [FINDER, first, lr_col, last, lr_col]),
                      "values": series_range(ws, [FINDER, first, plot_col, last, plot_col]), "marker": {"type": "none"},
                      "line": {"width": 2.25, "color": "#1F4E79"}})
    for col, label, colour in ((3, "suggested lr: steepest", "#C00000"), (4, "suggested lr: minimum/10", "#548235")):
        chart.add_series({"name": label, "categories": series_range(ws, [CHART, 2, col, 3, col]),
                          "values": series_range(ws, [CHART, 2, 5, 3, 5]), "marker": {"type": "none"},
                          "line": {"width": 1.5, "color": colour, "dash_type": "dash"}})
    chart.set_title({"name": "Smoothed loss against learning rate"})
    chart.set_x_axis({"name": "learning rate (log scale)", "log_base": 10, "num_format": "0.0E+0",
                      **_log_range(trace.steps["lr"][:len(smooth)], smooth, lesson.finder)})
    positive = smooth.size and bool(np.all(smooth > 0))
    chart.set_y_axis({"name": "smoothed loss" + (" (log scale)" if positive else ""),
                      **({"log_base": 10} if positive else {})})
    chart.set_legend({"position": "bottom"})
    chart.show_na_as_empty_cell()
    chart.set_size({"width": 760, "height": 460})
    ws.insert_chart(6, 0, chart)


def _log_range(lrs, plotted, finder) -> dict:
    """The axis from the powers of ten around the learning rates the curve has points at (the test stops early)."""
    import numpy as np
    lrs, plotted = np.asarray(lrs, dtype=float), np.asarray(plotted, dtype=float)
    shown = lrs[np.isfinite(plotted) & np.isfinite(lrs) & (lrs > 0)]
    if not shown.size:
        return {"min": finder["start_lr"], "max": finder["end_lr"]}
    return {"min": 10.0 ** math.floor(math.log10(shown.min()) + 1e-9),
            "max": 10.0 ** math.ceil(math.log10(shown.max()) - 1e-9)}


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
