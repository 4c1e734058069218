"""Checking a student-edited workbook of any lesson kind: every cell locally, root causes before knock-ons.

The hidden manifest names the lesson (its template and options) and where its blocks were written.
The lesson is rebuilt without writing anything, which gives every block's row patterns and the
engine's values; :mod:`sheetsgd.placement` finds the blocks in the student's file (after inserted
rows, renamed sheets …) and :mod:`sheetsgd.judge` judges every cell of every block: locally (does it
follow from the student's own values?) and by induction (are the cells it reads right?). A cell wrong
only because of a wrong cell upstream is a knock-on, reported under its root cause.
"""
from __future__ import annotations

from dataclasses import replace
import tempfile
from pathlib import Path

import numpy as np

from .blocks import Block, is_update
from .errors import SheetsgdError
from .judge import BlockContext, cell_ref, cones, judge_blocks
from .judge import expected_at as expected_of
from .judge import _propagate as propagate
from .cellmarks import column_marks, merge_marks, wrong_cells
from .conventions import attribute_upstream, convention_rows, expectations
from .diagnose import diagnose
from .engines import EXP_OVERFLOW, mark_cannot_judge, mark_exp_overflow, scan
from .structural import CIRCULAR_HINT, deleted_row_mistakes, divergence_step
from .recalc import libreoffice_path
from .mistakes import CATALOGUE
from .placement import SheetValues, find_blocks, plain
from .report import EXIT_CANNOT, EXIT_CORRECT, EXIT_MISTAKES, ColumnResult, Report  # noqa: F401 (the API)
from .rebuild import _names, name_cells, rebuild
from .submission import read_manifest
from .xlsxread import CellError, Limits, Workbook, column_letters



class _quiet_native_output:
    """Silence stdout/stderr at the file-descriptor level (native code writes past sys.stdout)."""

    def __enter__(self):
        import os
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        self.saved = []
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:
            pass
        return self

    def __exit__(self, *exc):
        import os

        for fd, copy in self.saved:
            os.dup2(copy, fd)
            os.close(copy)
        return False


def _ironcalc_model(path: str, inputs: dict | None = None):
    """Recalculate with IronCalc (embedded, pip-installed); ``inputs`` {(sheet, row, col): number} first."""
    try:
        import ironcalc
    except ImportError:  # pragma: no cover - a declared dependency
        raise SheetsgdError("the embedded engine (ironcalc) is not installed: pip install ironcalc") from None
    try:
        with _quiet_native_output():  # IronCalc prints a line per formula cell without a cached value
            model = ironcalc.load_from_xlsx(path, "en", "UTC")
        names = [s["name"] for s in model.get_worksheets_properties()]
        for (sheet, row, col), number in (inputs or {}).items():
            model.update_cell_with_number(names.index(sheet), row, col, number)
        model.evaluate()
    except SheetsgdError:
        raise
    except BaseException as exc:  # a Rust panic surfaces as BaseException; a broken file must not crash us
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SheetsgdError(f"the embedded engine could not recalculate the file ({type(exc).__name__}: "
                            f"{str(exc)[:120]})", path) from None

    def source(sheet: str):
        index = names.index(sheet)

        def value(row, col):
            v = model.get_cell_value(index, row, col)
            if isinstance(v, str) and v.startswith("#"):
                return CellError(v)  # IronCalc's errors (#CIRC!, #NUM!, …): never a number
            return v if not isinstance(v, int) or isinstance(v, bool) else float(v)
        return value
    return source


def _libreoffice_book(path: str, limits: Limits) -> Workbook:
    from .recalc import recalc_libreoffice

    tmp = tempfile.mkdtemp(prefix="sheetsgd-check-")
    src = Path(tmp, "in")
    src.mkdir()
    copy = src / "submission.xlsx"
    copy.write_bytes(Path(path).read_bytes())  # LibreOffice works on a copy: the input is never touched
    [out] = recalc_libreoffice([copy], Path(tmp, "out"))
    return Workbook(str(out), limits)


# --- the whole check -------------------------------------------------------------------------------

