"""Checking a student-edited workbook of any lesson kind: every cell locally, root causes before knock-ons.

The hidden manifest names the lesson (its template and options) and where its blocks were written.
The lesson is rebuilt without writing anything, which gives every block's row patterns and the
engine's values; :mod:`sheetsgd.check.placement` finds the blocks in the student's file (after inserted
rows, renamed sheets …) and :mod:`sheetsgd.check.judge` judges every cell of every block: locally (does it
follow from the student's own values?) and by induction (are the cells it reads right?). A cell wrong
only because of a wrong cell upstream is a knock-on, reported under its root cause.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from sheetsgd.sheet.blocks import Block, is_update
from sheetsgd.errors import SheetsgdError
from .judge import BlockContext, PatternValues, cell_ref, cones, judge_blocks
from .judge import expected_at as expected_of
from .assignment import identity
from .judge import _propagate as propagate
from .cellmarks import column_marks, merge_marks, wrong_cells
from .conventions import attribute_upstream, convention_rows, expectations
from sheetsgd.check.mistakes.diagnose import diagnose
from sheetsgd.check.recalc.engines import EXP_OVERFLOW, differences_in, mark_cannot_judge, mark_exp_overflow, scan
from .structural import CIRCULAR_HINT, deleted_row_mistakes, divergence_step
from sheetsgd.check.recalc.libreoffice import libreoffice_path
from sheetsgd.check.mistakes.catalogue import CATALOGUE
from .own_formulas import settle, verify
from sheetsgd.check.recalc.child import ironcalc_sources, libreoffice_book
from .placement import SheetValues, find_blocks, plain
from .report import EXIT_CANNOT, EXIT_CORRECT, EXIT_MISTAKES, ColumnResult, Report, audit  # noqa: F401 (the API)
from .rebuild import _names, changed_names, name_cells, rebuild
from .submission import read_manifest
from sheetsgd.read.workbook import CellError, Limits, Workbook, column_letters



# --- the whole check -------------------------------------------------------------------------------

def check(path: str, recalc: str = "auto", strict: bool = False, limits: Limits = Limits(),
          verify_formulas: bool = True) -> Report:
    """Check one workbook. Never raises for a bad file: the report says why it cannot be checked.
    ``verify_formulas=False`` trusts saved values (only the benchmark measures what verifying costs)."""
    try:
        report = _check(str(path), recalc, strict, limits, verify_formulas)
        if report.recalculated_by == "ironcalc" and mark_exp_overflow(report) and recalc == "auto" \
                and libreoffice_path():  # an overflow IronCalc computes on with: LibreOffice decides
            cell = next(m["cell"] for m in report.mistakes if m["mistake"] == "cannot_judge")
            report = _check(str(path), "libreoffice", strict, limits, verify_formulas)
            report.notes.insert(0, f"recalculated by LibreOffice: IronCalc computes {EXP_OVERFLOW.what} "
                                   f"differently ({cell})")
        return audit(report)
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
            values = store.gather(rows, shift.col(c.col))
            bad = np.flatnonzero(~np.isfinite(values))
            if not len(bad):
                continue
            raw = store.raw_at(int(rows[bad[0]]), shift.col(c.col))
            if isinstance(raw, CellError) and str(raw) != "#NUM!":
                continue  # #VALUE!, #REF!, #CIRC!, …: a broken formula, not a divergence
            if not isinstance(raw, CellError) and divergence_step(values) is None:
                continue  # no number grew past every bound before it
            step = int(b.step[bad[0]])
            first = step if first is None else min(first, step)
    return first


def _stores(book: Workbook, shifts, source=None) -> dict[str, SheetValues]:
    return {s.sheet: SheetValues(book.sheet(s.sheet), source(s.sheet) if source else None) for s in shifts.values()}


def _check(path: str, recalc: str, strict: bool, limits: Limits, verify_formulas: bool = True) -> Report:
    book = Workbook(path, limits)
    manifest, manifest_sheet = read_manifest(book)
    expected_names: dict[str, str] = {}
    lesson, blocks, exercise = rebuild(path, book, manifest, manifest_sheet, limits, names_out=expected_names)
    student_version = any(exercise.values())
    if not student_version:  # a full workbook: its template's exercise columns are what is scored
        from sheetsgd.lessons.exercise import resolve
        try:
            exercise = resolve(blocks, None, list(getattr(lesson, "exercise", []) or []))
            exercise = lesson.blank_with(exercise) if hasattr(lesson, "blank_with") else exercise  # as students get
        except SheetsgdError:
            exercise = {}
    entries = [dict(b.manifest(), steps_are_rows=list(b.values.get("step", [])) == list(range(1, b.n + 1)))
               for b in blocks]
    shifts = find_blocks(book, entries)
    stores = _stores(book, shifts)
    notes, recalculated_by = [], None
    missing_cache = any(s.missing_cache for s in stores.values())
    findings, settled = [], {}
    names, patterns = _expectations(book, expected_names, shifts, stores)
    if recalc == "auto" and not missing_cache and verify_formulas:  # every saved value against its own formula
        settled, engine_stores, engine = _verified(path, book, blocks, shifts, stores, limits, patterns)
        if engine_stores is not None:
            stores, recalculated_by = engine_stores, engine
            if engine == "ironcalc":  # as for a file without values: cells IronCalc computes otherwise are not judged
                findings = [f for view in _exercise_views(blocks, exercise, shifts, stores) for f in scan(view)]
            notes.append("saved values that do not follow from their formulas: every cell judged on the values "
                         f"{'IronCalc' if engine == 'ironcalc' else 'LibreOffice'} recalculates")
    if recalc == "ironcalc" or (recalc == "auto" and missing_cache):
        # formulas IronCalc computes differently (sheetsgd.check.recalc.engines): LibreOffice instead where installed
        findings = [f for view in _exercise_views(blocks, exercise, shifts, stores) for f in scan(view)]
        if findings and recalc == "auto" and libreoffice_path():
            recalc = "libreoffice"
            notes.append(f"recalculated by LibreOffice: IronCalc computes {findings[0].difference.what} "
                         f"differently ({findings[0].cell})")
            findings = []
    if recalc == "libreoffice":
        lo_book = libreoffice_book(path, book, limits)
        stores = {name: SheetValues(lo_book.sheet(name)) for name in stores}
        recalculated_by = "libreoffice"
    elif recalc == "ironcalc" or (recalc == "auto" and missing_cache):
        stores = _stores(book, shifts, ironcalc_sources(path, book, list(stores)).__getitem__)
        recalculated_by = "ironcalc"
    if stores is not patterns.stores:  # recalculated: names and expectations on the engine's values
        names, patterns = _expectations(book, expected_names, shifts, stores)
    results, mistakes = _judge(blocks, exercise, shifts, stores, names, notes, settled,
                               engine=lambda: rebuild(path, book, manifest, manifest_sheet, limits, numbers=True)[1],
                               patterns=patterns)
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
        "steps_sheet": shifts.get(blocks[0].sheet).sheet if blocks else None,
        "identity": identity(manifest.get("origin")), "student_version": student_version},
        columns=results, mistakes=mistakes, notes=notes, recalculated_by=recalculated_by)
    if recalculated_by:
        report.notes.append(f"values recalculated by {'IronCalc' if recalculated_by == 'ironcalc' else 'LibreOffice'}"
                            + (" (the file stores no computed values)" if missing_cache else ""))
    mark_cannot_judge(report, findings)
    if strict:
        _strict(report, path, book, blocks, exercise, shifts, stores, names, mistakes, results)
    report.settle()
    return report


def _expectations(book, expected_names, shifts, stores):
    """(the defined names' values, a changed name made a problem for the cells reading it; the patterns'
    values on ``stores``, evaluated once for the verification and the judge)."""
    names = _names(book, stores)
    changed_names(book, expected_names, shifts, names)
    return names, PatternValues(shifts, stores, names)


def _verified(path, book, blocks, shifts, stores, limits, patterns=None):
    """(cells whose saved values do not follow from their own formulas, per column; the engine's values where
    some do, else None; the engine). Doubtful cells are settled by a recalculation in a child process:
    IronCalc, or LibreOffice where installed when IronCalc computes one of their formulas differently."""
    verification = verify(book, blocks, shifts, stores, _names(book, stores), patterns)
    engine_stores = engine = error = None
    if verification.needs_engine:
        doubtful = verification.cells("suspect") + verification.cells("unknown")
        lo = libreoffice_path() and any(differences_in(book.sheet(s).formula(r, c) or "") for s, r, c in doubtful[:200])
        try:
            if lo:
                lo_book, engine = libreoffice_book(path, book, limits), "libreoffice"
                engine_stores = {name: SheetValues(lo_book.sheet(name)) for name in stores}
            else:
                sources, engine = ironcalc_sources(path, book, list(stores)), "ironcalc"
                engine_stores = _stores(book, shifts, sources.__getitem__)
        except SheetsgdError as exc:
            error = f"not recalculated: {exc.message}"
    settled = settle(verification, stores, engine_stores, error)
    forged = any(name == "value_not_from_formula" for _, name, _ in settled.values())
    return settled, engine_stores if forged and engine_stores is not None else None, engine


def _optimizers_of(lesson) -> str | None:
    """A comparison's optimizers, in sheet order (other kinds without one optimizer: None)."""
    runs = lesson.lessons() if hasattr(lesson, "lessons") else {}
    return ", ".join(dict.fromkeys(les.optimizer for les in runs.values())) or None


