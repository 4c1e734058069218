"""The workbook being written, for every lesson kind: portable worksheets, formats, blocks, manifest.

:class:`Book` wraps an xlsxwriter workbook (constant memory: rows go out in order) whose sheets skip
xlsxwriter's ``_xlfn.`` pass; it collects the :class:`sheetsgd.sheet.blocks.Block` s its writers write and,
for a student version, the :class:`sheetsgd.sheet.blocks.StudentPlan`. ``Book(None)`` writes nothing: the
checker rebuilds a lesson that way to know its blocks (patterns, row fields, engine values).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import xlsxwriter
import xlsxwriter.worksheet

from sheetsgd import __version__
from . import layouts
from sheetsgd.errors import SheetsgdError

MANIFEST_VERSION = 3  # 3: central finite differences (2: forward)
MANIFEST_CHUNK = 30_000  # characters per manifest cell (a cell holds 32,767): longer values span rows


class PortableWorksheet(xlsxwriter.worksheet.Worksheet):
    """A worksheet that skips xlsxwriter's _xlfn. prefixing (about 30 regex passes per formula).

    sheetsgd formulas use only PORTABLE_FUNCTIONS (tests check every bundled formula), none of which
    Excel stores with a prefix, so the passes cannot change anything; skipping them halves write time.
    In a student version, a formula written outside the blocks (Epochs, fitted curve, Solver targets)
    that reads an answer-dependent cell caches nothing.
    """

    sheetsgd_book = None
    is_null = False

    def _prepare_formula(self, formula, expand_future_functions=False):
        return formula[1:] if formula.startswith("=") else formula

    def write_formula_unchecked(self, row, col, formula, cell_format=None, value=0):
        """A block's formula: its writer already decided what it caches (and skips the argument conversion)."""
        return self._write_formula(row, col, formula, cell_format, value)

    def write_formula(self, row, col, formula=None, cell_format=None, value=0):
        student = self.sheetsgd_book.student if self.sheetsgd_book is not None else None
        if student is not None and isinstance(row, int) and student.reads_answers(self.name, formula,
                                                                                 self.sheetsgd_book.names()):
            value = ""
            student.add_region(self.name, row, col)
        return super().write_formula(row, col, formula, cell_format, value)


def _ignore(*args, **kwargs):
    return _NULL


class _Null:
    """Stands in for xlsxwriter objects when nothing is written: every call is accepted and ignored."""

    is_null = True

    def __init__(self, name: str = ""):
        self.name = name
        self.sheetsgd_book = None

    def __getattr__(self, attr):
        return _ignore

    def __iter__(self):
        return iter(())

    def get_name(self) -> str:
        return self.name


_NULL = _Null()


class _NullWorkbook(_Null):
    def __init__(self, name: str = ""):
        super().__init__(name)
        self.defined_names = []  # as xlsxwriter keeps them: the checker compares the workbook's with these

    def define_name(self, name, formula):
        self.defined_names.append([name, -1, str(formula).lstrip("="), False])

    def add_worksheet(self, name=None, worksheet_class=None):
        return _Null(name)

    def worksheets(self):
        return []


class Book:
    """A workbook being written: its formats, its cell counts, its blocks, and sheets that skip the _xlfn. pass.

    ``student`` (a :class:`sheetsgd.sheet.blocks.StudentPlan`) is set for a student version. ``path=None``:
    nothing is written (a rebuild for the checker), only the blocks are collected."""

    def __init__(self, path, exercise: dict | None = None):
        self.path = None if path is None else os.fspath(path)
        self.null = path is None
        if self.null:
            self.wb = _NullWorkbook()
        else:
            try:
                self.wb = xlsxwriter.Workbook(self.path, {"constant_memory": True, "strings_to_numbers": False})
            except OSError as exc:  # pragma: no cover - xlsxwriter opens lazily
                raise SheetsgdError(f"cannot write: {exc}", self.path) from None
        self.fmt = Formats(self.wb)
        self.counts = {"formula": 0, "value": 0}
        self.quantity_formats: dict[str, str] = {}  # one number format per quantity across the workbook
        self.blocks = []
        self.exercise = {name: set(keys) for name, keys in (exercise or {}).items()}
        self.student = None
        if exercise and getattr(exercise, "blocks", None):  # every block known up front (a probe build)
            from .blocks import StudentPlan
            self.student = StudentPlan(exercise.blocks, self.exercise)

    def names(self) -> dict[str, str]:
        """{defined name: its target} defined so far (a student version follows names to their cells)."""
        return {n[0]: n[2] for n in getattr(self.wb, "defined_names", []) if isinstance(n, list) and len(n) > 2}

    def plan_student(self, blocks) -> None:
        """A student version's plan from the lesson's blocks, where the build was not given one up front."""
        if self.exercise and self.student is None:
            from .blocks import StudentPlan
            self.student = StudentPlan(blocks, self.exercise)

    def sheet(self, name: str):
        ws = self.wb.add_worksheet(name, worksheet_class=PortableWorksheet)
        ws.sheetsgd_book = self
        return ws

    def report(self, steps: int, longest_formula: int = 0) -> "BuildReport":
        size = 0 if self.null else os.path.getsize(self.path)
        return BuildReport(self.path, steps, self.counts["formula"], self.counts["value"], size, longest_formula,
                           blocks=self.blocks, names=self.names())


