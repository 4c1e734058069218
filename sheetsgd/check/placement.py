"""Where a lesson's blocks landed in a student's workbook, and the student's values as arrays.

The manifest says where each block was written; a student (or their spreadsheet app) may have
inserted rows or columns, or renamed and reordered sheets. Each block is found again by its header
row (the sheet of the same name first, then every sheet), which gives its sheet and a row and column
shift; every reference of a block's patterns is moved the same way (a reference to another sheet by
that sheet's shift). :class:`SheetValues` holds a sheet's cells as sorted arrays, so a whole column
of references is picked out at once.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .column_map import ColumnMap, locate_columns, row_texts
from .structural import find_step_rows, gap_rows
from sheetsgd.read.workbook import CellError, Sheet, Workbook

HEADER_SCAN_ROWS = 400
_KEY = 20_000  # row * _KEY + column: one sortable number per cell (columns ≤ 16,384)


@dataclass
class Shift:
    """A reference sheet's place in the student's workbook: its name there and the row/column shift, and for
    a step table whose rows are not where the shift puts them (a deleted step row) the row of each step."""

    sheet: str
    rows: int
    cols: int
    row_map: np.ndarray | None = None  # student row of reference rows map_first, map_first + 1, …
    map_first: int = 0
    missing: dict | None = None  # block name -> step numbers whose rows are missing
    col_map: ColumnMap | None = None  # reference column -> the student's (found by header, sheetsgd.check.column_map)

    def col(self, ref_col: int) -> int:
        """The student's sheet column (1-based) of a reference column (0-based)."""
        return self.col_map(ref_col) if self.col_map is not None else ref_col + 1 + self.cols

    def to_student(self, ref_rows):
        """Student sheet rows (1-based) of reference rows (1-based), element-wise."""
        ref_rows = np.asarray(ref_rows, dtype=np.int64)
        if self.row_map is None:
            return ref_rows + self.rows
        idx = ref_rows - self.map_first
        inside = (idx >= 0) & (idx < len(self.row_map))
        return np.where(inside, self.row_map[np.clip(idx, 0, len(self.row_map) - 1)], ref_rows + self.rows)


def _position_grid(keys: np.ndarray):
    """row × column → position in the sorted arrays (-1: no cell), when the sheet is dense enough that
    the grid is no bigger than a few times its cells (a lesson's sheets are); else None (binary search)."""
    if not len(keys):
        return None
    rows, cols = keys // _KEY, keys % _KEY
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    if shape[0] * shape[1] > max(8 * len(keys), 1 << 16) or shape[0] * shape[1] > 1 << 26:
        return None
    grid = np.full(shape, -1, np.int32 if len(keys) < 1 << 31 else np.int64)
    grid[rows[::-1], cols[::-1]] = np.arange(len(keys))[::-1]  # a repeated cell: its first, as the search finds
    return grid


