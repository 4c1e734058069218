"""The one sheet spec: every lesson's sheets are blocks of rows, each column a key, a header, a row pattern.

A :class:`Block` is a run of rows on one sheet (a step per row on Steps; one passenger of one step's
batch per row on Examples; validation rows per epoch; the Solver's passengers; the Data sheet's
features …). Each :class:`BlockColumn` has a key (the engine quantity it equals), a header, and either
a *row pattern* — A1 text whose row numbers are fields filled in per row (``H{p}-lr*K{r}``, see
:mod:`sheetsgd.sheet.a1`) — or nothing (a value column). ``fields`` hold each row's numbers (``r`` is the
row itself, 1-based; ``p`` the row above; others such as ``lo``/``hi`` a batch's rows on another
sheet), ``values`` the engine's numbers, ``step`` the step each row belongs to.

Every kind's writer hands its blocks to :func:`write_block`, which writes them (patterns filled row by
row, engine values cached) and blanks a student version's exercise columns; the checker
(:mod:`sheetsgd.check.judge`) evaluates the same patterns on a student's values; the manifest records
where each block lies.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import a1
from sheetsgd.runtime import progress


@dataclass
class BlockColumn:
    key: str
    header: str
    col: int  # 0-based sheet column
    pattern: str | None  # A1 row pattern without '=' (None: a value column)
    number_format: str = "General"
    note: str = ""
    role: str = ""  # "input": the student may change it (data, start values); "" otherwise
    reveals: str = ""  # the key of a column of its block whose value it equals (a central difference ≈ ∂L/∂p):
    #                    in a student version it caches nothing where that column is blank

    @property
    def is_formula(self) -> bool:
        return self.pattern is not None


@dataclass
class Block:
    sheet: str
    name: str
    header_row: int  # 0-based row of the headers
    first_row: int  # 0-based row of the block's first row
    columns: list[BlockColumn]
    n: int
    fields: dict[str, np.ndarray] = field(default_factory=dict)  # per row, besides r and p
    values: dict[str, list] = field(default_factory=dict)  # engine value per row, per column key
    step: np.ndarray | None = None  # the step each row belongs to (1-based; 0: before training)

    def __post_init__(self):
        r = np.arange(self.first_row + 1, self.first_row + 1 + self.n, dtype=np.int64)
        self.fields = {"r": r, "p": r - 1, **{k: np.asarray(v, dtype=np.int64) for k, v in self.fields.items()}}
        self.step = np.arange(1, self.n + 1, dtype=np.int64) if self.step is None else np.asarray(self.step, np.int64)
        self._trees = {}

    def column(self, key: str) -> BlockColumn:
        return next(c for c in self.columns if c.key == key)

    def tree(self, key: str):
        """The parsed pattern of a formula column (parsed once)."""
        if key not in self._trees:
            self._trees[key] = a1.parse(self.column(key).pattern)
        return self._trees[key]

    def row_fields(self, i: int) -> dict[str, int]:
        return {k: int(v[i]) for k, v in self.fields.items()}

    @property
    def last_row(self) -> int:
        return self.first_row + self.n - 1

    def manifest(self) -> dict:
        """Where the block lies (0-based rows), and its columns' positions and headers: no values."""
        return {"sheet": self.sheet, "name": self.name, "header_row": self.header_row, "first_row": self.first_row,
                "n": self.n, "columns": {c.key: [c.col, c.header] for c in self.columns}}


def is_update(key: str) -> bool:
    """Whether a column is a parameter update (new_a, new_w_Age, r2_new): the step's new value of something."""
    return key.startswith("new_") or key.endswith("_new")


def cached(value):
    """The cached result of a formula cell: the number, #NUM! where the engine overflowed, or the text given
    (an error code such as #N/A, or "" for a deliberately empty result)."""
    if isinstance(value, str):
        return value
    return value if math.isfinite(value) else "#NUM!"


# --- student versions: which cells would give an answer away ---------------------------------------

