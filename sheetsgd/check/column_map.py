"""Where each of a block's columns is in a student's sheet, found by its header.

A student may insert helper columns anywhere (inside a table too), move columns, or rename a sheet;
the spreadsheet app moves every reference with them. So each block column is found by its header in
the block's header row, not by one shift for the whole sheet. A header written more than once in a
block (the Solver's side-by-side tables, Data's raw and scaled features) is matched in order. A
column whose header is missing (renamed, or no header at all) is placed only where the columns on both
sides of it were found with nothing inserted or deleted between them; otherwise the block cannot be
matched with confidence and the check stops with "column '…' not found on …" rather than judge
misaligned columns.
"""
from __future__ import annotations

import bisect
import re
import unicodedata

import numpy as np

from sheetsgd.read.workbook import Sheet

_SPACE = re.compile(r"\s+")


def normal(text) -> str:
    """A header as compared: Unicode-normalised, case-folded, spaces collapsed."""
    if not isinstance(text, str):
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def row_texts(sheet: Sheet, row: int) -> dict[int, str]:
    """{column (1-based): normalised text} of the text cells of one row (1-based) of a sheet."""
    lo, hi = np.searchsorted(sheet._rows, (row, row + 1))
    out = {}
    for i in range(int(lo), int(hi)):
        value, _ = sheet._decode(sheet._cells[i])
        if isinstance(value, str) and normal(value):
            out[int(sheet._cols[i])] = normal(value)
    return out


class ColumnMap:
    """Reference columns (0-based, as the lesson wrote them) → the student's columns (1-based) on one sheet.
    A column no block owns (an input cell beside a table) moves with the nearest located column to its left
    (to its right when there is none)."""

    def __init__(self, default_shift: int):
        self.default_shift = default_shift
        self.at: dict[int, int] = {}
        self._keys: list[int] = []

    def add(self, ref_col: int, student_col: int) -> bool:
        """Record one column; False when it was placed elsewhere already (two blocks disagree)."""
        known = self.at.get(ref_col)
        if known is not None:
            return known == student_col
        self.at[ref_col] = student_col
        bisect.insort(self._keys, ref_col)
        return True

    def moved(self) -> bool:
        """Whether any column is not where the sheet-wide shift puts it."""
        return any(s != r + 1 + self.default_shift for r, s in self.at.items())

    def __call__(self, ref_col: int) -> int:
        got = self.at.get(ref_col)
        if got is not None:
            return got
        keys = self._keys
        if not keys:
            return ref_col + 1 + self.default_shift
        i = bisect.bisect_right(keys, ref_col)
        near = keys[i - 1] if i else keys[0]
        return ref_col + self.at[near] - near


def locate_columns(columns: dict, texts: dict[int, str]) -> tuple[dict[str, int], list[str]]:
    """({key: student column (1-based)}, keys not found) of one block, from its manifest columns
    {key: [reference column (0-based), header]} and the student's header row {column: normalised text}."""
    by_text: dict[str, list[int]] = {}
    for col, text in sorted(texts.items()):
        by_text.setdefault(text, []).append(col)
    wanted: dict[str, list[tuple[int, str]]] = {}
    for key, (ref, header) in sorted(columns.items(), key=lambda kv: kv[1][0]):
        if normal(header):
            wanted.setdefault(normal(header), []).append((ref, key))
    found: dict[str, int] = {}
    for text, refs in wanted.items():
        have = by_text.get(text, [])
        if len(have) == len(refs):  # the k-th such header of the block is the k-th in the row
            found.update({key: col for (_, key), col in zip(refs, have)})
        # otherwise (a helper column with the same header, one of them deleted): placed below, by the neighbours
    ref_of = {key: ref for key, (ref, _) in columns.items()}
    missing = []
    for key, (ref, header) in sorted(columns.items(), key=lambda kv: kv[1][0]):
        if key in found:
            continue
        left = max(((ref_of[k], c) for k, c in found.items() if ref_of[k] < ref), default=None)
        right = min(((ref_of[k], c) for k, c in found.items() if ref_of[k] > ref), default=None)
        slot = None
        if left and right and right[1] - left[1] == right[0] - left[0]:
            slot = left[1] + ref - left[0]  # nothing inserted or deleted between the two neighbours
        elif not normal(header) and (left or right):
            near = left or right
            slot = near[1] + ref - near[0]
        candidates = by_text.get(normal(header), [])
        if len(candidates) > 1 and (left or right):
            near = left or right
            guess = near[1] + ref - near[0]
            slot = min(candidates, key=lambda c: abs(c - guess))
        if slot is None or slot in found.values() or (normal(header) and texts.get(slot) in wanted
                                                      and texts.get(slot) != normal(header)):
            missing.append(key)
        else:
            found[key] = slot
    return found, missing
