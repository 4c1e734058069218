"""Student versions: the exercise columns a data lesson names, the task text, protection.

A student version blanks the chosen exercise columns. A cell whose formula depends, directly or through
other cells, on a blank cell would cache the engine's value of an answer, so such cells are written with
an empty cached value (:class:`sheetsgd.blocks.StudentPlan` finds them, for every lesson kind);
spreadsheet apps compute them once the student has filled the blanks.
"""
from __future__ import annotations

from .errors import SheetsgdError
from .lesson import Lesson
from .spec import Column, exercise_columns, step_columns

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


ADVICE = [  # what every student version's task ends with
    "Refer to the named inputs (lr, …) by name or with $-anchored references, so they do not drift when filled down.",
    "Each step starts from the previous row's new parameters; never type numbers where a formula belongs.",
    "Check your file: sheetsgd check FILE.xlsx (it names the first wrong step and the likely mistake).",
]


def task_lines(lesson: Lesson, columns: list[Column], exercise: frozenset[str]) -> list[str]:
    """What the Introduction tells the student to do, in words (never the formula itself)."""
    lines = ["Fill in the orange cells of the Steps sheet: write step 1's formula, then fill it down to the last step."]
    for c in columns:
        if c.key in exercise:
            lines.append(f"“{c.header}”: {c.note}.")
    return lines + ADVICE[:2] + [
        "Self-check: each ∂L/∂p should be close to the finite-difference estimate beside it, and the loss should fall.",
    ] + ADVICE[2:]


def block_task_lines(blocks, exercise: dict[str, set[str]]) -> list[str]:
    """"Your task" for any lesson kind: which sheet's orange cells to fill, each blank column in words."""
    by_name = {b.name: b for b in blocks}
    sheets = sorted({by_name[name].sheet for name in exercise if name in by_name})
    lines = [f"Fill in the orange cells of the {' and '.join(sheets)} sheet{'s' if len(sheets) > 1 else ''}: write "
             "the first row's formula, then fill it down to the last row."]
    for name, keys in exercise.items():
        block = by_name.get(name)
        for c in (block.columns if block else []):
            if c.key in keys:
                lines.append(f"“{c.header}” ({block.sheet}): {c.note or c.key}.")
    lines += ADVICE
    return lines


def protect_sheets(book, skip=("_sheetsgd",)) -> None:
    """A convenience against accidental edits, not security: no password; inputs and blanks stay unlocked."""
    for ws in book.wb.worksheets():
        if ws.get_name() not in skip:
            ws.protect("", {"format_columns": True, "format_rows": True})