class StudentPlan:
    """The exercise columns of a student version and every cell that depends on them.

    A column of a block that reads a blank (or answer-dependent) cell is answer-dependent from its first
    such row on: rows only ever read their own row, the row above, or other blocks (judged as a whole,
    conservatively). Cells outside blocks (Epochs, the fitted curve, Solver targets) are answer-dependent
    when they read any answer-dependent region; they are written after the blocks they read.
    """

    def __init__(self, blocks: list[Block], exercise: dict[str, set[str]]):
        self.blocks = list(blocks)
        self.exercise = {name: set(keys) for name, keys in exercise.items()}  # block name -> keys
        self.extra_regions: list[tuple[str, int, int, int]] = []
        self.derived_regions: list[tuple[str, int, int, int]] = []
        self._analyse()

    def add(self, block: Block, keys=()) -> None:
        """One more block (a writer that makes its blocks one at a time): the analysis is redone."""
        self.blocks = [b for b in self.blocks if b.name != block.name] + [block]
        if keys:
            self.exercise[block.name] = set(keys)
        self._analyse()

    def _analyse(self) -> None:
        blocks, exercise = self.blocks, self.exercise
        self.first_dirty: dict[tuple[str, str], int] = {}
        at = {}  # (sheet, col) -> [(block, column)]
        for b in blocks:
            for c in b.columns:
                at.setdefault((b.sheet, c.col), []).append((b, c))
                if c.key in exercise.get(b.name, ()) or c.reveals and c.reveals in exercise.get(b.name, ()):
                    self.first_dirty[(b.name, c.key)] = 0
        changed = True
        while changed:
            changed = False
            for b in blocks:
                for c in b.columns:
                    if not c.is_formula or self.first_dirty.get((b.name, c.key)) == 0:
                        continue
                    best = self.first_dirty.get((b.name, c.key), math.inf)
                    for ref in a1.refs(b.tree(c.key)):
                        sheet = ref.sheet or b.sheet
                        for col in range(ref.col1, ref.col2 + 1):
                            for tb, tc in at.get((sheet, col), ()):
                                d = self.first_dirty.get((tb.name, tc.key))
                                if d is None or not _rows_meet(ref, tb):
                                    continue
                                own = tb is b and not ref.is_range and ref.row1.field in ("r", "p")
                                best = min(best, d + (ref.row1.field == "p") if own else 0)
                    if best < self.first_dirty.get((b.name, c.key), math.inf) and best < b.n:
                        self.first_dirty[(b.name, c.key)] = int(best)
                        changed = True
        by_name = {b.name: b for b in blocks}
        self.regions = [(by_name[name].sheet, by_name[name].column(k).col, by_name[name].first_row + d,
                         by_name[name].last_row) for (name, k), d in self.first_dirty.items()] + self.extra_regions

    def dirty_from(self, block: Block, key: str) -> int:
        """The first answer-dependent row of a block column (block.n: none). A column reading a cell outside
        the blocks that reads an answer (the Solver's SGD weights row) depends on it as a whole."""
        d = self.first_dirty.get((block.name, key), block.n)
        c = block.column(key)
        if d and c.is_formula and self.extra_regions:
            for ref in a1.refs(block.tree(key)):
                sheet = ref.sheet or block.sheet
                rows = [r.value - 1 for r in (ref.row1, ref.row2) if r.field is None]
                # the cells outside the blocks, and the columns found dependent on them here (read in turn)
                for s, col, top, bottom in self.extra_regions + self.derived_regions:
                    if s == sheet and ref.col1 <= col <= ref.col2 and (
                            len(rows) < 2 or rows[0] <= bottom and rows[1] >= top):
                        self.first_dirty[(block.name, key)] = 0
                        self.regions.append((block.sheet, c.col, block.first_row, block.last_row))
                        self.derived_regions.append((block.sheet, c.col, block.first_row, block.last_row))
                        self._index = None
                        return 0
        return d

    def is_blank(self, block: Block, key: str) -> bool:
        return key in self.exercise.get(block.name, ())

    def reads_answers(self, sheet: str, formula: str, names: dict[str, str] | None = None) -> bool:
        """Whether a formula outside the blocks reads an answer-dependent cell (then it caches nothing);
        ``names`` {defined name: its target} follows names such as lr_suggest_min to their cells."""
        by_sheet = self._by_sheet()
        text = _STRINGS.sub('""', formula)
        for name in _NAME.findall(text) if names else ():
            target = names.get(name)
            if target and self.reads_answers(sheet, target):
                return True
        for m in _A1_REF.finditer(text):
            target = (m.group(1) or m.group(2) or sheet).replace("''", "'")
            regions = by_sheet.get(target)
            if not regions:
                continue
            c1, r1 = _cell(m.group(3), m.group(4))
            c2, r2 = _cell(m.group(5), m.group(6)) if m.group(5) else (c1, r1)
            for col, top, bottom in regions:
                if c1 <= col <= c2 and r1 <= bottom and r2 >= top:
                    return True
        return False

    def _by_sheet(self) -> dict[str, list[tuple[int, int, int]]]:
        if getattr(self, "_index", None) is None or self._indexed != len(self.regions):
            self._index, self._indexed = {}, len(self.regions)
            for s, col, top, bottom in self.regions:
                self._index.setdefault(s, []).append((col, top, bottom))
        return self._index

    def add_region(self, sheet: str, row: int, col: int) -> None:
        self.extra_regions.append((sheet, col, row, row))
        self.regions.append((sheet, col, row, row))


