"""A small library of realistic edits of a student version, for the metamorphic test bench.

An edit starts from the student version a teacher hands out and does what a student (or an adversary)
does: fill the exercise columns in (right, with an equivalent formula of their own, or with a catalogued
mistake), change an input, paste values instead of formulas, hand in the full workbook. Each submission is
written twice:

* ``lo``: the formulas put into the workbook's XML with stale values, then opened, recalculated and saved
  by real LibreOffice (the values a spreadsheet app saves);
* ``ic``: the same formulas with every formula cell's saved value removed (a file written by a library:
  the checker recalculates it with IronCalc).

Formulas are written in the demo's template language (``{key}`` a column of this row, ``{prev:key}`` of the
row above, ``{hp:name}`` a named input) or taken from the catalogue's own edits (:mod:`sheetsgd.check.mistakes.edits`),
rendered per row exactly as filling a formula down renders it.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sheetsgd.sheet import a1
from sheetsgd.lessons import kinds
from sheetsgd.check.demo import Flaw, _lesson_blocks, fill_sheets, sheet_parts
from sheetsgd.write.lesson_file import build_student
from sheetsgd.check.rebuild import name_cells
from sheetsgd.read.workbook import Workbook, column_letters


@dataclass(frozen=True)
class Edit:
    """One submission: ``column`` filled with ``template`` (or the catalogue's ``mistake``), the rest right."""

    tag: str
    column: str | None = None  # "key" or "Block:key"
    template: str | None = None  # a formula in the template language; None: the catalogue's edit of ``mistake``
    mistake: str | None = None  # the catalogued mistake to make (Flaw semantics: constant_typed pastes values)
    inputs: dict = field(default_factory=dict)  # {(sheet, cell): number}: inputs changed
    full: bool = False  # hand in the full workbook (every formula given), not the student version
    formulas: dict = field(default_factory=dict)  # {(sheet, cell): "=formula"}: single cells rewritten
    also: tuple = ()  # more (column, template) pairs written the same way
    rewrite: object = None  # a function of the column's row pattern text → the student's (LN → LOG …)
    scale: dict = field(default_factory=dict)  # {defined name: factor}: a named input changed


def student_version(name: str, options: dict, folder: Path) -> tuple[Path, Path]:
    """(student version, full workbook) of a bundled lesson with ``options``."""
    lesson = kinds.load(name, **options)
    kind = kinds.kind_of(lesson)
    folder.mkdir(parents=True, exist_ok=True)
    student, full = folder / "student.xlsx", folder / "full.xlsx"
    build_student(kind, lesson, student, "")
    kind.build(lesson, full)
    return student, full


def _rewritten(student: Path, column: str, rewrite) -> dict[str, dict[str, object]]:
    """The cells of ``column`` (key or Block:key) with the row pattern ``rewrite`` makes, filled down."""
    _, _, blocks, exercise = _lesson_blocks(str(student))
    out = {}
    for b in blocks:
        for key in exercise.get(b.name, ()):
            if column in (key, f"{b.name}:{key}"):
                tree = a1.parse(rewrite(b.column(key).pattern))
                letter = column_letters(b.column(key).col + 1)
                out.setdefault(b.sheet, {}).update(
                    {f"{letter}{b.first_row + 1 + i}": "=" + a1.render(tree, b.row_fields(i)) for i in range(b.n)})
    assert out, f"no exercise column {column}"
    return out


def _inputs(student: Path, scale: dict) -> dict[tuple[str, str], float]:
    """{(sheet, cell): new value} for named inputs multiplied by a factor."""
    book = Workbook(str(student))
    out = {}
    for name, factor in scale.items():
        sheet, row, col = name_cells(book)[name]
        out[(sheet, f"{column_letters(col)}{row}")] = float(book.sheet(sheet).value(row, col)) * factor
    return out


def _cells_of(edit: Edit, student: Path) -> dict[str, dict[str, object]]:
    right = fill_sheets(str(student))
    if edit.rewrite is not None:
        for sheet, cells in _rewritten(student, edit.column, edit.rewrite).items():
            right[sheet].update(cells)
        edit = Edit(edit.tag, also=edit.also)
    out = right if edit.column is None else fill_sheets(str(student), Flaw(edit.mistake or "equivalent", edit.column,
                                                                           edit.template))
    for column, template in edit.also:  # the cells this column's template changes
        other = fill_sheets(str(student), Flaw("equivalent", column, template))
        for sheet, cells in other.items():
            out[sheet].update({ref: v for ref, v in cells.items() if right[sheet].get(ref) != v})
    return out


_CELL = r'<c r="{ref}"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)'


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _set_cells(xml: str, cells: dict[str, object], stale_values: bool) -> str:
    """Every cell of ``cells`` replaced (or filled in, where the sheet has it as an empty styled cell)."""
    def one(m: re.Match) -> str:
        ref = m.group(1)
        if ref not in cells:
            return m.group(0)
        style = re.search(r' s="\d+"', m.group(2) or "")
        style = style.group(0) if style else ""
        value = cells[ref]
        if isinstance(value, str):
            v = "<v>0</v>" if stale_values else ""
            return f'<c r="{ref}"{style}><f>{_xml_escape(value[1:])}</f>{v}</c>'
        return f'<c r="{ref}"{style}><v>{float(value)!r}</v></c>'
    return re.sub(r'<c r="([A-Z]+[0-9]+)"([^>]*?)(?:/>|>.*?</c>)', one, xml, flags=re.S)


def _strip_values(xml: str) -> str:
    """Every formula cell's saved value removed (its ``t`` type with it): a file as a library writes it."""
    xml = re.sub(r"(<f>[^<]*</f>|<f [^>]*/>|<f [^>]*>[^<]*</f>)<v>[^<]*</v>", r"\1", xml)
    return re.sub(r'(<c r="[A-Z]+[0-9]+"(?: s="\d+")?) t="(?:str|e|b|n)"(><f)', r"\1\2", xml)


def write(edit: Edit, student: Path, full: Path, out: Path, stale_values: bool = True) -> Path:
    """The submission ``edit`` describes, written at the XML level into a copy of the student version
    (of the full workbook with ``full``): stale values (for LibreOffice to recalculate) or none at all."""
    source = full if edit.full else student
    cells = {} if edit.full else _cells_of(edit, student)
    for (sheet, ref), value in list(edit.inputs.items()) + list(_inputs(source, edit.scale).items()) + \
            list(edit.formulas.items()):
        cells.setdefault(sheet, {})[ref] = value
    parts = sheet_parts(str(source))
    by_part = {parts[s]: c for s, c in cells.items()}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                xml = data.decode()
                if item.filename in by_part:
                    xml = _set_cells(xml, by_part[item.filename], stale_values)
                if not stale_values:
                    xml = _strip_values(xml)
                data = xml.encode()
            zout.writestr(item, data)
    return out


def write_all(edits: list[Edit], student: Path, full: Path, folder: Path, recalc) -> dict[str, dict[str, Path]]:
    """{tag: {"lo": LibreOffice-saved, "ic": saved without values}} for every edit; one LibreOffice run
    (twice over: LibreOffice 7.4's recalculation on load of stale values across sheets is order-dependent,
    a second pass starts from settled values) for all of them."""
    stale, bare = folder / "stale", folder / "bare"
    stale.mkdir(parents=True, exist_ok=True)
    bare.mkdir(parents=True, exist_ok=True)
    staled = [write(e, student, full, stale / f"{e.tag}.xlsx") for e in edits]
    ic = [write(e, student, full, bare / f"{e.tag}.xlsx", stale_values=False) for e in edits]
    lo = recalc(recalc(staled)) if recalc is not None else [None] * len(edits)
    return {e.tag: {"lo": a, "ic": b} for e, a, b in zip(edits, lo, ic)}


def copy_as(path: Path, out: Path) -> Path:
    shutil.copy(path, out)
    return out