def check(path: str, recalc: str = "auto", strict: bool = False, limits: Limits = Limits()) -> Report:
    """Check one workbook. Never raises for a bad file: the report says why it cannot be checked."""
    try:
        report = _check(str(path), recalc, strict, limits)
        if report.recalculated_by == "ironcalc" and mark_exp_overflow(report) and recalc == "auto" \
                and libreoffice_path():  # an overflow IronCalc computes on with: LibreOffice decides
            cell = next(m["cell"] for m in report.mistakes if m["mistake"] == "cannot_judge")
            report = _check(str(path), "libreoffice", strict, limits)
            report.notes.insert(0, f"recalculated by LibreOffice: IronCalc computes {EXP_OVERFLOW.what} "
                                   f"differently ({cell})")
        return report
    except SheetsgdError as exc:
        where = exc.where or ""
        if where.startswith(str(path)):
            where = where[len(str(path)):].lstrip("!:")
        return Report(str(path), "error", message=f"{where}: {exc.message}" if where else exc.message)
    except MemoryError:
        return Report(str(path), "error", message="ran out of memory reading the file")
    except RecursionError:
        return Report(str(path), "error", message="the file is nested too deeply to read")
    except Exception as exc:  # a bug must still end in one line (the fuzz test hunts for these)
        return Report(str(path), "error", message=f"internal error: {type(exc).__name__}: {exc}"[:300])


def _overflow_step(blocks: list[Block], shifts, stores) -> int | None:
    """The first step whose updated parameters overflow (#NUM!, as spreadsheets show an overflow): other
    error values (#VALUE!, #REF!, …) come from broken formulas, not from divergence."""
    first = None
    for b in blocks:
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        rows = shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))
        for c in b.columns:
            if not c.pattern or not is_update(c.key):
                continue
            values = store.gather(rows, c.col + 1 + shift.cols)
            bad = np.flatnonzero(~np.isfinite(values))
            if not len(bad):
                continue
            raw = store.raw_at(int(rows[bad[0]]), c.col + 1 + shift.cols)
            if isinstance(raw, CellError) and str(raw) != "#NUM!":
                continue  # #VALUE!, #REF!, #CIRC!, …: a broken formula, not a divergence
            if not isinstance(raw, CellError) and divergence_step(values) is None:
                continue  # no number grew past every bound before it
            step = int(b.step[bad[0]])
            first = step if first is None else min(first, step)
    return first


def _stores(book: Workbook, shifts, source=None) -> dict[str, SheetValues]:
    return {s.sheet: SheetValues(book.sheet(s.sheet), source(s.sheet) if source else None) for s in shifts.values()}


def _check(path: str, recalc: str, strict: bool, limits: Limits) -> Report:
    book = Workbook(path, limits)
    manifest, manifest_sheet = read_manifest(book)
    lesson, blocks, exercise = rebuild(path, book, manifest, manifest_sheet, limits)
    if not any(exercise.values()):  # a full workbook: its template's exercise columns are what is scored
        from .exercise import resolve
        try:
            exercise = resolve(blocks, None, list(getattr(lesson, "exercise", []) or []))
        except SheetsgdError:
            exercise = {}
    entries = [dict(b.manifest(), steps_are_rows=list(b.values.get("step", [])) == list(range(1, b.n + 1)))
               for b in blocks]
    shifts = find_blocks(book, entries)
    stores = _stores(book, shifts)
    notes, recalculated_by = [], None
    missing_cache = any(s.missing_cache for s in stores.values())
    findings = []
    if recalc == "ironcalc" or (recalc == "auto" and missing_cache):
        # formulas IronCalc computes differently (sheetsgd.engines): LibreOffice instead where installed
        findings = [f for view in _exercise_views(blocks, exercise, shifts, stores) for f in scan(view)]
        if findings and recalc == "auto" and libreoffice_path():
            recalc = "libreoffice"
            notes.append(f"recalculated by LibreOffice: IronCalc computes {findings[0].difference.what} "
                         f"differently ({findings[0].cell})")
            findings = []
    if recalc == "libreoffice":
        lo_book = _libreoffice_book(path, limits)
        stores = {name: SheetValues(lo_book.sheet(name)) for name in stores}
        recalculated_by = "libreoffice"
    elif recalc == "ironcalc" or (recalc == "auto" and missing_cache):
        stores = _stores(book, shifts, _ironcalc_model(path))
        recalculated_by = "ironcalc"
    names = _names(book, stores)
    results, mistakes = _judge(blocks, exercise, shifts, stores, names, notes,
                               engine=lambda: rebuild(path, book, manifest, manifest_sheet, limits, numbers=True)[1])
    for b in blocks:  # a deleted step row: one mistake at that row, not one per column
        shift = shifts[b.sheet]
        missing = (shift.missing or {}).get(b.name)
        if missing:
            rows = [int(r) for r in shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))]
            mistakes[:] = [dict(m, block=m.get("block", b.name)) for m in
                           deleted_row_mistakes(missing, rows, shift.sheet, mistakes)]
    diverged = _overflow_step(blocks, shifts, stores)
    if diverged is not None:  # judged like every other cell: an error where the engine overflows is right
        notes.append(f"training diverges: the parameters overflow from step {diverged} on "
                     f"({'as the engine does' if not mistakes else 'see the mistakes'})")
    if book.has_macros:
        notes.append("the file holds a macro project (VBA): it was not run")
    for sheet, shift in shifts.items():
        if shift.sheet != sheet:
            notes.append(f"the {sheet} sheet is named {shift.sheet!r}")
    n_steps = max((int(b.step.max()) for b in blocks if b.n), default=0)
    report = Report(path, "mistakes" if mistakes else "correct", lesson={
        "name": lesson.name, "kind": getattr(lesson, "kind", "sgd"), "model": getattr(lesson, "model", None),
        "loss": getattr(lesson, "loss", None) or getattr(getattr(lesson, "base", None), "loss", None),
        "optimizer": getattr(lesson, "optimizer", None) or _optimizers_of(lesson),
        "batch_size": getattr(lesson, "batch_size", None), "epochs": getattr(lesson, "epochs", None),
        "steps": n_steps, "variant": getattr(lesson, "variant", None), "inputs": {k: v for k, v in names.items() if k == k.lower() or k not in names},
        "exercise": sorted(k for keys in exercise.values() for k in keys),
        "steps_sheet": shifts.get(blocks[0].sheet).sheet if blocks else None},
        columns=results, mistakes=mistakes, notes=notes, recalculated_by=recalculated_by)
    if recalculated_by:
        report.notes.append(f"values recalculated by {'IronCalc' if recalculated_by == 'ironcalc' else 'LibreOffice'}"
                            + (" (the file stores no computed values)" if missing_cache else ""))
    mark_cannot_judge(report, findings)
    if strict:
        _strict(report, path, book, blocks, exercise, shifts, stores, names, mistakes, results)
    return report


