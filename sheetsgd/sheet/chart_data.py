"""Chart series of a student version that show nothing until the blanks are filled.

A student version's cells that follow from a blank compute from it once a spreadsheet recalculates
(a loss near 16,000 from a zero update, a fitted line along y = 0); their text is hidden by a
conditional format, but a chart would still draw them. :func:`series_range` gives a chart the cells
to read: the cells themselves in a full version or where nothing depends on a blank, else a column of
the hidden ``_charts`` sheet holding ``=IF(blanks remain, NA(), cell)``: #N/A, which every spreadsheet
leaves out of a chart, until every blank is filled. :func:`write_chart_data` writes that sheet last.
"""
from __future__ import annotations

from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell

CHART_DATA = "_charts"


def _depends_on_blanks(plan, sheet: str, col: int, first: int, last: int) -> bool:
    for block in plan.blocks:
        if block.sheet != sheet or last < block.first_row or first > block.last_row:
            continue
        for c in block.columns:
            if c.col == col and (plan.is_blank(block, c.key) or plan.dirty_from(block, c.key) < block.n):
                return True
    return any(s == sheet and c == col and not (last < top or first > bottom)
               for s, c, top, bottom in plan.extra_regions)


def series_range(ws, ref: list) -> list:
    """``ref`` = [sheet, first row, column, last row, column] (0-based) of one chart series; the range the
    chart reads (see the module)."""
    book = getattr(ws, "sheetsgd_book", None)
    plan = getattr(book, "student", None)
    sheet, first, col, last, _ = ref
    if book is None or book.null or plan is None or not _depends_on_blanks(plan, sheet, col, first, last):
        return ref
    columns = book.__dict__.setdefault("chart_columns", [])
    columns.append((sheet, first, col, last))
    k = len(columns)  # column 0 holds the test
    return [CHART_DATA, 1, k, 1 + last - first, k]


def write_chart_data(book) -> None:
    """The hidden ``_charts`` sheet of a student version whose charts read cells depending on blanks."""
    columns = getattr(book, "chart_columns", None)
    plan = book.student
    if not columns or plan is None or book.null:
        return
    from .presentation import blank_test

    ws = book.wb.add_worksheet(CHART_DATA)
    test = blank_test(plan, None, 0, own=CHART_DATA)
    ws.write_string(0, 0, "blanks left")
    for k, (sheet, first, col, last) in enumerate(columns, start=1):
        ws.write_string(0, k, f"{sheet}!{xl_rowcol_to_cell(first, col)}…")
    longest = max(last - first + 1 for _, first, _, last in columns)
    for i in range(longest):
        if i == 0:
            ws.write_formula(1, 0, f"=IF({test},1,0)", None, "")
        for k, (sheet, first, col, last) in enumerate(columns, start=1):
            if first + i <= last:
                cell = quote_sheetname(sheet) + "!" + xl_rowcol_to_cell(first + i, col)
                ws.write_formula(1 + i, k, f"=IF($A$2=1,NA(),{cell})", None, "")
    ws.hide()
