"""Writes a lesson workbook with xlsxwriter: every step a row of live formulas, each caching the engine's value.

Sheets: Introduction, Steps (named hyperparameter cells on top, a start row, one row per step),
Epochs (loss per epoch and charts), Data (the examples and the fitted curve), Batches (only for
shuffled mini-batches: the order examples are visited in), and a hidden manifest for the checker.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from . import __version__
from .engine import Trace, train
from .errors import SheetsgdError
from .formula import Resolver, compile_template
from .lesson import Lesson
from .spec import SPEC_VERSION, Column, _sub, exercise_columns, step_columns
from .student import answer_dependent_rows, task_lines

STEPS, EPOCHS, DATA, BATCHES, INTRO, MANIFEST = "Steps", "Epochs", "Data", "Batches", "Introduction", "_sheetsgd"
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

    @property
    def first_step_row(self) -> int:
        return self.start_row + 1


@dataclass
class BuildReport:
    path: str
    steps: int
    formula_cells: int
    value_cells: int
    bytes: int = 0

    @property
    def cells(self) -> int:
        return self.formula_cells + self.value_cells


def _abs_col(sheet: str, col: int, first: int, last: int) -> str:
    letter = xl_col_to_name(col)
    return f"{sheet}!${letter}${first + 1}:${letter}${last + 1}"


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook):
        self.wb = wb
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                     "valign": "top", "align": "center"})
        # inputs stay unlocked: a protected student version still lets them be edited
        self.hyper = wb.add_format({"bg_color": "#FFF2CC", "border": 1, "num_format": "General", "locked": False})
        self.bold = wb.add_format({"bold": True})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.note = wb.add_format({"italic": True, "font_color": "#595959"})
        self._cache: dict[tuple[str, bool], object] = {}

    def number(self, num_format: str, start: bool = False, blank: bool = False):
        key = (num_format, start, blank)
        if key not in self._cache:
            props = {"num_format": num_format}
            if start:
                props.update(bg_color="#F2F2F2", italic=True)
            if blank:  # a cell the student fills in: highlighted, unlocked
                props.update(bg_color="#FCE4D6", border=1, border_color="#ED7D31", locked=False)
            self._cache[key] = self.wb.add_format(props)
        return self._cache[key]


def build_workbook(lesson: Lesson, path: str | os.PathLike, trace: Trace | None = None,
                   exercise: frozenset[str] = frozenset()) -> BuildReport:
    """Write the lesson's workbook to ``path``; returns what was written.

    ``exercise``: Steps columns left blank for a student to fill in (a student version, see
    :mod:`sheetsgd.student`): cells that depend on them cache no value, and the sheets are protected.
    """
    trace = trace or train(lesson)
    path = os.fspath(path)
    try:
        wb = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_numbers": False})
    except OSError as exc:  # pragma: no cover - xlsxwriter opens lazily, kept for safety
        raise SheetsgdError(f"cannot write: {exc}", path) from None
    fmt = _Formats(wb)
    columns = step_columns(lesson)
    counts = {"formula": 0, "value": 0}

    intro = wb.add_worksheet(INTRO)
    steps_ws = wb.add_worksheet(STEPS)
    epochs_ws = wb.add_worksheet(EPOCHS)
    data_ws = wb.add_worksheet(DATA)
    shuffled_batches = lesson.shuffle and 1 < lesson.batch_size < len(lesson.data)
    batches_ws = wb.add_worksheet(BATCHES) if shuffled_batches else None
    manifest_ws = wb.add_worksheet(MANIFEST)

    n = len(lesson.data)
    data_first, data_last = 1, n  # 0-based rows of the examples on the Data sheet
    data_cols = {"x": 1, "y": 2}
    layout = _write_steps(steps_ws, wb, fmt, lesson, trace, columns, counts, data_cols, shuffled_batches, exercise)
    layout.data_columns = data_cols
    _write_data(data_ws, wb, fmt, lesson, trace, layout, counts, bool(exercise))
    if batches_ws is not None:
        _write_batches(batches_ws, fmt, lesson, trace, counts)
    _write_epochs(epochs_ws, wb, fmt, lesson, trace, layout, counts, bool(exercise))
    _write_intro(intro, fmt, lesson, columns, layout, exercise)
    _write_manifest(manifest_ws, lesson, columns, layout, data_first, data_last, exercise)
    manifest_ws.hide()
    if exercise:  # a convenience against accidental edits, not security: no password
        for ws in (intro, steps_ws, epochs_ws, data_ws, batches_ws):
            if ws is not None:
                ws.protect("", {"format_columns": True, "format_rows": True})
    steps_ws.activate()
    intro.set_first_sheet()
    intro.activate()
    wb.set_properties({"title": lesson.title, "subject": "sheetsgd lesson", "comments": f"sheetsgd {__version__}"})
    try:
        wb.close()
    except (OSError, xlsxwriter.exceptions.FileCreateError) as exc:
        raise SheetsgdError(f"cannot write: {getattr(exc, 'orig_exception', exc)}", path) from None
    return BuildReport(path, trace.n_steps, counts["formula"], counts["value"], os.path.getsize(path))


def _write_steps(ws, wb, fmt, lesson, trace, columns, counts, data_cols, shuffled_batches,
                 exercise=frozenset()) -> Layout:
    opt = lesson.optimizer_obj()
    ws.write(0, 0, lesson.title, fmt.title)
    ws.write(1, 0, f"{opt.title} · {lesson.loss_cls().title} · batch size "
                   f"{'full' if lesson.full_batch else lesson.batch_size} · {lesson.epochs} epoch(s). "
                   "Yellow cells are inputs: change one and every row recomputes.", fmt.note)
    hyper_names = opt.sheet_hyper(lesson.hyper) + ["fd_step"]
    hyper_values = {**lesson.hyper, "fd_step": lesson.fd_step}
    hyper_cells = {}
    for i, name in enumerate(hyper_names):
        row = HYPER_FIRST_ROW + i
        ws.write(row, 0, name, fmt.bold)
        ws.write_number(row, 1, hyper_values[name], fmt.hyper)
        ws.write(row, 2, HYPER_NOTES.get(name, ""), fmt.note)
        cell = f"{STEPS}!{xl_rowcol_to_cell(row, 1, row_abs=True, col_abs=True)}"
        wb.define_name(name, f"={cell}")
        hyper_cells[name] = cell
    counts["value"] += len(hyper_names)

    header_row = HYPER_FIRST_ROW + len(hyper_names) + 1
    start_row = header_row + 1
    col_of = {c.key: i for i, c in enumerate(columns)}
    layout = Layout(header_row, start_row, col_of, hyper_cells)

    def cell(key, which):
        if key not in col_of:
            raise KeyError(f"template refers to unknown column {key!r}")
        return f"{xl_col_to_name(col_of[key])}{{{'r' if which == 'this' else 'p'}}}"

    per_example = lesson.batch_size == 1
    if per_example:
        def data(name):
            return _abs_col(DATA, data_cols[name], 1, len(lesson.data))
    else:
        sheet = BATCHES if shuffled_batches else DATA
        src_col = {"x": 3, "y": 4} if shuffled_batches else data_cols

        def data(name):
            letter = xl_col_to_name(src_col[name])
            return f"{sheet}!${letter}${{lo}}:${letter}${{hi}}"

    resolver = Resolver(cell, hp=lambda name: name, data=data)

    ws.set_row(header_row, 45)
    for i, c in enumerate(columns):
        ws.write(header_row, i, c.header, fmt.header)
        ws.set_column(i, i, max(9, min(16, len(c.header) + 2)))

    # the start row: step 0, the initial parameters and zero optimizer state
    ws.write_number(start_row, col_of["step"], 0, fmt.number("0", True))
    ws.write(start_row, col_of["epoch"], "start", fmt.number("General", True))
    for c in columns:
        if c.start_value == "init":
            ws.write_number(start_row, col_of[c.key], lesson.init[c.key[4:]], fmt.hyper)
        elif c.start_value == "zero":
            ws.write_number(start_row, col_of[c.key], 0, fmt.number(c.number_format, True))
    counts["value"] += 2 + sum(c.start_value is not None for c in columns)

    # one row per step: compile each template once, then only fill in row numbers
    plan = []
    for i, c in enumerate(columns):
        values = _step_values(c.key, lesson, trace)
        pattern = compile_template(c.formula, resolver) if c.formula else None
        plan.append((i, pattern, fmt.number(c.number_format), values))
    ranges = _batch_ranges(lesson, trace, shuffled_batches)
    write_formula, write_number = ws.write_formula, ws.write_number
    blank_formats = {i: fmt.number(c.number_format, blank=True) for i, c in enumerate(columns) if c.key in exercise}
    uncached = answer_dependent_rows(columns, exercise) if exercise else [frozenset()]
    uncached_cols = [{i for i, c in enumerate(columns) if c.key in keys} for keys in uncached]
    for s in range(trace.n_steps):
        row = start_row + 1 + s
        lo, hi = ranges[s]
        fields = {"r": row + 1, "p": row, "lo": lo, "hi": hi}
        no_cache = uncached_cols[min(s, len(uncached_cols) - 1)]
        for i, pattern, cell_format, values in plan:
            if pattern is None:
                write_number(row, i, values[s], cell_format)
            elif i in blank_formats:
                ws.write_blank(row, i, None, blank_formats[i])
            else:  # "" caches no value: the engine's value here would give an answer away
                write_formula(row, i, "=" + pattern.format(**fields), cell_format, "" if i in no_cache else values[s])
    n_formula = sum(1 for i, p, _, _ in plan if p is not None and i not in blank_formats)
    counts["formula"] += n_formula * trace.n_steps
    counts["value"] += (len(plan) - n_formula) * trace.n_steps
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


def _write_data(ws, wb, fmt, lesson, trace, layout, counts, hide_answers=False):
    model = lesson.model_cls()
    final_row = layout.start_row + trace.n_steps  # 0-based row of the last step
    ws.set_row(0, 30)
    ws.write_row(0, 0, ["#", lesson.data.x_name, lesson.data.y_name, "fitted ŷ (final parameters)"], fmt.header)
    ws.set_column(0, 0, 6)
    ws.set_column(1, 3, 14)
    final_params = {p: f"{STEPS}!{xl_rowcol_to_cell(final_row, layout.columns['new_' + p], True, True)}"
                    for p in model.params}
    fitted = compile_template(_sub(model.predict_formula, {"X": "{x}"}),
                              Resolver(lambda k, w: final_params.get(k) or f"B{{r}}", hp=str, data=str))
    fit_values = [""] * len(lesson.data) if hide_answers else model.predict(trace.final, lesson.data.x).tolist()
    num = fmt.number("General")
    data_fmt = fmt.hyper if hide_answers else num  # the data are inputs: unlocked in a student version
    fit_fmt = fmt.number("0.0000")
    for i in range(len(lesson.data)):
        r = i + 1
        ws.write_number(r, 0, i + 1, num)
        ws.write_number(r, 1, lesson.data.x[i], data_fmt)
        ws.write_number(r, 2, lesson.data.y[i], data_fmt)
        ws.write_formula(r, 3, "=" + fitted.format(r=r + 1), fit_fmt, fit_values[i])
    counts["value"] += 3 * len(lesson.data)
    counts["formula"] += len(lesson.data)
    ws.freeze_panes(1, 0)

    n = len(lesson.data)
    chart = wb.add_chart({"type": "scatter"})
    chart.add_series({"name": "data", "categories": [DATA, 1, 1, n, 1], "values": [DATA, 1, 2, n, 2],
                      "marker": {"type": "circle", "size": 6}})
    chart.add_series({"name": "fitted", "categories": [DATA, 1, 1, n, 1], "values": [DATA, 1, 3, n, 3],
                      "marker": {"type": "none"}, "line": {"width": 2}})
    chart.set_title({"name": f"{lesson.data.y_name} against {lesson.data.x_name}, with the fitted {model.name} model"})
    chart.set_x_axis({"name": lesson.data.x_name})
    chart.set_y_axis({"name": lesson.data.y_name})
    chart.set_size({"width": 640, "height": 400})
    ws.insert_chart(1, 5, chart)


def _write_batches(ws, fmt, lesson, trace, counts):
    """The visit order of shuffled mini-batches, so each step's batch is one contiguous range."""
    ws.write_row(0, 0, ["position", "step", "example #", lesson.data.x_name, lesson.data.y_name], fmt.header)
    n = len(lesson.data)
    num = fmt.number("General")
    row = 1
    for step, batch in enumerate(trace.batches, start=1):
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
        idx = [i for i, v in enumerate(epochs) if v == e]
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
    by_step.set_x_axis({"name": "step"})
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


