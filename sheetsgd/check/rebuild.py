"""The lesson behind a workbook: rebuilt from its manifest's template (a dry run: the layout, not the
numbers), and the workbook's defined names resolved to cells."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from sheetsgd.lessons import kinds
from sheetsgd.sheet import layouts
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.runbounds import guard_check
from .submission import _NAME_REF, lesson_from_manifest, locate
from sheetsgd.read.workbook import Limits, Workbook, column_index


def rebuild(path: str, book: Workbook, manifest: dict, manifest_sheet: str, limits: Limits, numbers: bool = False,
            names_out: dict | None = None):
    """(lesson, blocks, exercise {block: keys}) of the workbook's lesson, rebuilt without writing anything;
    the blocks hold the engine's numbers only with ``numbers`` (a dry run's layout is all a check needs).
    ``names_out`` receives the defined names the lesson writes {name: target}."""
    origin = manifest.get("origin")
    if isinstance(origin, dict) and isinstance(origin.get("template"), dict):
        options = origin.get("options") if isinstance(origin.get("options"), dict) else {}
        template = _as_built(origin["template"], manifest.get("spec_version"))
        try:
            lesson = kinds.from_raw(template, str(origin.get("name", "lesson"))[:100],
                                    f"{path} (its manifest's template)", options)
        except SheetsgdError as exc:
            raise book.error(f"the manifest's template does not make a lesson ({exc.message}): the manifest was "
                             "tampered with") from None
        except Exception as exc:  # a template no parser expects: only an edited manifest has one
            raise book.error(f"the manifest's template is malformed ({type(exc).__name__}): the manifest was "
                             "tampered with") from None
        lesson = layouts.at_version(lesson, layouts.manifest_version(manifest, book.error))  # as it was built
        exercise = manifest.get("exercise_blocks")
        if not isinstance(exercise, dict) or not all(isinstance(v, list) for v in exercise.values()):
            raise book.error("manifest entry 'exercise_blocks' is malformed: the manifest was tampered with")
        exercise = {str(k): {str(x) for x in v} for k, v in exercise.items()}
    else:  # a data lesson's manifest from before the block manifest: its configuration and Data sheet
        if str(manifest.get("kind", "sgd")) != "sgd":
            lesson_from_manifest(manifest, book, manifest_sheet)  # the old message for other kinds
        lesson = layouts.at_version(locate(path, limits).lesson, 1)  # before the block manifest: layout 1
        if not (isinstance(manifest.get("spec_version"), int) and manifest["spec_version"] >= 3):
            lesson = replace(lesson, fd_scheme="forward")  # as versions before 3 wrote the estimates
        exercise = {"Steps": {k for k in manifest.get("exercise") or [] if isinstance(k, str)}}
    kind = kinds.kind_of(lesson)
    guard_check(lesson, book)  # refuse a run that will not fit, or costs far more than the file holds, first
    with np.errstate(all="ignore"):  # the layout, not the numbers: the file holds the student's
        report = kind.build(lesson, None, trace=kind.train(lesson) if numbers else kind.layout(lesson))
    if names_out is not None:
        names_out.update(getattr(report, "names", None) or {})
    return lesson, report.blocks, exercise


def _as_built(template: dict, spec_version) -> dict:
    """The template as the workbook's sheetsgd version read it: before spec version 3 the finite
    differences were forward ones."""
    if (isinstance(spec_version, int) and spec_version >= 3 or not isinstance(template.get("training", {}), dict)
            or kinds.template_kind(template) not in ("sgd", "optimizers")):  # the kinds with estimates
        return template
    return {**template, "training": {"fd_scheme": "forward", **template.get("training", {})}}


def name_cells(book: Workbook) -> dict[str, tuple[str, int, int]]:
    """The workbook's (not sheet-scoped) defined names that point at one cell: name -> (sheet, row, col)."""
    out = {}
    for name, target in book.defined_names.items():
        m = _NAME_REF.match(target or "")
        if not m or "!" in name:
            continue
        sheet = (m.group(1) or "").replace("''", "'") or m.group(2)
        if sheet in book.sheet_names:
            out[name] = (sheet, int(m.group(4)), column_index(m.group(3)))
    return out


class Names(dict):
    """{defined name: its cell's number} (each also in lower case), and ``problems`` {name (lower case): why
    the cells that read it cannot be judged} for the lesson's names changed into something else."""

    problems: dict[str, str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems = {}


def _target(text: str):
    """(sheet, row, col) of a one-cell target such as ``Steps!$B$4``, or None."""
    m = _NAME_REF.match(text or "")
    if not m:
        return None
    return ((m.group(1) or "").replace("''", "'") or m.group(2), int(m.group(4)), column_index(m.group(3)))


def changed_names(book: Workbook, expected: dict[str, str], shifts, names: Names) -> list[str]:
    """The lesson's (workbook-scoped) defined names compared with the workbook's, where the sheets' blocks
    are (``shifts``, sheetsgd.check.placement): a name deleted, widened to a range or pointing at a cell without a
    number, or redirected to any other cell, makes the cells that read it unjudgeable (``names.problems``:
    the lesson's inputs are changed in their cells, never by moving their names). Returns the notes."""
    from sheetsgd.read.workbook import column_letters

    theirs = {name.lower(): target for name, target in book.defined_names.items() if "!" not in name}
    notes = []
    for name, target in expected.items():
        mine = _target(target)
        if "!" in name or mine is None:
            continue
        sheet, row, col = mine
        shift = shifts.get(sheet)
        if shift is not None:
            sheet, row, col = shift.sheet, int(shift.to_student([row])[0]), shift.col(col - 1)
        where = f"{sheet}!${column_letters(col)}${row}"
        now = theirs.get(name.lower())
        found = _target(now) if now is not None else None
        if now is None:
            names.problems[name.lower()] = f"the defined name {name} was deleted (the lesson's: {where})"
        elif found is None or found[0] not in book.sheet_names:
            names.problems[name.lower()] = (f"the defined name {name} refers to {now.lstrip('=')[:80]}, not one cell "
                                            f"(the lesson's: {where})")
        elif found != (sheet, row, col):  # redirected: the lesson's input is its cell, changed in place
            value = names.get(name, names.get(name.lower(), float("nan")))
            holds = "holds no number" if not np.isfinite(value) else f"holds {value:.10g}"
            names.problems[name.lower()] = (f"the defined name {name} refers to {now.lstrip('=')[:80]}, which {holds}, "
                                            f"not the lesson's cell {where}")
    for name in names.problems:
        names.pop(name, None)
        for key in [k for k in names if k.lower() == name]:
            names.pop(key)
    return notes


def _names(book: Workbook, stores_for) -> Names:
    """The defined names that point at one cell, with that cell's number (recalculated where it was)."""
    out = Names()
    for name, (sheet, row, col) in name_cells(book).items():
        if sheet in stores_for:  # recalculated values where the file was recalculated
            value = float(stores_for[sheet].gather(np.array([row]), np.array([col]))[0])
            if stores_for[sheet].cells(np.array([row]), np.array([col]))[2][0]:
                value = float("nan")
        else:
            value = book.sheet(sheet).value(row, col)
        out[name] = value if isinstance(value, float) else float("nan")
        out.setdefault(name.lower(), out[name])
    return out


