"""Filled-in submissions, as a student would make them: correct, or with one named mistake.

Used by ``examples/make_examples.py`` and the tests. A fill is a map {cell: formula or number} for the
exercise cells of a student version, rendered from the column templates (or an edited template for
a mistake) exactly as a student would type them and fill them down. Two ways to write it:
``fill_xml`` puts the formulas into the workbook's XML (keeping charts, styles and protection, like a
spreadsheet app would), ``fill_openpyxl`` saves through openpyxl (no cached values at all).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

from sheetsgd.read.workbook import column_letters

_PLACE = re.compile(r"\{(?:(prev|hp|data):)?(\w+)\}")


@dataclass(frozen=True)
class Flaw:
    """One mistake put into one column: a catalogued name, the column, and (optional) a template."""

    mistake: str
    column: str
    template: str | None = None  # None: take the catalogue's variant of the column


def _pattern(block, template: str) -> str:
    """A flaw written in the template language ({key}, {prev:key}, {hp:name}) → this block's row pattern."""
    letters = {c.key: column_letters(c.col + 1) for c in block.columns}

    def one(m):
        prefix, name = m.group(1), m.group(2)
        if prefix == "hp":
            return name
        return f"{letters[name]}{{{'p' if prefix == 'prev' else 'r'}}}"
    return _PLACE.sub(one, template)


def _lesson_blocks(student_path: str):
    from .rebuild import rebuild
    from .submission import read_manifest
    from sheetsgd.read.workbook import Limits, Workbook

    book = Workbook(student_path)
    manifest, sheet = read_manifest(book)
    lesson, blocks, exercise = rebuild(student_path, book, manifest, sheet, Limits(), numbers=True)  # pasted values
    return book, lesson, blocks, exercise


def fill_sheets(student_path: str, flaw: Flaw | None = None) -> dict[str, dict[str, object]]:
    """{sheet: {cell: formula or number}} filling every exercise cell of a student version (any lesson kind);
    ``flaw`` puts one mistake into one column (``Block:key`` or a key of the exercise)."""
    from sheetsgd.sheet import a1
    from sheetsgd.check.mistakes.edits import variants

    book, lesson, blocks, exercise = _lesson_blocks(student_path)
    lr_cell = None
    target = book.defined_names.get("lr", "")
    m = re.match(r"^=?'?([^'!]+)'?!\$?([A-Z]+)\$?([0-9]+)$", target or "")
    if m:
        lr_cell = (m.group(2), int(m.group(3)))
    out: dict[str, dict[str, object]] = {}
    for b in blocks:
        for key in sorted(exercise.get(b.name, ())):
            tree = b.tree(key)
            mine = flaw is not None and flaw.column in (key, f"{b.name}:{key}")
            if mine and flaw.template is not None:
                tree = a1.parse(_pattern(b, flaw.template))
            elif mine and flaw.mistake not in ("constant_typed", "lr_relative", "blank", "hard_coded"):
                found = [t for name, t in variants(b, key) if name == flaw.mistake]
                if not found:
                    raise ValueError(f"{flaw.mistake} cannot happen in column {key}")
                tree = found[0]
            cells = out.setdefault(b.sheet, {})
            col = column_letters(b.column(key).col + 1)
            for i in range(b.n):
                ref = f"{col}{b.first_row + 1 + i}"
                if mine and flaw.mistake == "blank" and i >= b.n // 2:
                    continue
                if mine and flaw.mistake == "constant_typed":
                    cells[ref] = float(b.values[key][i])  # pasted values
                    continue
                text = a1.render(tree, b.row_fields(i))
                if mine and flaw.mistake == "lr_relative" and lr_cell:  # what filling a relative lr down does
                    text = re.sub(r"\blr\b", f"{lr_cell[0]}{lr_cell[1] + i}", text)
                if mine and flaw.mistake == "hard_coded":
                    text = re.sub(r"\blr\b", repr(float(lesson.hyper["lr"])), text)
                cells[ref] = "=" + text
    return out


def fill_cells(student_path: str, flaw: Flaw | None = None) -> dict[str, object]:
    """{cell: formula or number} of the Steps sheet (the data lessons' only exercise sheet)."""
    return fill_sheets(student_path, flaw).get("Steps", {})


def sheet_parts(student_path: str) -> dict[str, str]:
    """{sheet name: its worksheet part} as xlsxwriter numbers them (sheet1.xml … in tab order)."""
    from sheetsgd.read.workbook import Workbook

    names = Workbook(student_path).sheet_names
    return {name: f"xl/worksheets/sheet{i}.xml" for i, name in enumerate(names, start=1)}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fill_xml(student_path: str, out_path: str, cells: dict[str, object], sheet_part: str = "xl/worksheets/sheet2.xml"):
    """Write the cells into the Steps sheet's XML (the blank cells xlsxwriter wrote: ``<c r=".." s=".."/>``)."""
    def cell_xml(m):
        ref, style = m.group(1), m.group(2)
        if ref not in cells:
            return m.group(0)
        value = cells[ref]
        if isinstance(value, str):
            return f'<c r="{ref}"{style}><f>{_xml_escape(value[1:])}</f></c>'
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>'
    with zipfile.ZipFile(student_path) as zin, zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == sheet_part:
                data = re.sub(r'<c r="([A-Z]+[0-9]+)"((?: s="\d+")?)/>', cell_xml, data.decode()).encode()
            zout.writestr(item, data)


def fill_xml_sheets(student_path: str, out_path: str, cells: dict[str, dict[str, object]]):
    """``fill_xml`` for several sheets at once: {sheet name: {cell: formula or number}}."""
    parts = sheet_parts(student_path)
    by_part = {parts[sheet]: c for sheet, c in cells.items()}

    def cell_xml(m, part_cells):
        ref, style = m.group(1), m.group(2)
        if ref not in part_cells:
            return m.group(0)
        value = part_cells[ref]
        if isinstance(value, str):  # a stale value, as an app leaves before it recalculates (LibreOffice 7.4
            # computes some cross-sheet products as #VALUE! when a formula cell has no value at all)
            return f'<c r="{ref}"{style}><f>{_xml_escape(value[1:])}</f><v>0</v></c>'
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>'
    with zipfile.ZipFile(student_path) as zin, zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename in by_part:
                part_cells = by_part[item.filename]
                data = re.sub(r'<c r="([A-Z]+[0-9]+)"((?: s="\d+")?)/>', lambda m: cell_xml(m, part_cells),
                              data.decode()).encode()
            zout.writestr(item, data)


def fill_openpyxl(student_path: str, out_path: str, cells: dict[str, object], sheet: str = "Steps"):
    import openpyxl

    wb = openpyxl.load_workbook(student_path)
    ws = wb[sheet]
    for ref, value in cells.items():
        ws[ref] = value
    wb.save(out_path)
