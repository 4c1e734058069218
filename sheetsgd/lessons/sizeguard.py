"""Workbook size limits, checked before anything is written.

A lesson can ask for more than a spreadsheet holds: Google Sheets stops at 10 million cells per
spreadsheet (all tabs together), Excel at 1,048,576 rows × 16,384 columns per sheet and 8,192
characters per formula. Refusing up front with advice beats a file that will not open.
"""
from __future__ import annotations

from dataclasses import dataclass

from sheetsgd.errors import SheetsgdError

GOOGLE_SHEETS_MAX_CELLS = 10_000_000
EXCEL_MAX_FORMULA_CHARS = 8_192
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384


@dataclass
class WorkbookSize:
    cells: int  # value and formula cells of all sheets
    formula_cells: int
    longest_formula: int  # characters, without the leading '='
    max_rows: int  # rows of the tallest sheet
    max_columns: int  # columns of the widest sheet

    def problems(self) -> list[str]:
        out = []
        if self.cells > GOOGLE_SHEETS_MAX_CELLS:
            out.append(f"{self.cells:,} cells, more than Google Sheets' {GOOGLE_SHEETS_MAX_CELLS:,}")
        if self.longest_formula > EXCEL_MAX_FORMULA_CHARS:
            out.append(f"a formula of {self.longest_formula:,} characters, more than Excel's {EXCEL_MAX_FORMULA_CHARS:,}")
        if self.max_rows > EXCEL_MAX_ROWS:
            out.append(f"a sheet of {self.max_rows:,} rows, more than Excel's {EXCEL_MAX_ROWS:,}")
        if self.max_columns > EXCEL_MAX_COLUMNS:
            out.append(f"a sheet of {self.max_columns:,} columns, more than Excel's {EXCEL_MAX_COLUMNS:,}")
        return out

    def check(self, where: str | None = None,
              advice: str = "use fewer epochs or a larger batch (or fewer rows)") -> None:
        """Raise a one-line SheetsgdError when the workbook would not fit Google Sheets or Excel."""
        problems = self.problems()
        if problems:
            raise SheetsgdError(f"workbook too large: {'; '.join(problems)}: {advice}", where)