def _rows_meet(ref: a1.Ref, block: Block) -> bool:
    """Whether a reference's rows can fall inside the block (constant rows are checked, fields may)."""
    rows = [r for r in (ref.row1, ref.row2) if r.field is None]
    if len(rows) == 2:
        return rows[0].value - 1 <= block.last_row and rows[1].value - 1 >= block.first_row
    if len(rows) == 1 and not ref.is_range:
        return block.first_row <= rows[0].value - 1 <= block.last_row
    return True


_A1_REF = re.compile(r"(?:'((?:[^']|'')+)'!|([A-Za-z_][\w.]*)!)?\$?([A-Z]{1,3})\$?([0-9]{1,7})"
                     r"(?::\$?([A-Z]{1,3})\$?([0-9]{1,7}))?(?![\w(])")
_STRINGS = re.compile(r'"[^"]*"')
_NAME = re.compile(r"(?<![\w$!.:'])([A-Za-z_][\w.]*)(?![\w(!])")


def _cell(letters: str, digits: str) -> tuple[int, int]:
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return col - 1, int(digits) - 1


# --- writing -------------------------------------------------------------------------------------

def write_block(ws, fmt, counts: dict, block: Block, student: StudentPlan | None = None) -> None:
    """Write a block's rows: each pattern compiled once, rows fill in numbers; engine values cached.

    ``fmt.number(num_format, blank=…)`` gives cell formats. In a student version the exercise columns
    are blank (highlighted, unlocked) and cells that depend on them cache nothing ("" is no value).
    """
    book = getattr(ws, "sheetsgd_book", None)
    if book is not None:
        book.blocks.append(block)
    if getattr(ws, "is_null", False):  # a rebuild for the checker: the block is all it needs (no formats)
        return
    from . import presentation, readable
    presentation.present_block(block, registry=getattr(book, "quantity_formats", None))
    presentation.fit_block(ws, block)
    presentation.hide_until_filled(ws, fmt, block, student)  # first: it takes precedence
    readable.scientific_beyond(ws, fmt, block)
    plan = []
    for c in block.columns:
        blank = student is not None and student.is_blank(block, c.key)
        values = block.values[c.key]
        mixed = c.pattern is None and not all(type(v) in (int, float) and v == v for v in values)
        plan.append((c.col, None if c.pattern is None else "=" + c.pattern, fmt.number(c.number_format, blank=blank),
                     values, blank, student.dirty_from(block, c.key) if student else block.n, mixed))
    fields = {k: v.tolist() for k, v in block.fields.items()}
    keys = list(fields)
    columns = [fields[k] for k in keys]
    write_formula = getattr(ws, "write_formula_unchecked", ws.write_formula)
    write_number, write_blank = ws.write_number, ws.write_blank
    for i in progress.rows(range(block.n), block.sheet):
        row = block.first_row + i
        f = dict(zip(keys, (c[i] for c in columns)))
        for col, pattern, cell_format, vals, blank, dirty, mixed in plan:
            if pattern is None and not mixed:
                write_number(row, col, vals[i], cell_format)
            elif pattern is None:  # a data column: text as it is, a missing number (NaN, None) left blank
                v = vals[i]
                if isinstance(v, str):
                    if v:
                        ws.write_string(row, col, v)
                elif v is not None and v == v:
                    write_number(row, col, float(v), cell_format)
            elif blank:
                write_blank(row, col, None, cell_format)
            else:  # "" caches no value: the engine's value here would give an answer away
                write_formula(row, col, pattern.format_map(f), cell_format, "" if i >= dirty else cached(vals[i]))
    n_formula = sum(1 for _, p, _, _, blank, _, _ in plan if p is not None and not blank)
    counts["formula"] += n_formula * block.n
    counts["value"] += sum(sum(1 for v in vals if not (v is None or v == "" or v != v))
                           for _, p, _, vals, _, _, _ in plan if p is None)
