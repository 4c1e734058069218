"""What keeps every lesson kind's sheets readable on screen and on paper, beside their number formats
(:mod:`sheetsgd.sheet.presentation`):

- :func:`wrapped_lines` / :func:`row_height` — a row as tall as its wrapped text, measured with the
  same font as the widths, so no line prints over the next row or is cut at the cell's edge.
- :func:`scientific_beyond` — a fixed-decimal column turns scientific past the magnitude its width
  holds (a sign-flipped student sheet shows -1.23E+08, not ###).
- :func:`set_up_print` — every sheet prints one page wide at a readable scale: landscape where wide,
  its header rows repeated on every page, its print area the table and charts (a sheet wider than a
  readable page prints its leading columns, and its footer says so), page numbers in the footer.
"""
from __future__ import annotations


import numpy as np
from xlsxwriter.utility import xl_col_to_name

from .presentation import _decimals, _finite, text_width, widths

LINE_POINTS = 15.0  # one line of 11-point text (Excel's default row height; LibreOffice draws it as tall)
PAD_POINTS = 3.0  # above and below the text of a wrapped row
PAGE_WIDTH_PX = {"portrait": 655, "landscape": 985}  # A4 less xlsxwriter's 0.7-inch margins, at 96 dpi
MIN_SCALE = 0.6  # below this, 11-point text prints smaller than 6.6 points: no longer read comfortably
DEFAULT_WIDTH = 8.43
ROW_PX = 20  # a default row (15 points)


# --- rows as tall as their wrapped text -------------------------------------------------------------

def wrapped_lines(text: str, width: float, bold: bool = False) -> int:
    """Lines ``text`` takes in a wrapping cell ``width`` column-width units wide (words moved whole to the
    next line, as spreadsheets wrap; a word longer than the line breaks where it must)."""
    lines = 0
    for paragraph in str(text).split("\n"):
        words, line, n = paragraph.split(), "", 1
        for word in words:
            trial = f"{line} {word}" if line else word
            if line and text_width(trial, bold) > width:
                n, line = n + 1, word
            else:
                line = trial
            while text_width(line, bold) > width and len(line) > 1:  # one word wider than the cell
                cut = len(line)
                while cut > 1 and text_width(line[:cut], bold) > width:
                    cut -= 1
                n, line = n + 1, line[cut:]
        lines += n
    return max(1, lines)


def row_height(*cells: tuple[str, float] | tuple[str, float, bool]) -> float:
    """Points a row needs to show every wrapping cell [(text, width[, bold])] whole."""
    lines = max((wrapped_lines(*cell) for cell in cells if cell[0]), default=1)
    return LINE_POINTS * lines + (PAD_POINTS if lines > 1 else 0.0)


def merged_width(ws, first: int, last: int) -> float:
    """Column-width units of columns ``first``…``last`` side by side (a merged cell's width)."""
    w = widths(ws).width
    return sum(w.get(c, DEFAULT_WIDTH) for c in range(first, last + 1)) + (last - first) * 5 / 7


# --- values a mistaken sheet produces: scientific past the column's magnitude ----------------------

def magnitude_limit(num_format: str, width: float, values=()) -> float | None:
    """For a fixed-decimal format: the power of ten from which a value no longer fits a column ``width``
    wide in that format (and which every engine value stays below); None for other formats."""
    decimals = _decimals(num_format)
    if decimals is None:
        return None
    nums = _finite(values)
    top = float(np.abs(nums).max()) if nums.size else 0.0
    k = 1
    while k < 15 and text_width("-" + "9" * (k + 1) + ("." + "9" * decimals if decimals else "")) <= width:
        k += 1
    while 10.0 ** k <= top:
        k += 1
    return 10.0 ** k


def scientific_beyond(ws, fmt, block) -> None:
    """A conditional format per fixed-decimal formula column: a value beyond its magnitude limit shows in
    scientific. Plain number formats carry the sign in every spreadsheet; conditional sections of one
    number format do not (LibreOffice drops the minus in every section after the first)."""
    if getattr(ws, "is_null", False) or not block.n:
        return
    w = widths(ws)
    for c in block.columns:
        if c.pattern is None:
            continue
        limit = magnitude_limit(c.number_format, w.width.get(c.col, DEFAULT_WIDTH), block.values.get(c.key, ()))
        if limit is not None:
            ws.conditional_format(block.first_row, c.col, block.last_row, c.col,
                                  {"type": "cell", "criteria": "not between", "minimum": -limit, "maximum": limit,
                                   "format": fmt.scientific()})


# --- print set-up -----------------------------------------------------------------------------------

def _px(width: float) -> int:
    return int(width * 7 + 0.5) + 5 if width >= 1 else int(width * 12 + 0.5)


