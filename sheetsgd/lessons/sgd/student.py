"""Student versions: the exercise columns a data lesson names, the task text, protection.

A student version blanks the chosen exercise columns. A cell whose formula depends, directly or through
other cells, on a blank cell would cache the engine's value of an answer, so such cells are written with
an empty cached value (:class:`sheetsgd.sheet.blocks.StudentPlan` finds them, for every lesson kind);
spreadsheet apps compute them once the student has filled the blanks.
"""
from __future__ import annotations

from sheetsgd.errors import SheetsgdError
from .lesson import Lesson
from .spec import Column, exercise_columns, step_columns
from sheetsgd.sheet.tasks import ADVICE, block_task_lines  # noqa: F401 (the kinds' writers import them from here)

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


def task_lines(lesson: Lesson, columns: list[Column], exercise: frozenset[str], blocks=()) -> list[str]:
    """What a data lesson's Introduction tells the student to do (never the formula itself): the blocks'
    task (:mod:`sheetsgd.sheet.tasks`) and the self-check its finite differences allow."""
    lines = block_task_lines(blocks, {"Steps": set(exercise)})
    return lines[:-1] + [
        "Self-check: each ∂L/∂p should be close to the finite-difference estimate beside it, and the loss should fall.",
    ] + lines[-1:]


def protect_sheets(book, skip=("_sheetsgd",)) -> None:
    """A convenience against accidental edits, not security: no password; inputs and blanks stay unlocked."""
    for ws in book.wb.worksheets():
        if ws.get_name() not in skip:
            ws.protect("", {"format_columns": True, "format_rows": True})
