"""Writes a lesson workbook with xlsxwriter: every step a row of live formulas, each caching the engine's value.

Sheets: Introduction, Steps (named hyperparameter cells on top, a start row, one row per step),
Epochs (loss per epoch and charts), Data (the examples and the fitted curve), Batches (only for
shuffled mini-batches: the order examples are visited in), and a hidden manifest for the checker.
"""
from __future__ import annotations

import os

import numpy as np
from xlsxwriter.utility import quote_sheetname, xl_col_to_name, xl_rowcol_to_cell

from sheetsgd.sheet import presentation, readable
from sheetsgd import __version__
from sheetsgd.runtime import progress
from .engine import Trace, train
from sheetsgd.sheet.formula import Resolver, compile_template
from .lesson import Lesson
from sheetsgd.lessons.schedules import sheet_hyper
from sheetsgd.lessons.sizeguard import WorkbookSize
from .spec import _sub, exercise_columns, row_local_batches, step_columns
from sheetsgd.sheet.blocks import Block, BlockColumn, cached
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.sheet.book import Book, BuildReport, PortableWorksheet, close_workbook, finish_workbook, lesson_entries  # noqa: F401
from .student import task_lines
from .steps_sheet import HYPER_FIRST_ROW, HYPER_NOTES, Layout, layout_entries, write_steps_sheet  # noqa: F401
from .intro import PORTABLE_NOTE, STANDARD_HOW, formula_in_row, write_intro  # noqa: F401

STEPS, EPOCHS, DATA, BATCHES, INTRO, MANIFEST = "Steps", "Epochs", "Data", "Batches", "Introduction", "_sheetsgd"
def _abs_col(sheet: str, col: int, first: int, last: int) -> str:
    letter = xl_col_to_name(col)
    return f"{sheet}!${letter}${first + 1}:${letter}${last + 1}"


def build_workbook(lesson: Lesson, path: str | os.PathLike, trace: Trace | None = None,
                   exercise=frozenset()) -> BuildReport:
    """Write the lesson's workbook to ``path``; returns what was written.

    ``exercise``: Steps columns left blank for a student to fill in (a student version, see
    :mod:`sheetsgd.lessons.sgd.student`): cells that depend on them cache no value, and the sheets are protected.
    """
    columns = step_columns(lesson)
    estimate_size(lesson, columns).check(lesson.source or None)  # before training: refuse early
    trace = trace or train(lesson)
    blocks_exercise = exercise if isinstance(exercise, dict) else ({STEPS: set(exercise)} if exercise else {})
    exercise = frozenset(blocks_exercise.get(STEPS, ()))
    book = Book(path, exercise=blocks_exercise if isinstance(blocks_exercise, dict) and
                getattr(blocks_exercise, "blocks", None) else None)
    wb, fmt, counts, sheet, path = book.wb, book.fmt, book.counts, book.sheet, book.path

    intro, steps_ws, epochs_ws, data_ws = sheet(INTRO), sheet(STEPS), sheet(EPOCHS), sheet(DATA)
    shuffled_batches = lesson.shuffle and 1 < lesson.batch_size < len(lesson.data)
    batches_ws = sheet(BATCHES) if shuffled_batches else None
    manifest_ws = sheet(MANIFEST)

    n = len(lesson.data)
    data_first, data_last = 1, n  # 0-based rows of the examples on the Data sheet
    data_cols = {"x": 1, "y": 2}
    layout = _write_steps(steps_ws, wb, fmt, lesson, trace, columns, counts, data_cols, shuffled_batches, exercise)
    layout.data_columns = data_cols
    _write_data(data_ws, wb, fmt, lesson, counts, [("fitted ŷ (final parameters)", STEPS, layout, trace)],
                hide_answers=bool(exercise))
    if batches_ws is not None:
        _write_batches(batches_ws, fmt, lesson, trace, counts)
    _write_epochs(epochs_ws, wb, fmt, lesson, trace, layout, counts, hide_answers=bool(exercise))
    write_intro(intro, fmt, lesson.title, lesson.description, lesson.tips, columns, layout, exercise=exercise,
                tasks=task_lines(lesson, columns, exercise, book.blocks) if exercise else ())
    if exercise:  # a convenience against accidental edits, not security: no password
        for ws in (intro, steps_ws, epochs_ws, data_ws, batches_ws):
            if ws is not None:
                ws.protect("", {"format_columns": True, "format_rows": True})
    steps_ws.repeat_rows(layout.header_row)
    steps_ws.hide_gridlines(0)  # print gridlines too: General-format numbers fill their cells
    wb.set_properties({"title": lesson.title, "subject": "sheetsgd lesson", "comments": f"sheetsgd {__version__}"})
    finish_workbook(wb, path, intro, manifest_ws,
                    {**_manifest_entries(lesson, columns, layout, data_first, data_last, exercise),
                     **lesson_entries(book, lesson, {STEPS: exercise} if exercise else {})})
    return book.report(trace.n_steps)


