"""Which cells of a checked workbook are root causes, knock-ons and right: compact A1 ranges per column.

The check report names, for every judged column, its ``root_cells`` (cells that do not follow from
the student's own values), ``knock_on_cells`` (they follow, but read a wrong cell upstream) and, for
exercise columns, ``correct_cells``: each a list of ranges such as ``"D5:D9"`` over runs of
consecutive rows. The annotated workbook (sheetsgd.feedback.annotate) marks exactly these cells.
"""
from __future__ import annotations

import re

import numpy as np

from sheetsgd.sheet.refs import column_letters

MAX_NOTED = 200  # root-cause cells per mistake whose expected and found values the report lists

_RANGE = re.compile(r"^([A-Z]{1,3})([0-9]+)(?::([A-Z]{1,3})([0-9]+))?$")


def runs(letters: str, rows) -> list[str]:
    """Rows of one column as ranges over runs of consecutive rows: ``["D5:D9", "D12"]`` (a row given twice
    counts once). Runs are found by numpy: a 10,000-step column is one Python step per run, not per row."""
    rows = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([rows[:1], rows[breaks + 1]]).tolist()
    ends = np.concatenate([rows[breaks], rows[-1:]]).tolist()
    return [f"{letters}{a}" if a == b else f"{letters}{a}:{letters}{b}" for a, b in zip(starts, ends)]


def expand(ranges: list[str]) -> list[str]:
    """The cells of ranges made by :func:`runs` (one column each), in order."""
    out = []
    for text in ranges:
        m = _RANGE.match(text)
        if not m:
            raise ValueError(f"not a cell range of one column: {text!r}")
        letters, first = m.group(1), int(m.group(2))
        last = int(m.group(4)) if m.group(4) else first
        out.extend(f"{letters}{r}" for r in range(first, last + 1))
    return out


def column_marks(j) -> dict[str, list[str]]:
    """One judged column's cells (sheetsgd.check.judge.ColumnJudgement) by what the check makes of them."""
    letters, rows = column_letters(j.col), np.asarray(j.rows)
    ok, correct = np.asarray(j.ok, bool), np.asarray(j.correct, bool)
    return {"root_cells": runs(letters, rows[~ok]), "knock_on_cells": runs(letters, rows[ok & ~correct]),
            "correct_cells": runs(letters, rows[correct]) if j.exercise else []}


def wrong_cells(j, expected_at, found_at) -> list[dict]:
    """The first MAX_NOTED root-cause cells of a column with the value expected there and the one found."""
    letters = column_letters(j.col)
    return [{"cell": f"{letters}{int(j.rows[i])}", "expected": expected_at(j, i), "found": found_at(j, i)}
            for i in np.flatnonzero(~np.asarray(j.ok, bool))[:MAX_NOTED]]


def merge_marks(col, other) -> None:
    """A column judged twice (``--strict``): wrong in either judgement is wrong."""
    root = set(expand(col.root_cells)) | set(expand(other.root_cells))
    knock = (set(expand(col.knock_on_cells)) | set(expand(other.knock_on_cells))) - root
    correct = set(expand(col.correct_cells)) - root - knock
    col.root_cells, col.knock_on_cells, col.correct_cells = (_ranges(s) for s in (root, knock, correct))


def _ranges(cells: set[str]) -> list[str]:
    by_col: dict[str, list[int]] = {}
    for c in cells:
        m = _RANGE.match(c)
        by_col.setdefault(m.group(1), []).append(int(m.group(2)))
    return [r for letters in sorted(by_col, key=lambda s: (len(s), s)) for r in runs(letters, by_col[letters])]