class _ExerciseView:
    """One block's exercise columns as sheetsgd.check.recalc.engines scans them: keys, columns, rows, the sheet."""

    def __init__(self, block: Block, keys, shift, store):
        self.exercise = sorted(keys)
        self.col_of = {k: shift.col(block.column(k).col) for k in self.exercise}
        self.step_rows = [int(r) for r in shift.to_student(np.arange(block.first_row + 1, block.first_row + 1 + block.n))]
        self.sheet = store.sheet
        self._steps = block.step

    def cell_ref(self, key: str, i: int) -> str:
        return f"{column_letters(self.col_of[key])}{self.step_rows[i]}"


def _exercise_views(blocks, exercise, shifts, stores):
    return [_ExerciseView(b, exercise[b.name], shifts[b.sheet], stores[shifts[b.sheet].sheet])
            for b in blocks if exercise.get(b.name)]


def _judge(blocks: list[Block], exercise, shifts, stores, names, notes=None, settled=None, engine=None, patterns=None):
    skipped, settled = [], settled or {}
    judged = judge_blocks(blocks, exercise, shifts, stores, names, skipped, {k: v[0] for k, v in settled.items()},
                          patterns)
    convention_rows(judged, lambda b: BlockContext(b, shifts, stores, names))
    if attribute_upstream(judged):  # rows ŷ reached the clipped range through a mistake upstream
        propagate({j.id: j for j in judged})
    if skipped and notes is not None:
        notes.append("cannot be judged, so counted as not right: " + "; ".join(skipped[:5])
                     + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""))
    roots = {j.id: j for j in judged if not j.ok.all()}
    cone = cones(judged) if roots else {}  # a knock-on needs a root cause upstream
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
            if j.exercise and any(not r.exercise for r in upstream):  # forgiven only after the student's own
                res.local_correct = res.correct  # exercise mistakes: a changed given cell is not worked around
            res.knock_on_of = [r.key for r in sorted(upstream, key=lambda r: (int(r.block.step[np.argmax(~r.ok)]),
                                                                               r.key))]
        if j.id in roots:
            # a changed defined name explains what it breaks first; then a saved value not from its formula
            renamed = bool(j.unjudged) and j.unjudged.startswith("the defined name")
            not_following = None if renamed else settled.get(j.id)
            i = int(np.argmax(not_following[0] if not_following else ~j.ok))
            if not_following:
                name = not_following[1]
                m = CATALOGUE[name]
            elif j.unjudged:  # every cell counts as not right, and the reason is the finding
                name = "input_name_changed" if j.unjudged.startswith("the defined name") else "not_judged"
                m = replace(CATALOGUE[name], title=f"{CATALOGUE[name].title}: {j.unjudged}")
            else:
                name = diagnose(j, BlockContext(b, shifts, stores, names), shifts, stores, i)
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
                             "cells": int((~j.ok).sum() if not not_following else not_following[0].sum()),
                             "exercise": j.exercise, **({"not_following": not_following[2]} if not_following else {}),
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
                row, col = b.first_row + shift.rows, shift.col(c.col)
                v = store.gather(np.array([row]), np.array([col]))[0]
                if not store.cells(np.array([row]), np.array([col]))[1][0] and np.isfinite(v):
                    inputs[(shift.sheet, row, col)] = v + 0.25 * (1 + abs(v))
    stores = _stores(book, shifts, ironcalc_sources(path, book, list(stores), inputs).__getitem__)
    for (sheet, row, col), value in inputs.items():  # input cells hold values: the store takes them as changed
        if sheet in stores:
            stores[sheet].set(row, col, value)
    names2 = type(names)(names)
    names2.problems = getattr(names, "problems", {})
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
