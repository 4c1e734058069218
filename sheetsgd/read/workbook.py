"""Reading untrusted .xlsx files safely: bounded, read-only, no code ever run.

The reader is three modules, each owning one thing: sheetsgd.read.package (the zip container, its
:class:`Limits`, the workbook's parts, defined names and shared strings), sheetsgd.read.sheet (one
worksheet's cells, read by a verified fast pattern or the general defusedxml parser) and
sheetsgd.sheet.refs (A1 references). This module is their one public face.
"""
from __future__ import annotations

from .package import Limits, Workbook, megabytes
from sheetsgd.sheet.refs import column_index, column_letters, translate
from .sheet import ERROR_VALUES, Cell, CellError, Sheet, is_finite_number

__all__ = ["ERROR_VALUES", "Cell", "CellError", "Limits", "Sheet", "Workbook", "column_index", "column_letters",
           "is_finite_number", "megabytes", "translate"]