@dataclass
class BuildReport:
    path: str
    steps: int
    formula_cells: int
    value_cells: int
    bytes: int = 0
    longest_formula: int = 0  # characters (reported where the size guard measured it)
    blocks: list = field(default_factory=list, repr=False)  # what was written, for the checker
    names: dict = field(default_factory=dict, repr=False)  # {defined name: its target}

    @property
    def cells(self) -> int:
        return self.formula_cells + self.value_cells


class Formats:
    def __init__(self, wb: xlsxwriter.Workbook):
        self.wb = wb
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                     "valign": "top", "align": "center"})
        # inputs stay unlocked: a protected student version still lets them be edited
        self.hyper = wb.add_format({"bg_color": "#FFF2CC", "border": 1, "num_format": "General", "locked": False})
        self.bold = wb.add_format({"bold": True})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.bold_wrap = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.note = wb.add_format({"italic": True, "font_color": "#595959"})
        self._cache: dict[tuple[str, bool], object] = {}
        self._hidden = None

    def hidden(self):
        """The conditional format of a student version's cells that wait for a blank: nothing shown."""
        if self._hidden is None:
            self._hidden = self.wb.add_format({"font_color": "#FFFFFF", "num_format": ";;;"})
        return self._hidden

    def number(self, num_format: str, start: bool = False, blank: bool = False):
        """A number's cell format. Shrink to fit: a value far beyond the column's (a diverging student sheet)
        is drawn smaller rather than as ###."""
        key = (num_format, start, blank)
        if key not in self._cache:
            props = {"num_format": num_format, "shrink": True}
            if start:
                props.update(bg_color="#F2F2F2", italic=True)
            if blank:  # a cell the student fills in: highlighted, unlocked
                props.update(bg_color="#FCE4D6", border=1, border_color="#ED7D31", locked=False)
            self._cache[key] = self.wb.add_format(props)
        return self._cache[key]

    def input(self, num_format: str):
        """An input cell (yellow, unlocked) showing its number in ``num_format``."""
        key = (num_format, "input", False)
        if key not in self._cache:
            self._cache[key] = self.wb.add_format({"bg_color": "#FFF2CC", "border": 1, "num_format": num_format,
                                                   "locked": False, "shrink": True})
        return self._cache[key]

    def scientific(self):
        """The conditional format of a fixed-decimal cell whose value outgrew its column: scientific."""
        key = ("scientific", False, False)
        if key not in self._cache:
            self._cache[key] = self.wb.add_format({"num_format": "0.00E+00"})
        return self._cache[key]


def write_title(ws, fmt: Formats, title: str, note: str) -> None:
    """A sheet's title (row 1) and the note under it (row 2)."""
    ws.write_string(0, 0, title, fmt.title)
    ws.write_string(1, 0, note, fmt.note)


def write_headers(ws, fmt: Formats, block, row: int | None = None) -> None:
    """A block's column headers, on its header row (or ``row``)."""
    for c in block.columns:
        ws.write_string(block.header_row if row is None else row, c.col, c.header, fmt.header)


def close_workbook(wb, path: str) -> None:
    if path is None:
        return
    from sheetsgd.runtime import progress
    progress.stage("saving")
    try:
        wb.close()
    except (OSError, xlsxwriter.exceptions.FileCreateError) as exc:
        raise SheetsgdError(f"cannot write: {getattr(exc, 'orig_exception', exc)}", path) from None


def finish_workbook(wb, path: str, intro, manifest_ws, entries: dict) -> None:
    """Write the hidden manifest, set every sheet up to print (one page wide, readable), open on the
    Introduction, close."""
    write_manifest_entries(manifest_ws, {"generator": f"sheetsgd {__version__}", "spec_version": MANIFEST_VERSION,
                                          **entries})
    manifest_ws.hide()
    book = getattr(intro, "sheetsgd_book", None)
    if book is not None and book.student is not None and not book.null:
        from .presentation import hide_outside_blocks
        hide_outside_blocks(wb, book.fmt, book.student)
    from .chart_data import write_chart_data
    from .readable import set_up_workbook
    if book is not None:
        write_chart_data(book)
    set_up_workbook(wb, book.blocks if book is not None else ())
    intro.activate()
    close_workbook(wb, path)


def write_manifest_entries(ws, entries: dict) -> None:
    """The hidden manifest: one key per row, its value as JSON (long values continue on rows ``key+``)."""
    ws.write_row(0, 0, ["key", "value (JSON)"])
    row = 1
    for key, value in entries.items():
        text = json.dumps(value, ensure_ascii=False)
        for i in range(0, max(len(text), 1), MANIFEST_CHUNK):
            ws.write_string(row, 0, key if i == 0 else key + "+")
            ws.write_string(row, 1, text[i:i + MANIFEST_CHUNK])
            row += 1


def lesson_entries(book: Book, lesson, exercise: dict[str, set[str]] | None = None) -> dict:
    """The manifest entries every kind shares: where the lesson came from (so the checker can rebuild its
    blocks), which columns are blank (names only, no answers), and where each block lies."""
    origin = getattr(lesson, "origin", None)
    try:
        json.dumps(origin)
    except (TypeError, ValueError):  # a template value JSON cannot hold: the checker falls back on the layout
        origin = None
    variant = getattr(lesson, "variant", None)
    return {"origin": origin, **({"variant": {"id": variant, "rule": 1}} if variant is not None else {}),
            layouts.MANIFEST_KEY: layouts.version_of(lesson),
            "exercise_blocks": {name: sorted(keys) for name, keys in (exercise or {}).items()},
            "blocks": [b.manifest() for b in book.blocks]}
