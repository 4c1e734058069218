"""Writes a lesson workbook with xlsxwriter: every step a row of live formulas, each caching the engine's value.

Sheets: Introduction, Steps (named hyperparameter cells on top, a start row, one row per step),
Epochs (loss per epoch and charts), Data (the examples and the fitted curve), Batches (only for
shuffled mini-batches: the order examples are visited in), and a hidden manifest for the checker.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
from xlsxwriter.utility import quote_sheetname, xl_col_to_name, xl_rowcol_to_cell

from . import __version__, progress
from .engine import Trace, train
from .formula import Resolver, compile_template
from .lesson import Lesson
from .sizeguard import WorkbookSize
from .spec import Column, _sub, exercise_columns, step_columns
from .blocks import Block, BlockColumn, StudentPlan, cached, write_block
from .book import Book, BuildReport, PortableWorksheet, close_workbook, finish_workbook, lesson_entries  # noqa: F401
from .student import task_lines

STEPS, EPOCHS, DATA, BATCHES, INTRO, MANIFEST = "Steps", "Epochs", "Data", "Batches", "Introduction", "_sheetsgd"
COLUMN_WIDTHS = {"step": 8, "data": 9, "param": 11, "forward": 12, "loss": 13, "gradient": 13, "estimate": 13,
                 "state": 13, "update": 11}
HYPER_FIRST_ROW = 3  # 0-based row of the first named hyperparameter on the Steps sheet

HYPER_NOTES = {
    "lr": "learning rate: the step size of every update",
    "momentum": "momentum μ: how much of the previous step's direction is kept",
    "dampening": "dampening: the share of the new gradient left out of the momentum buffer",
    "alpha": "α: decay of the running mean of squared gradients",
    "beta1": "β1: decay of the running mean of gradients (m)",
    "beta2": "β2: decay of the running mean of squared gradients (v)",
    "eps": "ε: keeps the division by √v finite",
    "weight_decay": "weight decay: pulls each parameter towards 0",
    "fd_step": "h: the nudge used by the finite-difference estimates (not used by training)",
}


@dataclass
class Layout:
    """Where things landed; also what the manifest records for the checker (0-based rows)."""

    header_row: int
    start_row: int
    columns: dict[str, int]  # key -> 0-based column
    hyper_cells: dict[str, str]  # name -> Steps!$B$n
    data_columns: dict[str, int] = field(default_factory=dict)
    extra_cells: dict[str, str] = field(default_factory=dict)  # named result cells beside the inputs

    @property
    def first_step_row(self) -> int:
        return self.start_row + 1


def _abs_col(sheet: str, col: int, first: int, last: int) -> str:
    letter = xl_col_to_name(col)
    return f"{sheet}!${letter}${first + 1}:${letter}${last + 1}"


def build_workbook(lesson: Lesson, path: str | os.PathLike, trace: Trace | None = None,
                   exercise=frozenset()) -> BuildReport:
    """Write the lesson's workbook to ``path``; returns what was written.

    ``exercise``: Steps columns left blank for a student to fill in (a student version, see
    :mod:`sheetsgd.student`): cells that depend on them cache no value, and the sheets are protected.
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
                tasks=task_lines(lesson, columns, exercise) if exercise else ())
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
    n, steps, hyper_rows = len(lesson.data), lesson.n_steps, len(lesson.hyper) + 1
    start_row = HYPER_FIRST_ROW + hyper_rows + 2
    resolver = Resolver(lambda key, which: f"$XFD${start_row + steps}", hp=lambda name: name,
                        data=_data_resolver(lesson, {"x": 1, "y": 2}, shuffled))
    fields = {"r": start_row + steps, "p": start_row + steps - 1, "lo": 10**6, "hi": 10**6 + lesson.batch_size}
    longest = max((len(compile_template(c.formula, resolver).format_map(fields)) for c in columns if c.formula),
                  default=0)
    batches_rows = lesson.epochs * n if shuffled else 0
    cells = (steps * len(columns) + 2 * hyper_rows + 4 * n + 5 * lesson.epochs + 5 * batches_rows)
    return WorkbookSize(cells=cells, formula_cells=steps * sum(c.formula is not None for c in columns),
                        longest_formula=longest, max_rows=max(start_row + steps, batches_rows + 1, n + 1),
                        max_columns=len(columns))


