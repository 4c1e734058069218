"""Post-processing of a written .xlsx: mark defined names hidden (xlsxwriter has no flag for it).

Excel keeps a sheet's Solver model in sheet-scoped names (solver_opt, solver_adj, …) that it
hides; a workbook that shows them looks odd in Name Manager. The file is rewritten in place.
"""
from __future__ import annotations

import os
import re
import tempfile
import zipfile

WORKBOOK_PART = "xl/workbook.xml"


def hide_defined_names(path: str | os.PathLike, prefix: str) -> int:
    """Add hidden="1" to every <definedName> whose name starts with ``prefix``; returns how many."""
    path = os.fspath(path)
    pattern = re.compile(r'<definedName name="(' + re.escape(prefix) + r'[^"]*)"(?![^>]*hidden=)')
    count = 0

    def hide(match: re.Match) -> str:
        nonlocal count
        count += 1
        return f'{match.group(0)} hidden="1"'

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".xlsx", dir=folder)
    os.close(fd)
    try:
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == WORKBOOK_PART:
                    data = pattern.sub(hide, data.decode("utf-8")).encode("utf-8")
                zout.writestr(item, data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return count
