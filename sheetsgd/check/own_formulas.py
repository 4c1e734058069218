"""Every formula cell the checker reads: does its saved value follow from its own formula?

The judge (:mod:`sheetsgd.check.judge`) evaluates the *lesson's* row patterns on the student's values, so a file
whose formulas were replaced while their saved values were kept would pass it. Here each cell's *own*
formula text is evaluated on the file's values: parsed by :mod:`sheetsgd.sheet.a1`, evaluated by
:mod:`sheetsgd.sheet.evaluate`. Cells are grouped by form: texts equal but for the row numbers of their
references (what filling down makes) are one group, parsed once, each reference's row a per-cell field,
evaluated as one numpy pass, so a filled-down column is one pass whatever rows its ranges cover; the
texts of a sheet's columns are read and grouped as one batch by array operations over the sheet's bytes
(:mod:`sheetsgd.read.formula_forms`): only the first cell of each run of equal forms in a column is a Python step. A cell
whose value disagrees is a *suspect*; one whose formula the evaluator cannot follow (a function outside
the portable set, a reference to a defined range …) is *unknown*: the checker asks an engine about both.
Formulas over the nesting or length bound are *refused* before any parser or engine sees them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.sheet.evaluate import Context, EvalError, Val, agree, column
from sheetsgd.read.formula_forms import Forms
from .judge import MAX_GATHER, PatternValues, pattern_rows
from .placement import SheetValues
from sheetsgd.read.workbook import column_letters
from sheetsgd.read.sheet import _unescape

MAX_FORMULA_CHARS = 8192  # Excel's own limit on a formula's length
MAX_NESTING = 100  # parentheses deep; Excel allows 64 nested functions
BATCH_CELLS = 150_000  # formula cells read as one batch


def over_bounds(text: bytes) -> str | None:
    """Why a formula is refused (too long, nested too deeply), or None."""
    if len(text) > MAX_FORMULA_CHARS:
        return f"a formula of {len(text):,} characters (over {MAX_FORMULA_CHARS:,})"
    if text.count(b"(") > MAX_NESTING:
        b = np.frombuffer(text, np.uint8)
        depth = int(np.cumsum((b == 0x28).astype(np.int32) - (b == 0x29)).max(initial=0))
        if depth > MAX_NESTING:
            return f"a formula nested {depth:,} parentheses deep (over {MAX_NESTING})"
    return None


@dataclass
class ColumnCheck:
    """One block column's formula cells (block row indices ``at``) and what became of each."""

    sheet: str
    col: int
    rows: np.ndarray  # the student's sheet rows of the whole block column
    suspect: np.ndarray  # per block row: the saved value disagrees with the own formula
    unknown: np.ndarray  # per block row: the own formula could not be evaluated
    refused: np.ndarray  # per block row: over the bounds
    reasons: dict = field(default_factory=dict)  # block row -> why unknown or refused


class Stores(dict):
    """The check's SheetValues by sheet name, other sheets read on first use (case-blind names)."""

    def __init__(self, book, stores: dict[str, SheetValues]):
        super().__init__(stores)
        self.book = book
        self.lower = {n.lower(): n for n in book.sheet_names}

    def of(self, name: str) -> SheetValues:
        actual = self.lower.get(name.lower())
        if actual is None:
            raise EvalError(f"a reference to sheet {name!r}, which the workbook does not have")
        if actual not in self:
            self[actual] = SheetValues(self.book.sheet(actual))
        return self[actual]