def estimate_size(lesson: Lesson, columns) -> WorkbookSize:
    """Cells, rows and the longest formula of the workbook, from the lesson alone (nothing trained)."""
    shuffled = lesson.shuffle and 1 < lesson.batch_size < len(lesson.data)
    n, steps = len(lesson.data), lesson.n_steps
    hyper_rows = len(sheet_hyper(lesson.optimizer_obj(), lesson.hyper, lesson.schedule, steps)) + 1
    start_row = HYPER_FIRST_ROW + hyper_rows + 2
    resolver = Resolver(lambda key, which: f"$XFD${start_row + steps}", hp=lambda name: name,
                        data=_data_resolver(lesson, {"x": 1, "y": 2}, shuffled))
    fields = {"r": start_row + steps, "p": start_row + steps - 1, "lo": 10**6, "hi": 10**6 + lesson.batch_size}
    longest = max((len(compile_template(c.formula, resolver).format_map(fields)) for c in columns if c.formula),
                  default=0)
    batches_rows = lesson.epochs * n if shuffled else 0
    starts = sum(c.start_value is not None for c in columns)  # the start row: initial parameters, state
    # the inputs' values (hyper_rows: the sheet's hyperparameters and fd_step) and two cells of the start row
    cells = (steps * len(columns) + hyper_rows + 2 + starts + 4 * n + 5 * lesson.epochs + 5 * batches_rows)
    return WorkbookSize(cells=cells, formula_cells=steps * sum(c.formula is not None for c in columns),
                        longest_formula=longest, max_rows=max(start_row + steps, batches_rows + 1, n + 1),
                        max_columns=len(columns))


def _write_steps(ws, wb, fmt, lesson, trace, columns, counts, data_cols, shuffled_batches,
                 exercise=frozenset()) -> Layout:
    opt = lesson.optimizer_obj()
    subtitle = (f"{opt.title} · {lesson.loss_cls().title} · batch size "
                f"{'full' if lesson.full_batch else lesson.batch_size} · {lesson.epochs} epoch(s). "
                "Yellow cells are inputs: change one and every row recomputes.")
    hyper = sheet_hyper(opt, lesson.hyper, lesson.schedule, lesson.n_steps) + [("fd_step", lesson.fd_step)]
    start_state = opt.start_state(lesson.hyper)
    starts = {c.key: (lesson.init[c.key[4:]], True) if c.start_value == "init"
              else (start_state[c.key.split("_")[0]], bool(lesson.hyper.get("classic")))
              for c in columns if c.start_value is not None}
    values = {c.key: _step_values(c.key, lesson, trace) for c in columns}
    return write_steps_sheet(ws, wb, fmt, counts, title=lesson.title, subtitle=subtitle, hyper=hyper,
                             columns=columns, values=values, start_values=starts, n_steps=trace.n_steps,
                             data=_data_resolver(lesson, data_cols, shuffled_batches),
                             ranges=_batch_ranges(lesson, trace, shuffled_batches), exercise=exercise)


def _data_resolver(lesson, data_cols, shuffled_batches):
    """``{data:x}``: the whole data column (for INDEX) with one example per step; the step's batch range
    (layout version 1); or every example with ``{data:pos}`` their positions (row-local batches: each step
    picks its own by its from/to positions)."""
    if lesson.batch_size == 1:
        return lambda name: _abs_col(DATA, data_cols[name], 1, len(lesson.data))
    sheet = BATCHES if shuffled_batches else DATA
    src_col = {"x": 3, "y": 4, "pos": 0} if shuffled_batches else {**data_cols, "pos": 0}
    if row_local_batches(lesson):
        last = lesson.epochs * len(lesson.data) if shuffled_batches else len(lesson.data)
        return lambda name: _abs_col(sheet, src_col[name], 1, last)

    def data(name):
        letter = xl_col_to_name(src_col[name])
        return f"{sheet}!${letter}${{lo}}:${letter}${{hi}}"

    return data


