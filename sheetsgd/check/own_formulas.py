"""Every formula cell the checker reads: does its saved value follow from its own formula?

The judge (:mod:`sheetsgd.check.judge`) evaluates the *lesson's* row patterns on the student's values, so a file
whose formulas were replaced while their saved values were kept would pass it. Here each cell's *own*
formula text is evaluated on the file's values: parsed by :mod:`sheetsgd.sheet.a1`, evaluated by
:mod:`sheetsgd.sheet.evaluate`. Cells are grouped by form: texts equal but for the row numbers of their
references (what filling down makes) are one group, parsed once, each reference's row a per-cell field,
evaluated as one numpy pass, so a filled-down column is one pass whatever rows its ranges cover. A cell
whose value disagrees is a *suspect*; one whose formula the evaluator cannot follow (a function outside
the portable set, a reference to a defined range …) is *unknown*: the checker asks an engine about both.
Formulas over the nesting or length bound are *refused* before any parser or engine sees them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.sheet.evaluate import Context, EvalError, Val, agree, column
from .judge import MAX_GATHER
from .placement import SheetValues
from sheetsgd.read.workbook import column_letters
from sheetsgd.read.sheet import _unescape

MAX_FORMULA_CHARS = 8192  # Excel's own limit on a formula's length
MAX_NESTING = 100  # parentheses deep; Excel allows 64 nested functions
_AFTER = np.zeros(256, bool)  # what may follow a reference's row (a1's tokens: no letter, digit, _, ( or !)
_AFTER[list(range(256))] = True
_AFTER[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_(!"]] = False
_BEFORE = np.zeros(256, bool)  # what precedes it: a column letter or a $
_BEFORE[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ$"]] = True


def forms(joined: bytes):
    """The formulas (NUL-separated) as forms: (each formula's text without its references' row numbers; the
    row numbers, in text order; each formula's first index into them). Digits after a capital or $ and before
    no identifier character are taken for rows (LOG10( is not, nor 1E5's exponent): a form's parse must find exactly these as its
    references' rows (see :func:`_evaluate_group`), else its cells are taken one by one."""
    buf = np.frombuffer(joined, np.uint8)
    n = len(buf)
    digit = (buf >= 0x30) & (buf <= 0x39)
    edges = np.diff(digit.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    before = _BEFORE[buf[np.maximum(starts - 1, 0)]] & (starts > 0)
    prior = buf[np.maximum(starts - 2, 0)]  # 1E5, 2.E3: an exponent, not a row
    before &= ~((buf[np.maximum(starts - 1, 0)] == 0x45) & (starts > 1) & ((prior - 0x30 < 10) | (prior == 0x2E)))
    after = np.where(ends < n, _AFTER[buf[np.minimum(ends, n - 1)]], True)
    rows = before & after & (ends - starts <= 7)
    starts, ends = starts[rows], ends[rows]
    marks = np.zeros(n + 1, np.int8)
    marks[starts] = 1
    marks[ends] -= 1
    shapes = buf[np.cumsum(marks[:-1], dtype=np.int8) == 0].tobytes().split(b"\x00")
    lengths = ends - starts  # each row number: its (at most 7) digits weighted by powers of ten
    values = np.zeros(len(starts), np.int64)
    for d in range(7):
        more = lengths > d
        if not more.any():
            break
        values = np.where(more, values * 10 + buf[np.minimum(starts + d, n - 1)] - 0x30, values)
    separators = np.flatnonzero(buf == 0)
    cell = np.searchsorted(separators, starts)
    first = np.searchsorted(cell, np.arange(len(shapes)))
    return shapes, values, first, separators


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


def _with_row_fields(tree):
    """The tree with every reference's rows replaced by fields s0, s1, … in text order, and their count."""
    count = 0

    def one(node):
        nonlocal count
        if node[0] != "ref":
            return node
        ref = node[1]
        row1 = a1.Row(f"s{count}", 0, ref.row1.absolute)
        count += 1
        row2 = row1
        if ref.is_range:
            row2 = a1.Row(f"s{count}", 0, ref.row2.absolute)
            count += 1
        return ("ref", a1.Ref(ref.sheet, ref.col1, row1, ref.col2, row2, ref.col1_abs, ref.col2_abs, ref.is_range))
    out = a1.transform(tree, one)
    return out, count


def _ref_rows(tree) -> list[int]:
    out = []
    for ref in a1.refs(tree):
        out.append(ref.row1.value)
        if ref.is_range:
            out.append(ref.row2.value)
    return out


class _FormMismatch(Exception):
    pass


def _evaluate_group(text: bytes, digits: np.ndarray, sheet: str, stores: Stores, names) -> tuple[np.ndarray, np.ndarray]:
    """(values, magnitudes) of cells of one form (``text`` one of them, ``digits`` (cells × rows) their
    references' rows); raises EvalError or a1.FormulaError, or _FormMismatch when the parse reads other rows."""
    text = _unescape(text.decode("utf-8", "replace"))
    tree = a1.parse(text)
    if digits is None:  # one cell: its references' rows as parsed
        digits = np.array([_ref_rows(tree)], dtype=np.int64).reshape(1, -1)
    if _ref_rows(tree) != digits[0].tolist():
        raise _FormMismatch
    tree, count = _with_row_fields(tree)
    fields = {f"s{j}": digits[:, j] for j in range(count)}
    ctx = OwnContext(stores, sheet, names, fields, '"' in text)
    return column(tree, ctx, len(digits))


def check_column(sheet_obj, store: SheetValues, stores: Stores, names, rows: np.ndarray, col: int) -> ColumnCheck:
    """The formula cells of one column at ``rows``: each evaluated from its own formula on the file's values."""
    n = len(rows)
    out = ColumnCheck(store.sheet.name, col, rows, np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))
    pos, present = store.find(rows, np.full(n, col))
    at = np.flatnonzero(present & store.formula[pos]) if len(store.formula) else np.zeros(0, np.int64)
    if not len(at):
        return out
    joined = sheet_obj.joined_formulas(store._order[pos[at]])
    shapes, values, first, separators = forms(joined)
    bounds = np.concatenate([[-1], separators, [len(joined)]])
    lengths = np.diff(bounds) - 1

    def text(i: int) -> bytes:
        return joined[int(bounds[i]) + 1:int(bounds[i + 1])]
    unique = list(dict.fromkeys(shapes))
    if len(unique) == 1:
        groups = [np.arange(len(shapes))]
    else:
        labels = np.array(shapes, dtype=object)
        groups = [np.flatnonzero(labels == u) for u in unique]
    saved = store.values[pos[at]]
    for members in groups:
        k = int(first[members[0] + 1] - first[members[0]]) if members[0] + 1 < len(first) else len(values) - int(first[members[0]])
        digits = values[first[members][:, None] + np.arange(k)] if k else np.zeros((len(members), 0), np.int64)
        reason = over_bounds(text(int(members[np.argmax(lengths[members])])))
        if reason:
            out.refused[at[members]] = True
            out.reasons.update({int(at[i]): reason for i in members.tolist()})
            continue
        try:
            parts = [(members, _evaluate_group(text(int(members[0])), digits, out.sheet, stores, names))]
        except ValueError as exc:  # EvalError, FormulaError: not followed
            out.unknown[at[members]] = True
            out.reasons.update({int(at[i]): str(exc) for i in members.tolist()})
            continue
        except _FormMismatch:
            parts = []
            for i in members.tolist():  # the fast reading cannot tell the references apart: one cell at a time
                try:
                    parts.append(([i], _evaluate_group(text(i), None, out.sheet, stores, names)))
                except (ValueError, _FormMismatch) as exc2:
                    out.unknown[at[i]] = True
                    out.reasons[int(at[i])] = str(exc2) or "not evaluated"
        for idx, (expected, mag) in parts:
            ok = agree(saved[idx], expected, mag)
            out.suspect[at[idx][~ok]] = True
    return out


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


def verify(book, blocks, shifts, stores: dict[str, SheetValues], names: dict[str, float]) -> Verification:
    """Each formula cell of every block column checked against its own formula, on the file's values."""
    lazy = Stores(book, stores)
    out = {}
    for b in blocks:
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        rows = shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))
        for c in b.columns:
            out[(b.name, c.key)] = check_column(store.sheet, store, lazy, names, rows, shift.col(c.col))
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
