"""The step table every step-by-step lesson kind shares: named inputs on top, a header, a start row, one
row per step (a block of the sheet spec, written by :func:`sheetsgd.sheet.blocks.write_block`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from xlsxwriter.utility import quote_sheetname, xl_col_to_name, xl_rowcol_to_cell

from sheetsgd.sheet import presentation
from sheetsgd.sheet.blocks import Block, BlockColumn, StudentPlan, cached, write_block
from sheetsgd.sheet.formula import Resolver, compile_template
from sheetsgd.lessons.schedules import NOTES as SCHEDULE_NOTES

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
    **SCHEDULE_NOTES,
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
            ws.write_formula(row, col + 1, compile_template(template, resolver),
                             fmt.number(presentation.number_format([value])), cached(value))
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
    fit = presentation.widths(ws)
    fit.fit_text(first_col, *(name_prefix + name for name, _ in hyper), bold=True)
    fit.fit(first_col + 1, max([presentation.text_width(presentation.render(v, "General")) for _, v in hyper] + [0]))
    fit.fit_text(first_col + 6, *(label for _, label, *_ in extras), bold=True)
    fit.fit(first_col + 7, max([presentation.text_width(presentation.render(e[3], presentation.number_format([e[3]])))
                                for e in extras] + [0]))
    if "epoch" in col_of:
        fit.fit_text(col_of["epoch"], "start")

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
                               c.note, "input" if c.group == "data" and not c.formula else "",
                               reveals="grad_" + c.key[3:] if c.key.startswith("fd_") else "")
                   for c in columns], n_steps, fields=extra, values=values)
    presentation.present_block(block, {k: [v] for k, (v, _) in start_values.items()},
                               registry=getattr(getattr(ws, "sheetsgd_book", None), "quantity_formats", None))
    # the start row: step 0, initial values (inputs in yellow) and zero optimizer state
    if "step" in col_of:
        ws.write_number(start_row, col_of["step"], 0, fmt.number("0", True))
    if "epoch" in col_of:
        ws.write(start_row, col_of["epoch"], "start", fmt.number("General", True))
    for c in columns:
        if c.key in start_values:
            value, is_input = start_values[c.key]
            ws.write_number(start_row, col_of[c.key], value, fmt.hyper if is_input else fmt.number(block.column(c.key).number_format, True))
    counts["value"] += ("step" in col_of) + ("epoch" in col_of) + len(start_values)

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


def layout_entries(layout: Layout, columns, sheet: str) -> dict:
    """How the checker finds a step table: its sheet, rows (1-based), columns and named inputs."""
    return {"steps_sheet": sheet, "header_row": layout.header_row + 1, "start_row": layout.start_row + 1,
            "first_step_row": layout.first_step_row + 1, "hyperparameters": layout.hyper_cells,
            "columns": {c.key: {"column": xl_col_to_name(layout.columns[c.key]), "header": c.header} for c in columns}}