class SheetValues:
    """A sheet's cells as arrays: value (blank → 0 as spreadsheets read it; text and errors → NaN), has a
    formula, is blank, and the cached value is missing. Rows and columns are 1-based."""

    def __init__(self, sheet: Sheet, source=None):
        self.sheet = sheet
        rows, cols = sheet._rows, sheet._cols
        numbers, has_f, plain = sheet._whole_sheet_arrays()
        values = numbers.copy()
        missing = np.zeros(len(rows), bool)
        self.odd = {}  # position -> raw value of cells that are not plain numbers (text, errors, booleans)
        for i in np.flatnonzero(~plain).tolist():
            raw = sheet._cells[i]
            value, has_cache = sheet._decode(raw)
            if source is None:
                missing[i] = bool(raw[3]) and not has_cache
            self.odd[i] = value
            values[i] = float(value) if isinstance(value, bool) else math.nan
            if value is None:
                values[i] = 0.0
        if source is not None:  # a recalculation: every formula cell's value from it
            for i in np.flatnonzero(has_f).tolist():
                v = source(int(rows[i]), int(cols[i]))
                self.odd[i] = v
                values[i] = v if isinstance(v, float) else float(v) if isinstance(v, bool) else 0.0 if v is None else math.nan
        self.keys = rows * _KEY + cols
        order = np.argsort(self.keys, kind="stable")
        self.keys, self.values, self.formula = self.keys[order], values[order], has_f[order]
        self.missing_cache = bool(missing.any())
        self._order = order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        self.empty = np.zeros(len(order), bool)
        blanks = [i for i, v in self.odd.items() if v is None]
        self.empty[inverse[blanks]] = True
        self.errors = np.zeros(len(order), bool)  # error values other than #NUM! (an overflow)
        broken = [i for i, v in self.odd.items() if isinstance(v, CellError) and str(v) != "#NUM!"]
        self.errors[inverse[broken]] = True
        self._grid = _position_grid(self.keys)
        self.text = np.full(len(order), None, object)
        for i, v in self.odd.items():
            if isinstance(v, str):
                self.text[inverse[i]] = v
            elif v is None:
                self.text[inverse[i]] = ""

    def find(self, rows: np.ndarray, cols: np.ndarray):
        """(position, present) of each (row, col) in the sorted arrays."""
        if self._grid is not None:  # a dense sheet: a direct lookup in the flattened grid
            grid = self._grid
            height, width = grid.shape
            r, c = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
            inside = (r.astype(np.uint64) < height) & (c.astype(np.uint64) < width)  # negatives wrap to huge
            flat = r * width + c
            pos = grid.reshape(-1).take(flat if inside.all() else np.where(inside, flat, 0))
            return np.maximum(pos, 0), inside & (pos >= 0)
        want = np.asarray(rows, dtype=np.int64) * _KEY + np.asarray(cols, dtype=np.int64)
        if len(self.keys) == 0:
            return np.zeros(want.shape, np.int64), np.zeros(want.shape, bool)
        pos = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
        return pos, self.keys[pos] == want

    def gather(self, rows, cols) -> np.ndarray:
        pos, present = self.find(rows, cols)
        return np.where(present, self.values[pos] if len(self.values) else 0.0, 0.0)

    def raw_at(self, row: int, col: int):
        """The cell's value as read or recalculated (a CellError for an error value, None for none)."""
        pos, present = self.find(np.array([row]), np.array([col]))
        if not present[0]:
            return None
        original = int(self._order[pos[0]])
        return self.odd.get(original, float(self.values[pos[0]]))

    def set(self, row: int, col: int, value: float) -> None:
        """Overwrite one cell's value (an input changed for a recalculation, e.g. by --strict)."""
        pos, present = self.find(np.array([row]), np.array([col]))
        if present[0]:
            self.values[pos[0]] = value

    def gather_text(self, rows, cols) -> np.ndarray:
        pos, present = self.find(rows, cols)
        if len(self.text) == 0:
            return np.full(np.shape(pos), "", object)
        return np.where(present, self.text[pos], "")

    def cells(self, rows, cols):
        """(values, has formula, is blank) of cells."""
        pos, present = self.find(rows, cols)
        if len(self.values) == 0:
            n = np.shape(pos)
            return np.zeros(n), np.zeros(n, bool), np.ones(n, bool)
        values = np.where(present, self.values[pos], 0.0)
        formula = present & self.formula[pos]
        blank = ~present | (self.empty[pos] & ~formula)
        return values, formula, blank

    def error_cells(self, rows, cols) -> np.ndarray:
        """Which cells show an error value other than #NUM! (#VALUE!, #REF!, #NAME?, #DIV/0!, …)."""
        pos, present = self.find(rows, cols)
        return present & self.errors[pos] if len(self.errors) else np.zeros(np.shape(pos), bool)

    def raw(self, row: int, col: int):
        return self.sheet.value(row, col)