class OwnContext(Context):
    """References in the student's own coordinates: every row is a per-cell field (``s0``, ``s1`` …)."""

    def __init__(self, stores: Stores, sheet: str, names: dict[str, float], fields: dict[str, np.ndarray],
                 wants_text: bool):
        self.stores, self.sheet, self.names, self.fields, self.wants_text = stores, sheet, names, fields, wants_text

    def ref(self, ref: a1.Ref) -> Val:
        store = self.stores.of(ref.sheet or self.sheet)
        r1, r2 = self.fields[ref.row1.field].reshape(-1, 1), self.fields[ref.row2.field].reshape(-1, 1)
        top, bottom = np.minimum(r1, r2), np.maximum(r1, r2)
        cols = np.arange(min(ref.col1, ref.col2), max(ref.col1, ref.col2) + 1) + 1
        if not ref.is_range:
            v = store.gather(top, cols[0])
            return Val(v, np.abs(v), s=store.gather_text(top, cols[0]) if self.wants_text else None)
        if len(top) > 1 and (top == top[0]).all() and (bottom == bottom[0]).all():  # one range for all: gather once
            top, bottom = top[:1], bottom[:1]
        heights = bottom - top + 1
        height, n = int(heights.max(initial=1)), len(top)
        if n * height * len(cols) > MAX_GATHER:
            raise EvalError("a range too large to evaluate")
        offsets = np.arange(height).reshape(1, -1)
        mask = offsets < heights
        values, _, blank = store.cells((top + offsets)[:, :, None], cols[None, None, :])
        grid = values.reshape(n, height * len(cols))
        full_mask = np.repeat(mask, len(cols), axis=1) & ~blank.reshape(n, height * len(cols))
        return Val(np.where(full_mask, grid, 0.0), np.abs(grid), None if full_mask.all() else full_mask,
                   rows=heights.astype(float))

    def name(self, name: str) -> Val:
        value = self.names.get(name, self.names.get(name.lower()))
        if value is None:
            raise EvalError(f"no single-cell name {name}")
        x = np.float64(value)
        return Val(np.reshape(x, (1, 1)), np.reshape(np.abs(x), (1, 1)))

    def field(self, name: str) -> Val:
        raise EvalError("a row pattern field in a formula")


class _FormMismatch(Exception):
    pass


class LessonColumn:
    """The lesson's row pattern of one block column and its values over the block (:class:`PatternValues`, which
    the judge evaluates anyway). A form that reads exactly the cells the pattern reads at its cells' rows, through
    the same operations, evaluates to the same numbers: it takes them from there instead of a second pass.

    "Exactly": the two trees are equal node for node once every reference is replaced by the sheet and the
    columns it reads in the student's file (its *skeleton*, compared as one tuple), and each reference's rows,
    cell by cell, are the rows the judge's BlockContext reads for the pattern's."""

    def __init__(self, patterns: PatternValues, block, key: str, stores: Stores):
        self.patterns, self.block, self.key, self.stores = patterns, block, key, stores
        self._pattern = None

    def values(self, own: "OwnForm", idx: np.ndarray):
        """(values, magnitudes, the saved values agree) at block rows ``idx`` if the own form is the pattern
        there, else None."""
        skeleton, refs = self._skeleton()
        if skeleton is None or own.skeleton != skeleton or not self._same_rows(own, refs, idx):
            return None
        try:
            values, mags = self.patterns.of(self.block, self.key)
            agrees = self.patterns.agrees(self.block, self.key)
        except EvalError:  # a changed name, a range too large …: the own formula is evaluated as it is
            return None
        return values[idx], mags[idx], agrees[idx]

    def _skeleton(self):
        """(the pattern's skeleton, its references with their shifts), or (None, None) where it has none: a
        row field written as a number (``/{n}``) or a reference outside the blocks' sheets."""
        if self._pattern is None:
            tree, refs = self.block.tree(self.key), []

            def one(node):
                if node[0] == "field":
                    raise LookupError
                if node[0] != "ref":
                    return node
                ref = node[1]
                shift = self.patterns.shifts.get(ref.sheet or self.block.sheet)
                if shift is None or ref.col2 < ref.col1:
                    raise LookupError
                refs.append((ref, shift))
                return ("ref", shift.sheet, tuple(shift.col(c) for c in range(ref.col1, ref.col2 + 1)), ref.is_range)
            try:
                self._pattern = (a1.transform(tree, one), refs)
            except LookupError:
                self._pattern = (None, None)
        return self._pattern

    def _same_rows(self, own: "OwnForm", refs, idx) -> bool:
        """Whether each own reference's rows are, cell by cell, the rows the judge reads for the pattern's."""
        fields, k = own.fields, 0
        for ref, shift in refs:
            top = pattern_rows(self.block, ref.row1, shift, idx)
            if not np.all(fields[f"s{k}"] == top):
                return False
            if ref.is_range:
                bottom = pattern_rows(self.block, ref.row2, shift, idx)
                if not (np.all(top <= bottom) and np.all(fields[f"s{k + 1}"] == bottom)):
                    return False
            k += 2 if ref.is_range else 1
        return True


@dataclass
class OwnForm:
    """A form's tree with every reference's rows made per-cell fields s0, s1, … (in text order), those fields'
    rows cell by cell, and its skeleton (each reference as the sheet and columns it reads: :class:`LessonColumn`)."""

    tree: tuple
    fields: dict[str, np.ndarray]
    skeleton: tuple
    sheet: str  # the student's sheet the cells lie on
    wants_text: bool  # the text compares strings: references give their text too


