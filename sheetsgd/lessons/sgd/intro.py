"""The Introduction sheet of the step-table lessons: what the lesson shows, how to read it, a column legend."""
from __future__ import annotations

import re

from xlsxwriter.utility import xl_col_to_name

from sheetsgd.sheet import presentation, readable
from sheetsgd.sheet.formula import Resolver, compile_template
from .spec import Column

STEPS, DATA = "Steps", "Data"


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
    fit = presentation.widths(ws)
    fit.fit(0, 20)
    fit.fit_text(0, *(c.header for _, cols, _, _ in legends for c in cols), bold=True)
    fit.fit(1, 60)
    fit.fit(2, 60)
    ws.write(0, 0, title, fmt.title)
    row = 2
    page = readable.merged_width(ws, 0, 2)
    for para in [p.strip() for p in description.strip().split("\n\n") if p.strip()]:
        text = " ".join(para.split())
        ws.set_row(row, readable.row_height((text, page)))
        ws.merge_range(row, 0, row, 2, text, fmt.wrap)
        row += 1
    row += 1

    def bullets(row, heading, heading_format, lines):  # a heading, then one bulleted line each
        ws.write(row, 0, heading, heading_format)
        for i, line in enumerate(lines, start=row + 1):  # bullet and text in one cell across the page, wrapped
            ws.set_row(i, readable.row_height(("• " + line, page)))
            ws.merge_range(i, 0, i, 2, "• " + line, fmt.wrap)
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
            if c.key in exercise:
                text = "(yours to write: see Your task)"
            else:
                text = formula_in_row(c, sheet_layout, sheet_layout.first_step_row, prefix) if c.formula else "(a value)"
            ws.set_row(row, readable.row_height((c.header, fit.width.get(0, 20), True), (c.note, fit.width[1]),
                                                (text, fit.width[2])))
            ws.write(row, 0, c.header, fmt.bold_wrap)
            ws.write(row, 1, c.note, fmt.wrap)
            ws.write_string(row, 2, text, fmt.wrap)
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
        where = layout.data_columns.get(name, 0)  # pos: the examples' positions, column A
        return where if isinstance(where, str) else f"{DATA}!{xl_col_to_name(where)}…"

    text = compile_template(column.formula, Resolver(cell, hp=lambda n: hp_prefix + n, data=data))
    return re.sub(r"\{\w+\}", "", text)  # batch row fields ({lo}, {hi}, …) differ per row