def find_blocks(book: Workbook, entries: list[dict]) -> dict[str, Shift]:
    """Each reference sheet's place in the workbook, found through the headers of its first block."""
    shifts: dict[str, Shift] = {}
    texts_cache: dict[str, dict] = {}
    for entry in entries:
        sheet = entry["sheet"]
        if sheet in shifts:
            continue
        headers = {key: (col, head) for key, (col, head) in entry["columns"].items() if isinstance(head, str) and head}
        best = None
        names = [sheet] if sheet in book.sheet_names else []
        names += [n for n in book.sheet_names if n != sheet]
        for name in names:
            if name not in texts_cache:
                texts_cache[name] = book.sheet(name).texts(HEADER_SCAN_ROWS)
            for row, texts in texts_cache[name].items():
                hits = [(texts[h] - 1 - col) for col, h in headers.values() if h in texts]
                if best is None or len(hits) > best[0]:
                    best = (len(hits), name, row, hits)
            if best and best[0] == len(headers):
                break
        if best is None or best[0] < max(1, math.ceil(0.8 * len(headers))):
            shown = ", ".join(list(h for _, h in headers.values())[:4])
            raise book.error(f"cannot find the {sheet} sheet: no sheet has a row with its headers ({shown}, …)")
        _, name, row, hits = best
        dc = Counter(hits).most_common(1)[0][0]
        shifts[sheet] = Shift(name, row - 1 - entry["header_row"], dc, col_map=ColumnMap(dc))
    _locate(book, entries, shifts)
    for entry in entries:  # a step table: each step's row by its step number (a deleted row leaves a gap)
        step = entry["columns"].get("step")
        shift = shifts[entry["sheet"]]
        if not step or not entry.get("steps_are_rows") or shift.row_map is not None or entry["n"] < 2:
            continue
        sheet = book.sheet(shift.sheet)
        first = entry["first_row"] + 1 + shift.rows
        col = shift.col(step[0])
        candidates = range(first, min(first + entry["n"] + 1000, sheet.max_row() + 1))
        values, _, _ = sheet.numbers(col, candidates)
        values = values.tolist() if isinstance(values, np.ndarray) else values
        if values[:entry["n"]] == list(range(1, entry["n"] + 1)):
            continue  # every step where the shift puts it
        rows, missing = find_step_rows(values, candidates, entry["n"])
        if rows is None:
            raise book.error(f"expected steps 1 to {entry['n']} below the header row, found {entry['n'] - len(missing)}",
                             shift.sheet)
        shift.row_map = np.array(gap_rows(rows, sheet.max_row() + 1), dtype=np.int64)
        shift.map_first = entry["first_row"] + 1
        shift.missing = {entry["name"]: missing}
    return shifts


def _locate(book: Workbook, entries: list[dict], shifts: dict[str, Shift]) -> None:
    """Every block's columns found by their headers in its header row (sheetsgd.check.column_map): one that
    cannot be found with confidence stops the check, naming it."""
    for entry in entries:
        shift = shifts[entry["sheet"]]
        columns = {k: v for k, v in entry["columns"].items() if isinstance(v, list) and len(v) == 2}
        sheet = book.sheet(shift.sheet)
        found, missing = locate_columns(columns, row_texts(sheet, entry["header_row"] + 1 + shift.rows))
        if missing:
            header = columns[missing[0]][1] or missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise book.error(f"column {header!r}{more} not found on {shift.sheet}: it was deleted or its header "
                             "changed; restore it to have the sheet checked")
        for key, col in found.items():
            if not shift.col_map.add(columns[key][0], col):
                raise book.error(f"the columns of {shift.sheet} do not line up: column {columns[key][1]!r} of "
                                 f"{entry['name']} is not where another table on the sheet puts it")


def plain(value):
    """A JSON-friendly scalar of a cell's value."""
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, CellError):
        return str(value)
    return value