def _optimizers_of(lesson) -> str | None:
    """A comparison's optimizers, in sheet order (other kinds without one optimizer: None)."""
    runs = lesson.lessons() if hasattr(lesson, "lessons") else {}
    return ", ".join(dict.fromkeys(les.optimizer for les in runs.values())) or None


class _ExerciseView:
    """One block's exercise columns as sheetsgd.engines scans them: keys, columns, rows, the sheet."""

    def __init__(self, block: Block, keys, shift, store):
        self.exercise = sorted(keys)
        self.col_of = {k: block.column(k).col + 1 + shift.cols for k in self.exercise}
        self.step_rows = [int(r) for r in shift.to_student(np.arange(block.first_row + 1, block.first_row + 1 + block.n))]
        self.sheet = store.sheet
        self._steps = block.step

    def cell_ref(self, key: str, i: int) -> str:
        return f"{column_letters(self.col_of[key])}{self.step_rows[i]}"


def _exercise_views(blocks, exercise, shifts, stores):
    return [_ExerciseView(b, exercise[b.name], shifts[b.sheet], stores[shifts[b.sheet].sheet])
            for b in blocks if exercise.get(b.name)]


def _judge(blocks: list[Block], exercise, shifts, stores, names, notes=None, engine=None):
    skipped = []
    judged = judge_blocks(blocks, exercise, shifts, stores, names, skipped)
    convention_rows(judged, lambda b: BlockContext(b, shifts, stores, names))
    if attribute_upstream(judged):  # rows ŷ reached the clipped range through a mistake upstream
        propagate({j.id: j for j in judged})
    if skipped and notes is not None:
        notes.append("not judged (the checker cannot evaluate them): " + "; ".join(skipped[:5])
                     + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
    cone = cones(judged)
    roots = {j.id: j for j in judged if not j.ok.all()}
    expected_at = expectations(judged, engine, expected_of)
    results, mistakes = [], []
    for j in judged:
        b, n = j.block, j.block.n
        c = b.column(j.key)
        n_correct = int(j.correct.sum())
        status = "root cause" if j.id in roots else ("correct" if n_correct == n else "knock-on")
        res = ColumnResult(j.key, c.header, j.col_letters, j.exercise, n_correct, n, status,
                           local_correct=int(j.counted_right.sum()), sheet=shifts[b.sheet].sheet, **column_marks(j))
        if n_correct < n:
            i = int(np.argmax(~j.correct))
            formula = stores[shifts[b.sheet].sheet].sheet.formula(int(j.rows[i]), j.col)
            res.first_wrong = {"step": int(b.step[i]), "cell": cell_ref(j, i), "sheet": res.sheet,
                               "expected": expected_at(j, i) if status == "root cause" else None,
                               "found": found_at(j, i), "formula": f"={formula}" if formula else None}
        if status == "knock-on":
            upstream = [r for r in roots.values() if r.id in cone[j.id]]
            res.knock_on_of = [r.key for r in sorted(upstream, key=lambda r: (int(r.block.step[np.argmax(~r.ok)]),
                                                                               r.key))]
        if j.id in roots:
            i = int(np.argmax(~j.ok))
            ctx = BlockContext(b, shifts, stores, names)
            name = diagnose(j, ctx, shifts, stores, i)
            m = CATALOGUE[name]
            path = getattr(j, "cycle", None)
            if path and name == "circular_reference":  # the cycle in words
                m = replace(m, hint=CIRCULAR_HINT.format(path=path))
            elif path:  # own_row_update: a cycle by definition, and its title says so
                m = replace(m, title=f"{m.title} (a circular reference: {path})")
            formula = stores[shifts[b.sheet].sheet].sheet.formula(int(j.rows[i]), j.col)
            mistakes.append({"column": j.key, "header": c.header, "letter": j.col_letters, "sheet": res.sheet,
                             "block": b.name, "mistake": name, "title": m.title, "hint": m.hint,
                             "step": int(b.step[i]), "cell": cell_ref(j, i), "expected": expected_at(j, i),
                             "found": found_at(j, i), "formula": f"={formula}" if formula else None,
                             "cells": int((~j.ok).sum()), "exercise": j.exercise,
                             "wrong_cells": wrong_cells(j, expected_at, found_at),
                             "errors": _error_values(j, stores[shifts[b.sheet].sheet])})
        results.append(res)
    order = {(b.name, c.key): (k, i) for k, b in enumerate(blocks) for i, c in enumerate(b.columns)}
    mistakes.sort(key=lambda m: (m["step"], order[(m["block"], m["column"])]))
    return results, mistakes


def found_at(j, i: int):
    """What the student's cell holds: None (shown as empty) for a blank, however the file was saved."""
    return None if j.blank[i] else plain(j.found[i])


def _error_values(j, store) -> dict | None:
    """Where a root-cause column shows error values (#VALUE!, #REF!, …): what a student sees first, named
    as the catalogue's error_value beside the root cause that produced them."""
    if j.errors is None or not j.errors.any():
        return None
    i = int(np.argmax(j.errors))
    m = CATALOGUE["error_value"]
    return {"mistake": "error_value", "title": m.title, "hint": m.hint, "cells": int(j.errors.sum()),
            "step": int(j.block.step[i]), "cell": cell_ref(j, i), "code": str(store.raw_at(int(j.rows[i]), j.col))}


def _strict(report, path, book, blocks, exercise, shifts, stores, names, mistakes, results) -> None:
    """Recalculate (IronCalc) with other learning rates and start values and judge again: a cell that
    followed before but not now holds typed numbers (``hard_coded``)."""
    inputs, changed = {}, []
    for name, cell in name_cells(book).items():
        if name.lower().endswith("lr") and np.isfinite(names.get(name, np.nan)):
            inputs[cell] = names[name] * 0.5
            changed.append(f"{name} = {names[name] * 0.5:g}")
    for b in blocks:  # the start row above each recurrence: the values the first row's {p} references read
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        for c in b.columns:
            if c.pattern and is_update(c.key):
                row, col = b.first_row + shift.rows, c.col + 1 + shift.cols
                v = store.gather(np.array([row]), np.array([col]))[0]
                if not store.cells(np.array([row]), np.array([col]))[1][0] and np.isfinite(v):
                    inputs[(shift.sheet, row, col)] = v + 0.25 * (1 + abs(v))
    source = _ironcalc_model(path, inputs)
    stores = _stores(book, shifts, source)
    for (sheet, row, col), value in inputs.items():  # input cells hold values: the store takes them as changed
        if sheet in stores:
            stores[sheet].set(row, col, value)
    names2 = dict(names)
    for name in list(names2):
        if name.lower().endswith("lr"):
            names2[name] = names2[name] * 0.5
    again, mismatches = _judge(blocks, exercise, shifts, stores, names2)
    report.strict = {"perturbation": ", ".join(changed) + (" and the initial values" if inputs else ""),
                     "mismatches": mismatches}
    flagged = {(m["block"], m["column"]) for m in mistakes}
    hard = CATALOGUE["hard_coded"]
    for m in mismatches:
        if (m["block"], m["column"]) not in flagged:
            report.mistakes.append({**m, "mistake": hard.name, "title": hard.title, "hint": hard.hint})
    for col, other in zip(results, again):
        col.correct = min(col.correct, other.correct)
        col.local_correct = min(col.local_correct, other.local_correct)
        merge_marks(col, other)
        if other.status == "root cause":
            col.status = "root cause"
    if report.mistakes:
        report.status = "mistakes"