def _step_values(key: str, lesson: Lesson, trace: Trace) -> list:
    if key in ("first", "last"):
        pos = _batch_positions(lesson, trace)
        return [p[0] if key == "first" else p[1] for p in pos]
    return trace.steps[key].tolist()


def _batch_positions(lesson, trace) -> list[tuple[int, int]]:
    """1-based positions of each batch: example numbers, or rows of the Batches sheet when shuffled."""
    if lesson.shuffle and 1 < lesson.batch_size < len(lesson.data):
        out, pos = [], 1
        for b in trace.batches:
            out.append((pos, pos + len(b) - 1))
            pos += len(b)
        return out
    return [(int(b[0]) + 1, int(b[-1]) + 1) for b in trace.batches]


def _batch_ranges(lesson, trace, shuffled_batches) -> list[tuple[int, int]]:
    """1-based sheet rows (lo, hi) of each step's batch on the Data or Batches sheet (header in row 1)."""
    return [(a + 1, b + 1) for a, b in _batch_positions(lesson, trace)]


def _write_data(ws, wb, fmt, lesson, counts, fits, hide_answers=False):
    """The examples, and per fit [(label, steps sheet, layout, trace)] the curve of its final parameters."""
    model = lesson.model_cls()
    n = len(lesson.data)
    fit = presentation.widths(ws)
    fit.fit(0, presentation.column_width("#", [n]))
    for j, (name, values) in enumerate([(lesson.data.x_name, lesson.data.x), (lesson.data.y_name, lesson.data.y)]):
        fit.fit(1 + j, presentation.column_width(name, values, "General", lines=2))
    for j, (label, *_) in enumerate(fits):
        fit.fit(3 + j, presentation.column_width(label, [-1000.0, 1000.0], "0.0000", lines=2))
    readable.write_header_row(ws, 0, 0, ["#", lesson.data.x_name, lesson.data.y_name] + [label for label, *_ in fits],
                              fmt.header, lines=2)
    patterns, fit_values = [], []
    for _, sheet, layout, trace in fits:
        final_row = layout.start_row + trace.n_steps  # 0-based row of the last step
        final = {p: f"{quote_sheetname(sheet)}!{xl_rowcol_to_cell(final_row, layout.columns['new_' + p], True, True)}"
                 for p in model.params}
        patterns.append(compile_template(_sub(model.predict_formula, {"X": "{x}"}),
                                         Resolver(lambda k, w, final=final: final.get(k) or "B{r}", hp=str, data=str)))
        fit_values.append([""] * n if hide_answers else model.predict(trace.final, lesson.data.x).tolist())
    register_block(ws, Block(DATA, DATA, 0, 1, [
        BlockColumn("#", "#", 0, None, role="input"), BlockColumn("x", lesson.data.x_name, 1, None, role="input"),
        BlockColumn("y", lesson.data.y_name, 2, None, role="input")], n, step=np.zeros(n, dtype=np.int64)))
    num = fmt.number("General")
    data_fmt = fmt.hyper if hide_answers else num  # the data are inputs: unlocked in a student version
    fit_fmt = fmt.number(presentation.sheet_format(ws, "pred", [v for vs in fit_values for v in vs if v != ""]))
    for i in range(n):
        r = i + 1
        ws.write_number(r, 0, i + 1, num)
        ws.write_number(r, 1, lesson.data.x[i], data_fmt)
        ws.write_number(r, 2, lesson.data.y[i], data_fmt)
        for j, (pattern, values) in enumerate(zip(patterns, fit_values)):
            ws.write_formula(r, 3 + j, pattern.format(r=r + 1), fit_fmt, cached(values[i]))
    counts["value"] += 3 * n
    counts["formula"] += n * len(fits)
    ws.freeze_panes(1, 0)

    chart = wb.add_chart({"type": "scatter"})
    chart.add_series({"name": "data", "categories": [DATA, 1, 1, n, 1], "values": [DATA, 1, 2, n, 2],
                      "marker": {"type": "circle", "size": 6}})
    for j, (label, *_) in enumerate(fits):
        chart.add_series({"name": label, "categories": [DATA, 1, 1, n, 1],
                          "values": series_range(ws, [DATA, 1, 3 + j, n, 3 + j]),
                          "marker": {"type": "none"}, "line": {"width": 2}})
    chart.set_title({"name": f"{lesson.data.y_name} against {lesson.data.x_name}"
                             + (f", with the fitted {model.name} model" if fits else "")})
    chart.set_x_axis({"name": lesson.data.x_name})
    chart.set_y_axis({"name": lesson.data.y_name})
    chart.set_size({"width": 640, "height": 400})
    ws.insert_chart(1, 4 + len(fits), chart)


