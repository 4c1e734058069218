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

from .engine import train
from .mistakes import variants
from .submission import Submission, locate
from .xlsxread import column_letters

_PLACE = re.compile(r"\{(?:(prev|hp|data):)?(\w+)\}")


@dataclass(frozen=True)
class Flaw:
    """One mistake put into one column: a catalogued name, the column, and (optional) a template."""

    mistake: str
    column: str
    template: str | None = None  # None: take the catalogue's variant of the column


def render(template: str, sub: Submission, i: int, lr_relative: bool = False) -> str:
    """The A1 formula (with '=') a student writes for a template in step ``i`` (0-based)."""
    row = sub.step_rows[i]
    lesson = sub.lesson
    first, last = None, None
    if lesson.batch_size > 1:
        first = int(sub.sheet.value(row, sub.col_of["first"]))
        last = int(sub.sheet.value(row, sub.col_of["last"]))

    def one(m):
        prefix, name = m.group(1), m.group(2)
        if prefix == "hp":
            if lr_relative and name == "lr":  # B4, B5, …: what filling a relative reference down does
                _, r, c = sub.hyper_cells["lr"]
                return f"{column_letters(c)}{r + i}"
            return name
        if prefix == "data":
            col = column_letters(2 if name == "x" else 3)
            top = sub.manifest["data_rows"][0]
            return f"{sub.data_sheet}!${col}${top + first - 1}:${col}${top + last - 1}"
        return f"{column_letters(sub.col_of[name])}{row - 1 if prefix == 'prev' else row}"
    return "=" + _PLACE.sub(one, template)


def flaw_template(sub: Submission, flaw: Flaw) -> str | None:
    if flaw.template is not None:
        return flaw.template
    column = next(c for c in sub.columns if c.key == flaw.column)
    for name, template in variants(sub.lesson, column):
        if name == flaw.mistake:
            return template
    return None


def fill_cells(student_path: str, flaw: Flaw | None = None) -> dict[str, object]:
    """{cell: formula or number} filling every exercise cell; ``flaw`` puts one mistake into one column."""
    sub = locate(student_path)
    cells: dict[str, object] = {}
    values = train(sub.lesson).steps if flaw and flaw.mistake in ("constant_typed",) else None
    for column in sub.columns:
        if column.key not in sub.exercise:
            continue
        template = column.formula
        mine = flaw is not None and flaw.column == column.key
        if mine and flaw.mistake not in ("constant_typed", "lr_relative", "blank", "hard_coded"):
            template = flaw_template(sub, flaw)
            if template is None:
                raise ValueError(f"{flaw.mistake} cannot happen in column {column.key}")
        if mine and flaw.mistake == "hard_coded":
            template = template.replace("{hp:lr}", repr(sub.hyper["lr"]))
        for i in range(len(sub.step_rows)):
            ref = sub.cell_ref(column.key, i)
            if mine and flaw.mistake == "blank" and i >= len(sub.step_rows) // 2:
                continue
            if mine and flaw.mistake == "constant_typed":
                cells[ref] = float(values[column.key][i])  # pasted values
            else:
                cells[ref] = render(template, sub, i, lr_relative=mine and flaw.mistake == "lr_relative")
    return cells


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


def fill_openpyxl(student_path: str, out_path: str, cells: dict[str, object], sheet: str = "Steps"):
    import openpyxl

    wb = openpyxl.load_workbook(student_path)
    ws = wb[sheet]
    for ref, value in cells.items():
        ws[ref] = value
    wb.save(out_path)
