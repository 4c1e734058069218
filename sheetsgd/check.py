"""Checking a student-edited workbook: every cell by value and locally, root causes before knock-ons.

For every formula column of the Steps sheet and every step:

* **locally**: does the cell's value follow from the student's own values of the cells it reads?
  The column's reference template is evaluated on the sheet's values (:mod:`sheetsgd.localeval`).
  A cell that does not is a *root cause*; the catalogue (:mod:`sheetsgd.mistakes`) and the formula
  text name the likely mistake.
* **by value**: is the cell what the engine computes from the student's inputs (lr, initial
  parameters, data)? A cell wrong by value but right locally is a *knock-on* of a root cause
  upstream, reported under it, never as a mistake of its own.

A sheet without root causes equals the engine by induction (every cell follows from correct cells,
and the templates are proven equal to the engine in LibreOffice by the test suite), so the engine
only runs when something is wrong: its values are then the "expected" ones in the report.
"""
from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .engine import make_batches, train
from .errors import SheetsgdError
from .engines import choose_engine, mark_cannot_judge
from .recalc import libreoffice_path
from .structural import divergence_step
from .lesson import Lesson
from .localeval import Context, TemplateError, Val, agree, evaluate_template
from .mistakes import CATALOGUE, variants
from .student import dependencies
from .submission import Submission, locate
from .xlsxread import CellError, Limits, Workbook, column_index, column_letters

GLOBAL_REL = 1e-7  # sheet vs engine after a root cause: long chains of 15-digit values drift a little
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
            return f"{self.path}: cannot check: {self.message}"
        lines = []
        les = self.lesson
        lines.append(f"{self.path}: lesson {les.get('name')} ({les.get('optimizer')}, {les.get('loss')}, "
                     f"{les.get('steps')} steps); exercise: {', '.join(les.get('exercise', [])) or 'none'}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.mistakes:
            lines.append(f"Root causes ({len(self.mistakes)}):")
            for m in self.mistakes:
                lines.append(f"  ✗ {m['header']} ({m['column']}, column {m['letter']}): {m['title']} — first at step "
                             f"{m['step']} ({m['cell']}): expected {_fmt(m['expected'])}, found {_fmt(m['found'])}, "
                             f"formula {m['formula'] or '(none)'}; {m['cells']} cell(s)")
                lines.append(f"    hint: {m['hint']}")
        knock = [c for c in self.columns if c.status == "knock-on"]
        if knock:
            lines.append("Knock-ons (wrong only because a cell they read is wrong; not separate mistakes):")
            for c in knock:
                lines.append(f"  · {c.header} ({c.key}): {c.correct}/{c.total} correct, follows from "
                             f"{', '.join(c.knock_on_of)}")
        lines.append("Exercise columns:")
        for c in self.columns:
            if c.exercise:
                mark = "✓" if c.correct == c.total else "✗"
                first = ""
                if c.first_wrong:
                    f = c.first_wrong
                    first = (f"  first wrong: step {f['step']} ({f['cell']}) expected {_fmt(f['expected'])}, "
                             f"found {_fmt(f['found'])}, formula {f['formula'] or '(none)'}")
                lines.append(f"  {mark} {c.header:<24} {c.key:<10} {c.correct}/{c.total}{first}")
        if self.strict is not None:
            if self.strict.get("mismatches"):
                lines.append("Strict (inputs perturbed, recalculated): cells that did not follow:")
                for m in self.strict["mismatches"]:
                    lines.append(f"  ✗ {m['header']} ({m['column']}): first at step {m['step']} ({m['cell']}): "
                                 f"expected {_fmt(m['expected'])}, found {_fmt(m['found'])}")
            else:
                lines.append(f"Strict: with {self.strict.get('perturbation')} every checked cell still matches the engine.")
        correct, total = self.score
        share = f" ({100 * correct / total:.1f}%)" if total else ""
        lines.append(f"Score: {correct}/{total} exercise cells correct{share} — "
                     + ("all correct" if self.status == "correct" else f"{len(self.mistakes)} mistake(s)"))
        if self.status != "correct" and total:
            lines.append(f"Formulas right: {self.formulas_right}/{total} exercise cells follow from your own values "
                         "(knock-ons not counted against you)")
        return "\n".join(lines)


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _fmt(x) -> str:
    if x is None:
        return "(empty)"
    if isinstance(x, float):
        return "not a number" if not math.isfinite(x) else f"{x:.10g}"
    return str(x)


def _plain(x):
    """A JSON-friendly scalar."""
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, CellError):
        return str(x)
    return x