def _write_batches(ws, fmt, lesson, trace, counts):
    """The visit order of shuffled mini-batches, so each step's batch is one contiguous range."""
    readable.write_header_row(ws, 0, 0, ["position", "step", "example #", lesson.data.x_name, lesson.data.y_name],
                              fmt.header)
    n = len(lesson.data)
    num = fmt.number("General")
    row = 1
    for step, batch in enumerate(progress.rows(trace.batches, BATCHES), start=1):
        for ex in batch:
            ws.write_number(row, 0, row, num)
            ws.write_number(row, 1, step, num)
            ws.write_number(row, 2, int(ex) + 1, num)
            for col, (data_col, values) in enumerate(((1, lesson.data.x), (2, lesson.data.y)), start=3):
                ws.write_formula(row, col, f"=INDEX({_abs_col(DATA, data_col, 1, n)},C{row + 1})", num,
                                 float(values[ex]))
            row += 1
    counts["value"] += 3 * (row - 1)
    counts["formula"] += 2 * (row - 1)
    ws.freeze_panes(1, 0)
    order = [int(ex) for batch in trace.batches for ex in batch]
    register_block(ws, Block(BATCHES, BATCHES, 0, 1, [
        BlockColumn("position", "position", 0, None), BlockColumn("step", "step", 1, None),
        BlockColumn("example", "example #", 2, None),
        BlockColumn("x", lesson.data.x_name, 3, f"INDEX({_abs_col(DATA, 1, 1, n)},C{{r}})"),
        BlockColumn("y", lesson.data.y_name, 4, f"INDEX({_abs_col(DATA, 2, 1, n)},C{{r}})")], row - 1,
        values={"position": list(range(1, row)), "step": [s for s, b in enumerate(trace.batches, 1) for _ in b],
                "example": [ex + 1 for ex in order], "x": lesson.data.x[order].tolist(), "y": lesson.data.y[order].tolist()},
        step=np.array([s for s, b in enumerate(trace.batches, 1) for _ in b])))


def register_block(ws, block: Block) -> None:
    """A block written by its own loop (values of several kinds, text): the checker still finds it."""
    book = getattr(ws, "sheetsgd_book", None)
    if book is not None:
        book.blocks.append(block)


