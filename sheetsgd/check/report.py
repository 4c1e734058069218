"""The check report: root causes first, knock-ons under them, per-column counts, two scores; text or JSON."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from sheetsgd.runtime.safetext import encodable, shown

EXIT_CORRECT, EXIT_MISTAKES, EXIT_CANNOT = 0, 1, 2


@dataclass
class ColumnResult:
    key: str
    header: str
    letter: str
    exercise: bool
    correct: int
    total: int
    status: str  # "correct", "root cause", "knock-on"
    first_wrong: dict | None = None
    local_correct: int = 0  # cells that follow from the student's own values (knock-ons forgiven)
    knock_on_of: list[str] = field(default_factory=list)
    sheet: str = "Steps"
    root_cells: list[str] = field(default_factory=list)  # A1 ranges (sheetsgd.check.cellmarks)
    knock_on_cells: list[str] = field(default_factory=list)
    correct_cells: list[str] = field(default_factory=list)  # exercise columns only


@dataclass
class Report:
    path: str
    status: str  # "correct", "mistakes", "error"
    message: str = ""
    lesson: dict = field(default_factory=dict)
    columns: list[ColumnResult] = field(default_factory=list)
    mistakes: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recalculated_by: str | None = None
    strict: dict | None = None

    @property
    def exit_code(self) -> int:
        return {"correct": EXIT_CORRECT, "mistakes": EXIT_MISTAKES}.get(self.status, EXIT_CANNOT)

    @property
    def score(self) -> tuple[int, int]:
        cols = [c for c in self.columns if c.exercise]
        return sum(c.correct for c in cols), sum(c.total for c in cols)

    @property
    def formulas_right(self) -> int:
        """Exercise cells whose formula follows from the student's own values: partial credit that does
        not punish knock-ons a second time (``score`` counts cells whose value is also right)."""
        return sum(c.local_correct for c in self.columns if c.exercise)

    def settle(self) -> None:
        """Status "correct" exactly when every exercise cell is right under both counts. Root causes no exercise
        cell reads (a given column edited) then stay as notes: they do not touch the graded cells."""
        if self.status == "error":
            return
        cols = [c for c in self.columns if c.exercise]
        if not cols:  # nothing graded (a workbook without exercise columns): its mistakes decide
            return
        right = all(c.correct == c.total and c.local_correct == c.total for c in cols)
        if right:  # a mistake in an exercise column always leaves a cell not right (else the audit says so)
            self.notes += [f"outside the exercise (not graded): {m['header']} ({m['column']}) on {m.get('sheet')}: "
                         f"{m['title']}, from step {m['step']} ({m['cell']})" for m in self.mistakes
                         if not m.get("exercise")]
            self.mistakes = [m for m in self.mistakes if m.get("exercise")]
        if not right and not self.mistakes:
            self.notes.append("exercise cells not right (see the columns)")
        self.status = "correct" if right and not self.mistakes else "mistakes"

    def to_dict(self) -> dict:
        """The report as plain JSON data (non-finite numbers become null)."""
        correct, total = self.score
        return _json_safe({"file": self.path, "status": self.status, "exit_code": self.exit_code, "message": self.message,
                "lesson": self.lesson, "recalculated_by": self.recalculated_by, "notes": self.notes,
                "score": {"correct": correct, "total": total, "share": correct / total if total else None,
                          "formulas_right": self.formulas_right,
                          "formulas_share": self.formulas_right / total if total else None},
                "mistakes": self.mistakes,
                "columns": [c.__dict__ for c in self.columns], "strict": self.strict})

    def to_text(self) -> str:
        if self.status == "error":
            return shown(f"{self.path}: cannot check: {self.message}")
        lines = []
        les = self.lesson
        sheets = list(dict.fromkeys(c.sheet for c in self.columns))
        on = (lambda sheet: f" on {sheet}") if len(sheets) > 1 else (lambda sheet: "")  # where several sheets are judged
        about = ", ".join(str(x) for x in (les.get("optimizer"), les.get("loss")) if x) + ", " if les.get("optimizer") or les.get("loss") else ""
        exercise = list(dict.fromkeys(les.get("exercise", [])))
        exercise_sheets = list(dict.fromkeys(c.sheet for c in self.columns if c.exercise))
        where = f" (on {', '.join(exercise_sheets)})" if len(exercise_sheets) > 1 else ""
        lines.append(f"{self.path}: lesson {les.get('name')} ({about}{les.get('steps')} steps); "
                     f"exercise: {', '.join(exercise_groups(exercise)) + where if exercise else 'none'}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.mistakes:
            lines.append(f"Root causes ({len(self.mistakes)}):")
            for m in self.mistakes:
                expected, found = show_pair(m['expected'], m['found'], m['formula'])
                lines.append(f"  ✗ {m['header']} ({m['column']}, column {m['letter']}{on(m.get('sheet'))}): {m['title']} — first at step "
                             f"{m['step']} ({m['cell']}): expected {expected}, found {found}, "
                             f"formula {m['formula'] or '(none)'}; {m['cells']} cell(s)")
                lines.append(f"    hint: {m['hint']}")
                if m.get("not_following"):  # the cells, each with why (sheetsgd.check.own_formulas)
                    cells = m["not_following"]
                    lines.append(f"    cells: {', '.join(c['cell'] for c in cells[:8])}{' …' if m['cells'] > 8 else ''} "
                                 f"({cells[0]['reason']})")
                if m.get("errors"):
                    e = m["errors"]
                    lines.append(f"    shows {e['code']} in {e['cells']} cell(s) from step {e['step']} ({e['cell']}): "
                                 f"{e['title']} ({e['mistake']}); it comes from the mistake above")
        knock = [c for c in self.columns if c.status == "knock-on"]
        if knock:
            lines.append("Knock-ons (wrong only because a cell they read is wrong; not separate mistakes):")
            for c in knock:
                lines.append(f"  · {c.header} ({c.key}{on(c.sheet)}): {c.correct}/{c.total} correct, follows from "
                             f"{', '.join(c.knock_on_of)}")
        lines.append("Exercise columns:")
        for c in self.columns:
            if c.exercise and c.status == "knock-on":  # right formulas reading a wrong cell: no ✗, no formula
                step = f" (from step {c.first_wrong['step']})" if c.first_wrong else ""
                lines.append(f"  · {c.header:<24} {c.key:<10}{on(c.sheet)} {c.correct}/{c.total}  follows from "
                             f"{', '.join(c.knock_on_of)}{step}")
            elif c.exercise:
                mark = "✓" if c.correct == c.total else "✗"
                first = ""
                if c.first_wrong:
                    f = c.first_wrong
                    expected, found = show_pair(f['expected'], f['found'], f['formula'])
                    first = (f"  first wrong: step {f['step']} ({f['cell']}) expected {expected}, "
                             f"found {found}, formula {f['formula'] or '(none)'}")
                lines.append(f"  {mark} {c.header:<24} {c.key:<10}{on(c.sheet)} {c.correct}/{c.total}{first}")
        if self.strict is not None:
            if self.strict.get("mismatches"):
                lines.append("Strict (inputs perturbed, recalculated): cells that did not follow:")
                for m in self.strict["mismatches"]:
                    expected, found = show_pair(m['expected'], m['found'])
                    lines.append(f"  ✗ {m['header']} ({m['column']}): first at step {m['step']} ({m['cell']}): "
                                 f"expected {expected}, found {found}")
            else:
                lines.append(f"Strict: with {self.strict.get('perturbation')} every checked cell still matches the engine.")
        correct, total = self.score
        lines.append(headline(self.formulas_right, correct, total)
                     + (" — all correct" if self.status == "correct" else f" — {len(self.mistakes)} mistake(s)"))
        return "\n".join(map(shown, lines))  # each line one line: text from the file cannot add lines or drive a terminal


AUDIT_ENV = "SHEETSGD_REPORT_AUDIT"  # a file: every report made is checked against the invariant, breaches appended


def invariant_breach(report: "Report") -> str | None:
    """Why a report breaks the grading invariant — status "correct" ⇔ every exercise cell right ⇔ grade
    (formulas right) 1.0 ⇔ score 1.0 — or None. A report that could not be checked has no grade to break it."""
    if report.status == "error":
        return None
    cols = [c for c in report.columns if c.exercise]
    correct, total = report.score
    if not total:  # nothing graded
        return None
    facts = {"status correct": report.status == "correct",
             "every exercise cell right": all(c.correct == c.total for c in cols) and total > 0,
             "score 1.0": total > 0 and correct == total,
             "grade 1.0": total > 0 and report.formulas_right == total}
    if len(set(facts.values())) > 1:
        return f"{report.path}: " + ", ".join(f"{k}: {v}" for k, v in facts.items())
    return None


def audit(report: "Report") -> "Report":
    """Where ``$SHEETSGD_REPORT_AUDIT`` names a file (the test suite sets it), append any breach of the
    invariant to it: every report of every process is seen."""
    import os

    where = os.environ.get(AUDIT_ENV)
    breach = invariant_breach(report) if where else None
    if breach:
        with open(where, "a", encoding="utf-8") as fh:
            fh.write(breach.replace("\n", " ") + "\n")
    return report


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, str):
        return encodable(x)  # a file name's bytes that are not UTF-8
    if x is None or isinstance(x, (int, bool)):
        return x
    return str(x)


def _percent(part: int, total: int) -> str:
    return f" ({100 * part / total:.1f}%)" if total else ""


def headline(formulas_right: int, correct: int, total: int) -> str:
    """The grade as the grading policy gives it (formulas that follow from the student's own values:
    knock-ons forgiven), the strict score beside it."""
    return (f"Grade: {formulas_right}/{total} exercise cells{_percent(formulas_right, total)} (the grading policy: "
            f"formulas that follow from your own values, knock-ons not counted against you); strict score "
            f"{correct}/{total}{_percent(correct, total)} (cells whose value is right)")


DIGITS = 6  # significant digits at the expected value's magnitude (the sheets show 4)


def show_number(x, like=None, digits: int = DIGITS) -> str:
    """A number as feedback shows it: ``digits`` significant digits at the magnitude of ``like`` (default:
    ``x`` itself), fixed decimals between 1e-4 and 1e6, scientific beyond."""
    if x is None:
        return "(empty)"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    v = float(x)
    if not math.isfinite(v):
        return "not a number"
    scale = abs(float(like)) if isinstance(like, (int, float)) and math.isfinite(float(like)) and like else abs(v)
    if scale == 0:
        return f"{v:.{digits - 1}f}"
    if scale >= 1e6 or scale < 1e-4 or abs(v) >= 1e6:
        return f"{v:.{digits - 1}E}"
    return f"{v:.{max(0, digits - 1 - math.floor(math.log10(scale)))}f}"


def show_pair(expected, found, formula: str | None = "") -> tuple[str, str]:
    """(expected, found) as every report shows them (text, HTML, the Feedback sheet): in one format, the
    expected value's magnitude deciding it, so the two read digit against digit; with more digits where two
    different numbers would print alike; an expected error as such; a right value without a formula
    (``formula`` None) said to be a typed number."""
    like = expected if isinstance(expected, (int, float)) and not isinstance(expected, bool) else found
    e, f = show_number(expected, like), show_number(found, like)
    if expected is None:  # never blank: a formula that gives no finite number (#NUM!, #DIV/0!, …)
        e = "an error value"
    for digits in (10, 17):
        if e != f or not (isinstance(expected, float) and isinstance(found, float) and expected != found):
            break
        e, f = show_number(expected, like, digits), show_number(found, like, digits)
    if e == f and isinstance(expected, float) and isinstance(found, float) and expected != found:
        return repr(expected), repr(found)
    if e == f and formula is None and found is not None:
        return e, f"{f} typed (the right value, but no formula)"
    return e, f


def show_value(x) -> str:
    """A cell's value as a report shows it: (empty), not a number, or up to 10 significant digits."""
    if x is None:
        return "(empty)"
    if isinstance(x, float):
        return "not a number" if not math.isfinite(x) else f"{x:.10g}"
    return str(x)


def exercise_groups(keys: list[str], most: int = 16) -> list[str]:
    """The exercise columns as a reader takes them in: each key while there are few; past ``most``, keys that
    differ only in their indices (a grid's ``z1_1_1`` … ``z2_4_4``) as one ``z… (32 columns)``."""
    if len(keys) <= most:
        return keys
    groups: dict[str, list[str]] = {}
    for key in keys:
        stem = re.sub(r"[0-9_]+$", "", key) or key
        groups.setdefault(stem, []).append(key)
    return [members[0] if len(members) == 1 else f"{stem}… ({len(members)} columns)" for stem, members in groups.items()]