# --- reading the sheet's values ---------------------------------------------------------------------

@dataclass
class Grid:
    """The Steps columns as arrays: numeric values (blank → 0 as spreadsheets read it, error/text → NaN),
    the raw values, which cells hold formulas, which are blank."""

    values: dict[str, np.ndarray]
    raw: dict[str, list]
    formula: dict[str, np.ndarray]
    blank: dict[str, np.ndarray]
    start: dict[str, float]


def _to_float(v) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, float):
        return v
    return math.nan


def read_grid(sub: Submission, value_source=None) -> tuple[Grid, bool]:
    """The sheet's values per column; ``value_source(row, col)`` overrides cached values (recalculation).
    Returns the grid and whether some formula cell had no cached value."""
    values, raw, formula, blank, start = {}, {}, {}, {}, {}
    missing_cache = False
    for c in sub.columns:
        col = sub.col_of[c.key]
        vals, has_f, uncached = sub.sheet.numbers(col, sub.step_rows)
        if value_source is not None:
            vals = [value_source(r, col) for r in sub.step_rows]
        missing_cache |= bool(np.any(uncached))
        if isinstance(vals, np.ndarray):
            arr = vals
            vals = arr.tolist()
        else:
            arr = np.array([_to_float(v) for v in vals], dtype=float)
        raw[c.key] = vals
        values[c.key] = np.where(np.isfinite(arr), arr, np.nan)
        formula[c.key] = np.array(has_f, dtype=bool)
        blank[c.key] = np.array([v is None for v in vals], dtype=bool) & ~formula[c.key]
        start[c.key] = _to_float((value_source or sub.sheet.value)(sub.start_row, col))  # blank reads as 0
    return Grid(values, raw, formula, blank, start), missing_cache


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


def _ironcalc_source(sub: Submission, path: str | None = None, inputs: dict | None = None):
    """Recalculate with IronCalc (embedded, pip-installed); ``inputs`` {(sheet, row, col): number} first."""
    try:
        import ironcalc
    except ImportError:  # pragma: no cover - a declared dependency
        raise SheetsgdError("the embedded engine (ironcalc) is not installed: pip install ironcalc") from None
    try:
        with _quiet_native_output():  # IronCalc prints a line per formula cell without a cached value
            model = ironcalc.load_from_xlsx(path or sub.path, "en", "UTC")
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
                            f"{str(exc)[:120]})", sub.path) from None
    index = names.index(sub.sheet.name)

    def value(row, col):
        v = model.get_cell_value(index, row, col)
        if isinstance(v, str) and v.startswith("#"):
            return CellError(v)  # IronCalc's errors (#CIRC!, #NUM!, …): never a number
        return v if not isinstance(v, int) or isinstance(v, bool) else float(v)
    return value


def _libreoffice_source(sub: Submission, limits: Limits):
    from .recalc import recalc_libreoffice

    tmp = tempfile.mkdtemp(prefix="sheetsgd-check-")
    src = Path(tmp, "in")
    src.mkdir()
    copy = src / "submission.xlsx"
    copy.write_bytes(Path(sub.path).read_bytes())  # LibreOffice works on a copy: the input is never touched
    [out] = recalc_libreoffice([copy], Path(tmp, "out"))
    book = Workbook(str(out), limits)
    sheet = book.sheet(sub.sheet.name)
    return sheet.value


# --- judging --------------------------------------------------------------------------------------

def _context(sub: Submission, grid: Grid, lesson: Lesson | None = None) -> Context:
    lesson = lesson or sub.lesson
    n = len(sub.step_rows)
    x, y = lesson.data.x, lesson.data.y
    if lesson.batch_size == 1:
        def data(name):
            col = x if name == "x" else y
            return Val(col, np.abs(col), full=True)
    else:
        batches = [b for _, b in (sub.batches if lesson is sub.lesson else make_batches(lesson))]
        width = max(len(b) for b in batches)
        mask = np.zeros((n, width), dtype=bool)
        xs, ys = np.zeros((n, width)), np.zeros((n, width))
        for i, b in enumerate(batches):
            mask[i, :len(b)] = True
            xs[i, :len(b)], ys[i, :len(b)] = x[b], y[b]

        def data(name):
            col = xs if name == "x" else ys
            return Val(col, np.abs(col), mask=mask)
    return Context(n, grid.values, grid.start, sub.hyper, data)