def _write_steps(ws, wb, fmt, lesson, trace, columns, counts, data_cols, shuffled_batches,
                 exercise=frozenset()) -> Layout:
    opt = lesson.optimizer_obj()
    subtitle = (f"{opt.title} · {lesson.loss_cls().title} · batch size "
                f"{'full' if lesson.full_batch else lesson.batch_size} · {lesson.epochs} epoch(s). "
                "Yellow cells are inputs: change one and every row recomputes.")
    hyper_values = {**lesson.hyper, "fd_step": lesson.fd_step}
    hyper = [(name, hyper_values[name]) for name in opt.sheet_hyper(lesson.hyper) + ["fd_step"]]
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
    """``{data:x}``: the whole data column (for INDEX) with one example per step, else the step's batch range."""
    if lesson.batch_size == 1:
        return lambda name: _abs_col(DATA, data_cols[name], 1, len(lesson.data))
    sheet = BATCHES if shuffled_batches else DATA
    src_col = {"x": 3, "y": 4} if shuffled_batches else data_cols

    def data(name):
        letter = xl_col_to_name(src_col[name])
        return f"{sheet}!${letter}${{lo}}:${letter}${{hi}}"

    return data


def write_steps_sheet(ws, wb, fmt, counts, *, title, subtitle, hyper, columns, values, start_values, n_steps,
                      data=None, ranges=None, name_prefix="", hyper_notes=None, first_col=0,
                      extras=(), exercise=frozenset(), row_fields=None, block_name=None) -> Layout:
    """Write a step table: named hyperparameter cells on top, a header, a start row, one row per step.

    ``hyper`` is [(name, value)]: each becomes a yellow input cell with the defined name
    ``name_prefix + name`` (formulas say ``{hp:name}``). ``values[key]`` are the engine's values per
    step (cached in formula cells, written in value columns). ``start_values[key] = (value, is_input)``
    fills the start row above step 1, which ``{prev:key}`` of step 1 refers to. ``extras`` are named
    result cells shown beside the inputs: [(name, label, formula template, engine value, note)].
    ``exercise`` columns are left blank (highlighted) and cells depending on them cache no value.
    ``row_fields[s]`` adds row fields of step s+1 beyond {r}, {p}, {lo}, {hi} (e.g. a second sheet's rows).
    """
    sheet = ws.get_name()
    notes = {**HYPER_NOTES, **(hyper_notes or {})}
    header_row = HYPER_FIRST_ROW + max(len(hyper), len(extras)) + 1
    start_row = header_row + 1
    col_of = {c.key: first_col + i for i, c in enumerate(columns)}
    last_row = start_row + n_steps  # 0-based row of the last step

    def cell(key, which):
        if key not in col_of:
            raise KeyError(f"template refers to unknown column {key!r}")
        letter = xl_col_to_name(col_of[key])
        if which == "first":
            return f"${letter}${start_row + 2}"
        if which == "all":
            return f"${letter}${start_row + 2}:${letter}${last_row + 1}"
        return f"{letter}{{{'r' if which == 'this' else 'p'}}}"

    resolver = Resolver(cell, hp=lambda name: name_prefix + name, data=data or (lambda name: name))

    ws.write(0, first_col, title, fmt.title)
    ws.write(1, first_col, subtitle, fmt.note)
    hyper_cells, extra_cells = {}, {}
    for i in range(max(len(hyper), len(extras))):
        row = HYPER_FIRST_ROW + i
        if i < len(hyper):
            name, value = hyper[i]
            ws.write(row, first_col, name_prefix + name, fmt.bold)
            ws.write_number(row, first_col + 1, value, fmt.hyper)
            ws.write(row, first_col + 2, notes.get(name, ""), fmt.note)
            cell_ref = f"{quote_sheetname(sheet)}!{xl_rowcol_to_cell(row, first_col + 1, row_abs=True, col_abs=True)}"
            wb.define_name(name_prefix + name, f"={cell_ref}")
            hyper_cells[name_prefix + name] = cell_ref
        if i < len(extras):  # results beside the inputs, e.g. the lr finder's suggestions
            name, label, template, value, note = extras[i]
            col = first_col + 6
            ws.write(row, col, label, fmt.bold)
            ws.write_formula(row, col + 1, compile_template(template, resolver), fmt.number("General"), cached(value))
            ws.write(row, col + 2, note, fmt.note)
            cell_ref = f"{quote_sheetname(sheet)}!{xl_rowcol_to_cell(row, col + 1, row_abs=True, col_abs=True)}"
            wb.define_name(name_prefix + name, f"={cell_ref}")
            extra_cells[name_prefix + name] = cell_ref
    counts["value"] += len(hyper)
    counts["formula"] += len(extras)
    layout = Layout(header_row, start_row, col_of, hyper_cells, extra_cells=extra_cells)

    ws.set_row(header_row, 45)
    for c in columns:
        ws.write(header_row, col_of[c.key], c.header, fmt.header)
        ws.set_column(col_of[c.key], col_of[c.key], COLUMN_WIDTHS.get(c.group, 12))

    # the start row: step 0, initial values (inputs in yellow) and zero optimizer state
    if "step" in col_of:
        ws.write_number(start_row, col_of["step"], 0, fmt.number("0", True))
    if "epoch" in col_of:
        ws.write(start_row, col_of["epoch"], "start", fmt.number("General", True))
    for c in columns:
        if c.key in start_values:
            value, is_input = start_values[c.key]
            ws.write_number(start_row, col_of[c.key], value, fmt.hyper if is_input else fmt.number(c.number_format, True))
    counts["value"] += ("step" in col_of) + ("epoch" in col_of) + len(start_values)

    # one row per step: a block of the one sheet spec (patterns compiled once, rows fill in numbers)
    ranges = ranges or [(0, 0)] * n_steps
    extra = {}
    if any(lo or hi for lo, hi in ranges):
        extra = {"lo": [lo for lo, _ in ranges], "hi": [hi for _, hi in ranges]}
    if row_fields:
        for k in row_fields[0]:
            extra[k] = [f[k] for f in row_fields]
    block = Block(sheet, block_name or sheet, header_row, start_row + 1,
                  [BlockColumn(c.key, c.header, col_of[c.key],
                               compile_template(c.formula, resolver) if c.formula else None, c.number_format,
                               c.note, "input" if c.group == "data" and not c.formula else "")
                   for c in columns], n_steps, fields=extra, values=values)
    book = getattr(ws, "sheetsgd_book", None)
    student = book.student if book is not None else None
    if exercise and student is None:
        student = StudentPlan([block], {block.name: set(exercise)})
        if book is not None:
            book.student = student
    elif student is not None:
        student.add(block, exercise)
    write_block(ws, fmt, counts, block, student)
    if first_col == 0:
        ws.freeze_panes(start_row, 2)
    return layout


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
    ws.set_row(0, 30)
    ws.write_row(0, 0, ["#", lesson.data.x_name, lesson.data.y_name] + [label for label, *_ in fits], fmt.header)
    ws.set_column(0, 0, 6)
    ws.set_column(1, 2 + len(fits), 14)
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
    fit_fmt = fmt.number("0.0000")
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
        chart.add_series({"name": label, "categories": [DATA, 1, 1, n, 1], "values": [DATA, 1, 3 + j, n, 3 + j],
                          "marker": {"type": "none"}, "line": {"width": 2}})
    chart.set_title({"name": f"{lesson.data.y_name} against {lesson.data.x_name}, with the fitted {model.name} model"})
    chart.set_x_axis({"name": lesson.data.x_name})
    chart.set_y_axis({"name": lesson.data.y_name})
    chart.set_size({"width": 640, "height": 400})
    ws.insert_chart(1, 4 + len(fits), chart)


