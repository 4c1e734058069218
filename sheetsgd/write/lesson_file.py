"""A lesson's workbook written to a file: the output policy (a staged file renamed into place, never over an
input or through a link), and the student version (exercise columns blank, nothing they decide cached)."""
from __future__ import annotations

import os

from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.exercise import Exercise, resolve
from sheetsgd.runtime import outputs


def write_lesson(kind, lesson, path, exercise, reporter, inputs: outputs.Inputs):
    """Write ``lesson``'s workbook (a :class:`sheetsgd.lessons.kinds.Kind`'s build) to ``path``; returns the
    build report. ``exercise``: None or False for the full workbook; True, a comma-separated string or a list
    of column keys for a student version (True/"": the template's exercise columns)."""
    path = os.fspath(path)
    if not path.lower().endswith(".xlsx"):
        raise SheetsgdError("output must end in .xlsx", path)
    if exercise is True:
        exercise = ""
    elif exercise is not None and exercise is not False and not isinstance(exercise, str):
        exercise = ",".join(exercise)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as exc:
        raise SheetsgdError(f"cannot create the output folder: {exc.strerror}", path) from None
    # the output policy (sheetsgd.runtime.outputs): a temporary file beside ``path``, renamed into place
    with outputs.staged(path, inputs, suffix=".xlsx") as tmp:
        reporter.stage("training")  # the writers train first; their sheets report from then on
        if exercise is None or exercise is False:
            report = kind.build(lesson, tmp)
            report.exercise = {}
        else:
            report = build_student(kind, lesson, tmp, exercise)
    report.path = path
    return report


def build_student(kind, lesson, path, chosen: str | None):
    """Train once, list the blocks (nothing written), then write the student version."""
    trace = kind.train(lesson)
    probe = kind.build(lesson, None, trace=trace)
    exercise = resolve(probe.blocks, chosen, list(getattr(lesson, "exercise", []) or []),
                       getattr(lesson, "source", None) or None)
    report = kind.build(lesson, path, trace=trace, exercise=Exercise(exercise, probe.blocks))
    report.exercise = getattr(report, "exercise", None) or exercise  # a kind may blank more (too-high: every run)
    return report