_REF = re.compile(r"(?:(?:'((?:[^']|'')+)'|([A-Za-z_][\w.]*))!)?(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7})(?![\w(])")


def formula_refs(formula: str, sub: Submission, row: int) -> list[dict]:
    """The Steps-sheet references of a formula, each as the column key (or input name) and row offset."""
    key_of = {c: k for k, c in sub.col_of.items()}
    input_at = {(r, c): name for name, (s, r, c) in sub.hyper_cells.items() if s == sub.sheet.name}
    out = []
    for m in _REF.finditer(re.sub(r'"[^"]*"', '""', formula)):
        sheet = (m.group(1) or "").replace("''", "'") or m.group(2)
        if sheet and sheet != sub.sheet.name:
            continue
        col, r = column_index(m.group(4)), int(m.group(6))
        out.append({"text": m.group(0), "key": key_of.get(col), "offset": r - row, "row": r,
                    "input": input_at.get((r, col)), "row_anchored": bool(m.group(5)),
                    "above_table": r <= sub.header_row})
    return out


def _diagnose(sub: Submission, grid: Grid, column, bad: np.ndarray, ctx: Context) -> str:
    """The name of the likely mistake behind a column's locally wrong cells."""
    key = column.key
    first = int(np.argmax(bad))
    row = sub.step_rows[first]
    if grid.blank[key][first]:
        return "blank"
    if key not in sub.exercise and not column.formula:
        return "given_changed"
    if not grid.formula[key][first]:
        return "constant_typed"
    formula = sub.sheet.formula(row, sub.col_of[key]) or ""
    refs = formula_refs(formula, sub, row)
    if not refs:
        return "constant_typed"
    this, prev = dependencies(column)
    params = sub.lesson.model_cls().params
    for ref in refs:  # an input or any cell above the table referenced without $: drifts when filled down
        if ref["above_table"] and not ref["row_anchored"] and first > 0:
            return "lr_relative"
    found = grid.values[key]
    wrong = np.flatnonzero(bad)
    for name, template in variants(sub.lesson, column):
        try:
            expected, mag = evaluate_template(template, ctx)
        except TemplateError:
            continue
        if np.all(agree(found[wrong], expected[wrong], mag[wrong], rel=1e-7)):
            return name
    for ref in refs:  # this step's updates (or the next row's parameters, the same cells' values) read back
        k, off = ref["key"], ref["offset"]
        if k and k.startswith("new_") and k[4:] in params and off == 0 and k not in this:
            return "own_row_update"
        if k in params and off == 1:
            return "own_row_update"
    for ref in refs:
        k, off = ref["key"], ref["offset"]
        if k is None or ref["above_table"]:
            continue
        allowed = ({0} if k in this else set()) | ({-1} if k in prev else set())
        if k in params and f"new_{k}" in prev | this:
            allowed |= {0}
        if k.startswith("new_") and k[4:] in this:
            allowed |= {-1}
        if allowed and off not in allowed:
            return "wrong_row"
    if isinstance(grid.raw[key][first], CellError) or not np.isfinite(found[first]):
        return "error_value"
    return "unrecognised"


