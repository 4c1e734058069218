"""Structural mistakes the cell-by-cell judging cannot name on its own: a deleted step row, a circular
reference, and whether non-finite parameters are a real divergence or just an error value.

Kept apart from :mod:`sheetsgd.check.checker` and :mod:`sheetsgd.check.submission` (small functions, each called at
one place) so they port to a rewritten checker unchanged:

* :func:`find_step_rows` maps step numbers to sheet rows and *tolerates gaps*: a deleted step row (or a
  few) is a mistake at that row (exit 1), not a sheet that cannot be checked; the missing step reads as
  an empty row (:func:`gap_rows`), the steps after it are judged as usual, and :func:`deleted_row_mistakes`
  reports the gap once instead of a "blank" or "given changed" per column.
* :func:`cycle` follows a cell's references on the Steps sheet; a root cause whose first cell lies on a
  cycle is a ``circular_reference`` (LibreOffice shows Err:522, saved as #VALUE!; IronCalc #CIRC!),
  whatever the value-based diagnosis said (``wrong_row``, ``error_value``, …), except
  ``own_row_update``, a cycle by definition, whose title then says so.
* :func:`divergence_step`: the "training diverges" note only where the parameters really grow past
  every bound, not where an error value (a circular or deleted reference, a typo) stops the numbers.
"""
from __future__ import annotations

import numpy as np

MAX_GAP_SHARE = 0.5  # more steps missing than this share (or than MAX_GAPS) is not a deleted row: cannot check
MAX_GAPS = 50
HUGE = 1e100  # a parameter this large before the first non-finite one: the numbers overflowed
CYCLE_SEARCH_CELLS = 5_000
KEEP_NAME = {"own_row_update"}  # a diagnosis that is a cycle by definition keeps its more specific name

DELETED_TITLE = "step row deleted"
DELETED_HINT = ("Every step has its row: this one is missing (deleted?), so the next row's references to it "
                "broke (#REF!). Insert the row again and fill it like its neighbours (or undo the deletion).")
CIRCULAR_TITLE = "a circular reference"
CIRCULAR_HINT = ("The formula depends on its own result ({path}). A step computes from the cells before it: "
                 "this row's starting parameters (the previous row's new values) and this row's earlier columns.")


def find_step_rows(values, candidates, n_steps: int) -> tuple[list[int] | None, list[int]]:
    """(row of each step 1..n, or None where the step is missing; the missing step numbers).

    ``values``: the step column's values at the ``candidates`` rows, in sheet order. Rows whose value is
    not the next step number are skipped (inserted rows, notes); a larger step number means the steps in
    between are missing. Returns (None, missing) when too many are missing for a deleted row or two.
    """
    rows: list[int | None] = []
    for r, v in zip(candidates, values):
        if len(rows) == n_steps:
            break
        k = len(rows) + 1
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == int(v):
            v = int(v)
            if v == k:
                rows.append(r)
            elif k < v <= n_steps and v - k <= MAX_GAPS:
                rows += [None] * (v - k) + [r]
    rows += [None] * (n_steps - len(rows))
    missing = [i + 1 for i, r in enumerate(rows) if r is None]
    if len(missing) > min(MAX_GAPS, MAX_GAP_SHARE * n_steps) or len(missing) == n_steps:
        return None, missing
    return rows, missing


def gap_rows(rows: list[int | None], first_free_row: int) -> list[int]:
    """Every missing step gets a row below everything on the sheet: empty, so it reads as blank."""
    out, free = [], first_free_row
    for r in rows:
        if r is None:
            out.append(free)
            free += 1
        else:
            out.append(r)
    return out


def deleted_row_mistakes(missing: list[int], step_rows: list[int], sheet_name: str, mistakes: list[dict]) -> list[dict]:
    """Replace the per-column root causes at missing steps by one mistake per deleted row."""
    if not missing:
        return mistakes
    gone = set(missing)
    out = [m for m in mistakes if m["step"] not in gone]
    for step in missing:
        before = next((step_rows[i - 1] for i in range(step - 1, 0, -1) if i not in gone), None)
        where = f"after row {before}" if before else "at the top of the table"
        hit = [m for m in mistakes if m["step"] == step]
        out.append({"column": "step", "header": "step", "letter": "", "mistake": "step_row_deleted",
                    "title": DELETED_TITLE, "hint": DELETED_HINT, "step": step,
                    "cell": f"{sheet_name}: the row of step {step}, {where}", "expected": step, "found": None,
                    "formula": None, "cells": sum(m.get("cells", 1) for m in hit) or 1,
                    "exercise": any(m.get("exercise") for m in hit)})
    out.sort(key=lambda m: (m["step"], m["column"] != "step"))
    return out


def cycle(sheet, start: tuple[int, int], refs_of, limit: int = CYCLE_SEARCH_CELLS) -> list[tuple[int, int]] | None:
    """The cells of a reference cycle through ``start`` (row, col), or None.

    ``refs_of(row, col)`` gives the (row, col) cells a cell's formula reads on the same sheet."""
    path: list[tuple[int, int]] = []
    on_path: set[tuple[int, int]] = set()
    done: set[tuple[int, int]] = set()
    stack = [(start, iter(refs_of(*start)))]
    path.append(start)
    on_path.add(start)
    visited = 1
    while stack:
        cell, children = stack[-1]
        nxt = next(children, None)
        if nxt is None:
            stack.pop()
            path.pop()
            on_path.discard(cell)
            done.add(cell)
            continue
        if nxt == start:
            return list(path)
        if nxt in on_path or nxt in done:
            continue
        visited += 1
        if visited > limit:
            return None
        stack.append((nxt, iter(refs_of(*nxt))))
        path.append(nxt)
        on_path.add(nxt)
    return None


def name_circular(sub, mistakes: list[dict], formula_refs, column_letters) -> list[dict]:
    """Root causes whose first cell lies on a reference cycle become ``circular_reference``."""
    sheet = sub.sheet

    def refs_of(row, col):
        formula = sheet.formula(row, col)
        if not formula:
            return []
        out = []
        for ref in formula_refs(formula, sub, row):
            if ref["key"] is not None:
                out.append((ref["row"], sub.col_of[ref["key"]]))
        return out

    for m in mistakes:
        key = m.get("column")
        if key not in sub.col_of or not isinstance(m.get("step"), int):
            continue
        row = sub.step_rows[m["step"] - 1]
        found = cycle(sheet, (row, sub.col_of[key]), refs_of)
        if found:
            path = " → ".join(f"{column_letters(c)}{r}" for r, c in found + [found[0]])
            if m.get("mistake") in KEEP_NAME:  # already names the cause; say it is circular too
                m.update(title=f"{m['title']} (a circular reference: {path})")
            else:
                m.update(mistake="circular_reference", title=CIRCULAR_TITLE, hint=CIRCULAR_HINT.format(path=path))
    return mistakes


def divergence_step(values: np.ndarray) -> int | None:
    """0-based first step where a parameter column stops being finite *because it grew past every
    bound* (the value before it is huge, or the cell holds inf/NaN itself); None for an error value."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if i == 0:
        return None
    return i if abs(values[i - 1]) > HUGE else None
