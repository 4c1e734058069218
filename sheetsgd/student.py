"""Student versions: which cells are left blank, which cached values would give answers away, and the task text.

A student version blanks the chosen exercise columns on the Steps sheet. A cell whose formula depends,
directly or through other cells, on a blank cell would cache the engine's value of an answer (the
next row's parameters are the previous row's updates, a loss follows from the error, ...), so such
cells are written with an empty cached value: spreadsheet apps compute them once the student has
filled the blanks. Cells that do not depend on any blank keep their cached values.
"""
from __future__ import annotations

import re

from .errors import SheetsgdError
from .lesson import Lesson
from .spec import Column, exercise_columns, step_columns

_REF = re.compile(r"\{(?:(prev|hp|data):)?(\w+)\}")


def dependencies(column: Column) -> tuple[set[str], set[str]]:
    """(keys of this row, keys of the previous row) a column's template reads."""
    this, prev = set(), set()
    for prefix, name in _REF.findall(column.formula or ""):
        if prefix == "":
            this.add(name)
        elif prefix == "prev":
            prev.add(name)
    return this, prev


def resolve_exercise(lesson: Lesson, chosen: str | None) -> frozenset[str]:
    """The exercise columns: the template's defaults (chosen == "") or a comma-separated list of keys."""
    columns = step_columns(lesson)
    formula_keys = [c.key for c in columns if c.formula]
    if not chosen:
        keys = exercise_columns(lesson)
        if not keys:
            raise SheetsgdError(f"the template names no exercise columns that exist in this layout; "
                                f"give them: --exercise {','.join(formula_keys[-2:])}", lesson.source)
        return frozenset(keys)
    keys = [k.strip() for k in chosen.split(",") if k.strip()]
    unknown = [k for k in keys if k not in formula_keys]
    if unknown or not keys:
        raise SheetsgdError(f"--exercise: no formula column {', '.join(unknown) or '(none given)'}; "
                            f"this layout's formula columns are {', '.join(formula_keys)}")
    return frozenset(keys)


def answer_dependent_rows(columns: list[Column], exercise: frozenset[str]) -> list[frozenset[str]]:
    """Per step (index 0 = step 1, the last set repeats for all later steps): formula columns whose
    value depends on a blank cell. The start row above step 1 holds values, so step 1 differs."""
    deps = {c.key: dependencies(c) for c in columns if c.formula}
    rows: list[frozenset[str]] = []
    previous: frozenset[str] = frozenset()  # blank or answer-dependent in the row above (start row: none)
    while True:
        dirty: set[str] = set()
        changed = True
        while changed:  # this-row dependencies: iterate to a fixed point (columns may refer rightwards)
            changed = False
            for key, (this, prev) in deps.items():
                if key in exercise or key in dirty:
                    continue
                if this & (exercise | dirty) or prev & previous:
                    dirty.add(key)
                    changed = True
        current = frozenset(dirty)
        if rows and current == rows[-1] or len(rows) > len(columns) + 2:
            return rows
        rows.append(current)
        previous = current | exercise


def task_lines(lesson: Lesson, columns: list[Column], exercise: frozenset[str]) -> list[str]:
    """What the Introduction tells the student to do, in words (never the formula itself)."""
    lines = ["Fill in the orange cells of the Steps sheet: write step 1's formula, then fill it down to the last step."]
    for c in columns:
        if c.key in exercise:
            lines.append(f"“{c.header}”: {c.note}.")
    lines += [
        "Refer to the named inputs (lr, …) by name or with $-anchored references, so they do not drift when filled down.",
        "Each step starts from the previous row's new parameters; never type numbers where a formula belongs.",
        "Self-check: each ∂L/∂p should be close to the finite-difference estimate beside it, and the loss should fall.",
        "Check your file: sheetsgd check FILE.xlsx (it names the first wrong step and the likely mistake).",
    ]
    return lines
