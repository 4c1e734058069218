"""A filled-in student version whose Steps sheet is named with markup and quotes, and whose formula
holds a script element: what a hostile student could hand in to the feedback writers."""
from __future__ import annotations

import re
import zipfile
from xml.sax.saxutils import escape

from sheetsgd.check.demo import fill_sheets, fill_xml_sheets

from xlsx_parts import sheet_parts

HOSTILE_SHEET = 'St"e\'ps<script>alert(1)'  # a sheet name may not hold / (nor be over 31 characters)
HOSTILE_FORMULA = '=I9*D9+LEN("<script>alert(2)</script>")'


def make_hostile(student: str, out: str) -> None:
    """The linear lesson's student version filled in, L9 (∂L/∂a) wrong with a script in a string, and the
    Steps sheet renamed to HOSTILE_SHEET everywhere it is named (not in the manifest)."""
    cells = fill_sheets(student)
    cells["Steps"]["L9"] = HOSTILE_FORMULA
    tmp = out + ".filled.xlsx"
    fill_xml_sheets(student, tmp, cells)
    quoted = escape("'" + HOSTILE_SHEET.replace("'", "''") + "'!", {'"': "&quot;"})
    with zipfile.ZipFile(tmp) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        names = zin.namelist()
        manifest = sheet_parts(zin)["_sheetsgd"]
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(".xml") and item.filename != manifest:
                text = re.sub(r"'?Steps'?!", lambda m: quoted, data.decode())
                text = text.replace('name="Steps"', f'name="{escape(HOSTILE_SHEET, {chr(34): "&quot;"})}"')
                data = text.encode()
            zout.writestr(item, data)