def _write_intro(ws, fmt, lesson, columns, layout, exercise=frozenset()):
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 60)
    ws.set_column(2, 2, 60)
    ws.write(0, 0, lesson.title, fmt.title)
    row = 2
    for para in [p.strip() for p in lesson.description.strip().split("\n\n") if p.strip()]:
        ws.set_row(row, 15 * (1 + len(para) // 150))
        ws.merge_range(row, 0, row, 2, " ".join(para.split()), fmt.wrap)
        row += 1
    row += 1
    if exercise:
        ws.write(row, 0, "Your task", fmt.title)
        row += 1
        for line in task_lines(lesson, columns, exercise):
            ws.write(row, 0, "•")
            ws.write(row, 1, line)
            row += 1
        row += 1
    ws.write(row, 0, "How the Steps sheet works", fmt.bold)
    row += 1
    how = [
        "The yellow cells at the top of the Steps sheet are named inputs (lr, …): every formula refers to them by name.",
        "The grey start row holds the initial parameters (yellow, editable) and zero optimizer state.",
        "Each row below is one step: it starts from the previous row's new parameters, also across epochs.",
        "Epochs shows the loss per epoch and charts; Data shows the examples and the fitted curve.",
        "No macros and no Solver: the workbook recalculates the same in Excel, Google Sheets and LibreOffice.",
    ]
    for line in how:
        ws.write(row, 0, "•")
        ws.write(row, 1, line)
        row += 1
    if lesson.tips:
        row += 1
        ws.write(row, 0, "Things to try", fmt.bold)
        row += 1
        for tip in lesson.tips:
            ws.write(row, 0, "•")
            ws.write(row, 1, tip)
            row += 1
    row += 1
    ws.write_row(row, 0, ["Steps column", "what it is", "formula in step 1"], fmt.header)
    row += 1
    first = layout.first_step_row
    for c in columns:
        ws.write(row, 0, c.header, fmt.bold)
        ws.write(row, 1, c.note)
        if c.key in exercise:
            text = "(yours to write: see Your task)"
        else:
            text = _formula_in_row(c, lesson, layout, first) if c.formula else "(a value)"
        ws.write_string(row, 2, text)
        row += 1


def _formula_in_row(column: Column, lesson, layout, row0: int) -> str:
    """The formula text of ``column`` in 0-based row ``row0``, for the legend (no leading '=')."""
    def cell(key, which):
        return f"{xl_col_to_name(layout.columns[key])}{row0 + 1 if which == 'this' else row0}"

    def data(name):
        return f"{DATA}!{xl_col_to_name(layout.data_columns[name])}…"

    return compile_template(column.formula, Resolver(cell, hp=str, data=data)).replace("{lo}", "").replace("{hi}", "")


def _write_manifest(ws, lesson, columns, layout, data_first, data_last, exercise=frozenset()):
    """What the checker needs to find its way: lesson, spec version and layout. No answers."""
    entries = {
        "generator": f"sheetsgd {__version__}",
        "spec_version": SPEC_VERSION,
        "lesson": lesson.name,
        "template": os.path.basename(lesson.source),
        "model": lesson.model,
        "loss": lesson.loss,
        "optimizer": lesson.optimizer,
        "hyper_switches": {k: v for k, v in lesson.hyper.items() if k in ("nesterov", "bias_correction")},
        "batch_size": lesson.batch_size,
        "epochs": lesson.epochs,
        "shuffle": lesson.shuffle,
        "seed": lesson.seed,
        "steps_sheet": STEPS,
        "header_row": layout.header_row + 1,
        "start_row": layout.start_row + 1,
        "first_step_row": layout.first_step_row + 1,
        "columns": {c.key: {"column": xl_col_to_name(layout.columns[c.key]), "header": c.header} for c in columns},
        "hyperparameters": layout.hyper_cells,
        "data_sheet": DATA,
        "data_rows": [data_first + 1, data_last + 1],
        "data_columns": {k: xl_col_to_name(v) for k, v in layout.data_columns.items()},
        "exercise_defaults": exercise_columns(lesson),
        "data_headers": {"x": lesson.data.x_name, "y": lesson.data.y_name},
        "exercise": [c.key for c in columns if c.key in exercise],  # names only: the blanks, no answers
    }
    ws.write_row(0, 0, ["key", "value (JSON)"])
    for i, (key, value) in enumerate(entries.items(), start=1):
        ws.write_string(i, 0, key)
        ws.write_string(i, 1, json.dumps(value, ensure_ascii=False))