def _own_form(tree, sheet: str, stores: Stores) -> tuple[tuple, list[int], tuple]:
    """(the tree with row fields, the rows as parsed, the skeleton) in one pass over the tree."""
    rows, count = [], 0

    def fields_of(node):
        nonlocal count
        if node[0] != "ref":
            return node
        ref = node[1]
        row1 = a1.Row(f"s{count}", 0, ref.row1.absolute)
        rows.append(ref.row1.value)
        count += 1
        row2 = row1
        if ref.is_range:
            row2 = a1.Row(f"s{count}", 0, ref.row2.absolute)
            rows.append(ref.row2.value)
            count += 1
        return ("ref", a1.Ref(ref.sheet, ref.col1, row1, ref.col2, row2, ref.col1_abs, ref.col2_abs, ref.is_range))

    def skeleton_of(node):
        if node[0] != "ref":
            return node
        ref = node[1]
        actual = stores.lower.get(ref.sheet.lower()) if ref.sheet else sheet
        return ("ref", actual, tuple(range(min(ref.col1, ref.col2) + 1, max(ref.col1, ref.col2) + 2)), ref.is_range)
    return a1.transform(tree, fields_of), rows, a1.transform(tree, skeleton_of)


def _evaluate_group(text: bytes, digits: np.ndarray, sheet: str, stores: Stores, names,
                    lesson: LessonColumn | None = None, idx: np.ndarray | None = None):
    """(values, magnitudes, None) of cells of one form (``text`` one of them, ``digits`` (cells × rows) their
    references' rows; ``idx`` their block rows); raises EvalError or a1.FormulaError, or _FormMismatch when
    the parse reads other rows. Where the form is the ``lesson``'s pattern: the pattern's values, and whether
    the saved values agree with them (the judge's comparison) instead of None."""
    text = _unescape(text.decode("utf-8", "replace"))
    tree, rows, skeleton = _own_form(a1.parse(text), sheet, stores)
    if digits is None:  # one cell: its references' rows as parsed
        digits = np.array([rows], dtype=np.int64).reshape(1, -1)
    if rows != digits[0].tolist():
        raise _FormMismatch
    own = OwnForm(tree, {f"s{j}": digits[:, j] for j in range(len(rows))}, skeleton, sheet, '"' in text)
    reused = lesson.values(own, idx) if lesson is not None else None
    if reused is not None:
        return reused
    ctx = OwnContext(stores, sheet, names, own.fields, own.wants_text)
    return (*column(tree, ctx, len(digits)), None)


def _check_cells(out: ColumnCheck, forms: Forms, lo: int, at: np.ndarray, saved: np.ndarray, stores: Stores,
                 names, lesson: LessonColumn | None = None) -> None:
    """The formula cells ``at`` (block row indices) of one column, cells lo … of ``forms``: each evaluated from
    its own formula on the file's values, one numpy pass per form."""
    for cells in forms.groups(lo, lo + len(at)):
        members = cells - lo
        reason = over_bounds(forms.text(int(cells[np.argmax(forms.length(cells))])))
        if reason:
            out.refused[at[members]] = True
            out.reasons.update({int(at[i]): reason for i in members.tolist()})
            continue
        try:
            parts = [(members, _evaluate_group(forms.text(int(cells[0])), forms.rows_of(cells), out.sheet, stores,
                                               names, lesson, at[members]))]
        except ValueError as exc:  # EvalError, FormulaError: not followed
            out.unknown[at[members]] = True
            out.reasons.update({int(at[i]): str(exc) for i in members.tolist()})
            continue
        except _FormMismatch:
            parts = []
            for i in members.tolist():  # the fast reading cannot tell the references apart: one cell at a time
                try:
                    parts.append(([i], _evaluate_group(forms.text(lo + i), None, out.sheet, stores, names, lesson,
                                                       at[[i]])))
                except (ValueError, _FormMismatch) as exc2:
                    out.unknown[at[i]] = True
                    out.reasons[int(at[i])] = str(exc2) or "not evaluated"
        for idx, (expected, mag, agreed) in parts:  # agreed: the judge's own comparison, where a form is the pattern
            ok = agree(saved[idx], expected, mag) if agreed is None else agreed
            out.suspect[at[idx][~ok]] = True