def _write_batches(ws, fmt, lesson, trace, counts):
    """The visit order of shuffled mini-batches, so each step's batch is one contiguous range."""
    ws.write_row(0, 0, ["position", "step", "example #", lesson.data.x_name, lesson.data.y_name], fmt.header)
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
    ws.set_row(0, 45)
    ws.write_row(0, 0, ["epoch", "first step", "last step", "mean loss of the epoch's steps",
                        f"loss on all {n} examples after the epoch"], fmt.header)
    ws.set_column(0, 2, 10)
    ws.set_column(3, 4, 18)
    loss_letter = xl_col_to_name(layout.columns["loss"])
    x_range, y_range = _abs_col(DATA, 1, 1, n), _abs_col(DATA, 2, 1, n)
    epochs = trace.steps["epoch"].astype(int)
    first_step = layout.first_step_row  # 0-based row of step 1
    for e in range(1, lesson.epochs + 1):
        idx = np.flatnonzero(epochs == e).tolist()  # (a list comprehension here was O(epochs × steps))
        lo, hi = first_step + idx[0] + 1, first_step + idx[-1] + 1  # 1-based sheet rows
        params = {p: f"{STEPS}!${xl_col_to_name(layout.columns['new_' + p])}${hi}" for p in model.params}
        predict = _sub(model.predict_formula, {"X": x_range, **params})
        full = f"SUMPRODUCT({loss.value_formula(f'{predict}-{y_range}')})/COUNT({x_range})"
        ws.write_number(e, 0, e)
        ws.write_number(e, 1, idx[0] + 1)
        ws.write_number(e, 2, idx[-1] + 1)
        ws.write_formula(e, 3, f"=AVERAGE({STEPS}!{loss_letter}{lo}:{loss_letter}{hi})", fmt.number("0.000000"),
                         "" if hide_answers else float(trace.epochs["mean_step_loss"][e - 1]))
        ws.write_formula(e, 4, "=" + full, fmt.number("0.000000"),
                         "" if hide_answers else float(trace.epochs["full_loss"][e - 1]))
    counts["value"] += 3 * lesson.epochs
    counts["formula"] += 2 * lesson.epochs
    ws.freeze_panes(1, 0)

    last = layout.start_row + trace.n_steps
    by_step = wb.add_chart({"type": "line"})
    by_step.add_series({"name": "loss", "categories": [STEPS, layout.first_step_row, layout.columns["step"], last,
                                                       layout.columns["step"]],
                        "values": [STEPS, layout.first_step_row, layout.columns["loss"], last,
                                   layout.columns["loss"]], "line": {"width": 1.25}})
    by_step.set_title({"name": "Loss by step"})
    by_step.set_x_axis({"name": "step", "interval_unit": max(1, trace.n_steps // 10),
                        "interval_tick": max(1, trace.n_steps // 10)})
    by_step.set_y_axis({"name": "loss", "log_base": 10} if _positive(trace.steps["loss"]) else {"name": "loss"})
    by_step.set_legend({"none": True})
    by_step.set_size({"width": 640, "height": 340})
    ws.insert_chart(1, 6, by_step)
    by_epoch = wb.add_chart({"type": "line"})
    by_epoch.add_series({"name": "loss after epoch", "categories": [EPOCHS, 1, 0, lesson.epochs, 0],
                         "values": [EPOCHS, 1, 4, lesson.epochs, 4], "marker": {"type": "circle"}})
    by_epoch.add_series({"name": "mean step loss", "categories": [EPOCHS, 1, 0, lesson.epochs, 0],
                         "values": [EPOCHS, 1, 3, lesson.epochs, 3], "marker": {"type": "square"}})
    by_epoch.set_title({"name": "Loss per epoch"})
    by_epoch.set_x_axis({"name": "epoch"})
    by_epoch.set_y_axis({"name": "loss"})
    by_epoch.set_size({"width": 640, "height": 300})
    ws.insert_chart(19, 6, by_epoch)


def _positive(values) -> bool:
    import numpy as np

    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


STANDARD_HOW = [
    "The yellow cells at the top of the Steps sheet are named inputs (lr, …): every formula refers to them by name.",
    "The grey start row holds the initial parameters (yellow, editable) and zero optimizer state.",
    "Each row below is one step: it starts from the previous row's new parameters, also across epochs.",
    "Epochs shows the loss per epoch and charts; Data shows the examples and the fitted curve.",
]
PORTABLE_NOTE = "No macros and no Solver: the workbook recalculates the same in Excel, Google Sheets and LibreOffice."


def write_intro(ws, fmt, title, description, tips, columns, layout, sheet_name=STEPS, how=None, hp_prefix="",
                legends=None, exercise=frozenset(), tasks=()):
    """The Introduction: what the lesson shows, how the sheet works, what to try, a legend of columns.

    ``legends`` = [(sheet name, columns, layout, name prefix)] for workbooks with several step sheets.
    A student version (``exercise`` columns blank) gets a "Your task" section (``tasks``), and its legend
    does not show the blank columns' formulas.
    """
    legends = legends or [(sheet_name, columns, layout, hp_prefix)]
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 60)
    ws.set_column(2, 2, 60)
    ws.write(0, 0, title, fmt.title)
    row = 2
    for para in [p.strip() for p in description.strip().split("\n\n") if p.strip()]:
        ws.set_row(row, 15 * (1 + len(para) // 150))
        ws.merge_range(row, 0, row, 2, " ".join(para.split()), fmt.wrap)
        row += 1
    row += 1

    def bullets(row, heading, heading_format, lines):  # a heading, then one bulleted line each
        ws.write(row, 0, heading, heading_format)
        for i, line in enumerate(lines, start=row + 1):
            ws.write(i, 0, "•")
            ws.write(i, 1, line)
        return row + 1 + len(lines)

    if tasks:
        row = bullets(row, "Your task", fmt.title, list(tasks)) + 1
    several = len(legends) > 1
    row = bullets(row, f"How the {legends[0][0]} sheet{'s work' if several else ' works'}", fmt.bold,
                  (how or STANDARD_HOW) + [PORTABLE_NOTE])
    if tips:
        row = bullets(row + 1, "Things to try", fmt.bold, tips)
    for sheet, sheet_columns, sheet_layout, prefix in legends:
        row += 1
        ws.write_row(row, 0, [f"{sheet} column", "what it is", "formula in step 1"], fmt.header)
        row += 1
        for c in sheet_columns:
            ws.write(row, 0, c.header, fmt.bold)
            ws.write(row, 1, c.note)
            if c.key in exercise:
                text = "(yours to write: see Your task)"
            else:
                text = formula_in_row(c, sheet_layout, sheet_layout.first_step_row, prefix) if c.formula else "(a value)"
            ws.write_string(row, 2, text)
            row += 1


def formula_in_row(column: Column, layout, row0: int, hp_prefix: str = "") -> str:
    """The formula text of ``column`` in 0-based row ``row0``, for the legend (no leading '=')."""
    def cell(key, which):
        letter = xl_col_to_name(layout.columns[key])
        if which == "first":
            return f"${letter}${layout.first_step_row + 1}"
        if which == "all":
            return f"${letter}${layout.first_step_row + 1}:${letter}$…"
        return f"{letter}{row0 + 1 if which == 'this' else row0}"

    def data(name):  # a Data column number, or the text to show
        where = layout.data_columns[name]
        return where if isinstance(where, str) else f"{DATA}!{xl_col_to_name(where)}…"

    text = compile_template(column.formula, Resolver(cell, hp=lambda n: hp_prefix + n, data=data))
    return re.sub(r"\{\w+\}", "", text)  # batch row fields ({lo}, {hi}, …) differ per row


def layout_entries(layout: Layout, columns, sheet: str) -> dict:
    """How the checker finds a step table: its sheet, rows (1-based), columns and named inputs."""
    return {"steps_sheet": sheet, "header_row": layout.header_row + 1, "start_row": layout.start_row + 1,
            "first_step_row": layout.first_step_row + 1, "hyperparameters": layout.hyper_cells,
            "columns": {c.key: {"column": xl_col_to_name(layout.columns[c.key]), "header": c.header} for c in columns}}


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