def _cones(columns) -> dict[str, set[str]]:
    deps = {c.key: set().union(*dependencies(c)) for c in columns}
    cone = {}
    for key in deps:
        seen, todo = set(), [key]
        while todo:
            k = todo.pop()
            for d in deps.get(k, ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        cone[key] = seen
    return cone


def _given_values_ok(sub: Submission, grid: Grid) -> dict[str, np.ndarray]:
    """Value columns (step, epoch, example #, batch bounds) must be as the lesson lays them out."""
    batches = sub.batches
    expected = {"step": np.arange(1, len(batches) + 1, dtype=float),
                "epoch": np.array([e for e, _ in batches], dtype=float)}
    if sub.lesson.batch_size == 1:
        expected["example"] = np.array([b[0] + 1 for _, b in batches], dtype=float)
    out = {}
    for c in sub.columns:
        if c.formula is None and c.key in expected:
            out[c.key] = grid.values[c.key] == expected[c.key]
    return out


def judge(sub: Submission, grid: Grid) -> tuple[list[ColumnResult], list[dict]]:
    ctx = _context(sub, grid)
    n = len(sub.step_rows)
    local_ok, local_expected = {}, {}
    for c in sub.columns:
        if c.formula is None:
            continue
        try:
            expected, mag = evaluate_template(c.formula, ctx)
        except TemplateError as exc:  # pragma: no cover - the templates are ours
            raise SheetsgdError(f"internal: cannot evaluate column {c.key}: {exc}") from None
        ok = agree(grid.values[c.key], expected, mag)
        ok &= ~grid.blank[c.key]
        if c.key in sub.exercise:
            ok &= grid.formula[c.key]  # a typed number is never right, even when it shows the right value
        local_ok[c.key], local_expected[c.key] = ok, expected
    for key, ok in _given_values_ok(sub, grid).items():
        local_ok[key], local_expected[key] = ok, None

    roots = {k: int(np.argmax(~ok)) for k, ok in local_ok.items() if not ok.all()}
    engine = None
    if roots:
        with np.errstate(all="ignore"):
            engine = train(sub.lesson).steps
    cones = _cones(sub.columns)
    by_key = {c.key: c for c in sub.columns}
    results, mistakes = [], []
    for c in sub.columns:
        if c.key not in local_ok:
            continue
        ok = local_ok[c.key]
        upstream = {d: s for d, s in roots.items() if d in cones[c.key] or d == c.key}
        first_root = min(upstream.values(), default=n)
        if engine is not None and c.key in engine:
            e = engine[c.key]
            by_value = agree(grid.values[c.key], e, np.abs(e), rel=GLOBAL_REL)
            correct = ok & (by_value | (np.arange(n) < first_root))
        else:
            e = local_expected[c.key]
            correct = ok
        n_correct = int(correct.sum())
        status = "root cause" if c.key in roots else ("correct" if n_correct == n else "knock-on")
        res = ColumnResult(c.key, c.header, column_letters(sub.col_of[c.key]), c.key in sub.exercise,
                           n_correct, n, status, local_correct=int(ok.sum()))
        if n_correct < n:
            i = int(np.argmax(~correct))
            res.first_wrong = {"step": i + 1, "cell": sub.cell_ref(c.key, i),
                               "expected": _plain(e[i]) if e is not None else None,
                               "found": _plain(grid.raw[c.key][i]),
                               "formula": _formula_text(sub, c.key, i)}
        if status == "knock-on":
            res.knock_on_of = [by_key[d].key for d in sorted(upstream, key=lambda d: (upstream[d], d)) if d != c.key]
        if c.key in roots:
            bad = ~ok
            name = _diagnose(sub, grid, c, bad, ctx)
            i = roots[c.key]
            m = CATALOGUE[name]
            local = local_expected[c.key]
            mistakes.append({"column": c.key, "header": c.header, "letter": res.letter, "mistake": name,
                             "title": m.title, "hint": m.hint, "step": i + 1, "cell": sub.cell_ref(c.key, i),
                             "expected": _plain(local[i]) if local is not None else None,
                             "found": _plain(grid.raw[c.key][i]), "formula": _formula_text(sub, c.key, i),
                             "cells": int(bad.sum()), "exercise": c.key in sub.exercise})
        results.append(res)
    order = {c.key: i for i, c in enumerate(sub.columns)}
    mistakes.sort(key=lambda m: (m["step"], order[m["column"]]))
    return results, mistakes


def _formula_text(sub: Submission, key: str, i: int) -> str | None:
    f = sub.sheet.formula(sub.step_rows[i], sub.col_of[key])
    return f"={f}" if f is not None else None


# --- strict: the same formulas with other inputs ---------------------------------------------------

def strict_check(sub: Submission, path: str | None = None) -> tuple[dict, list[ColumnResult]]:
    """Recalculate (IronCalc) with another lr and other initial parameters and judge again, root causes
    and knock-ons as usual: a cell that followed before but not now holds typed numbers."""
    lr = sub.hyper["lr"] * 0.5
    params = sub.lesson.model_cls().params
    init = {p: sub.lesson.init[p] + 0.25 * (1 + abs(sub.lesson.init[p])) for p in params}
    inputs = {sub.hyper_cells["lr"]: lr}
    for p in params:
        inputs[(sub.sheet.name, sub.start_row, sub.col_of["new_" + p])] = init[p]
    perturbed = replace(sub, lesson=replace(sub.lesson, hyper={**sub.lesson.hyper, "lr": lr}, init=init),
                        hyper={**sub.hyper, "lr": lr})
    grid, _ = read_grid(perturbed, _ironcalc_source(sub, path, inputs))
    results, mistakes = judge(perturbed, grid)
    return ({"perturbation": f"lr = {lr:g} and initial {', '.join(f'{p} = {v:g}' for p, v in init.items())}",
             "mismatches": mistakes}, results)


# --- the whole check -------------------------------------------------------------------------------

def check(path: str, recalc: str = "auto", strict: bool = False, limits: Limits = Limits()) -> Report:
    """Check one workbook. Never raises for a bad file: the report says why it cannot be checked."""
    try:
        return _check(str(path), recalc, strict, limits)
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


def structural_mistakes(sub: Submission, mistakes: list[dict]) -> list[dict]:
    """Deleted step rows and circular references, named as such (sheetsgd.structural)."""
    from .structural import deleted_row_mistakes, name_circular

    mistakes = name_circular(sub, mistakes, formula_refs, column_letters)
    return deleted_row_mistakes(sub.missing_steps, sub.step_rows, sub.sheet.name, mistakes)


def _check(path: str, recalc: str, strict: bool, limits: Limits) -> Report:
    sub = locate(path, limits)
    grid, missing_cache = read_grid(sub)
    recalculated_by = None
    engine, findings, engine_note = choose_engine(sub, recalc, missing_cache, libreoffice_path)
    if engine == "libreoffice":
        grid, _ = read_grid(sub, _libreoffice_source(sub, limits))
        recalculated_by = "libreoffice"
    elif engine == "ironcalc":
        grid, _ = read_grid(sub, _ironcalc_source(sub))
        recalculated_by = "ironcalc"
    results, mistakes = judge(sub, grid)
    mistakes = structural_mistakes(sub, mistakes)
    lesson = sub.lesson
    overflow = [s for c in sub.columns if c.key.startswith("new_")
                for s in [divergence_step(grid.values[c.key])] if s is not None]
    if overflow:  # judged like every other cell: an error where the engine overflows is right
        sub.notes.append(f"training diverges: the parameters overflow from step {min(overflow) + 1} on "
                         f"({'as the engine does' if not mistakes else 'see the mistakes'})")
    report = Report(path, "mistakes" if mistakes else "correct", lesson={
        "name": lesson.name, "model": lesson.model, "loss": lesson.loss, "optimizer": lesson.optimizer,
        "batch_size": lesson.batch_size, "epochs": lesson.epochs, "steps": len(sub.step_rows),
        "inputs": sub.hyper, "initial": lesson.init, "exercise": sub.exercise, "steps_sheet": sub.sheet.name},
        columns=results, mistakes=mistakes, notes=list(sub.notes), recalculated_by=recalculated_by)
    if recalculated_by:
        report.notes.append(f"values recalculated by {'IronCalc' if recalculated_by == 'ironcalc' else 'LibreOffice'}"
                            + (" (the file stores no computed values)" if missing_cache else ""))
    if engine_note:
        report.notes.append(engine_note)
    mark_cannot_judge(report, findings)
    if strict:
        report.strict, strict_results = strict_check(sub)
        flagged = {m["column"] for m in mistakes}
        hard = CATALOGUE["hard_coded"]
        for m in report.strict["mismatches"]:
            if m["column"] not in flagged:
                report.mistakes.append({**m, "mistake": hard.name, "title": hard.title, "hint": hard.hint})
        for col, again in zip(results, strict_results):
            col.correct = min(col.correct, again.correct)
            col.local_correct = min(col.local_correct, again.local_correct)
            if again.status == "root cause":
                col.status = "root cause"
        if report.mistakes:
            report.status = "mistakes"
    return report
