"""Which assignment a workbook belongs to: its lesson (template, name and options) and its exercise columns.

``grade --assignment`` and the autograder grade one assignment: a workbook of another lesson, of the same
lesson with other options or other exercise columns, or the lesson's full workbook (which any student can
build, every answer in it) is refused with one line and score 0. Identity is read from the workbook's
manifest as the checker reports it (``lesson.identity``: a digest of the template's content, name and
options without the variant; ``lesson.student_version``: the manifest names blank exercise columns),
never from sheet or file names.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sheetsgd.errors import SheetsgdError


def identity(origin) -> str | None:
    """A digest of a manifest's origin: the template's content, its name and the options, the variant left
    out (every student's variant is the same assignment); None without a recorded template."""
    if not isinstance(origin, dict) or not isinstance(origin.get("template"), dict):
        return None
    options = origin.get("options") if isinstance(origin.get("options"), dict) else {}
    options = {k: v for k, v in options.items() if k != "variant"}
    text = json.dumps([origin.get("template"), origin.get("name"), options], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Assignment:
    lesson: str  # the lesson's name, for messages
    options: dict
    identity: str
    exercise: tuple[str, ...]  # the student version's blank columns (keys, sorted; a key per block)

    @classmethod
    def from_config(cls, config: dict) -> "Assignment":
        """The autograder's assignment (its sheetsgd-autograder.json)."""
        return cls(str(config.get("lesson")), dict(config.get("options") or {}), identity(config.get("origin")) or "",
                   tuple(sorted(config.get("exercise") or [])))

    def refusal(self, report: dict) -> str | None:
        """Why a checked workbook (its report as a dict) is not this assignment's student version, or None."""
        les = report.get("lesson") or {}
        name = report.get("file") or "the workbook"
        name = Path(name).name
        if les.get("identity") != self.identity:
            return (f"{name} is not this assignment's workbook: it is lesson {les.get('name')!r}"
                    + ("" if les.get("identity") else " (no lesson recorded)")
                    + f"; the assignment is lesson {self.lesson!r}"
                    + (f" with options {json.dumps(self.options, sort_keys=True)}" if self.options else "")
                    + ". Fill in the assignment's workbook and submit that.")
        if not les.get("student_version"):
            return (f"{name} is the full workbook of lesson {self.lesson!r} (every answer in it), not the "
                    "assignment's student version: fill in the assignment's workbook and submit that.")
        if tuple(sorted(les.get("exercise") or [])) != self.exercise:
            return (f"{name} has exercise columns {', '.join(sorted(set(les.get('exercise') or []))) or 'none'}, "
                    f"the assignment {', '.join(sorted(set(self.exercise)))}: fill in the assignment's workbook "
                    "and submit that.")
        return None


def assignment_of(lesson, exercise: str | None = None) -> Assignment:
    """The assignment of ``lesson`` (a :class:`sheetsgd.api.Lesson`) with these exercise columns (None: the
    template's), as its student version records it."""
    origin = getattr(lesson.spec, "origin", None)
    key = identity(origin)
    if key is None:
        raise SheetsgdError(f"lesson {lesson.name!r} cannot be an assignment (its template is not recorded)")
    with tempfile.TemporaryDirectory(prefix="sheetsgd-assignment-") as tmp:
        report = lesson.build(Path(tmp, "assignment.xlsx"), "" if exercise is None else exercise, progress=False)
    columns = tuple(sorted(k for keys in (report.exercise or {}).values() for k in keys))
    if not columns:
        raise SheetsgdError("the assignment's student version has no exercise columns to grade")
    return Assignment(lesson.name, dict(lesson.options or {}), key, columns)
