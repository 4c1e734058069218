"""Judging a student's workbook block by block: every cell locally, then root causes before knock-ons.

For every formula column of every block (Steps, Examples, Validation, Data features, Solver …):

* **locally**: the column's row pattern — the same text the writer rendered — is evaluated with numpy
  on the student's own values of the cells it reads (:mod:`sheetsgd.sheet.evaluate`). A cell that does not
  follow from them is a *root cause*; :mod:`sheetsgd.check.mistakes.catalogue` names the likely mistake.
* **by induction**: a cell is right when it follows from its inputs and every formula cell it reads
  is right. A cell that follows locally but reads a wrong cell upstream is a *knock-on*: reported
  under its root causes, never as a mistake of its own. Inputs (named cells, start values, data) are
  the student's: change lr and write correct formulas, and every cell is right.

Wrongness travels in steps: a block row belongs to a step (an Examples row to its step, a validation
row to its epoch's last step), and a column that reads a wrong column is wrong from that column's
first wrong step on (one step later through a reference to the row above).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.sheet.blocks import Block
from sheetsgd.sheet.evaluate import Context, EvalError, Val, agree, column
from .placement import SheetValues, Shift, plain
from sheetsgd.read.workbook import column_letters

MAX_GATHER = 20_000_000  # elements one reference may gather (a padded range per row)


def pattern_rows(block: Block, row: a1.Row, shift: Shift, idx: np.ndarray | None = None) -> np.ndarray:
    """The student's sheet rows a pattern's row reads at block rows ``idx`` (all by default): one for a
    constant row, one per block row for a field."""
    if row.field is None:
        return shift.to_student(np.array([row.value], dtype=np.int64))
    values = block.fields[row.field] if idx is None else block.fields[row.field][idx]
    return shift.to_student(values + row.value)


class BlockContext(Context):
    """A block's references resolved to the student's cells (moved by the placement's shifts)."""

    def __init__(self, block: Block, shifts: dict[str, Shift], stores: dict[str, SheetValues],
                 names: dict[str, float]):
        self.block, self.shifts, self.stores, self.names = block, shifts, stores, names
        self.wants_text = False  # set for patterns that compare text (the Data sheet's features)

    def _rows(self, row: a1.Row, shift: Shift) -> np.ndarray:
        return pattern_rows(self.block, row, shift).reshape(-1, 1)

    def ref(self, ref: a1.Ref) -> Val:
        sheet = ref.sheet or self.block.sheet
        if sheet not in self.shifts:
            raise EvalError(f"a reference to sheet {sheet!r}, which no block of this lesson lies on")
        shift = self.shifts[sheet]
        store = self.stores[shift.sheet]
        top, bottom = self._rows(ref.row1, shift), self._rows(ref.row2, shift)
        cols = np.array([shift.col(c) for c in range(ref.col1, ref.col2 + 1)], dtype=np.int64)
        if not ref.is_range:
            v = store.gather(top, cols[0])
            text = store.gather_text(top, cols[0]) if self.wants_text else None
            return Val(v, np.abs(v), s=text)
        heights = bottom - top + 1
        height = int(heights.max(initial=1))
        n = max(len(top), len(bottom))
        if n * height * len(cols) > MAX_GATHER:
            raise EvalError("a range too large to evaluate")
        offsets = np.arange(height).reshape(1, -1)
        rows = np.broadcast_to(top, (n, 1)) + offsets  # (n, height)
        mask = offsets < np.broadcast_to(heights, (n, 1))
        values, _, blank = store.cells(rows[:, :, None], cols[None, None, :])
        grid = values.reshape(n, height * len(cols))
        # blank cells are no numbers to SUM, COUNT, AVERAGE (and 0 to SUMPRODUCT: left out, the same)
        full_mask = np.repeat(mask, len(cols), axis=1) & ~blank.reshape(n, height * len(cols))
        return Val(np.where(full_mask, grid, 0.0), np.abs(grid), None if full_mask.all() else full_mask,
                   rows=np.broadcast_to(heights, (n, 1)).astype(float))

    def name(self, name: str) -> Val:
        problem = getattr(self.names, "problems", {}).get(name.lower())
        if problem:
            raise EvalError(problem)
        if name not in self.names:
            raise EvalError(f"no input named {name}")
        x = np.float64(self.names[name])
        return Val(np.reshape(x, (1, 1)), np.reshape(np.abs(x), (1, 1)))

    def field(self, name: str) -> Val:
        v = self.block.fields[name].astype(float).reshape(-1, 1)
        return Val(v, np.abs(v))


class PatternValues:
    """Every block formula column's row pattern evaluated once on the student's values (``column`` through a
    :class:`BlockContext`): what the judge expects of each cell, which the own-formula verification
    (:mod:`sheetsgd.check.own_formulas`) reuses where a cell's own formula reads exactly what the pattern reads.
    Valid for the ``stores`` and ``names`` it was made with."""

    def __init__(self, shifts: dict[str, Shift], stores: dict[str, SheetValues], names):
        self.shifts, self.stores, self.names = shifts, stores, names
        self._done: dict[tuple[str, str], tuple[np.ndarray, np.ndarray] | str] = {}
        self._agrees: dict[tuple[str, str], np.ndarray] = {}
        self._cells: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def cells(self, block: Block, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the student's values, has a formula, is blank) of a block column, read once for both."""
        if (block.name, key) not in self._cells:
            shift = self.shifts[block.sheet]
            rows = shift.to_student(np.arange(block.first_row + 1, block.first_row + 1 + block.n))
            self._cells[(block.name, key)] = self.stores[shift.sheet].cells(rows, shift.col(block.column(key).col))
        return self._cells[(block.name, key)]

    def agrees(self, block: Block, key: str) -> np.ndarray:
        """Per block row: the student's value is the pattern's (up to rounding; both not a number counts), as the
        judge and the verification of a form that is the pattern both ask; raises as :meth:`of` does."""
        if (block.name, key) not in self._agrees:
            expected, mag = self.of(block, key)
            self._agrees[(block.name, key)] = agree(self.cells(block, key)[0], expected, mag)
        return self._agrees[(block.name, key)]

    def of(self, block: Block, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, magnitudes) over the block's rows; raises EvalError when the pattern cannot be evaluated."""
        done = self._done.get((block.name, key))
        if done is None:
            ctx = BlockContext(block, self.shifts, self.stores, self.names)
            ctx.wants_text = '"' in block.column(key).pattern
            try:
                done = column(block.tree(key), ctx, block.n)
            except EvalError as exc:
                done = str(exc)
            self._done[(block.name, key)] = done
        if isinstance(done, str):
            raise EvalError(done)
        return done


@dataclass
class ColumnJudgement:
    block: Block
    key: str
    rows: np.ndarray  # the student's sheet rows (1-based)
    col: int  # the student's sheet column (1-based)
    found: np.ndarray
    formula: np.ndarray
    blank: np.ndarray
    ok: np.ndarray  # locally right
    expected: np.ndarray | None
    mag: np.ndarray | None
    exercise: bool
    deps: list[tuple[tuple[str, str], int]] = field(default_factory=list)  # ((block, key), step delay)
    correct: np.ndarray | None = None
    value_ok: np.ndarray | None = None  # the value is right (typed or not): what the cells reading it see
    errors: np.ndarray | None = None  # the cell shows an error value other than an overflow's #NUM!
    unjudged: str | None = None  # why the column cannot be judged (then no cell of it counts right)

    @property
    def counted_right(self) -> np.ndarray:
        """Cells that count as right formulas: locally right and not an error value (a #VALUE! that follows
        from a #VALUE! is consistent, and tells the root cause apart, but is never a right answer)."""
        return self.ok & ~self.errors if self.errors is not None else self.ok

    @property
    def col_letters(self) -> str:
        return column_letters(self.col)

    @property
    def id(self) -> tuple[str, str]:
        return (self.block.name, self.key)


def _targets(blocks: list[Block]) -> dict[tuple[str, int], list[tuple[Block, object]]]:
    at = {}
    for b in blocks:
        for c in b.columns:
            at.setdefault((b.sheet, c.col), []).append((b, c))
    return at


def _dependencies(block: Block, key: str, at) -> list[tuple[tuple[str, str], int]]:
    out = []
    for ref in a1.refs(block.tree(key)):
        sheet = ref.sheet or block.sheet
        for col in range(ref.col1, ref.col2 + 1):
            for tb, tc in at.get((sheet, col), ()):
                own_prev = tb is block and not ref.is_range and ref.row1.field == "p"
                out.append(((tb.name, tc.key), 1 if own_prev else 0))
    return out


def judge_blocks(blocks: list[Block], exercise: dict[str, set[str]], shifts, stores, names,
                 skipped: list[str] | None = None, refused: dict | None = None,
                 patterns: PatternValues | None = None) -> list[ColumnJudgement]:
    """Every column of every block judged locally, then by induction (``correct``); columns that cannot
    be evaluated are listed in ``skipped``; ``refused`` {(block, key): mask}: cells that never count right
    (a saved value that does not follow from its own formula, a formula that cannot be checked).
    ``patterns``: the patterns' values already evaluated on these stores and names, if any."""
    refused = refused or {}
    patterns = patterns if patterns is not None else PatternValues(shifts, stores, names)
    skipped = [] if skipped is None else skipped
    at = _targets(blocks)
    judged: dict[tuple[str, str], ColumnJudgement] = {}
    for b in blocks:
        shift = shifts[b.sheet]
        store = stores[shift.sheet]
        rows = shift.to_student(np.arange(b.first_row + 1, b.first_row + 1 + b.n))
        for c in b.columns:
            col = shift.col(c.col)
            found, has_f, blank = patterns.cells(b, c.key)
            found = np.where(np.isfinite(found), found, np.nan)
            is_ex = c.key in exercise.get(b.name, ())
            expected = mag = None
            deps = []
            if c.is_formula:
                try:
                    expected, mag = patterns.of(b, c.key)
                except EvalError as exc:  # cannot be judged: every cell counts as not right, with the reason
                    skipped.append(f"{b.name}:{c.key} ({exc})")
                    j = ColumnJudgement(b, c.key, rows, col, found, has_f, blank, np.zeros(b.n, bool),
                                        np.full(b.n, np.nan), np.zeros(b.n), is_ex, _dependencies(b, c.key, at),
                                        value_ok=np.zeros(b.n, bool), errors=store.error_cells(rows, col))
                    j.unjudged = str(exc)
                    judged[(b.name, c.key)] = j
                    continue
                ok = patterns.agrees(b, c.key) & ~blank
                value_ok = ok.copy()  # what the cells downstream read: a typed right number misleads none
                if is_ex:
                    ok &= has_f  # a typed number is never right, even when it shows the right value
                deps = _dependencies(b, c.key, at)
            elif c.role == "input" or c.key not in b.values:
                continue
            else:  # a given value column (step, epoch, passenger, batch rows): as the lesson lays it out
                given = np.asarray(b.values[c.key], dtype=float)
                expected, mag = given, np.abs(given)
                ok = agree(found, given, mag, rel=1e-12)
                value_ok = ok
            if (b.name, c.key) in refused:
                ok = ok & ~refused[(b.name, c.key)]
            judged[(b.name, c.key)] = ColumnJudgement(b, c.key, rows, col, found, has_f, blank, ok, expected, mag,
                                                      is_ex, deps, value_ok=value_ok,
                                                      errors=store.error_cells(rows, col))
    _propagate(judged)
    return list(judged.values())


def _propagate(judged: dict[tuple[str, str], ColumnJudgement]) -> None:
    """First wrong step of every column through its inputs (Bellman–Ford on steps), then ``correct``."""
    inf = math.inf
    own = {}
    for k, j in judged.items():
        bad = ~(j.value_ok if j.value_ok is not None else j.ok)
        own[k] = float(j.block.step[bad].min()) if bad.any() else inf
    first = dict(own)
    for _ in range(len(judged) + 1):
        changed = False
        for k, j in judged.items():
            best = first[k]
            for dep, delay in j.deps:
                if dep in first and first[dep] + delay < best:
                    best = first[dep] + delay
            if best < first[k]:
                first[k], changed = best, True
        if not changed:
            break
    for k, j in judged.items():
        upstream = min((first[d] + delay for d, delay in j.deps if d in first and d != k), default=inf)
        j.correct = j.ok & (j.block.step < upstream)


def cones(judged: list[ColumnJudgement]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Every column's transitive inputs."""
    deps = {j.id: {d for d, _ in j.deps} for j in judged}
    out = {}
    for k in deps:
        seen, todo = set(), [k]
        while todo:
            for d in deps.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        out[k] = seen
    return out


def cell_ref(j: ColumnJudgement, i: int) -> str:
    return f"{column_letters(j.col)}{int(j.rows[i])}"


def expected_at(j: ColumnJudgement, i: int):
    return None if j.expected is None else plain(j.expected[i])