def sheet_extent(ws) -> tuple[int, int, list[int]]:
    """(last row, last column, pixel width of each column) a sheet uses, its charts included."""
    last_row = ws.dim_rowmax if ws.dim_rowmax is not None else 0
    last_col = ws.dim_colmax if ws.dim_colmax is not None else 0
    w = widths(ws).width
    col_px = [_px(w.get(c, DEFAULT_WIDTH)) for c in range(last_col + 1)]
    for row, col, chart, x_off, y_off, x_scale, y_scale, *_ in ws.charts:
        right = sum(col_px[:col]) + x_off + chart.width * x_scale
        while sum(col_px) < right:
            col_px.append(_px(w.get(len(col_px), DEFAULT_WIDTH)))
        last_row = max(last_row, row + int((y_off + chart.height * y_scale) / ROW_PX) + 1)
    return last_row, len(col_px) - 1, col_px


def set_up_print(ws, header_rows: tuple[int, int] | None = None) -> dict:
    """Landscape where the sheet is wider than a portrait page, one page wide, ``header_rows`` (first, last;
    0-based) repeated on every page, the print area the used cells and charts, cut to the columns that fit
    at :data:`MIN_SCALE`. Returns what was decided (for tests and the README's page counts)."""
    last_row, last_col, col_px = sheet_extent(ws)
    total = sum(col_px)
    orientation = "portrait" if total <= PAGE_WIDTH_PX["portrait"] else "landscape"
    page = PAGE_WIDTH_PX[orientation]
    printed = last_col
    if total * MIN_SCALE > page:  # too wide to read on one page: the leading columns that fit
        budget, printed = page / MIN_SCALE, 0
        while printed + 1 <= last_col and sum(col_px[:printed + 2]) <= budget:
            printed += 1
        for row, col, chart, x_off, _, x_scale, *_ in ws.charts:  # a chart prints whole or not at all
            right = sum(col_px[:col]) + x_off + chart.width * x_scale
            if col <= printed and right > sum(col_px[:printed + 1]) and col > 0:
                printed = col - 1
    if orientation == "landscape":
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.print_area(0, 0, last_row, printed)
    if header_rows is not None and header_rows[0] <= last_row:
        ws.repeat_rows(*header_rows)
    note = "" if printed == last_col else (
        f" (columns A–{xl_col_to_name(printed)} of A–{xl_col_to_name(last_col)}: the rest on screen)")
    ws.set_footer(f"&L&A{note.replace('&', '&&')}&RPage &P of &N")
    return {"orientation": orientation, "last_col": last_col, "printed_col": printed,
            "scale": min(1.0, page / max(1, sum(col_px[:printed + 1])))}


def set_up_workbook(wb, blocks=()) -> dict[str, dict]:
    """:func:`set_up_print` for every visible sheet of a workbook; a sheet's first block gives the header
    rows to repeat."""
    headers: dict[str, int] = {}
    for b in blocks:
        if b.sheet not in headers or b.header_row < headers[b.sheet]:
            headers[b.sheet] = b.header_row
    decided = {}
    for ws in wb.worksheets():
        if getattr(ws, "hidden", False) or getattr(ws, "is_null", False):
            continue
        row = headers.get(ws.name)
        decided[ws.name] = set_up_print(ws, None if row is None else (row, row))
    return decided


def write_paragraph(ws, row: int, text: str, cell_format, first: int = 0, last: int = 2) -> None:
    """``text`` wrapped across columns ``first``…``last`` (merged), the row as tall as it needs."""
    ws.set_row(row, row_height((text, merged_width(ws, first, last))))
    ws.merge_range(row, first, row, last, text, cell_format)


def write_wrapped_row(ws, row: int, cells: list[tuple[int, str, object, bool]]) -> None:
    """Cells [(column, text, format, bold)] that wrap in their own columns, the row as tall as the tallest."""
    w = widths(ws).width
    ws.set_row(row, row_height(*((text, w.get(col, DEFAULT_WIDTH), bold) for col, text, _, bold in cells)))
    for col, text, cell_format, _ in cells:
        ws.write_string(row, col, text, cell_format)


def write_header_row(ws, row: int, first_col: int, headers: list[str], cell_format, lines: int = 3) -> None:
    """Header cells (bold, wrapped): each column at least wide enough for its header on ``lines`` lines,
    the row as tall as the longest header wraps at the columns' widths."""
    from .presentation import header_width

    w = widths(ws)
    for i, header in enumerate(headers):
        if header:
            w.fit(first_col + i, header_width(header, lines))
    ws.set_row(row, max(LINE_POINTS * 2, row_height(*((h, w.width.get(first_col + i, DEFAULT_WIDTH), True)
                                                    for i, h in enumerate(headers) if h))))
    for i, header in enumerate(headers):  # "" leaves a gap between two tables
        if header:
            ws.write_string(row, first_col + i, header, cell_format)


# --- the HTML feedback's numbers -------------------------------------------------------------------