def _write_epochs(ws, wb, fmt, lesson, trace, layout, counts, hide_answers=False):
    model, loss = lesson.model_cls(), lesson.loss_cls()
    n = len(lesson.data)
    presentation.widths(ws).fit_range(0, 2, 10)
    presentation.widths(ws).fit_range(3, 4, 18)
    readable.write_header_row(ws, 0, 0, ["epoch", "first step", "last step", "mean loss of the epoch's steps",
                                         f"loss on all {n} examples after the epoch"], fmt.header)
    loss_letter = xl_col_to_name(layout.columns["loss"])
    x_range, y_range = _abs_col(DATA, 1, 1, n), _abs_col(DATA, 2, 1, n)
    epochs = trace.steps["epoch"].astype(int)
    first_step = layout.first_step_row  # 0-based row of step 1
    loss_format = fmt.number(presentation.sheet_format(ws, "loss", np.concatenate(
        [trace.epochs["mean_step_loss"], trace.epochs["full_loss"]])))
    for e in range(1, lesson.epochs + 1):
        idx = np.flatnonzero(epochs == e).tolist()  # (a list comprehension here was O(epochs × steps))
        lo, hi = first_step + idx[0] + 1, first_step + idx[-1] + 1  # 1-based sheet rows
        params = {p: f"{STEPS}!${xl_col_to_name(layout.columns['new_' + p])}${hi}" for p in model.params}
        predict = _sub(model.predict_formula, {"X": x_range, **params})
        full = f"SUMPRODUCT({loss.value_formula(f'{predict}-{y_range}')})/COUNT({x_range})"
        ws.write_number(e, 0, e)
        ws.write_number(e, 1, idx[0] + 1)
        ws.write_number(e, 2, idx[-1] + 1)
        ws.write_formula(e, 3, f"=AVERAGE({STEPS}!{loss_letter}{lo}:{loss_letter}{hi})", loss_format,
                         "" if hide_answers else float(trace.epochs["mean_step_loss"][e - 1]))
        ws.write_formula(e, 4, "=" + full, loss_format,
                         "" if hide_answers else float(trace.epochs["full_loss"][e - 1]))
    counts["value"] += 3 * lesson.epochs
    counts["formula"] += 2 * lesson.epochs
    ws.freeze_panes(1, 0)

    last = layout.start_row + trace.n_steps
    by_step = wb.add_chart({"type": "line"})
    by_step.add_series({"name": "loss", "categories": [STEPS, layout.first_step_row, layout.columns["step"], last,
                                                       layout.columns["step"]],
                        "values": series_range(ws, [STEPS, layout.first_step_row, layout.columns["loss"], last,
                                                    layout.columns["loss"]]), "line": {"width": 1.25}})
    by_step.set_title({"name": "Loss by step"})
    by_step.set_x_axis({"name": "step", "interval_unit": max(1, trace.n_steps // 10),
                        "interval_tick": max(1, trace.n_steps // 10)})
    by_step.set_y_axis({"name": "loss", "log_base": 10} if _positive(trace.steps["loss"]) else {"name": "loss"})
    by_step.set_legend({"none": True})
    by_step.set_size({"width": 640, "height": 340})
    ws.insert_chart(1, 6, by_step)
    by_epoch = wb.add_chart({"type": "line"})
    by_epoch.add_series({"name": "loss after epoch", "categories": [EPOCHS, 1, 0, lesson.epochs, 0],
                         "values": series_range(ws, [EPOCHS, 1, 4, lesson.epochs, 4]), "marker": {"type": "circle"}})
    by_epoch.add_series({"name": "mean step loss", "categories": [EPOCHS, 1, 0, lesson.epochs, 0],
                         "values": series_range(ws, [EPOCHS, 1, 3, lesson.epochs, 3]), "marker": {"type": "square"}})
    by_epoch.set_title({"name": "Loss per epoch"})
    by_epoch.set_x_axis({"name": "epoch"})
    by_epoch.set_y_axis({"name": "loss"})
    by_epoch.set_size({"width": 640, "height": 300})
    ws.insert_chart(19, 6, by_epoch)


def _positive(values) -> bool:
    import numpy as np

    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


def _manifest_entries(lesson, columns, layout, data_first, data_last, exercise=frozenset()) -> dict:
    """What the checker needs to find its way: lesson, spec version and layout. No answers."""
    return {
        "kind": "sgd",
        "lesson": lesson.name,
        "template": os.path.basename(lesson.source),
        "model": lesson.model,
        "loss": lesson.loss,
        "optimizer": lesson.optimizer,
        "hyper_switches": {k: lesson.hyper[k] for k in lesson.optimizer_obj().switches if k in lesson.hyper},
        "batch_size": lesson.batch_size,
        "epochs": lesson.epochs,
        "shuffle": lesson.shuffle,
        "seed": lesson.seed,
        **layout_entries(layout, columns, STEPS),
        "data_sheet": DATA,
        "data_rows": [data_first + 1, data_last + 1],
        "data_columns": {k: xl_col_to_name(v) for k, v in layout.data_columns.items()},
        "exercise_defaults": exercise_columns(lesson),
        "data_headers": {"x": lesson.data.x_name, "y": lesson.data.y_name},
        "exercise": [c.key for c in columns if c.key in exercise],  # names only: the blanks, no answers
    }