@dataclass
class Verification:
    """Every block column's own-formula check, keyed by (block name, column key)."""

    columns: dict[tuple[str, str], ColumnCheck]

    def cells(self, which: str) -> list[tuple[str, int, int]]:
        """(sheet, row, col) of the suspect, unknown or refused cells."""
        out = []
        for c in self.columns.values():
            for i in np.flatnonzero(getattr(c, which)).tolist():
                out.append((c.sheet, int(c.rows[i]), c.col))
        return out

    @property
    def needs_engine(self) -> bool:
        return any(c.suspect.any() or c.unknown.any() for c in self.columns.values())


def verify(book, blocks, shifts, stores: dict[str, SheetValues], names: dict[str, float],
           patterns: PatternValues | None = None) -> Verification:
    """Each formula cell of every block column checked against its own formula, on the file's values. The
    texts of a sheet's columns are read as one batch (:class:`sheetsgd.read.formula_forms.Forms`).
    ``patterns``: the lesson's patterns evaluated on these stores (the judge's), reused where a form is one."""
    lazy = Stores(book, stores)
    out, batches = {}, {}
    for b in blocks:
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        rows = shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))
        for c in b.columns:
            col = shift.col(c.col)
            n = len(rows)
            check = ColumnCheck(store.sheet.name, col, rows, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))
            out[(b.name, c.key)] = check
            pos, present = store.find(rows, np.full(n, col))
            at = np.flatnonzero(present & store.formula[pos]) if len(store.formula) else np.zeros(0, np.int64)
            if len(at):
                lesson = LessonColumn(patterns, b, c.key, lazy) if patterns is not None and c.is_formula else None
                batches.setdefault(shift.sheet, []).append((check, pos[at], at, lesson))
    for sheet, columns in batches.items():
        store = stores[sheet]
        while columns:  # batches of at most BATCH_CELLS cells (a column at least): memory bounded by them
            size = np.cumsum([len(at) for _, _, at, _ in columns])
            take = max(1, int(np.searchsorted(size, BATCH_CELLS, side="right")))
            batch, columns = columns[:take], columns[take:]
            cells = np.concatenate([store._order[pos] for _, pos, _, _ in batch])
            forms = Forms(*store.sheet.formula_spans(cells))
            lo = 0
            for check, pos, at, lesson in batch:
                _check_cells(check, forms, lo, at, store.values[pos], lazy, names, lesson)
                lo += len(at)
    return Verification(out)


def settle(verification: Verification, saved: dict[str, SheetValues], engine: dict[str, SheetValues] | None,
           engine_error: str | None = None) -> dict[tuple[str, str], tuple[np.ndarray, str, list]]:
    """Which cells do not follow from their formulas, per column: (mask over the block's rows, mistake, cells).

    A suspect or unknown cell whose saved value the engine's recalculation confirms follows; one it does
    not confirm is ``value_not_from_formula``. Without an engine (``engine_error``), a suspect still does
    not follow and an unknown cell cannot be judged (``formula_not_checked``), nor can a refused one."""
    out = {}
    for key, c in verification.columns.items():
        doubt = c.suspect | c.unknown
        bad = np.zeros(len(c.rows), bool)
        unjudged = c.refused.copy()
        if doubt.any():
            idx = np.flatnonzero(doubt)
            found = saved[c.sheet].gather(c.rows[idx], c.col)
            # a saved error value is never a right answer, so never a forged one: it is judged as it is (an
            # engine's own arithmetic may differ there: LibreOffice's 1 − ŷ is 0 where ŷ is within 1e-15 of 1)
            number = np.isfinite(found)
            if engine is not None:
                recalc = engine[c.sheet].gather(c.rows[idx], c.col)
                bad[idx] = ~agree(found, recalc, np.abs(recalc), rel=1e-9) & number
            else:
                bad[idx[c.suspect[idx] & number]] = True
                unjudged[idx[c.unknown[idx] & ~c.suspect[idx]]] = True
        if bad.any():
            out[key] = (bad, "value_not_from_formula", _named(c, bad, "the saved value does not follow from the formula"))
        elif unjudged.any():
            why = (f"{engine_error}" if engine_error and not c.refused.any() else None)
            out[key] = (unjudged, "formula_not_checked", _named(c, unjudged, why))
    return out


def _named(c: ColumnCheck, mask: np.ndarray, why: str | None) -> list[dict]:
    out = []
    for i in np.flatnonzero(mask)[:20].tolist():
        out.append({"cell": f"{column_letters(c.col)}{int(c.rows[i])}",
                    "reason": c.reasons.get(i) or why or "not evaluated"})
    return out
