"""Reading untrusted .xlsx files safely: bounded, read-only, no code ever run.

The reader is three modules, each owning one thing: sheetsgd.xlsxpackage (the zip container, its
:class:`Limits`, the workbook's parts, defined names and shared strings), sheetsgd.xlsxsheet (one
worksheet's cells, read by a verified fast pattern or the general defusedxml parser) and
sheetsgd.xlsxrefs (A1 references). This module is their one public face.
"""
from __future__ import annotations

from .xlsxpackage import Limits, Workbook, megabytes
from .xlsxrefs import column_index, column_letters, translate
from .xlsxsheet import ERROR_VALUES, Cell, CellError, Sheet, is_finite_number

__all__ = ["ERROR_VALUES", "Cell", "CellError", "Limits", "Sheet", "Workbook", "column_index", "column_letters",
           "is_finite_number", "megabytes", "translate"]
