"""The lesson behind a workbook: rebuilt from its manifest's template (a dry run: the layout, not the
numbers), and the workbook's defined names resolved to cells."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import kinds
from .errors import SheetsgdError
from .runbounds import guard
from .submission import _NAME_REF, lesson_from_manifest, locate
from .xlsxread import Limits, Workbook, column_index


def rebuild(path: str, book: Workbook, manifest: dict, manifest_sheet: str, limits: Limits, numbers: bool = False):
    """(lesson, blocks, exercise {block: keys}) of the workbook's lesson, rebuilt without writing anything;
    the blocks hold the engine's numbers only with ``numbers`` (a dry run's layout is all a check needs)."""
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
        lesson = _as_laid_out(lesson, manifest.get("layout_version"))
        exercise = manifest.get("exercise_blocks")
        if not isinstance(exercise, dict) or not all(isinstance(v, list) for v in exercise.values()):
            raise book.error("manifest entry 'exercise_blocks' is malformed: the manifest was tampered with")
        exercise = {str(k): {str(x) for x in v} for k, v in exercise.items()}
    else:  # a data lesson's manifest from before the block manifest: its configuration and Data sheet
        if str(manifest.get("kind", "sgd")) != "sgd":
            lesson_from_manifest(manifest, book, manifest_sheet)  # the old message for other kinds
        lesson = locate(path, limits).lesson
        if not (isinstance(manifest.get("spec_version"), int) and manifest["spec_version"] >= 3):
            lesson = replace(lesson, fd_scheme="forward")  # as versions before 3 wrote the estimates
        exercise = {"Steps": {k for k in manifest.get("exercise") or [] if isinstance(k, str)}}
    kind = kinds.kind_of(lesson)
    guard(lesson)  # refuse a run that will not fit before computing its layout
    with np.errstate(all="ignore"):  # the layout, not the numbers: the file holds the student's
        report = kind.build(lesson, None, trace=kind.train(lesson) if numbers else kind.layout(lesson))
    return lesson, report.blocks, exercise


def _as_laid_out(lesson, layout_version):
    """A lesson whose layout has versions (the Titanic kind's, an lr finder's on it) laid out as the workbook's
    manifest says: no ``layout_version`` is a workbook built before versioned layouts (version 1)."""
    version = layout_version if isinstance(layout_version, int) and not isinstance(layout_version, bool) else 1
    for part in (lesson, getattr(lesson, "base", None)):  # set in place: the lesson was just made (and
        if hasattr(part, "layout_version"):              # keeps what options set on it, e.g. its variant)
            part.layout_version = version
    return lesson


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


def _names(book: Workbook, stores_for) -> dict[str, float]:
    """The defined names that point at one cell, with that cell's number (recalculated where it was)."""
    out = {}
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


