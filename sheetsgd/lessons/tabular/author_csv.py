"""An author's CSV for a tabular lesson: read with a bound, checked, and recorded in the template.

``[data] csv = "mine.csv"`` names a file beside the template (a path relative to the template file). It
must be a regular file of at most ``MAX_CSV_BYTES``, UTF-8 (a byte-order mark is allowed), with a header
row of distinct names and at least two data rows, every row as wide as the header. Loading the template
records the file's text as ``[data] csv_text``, so the workbook's manifest rebuilds the lesson without the
file (the checker reads a workbook alone) and a grade's identity covers the data. A template may also give
``csv_text`` itself instead of a file.

A field that is empty or ``NA`` (as R writes a missing value) is missing; what happens to a row with a
missing value is the lesson's missing-value policy (``author_data``).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from sheetsgd.lessons.sgd.data import sheet_float
from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.inputfile import read_regular

MAX_CSV_BYTES = 2 * 2**20  # far above a lesson's data (the Titanic CSV is 61 KB); the manifest holds the text
MAX_CSV_ROWS = 50_000  # data rows; a lesson's sheets hold several cells per row and step
MISSING = ("", "NA")


def inline_csv(raw: dict, source: str) -> dict:
    """The template with ``[data] csv``'s file read into ``csv_text`` (unchanged without ``csv``)."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or "csv" not in data or "csv_text" in data:
        return raw
    name = data["csv"]
    where = f"{source} [data] csv"
    if not isinstance(name, str) or not name.strip():
        raise SheetsgdError(f"csv must be a file name, got {name!r:.60}", where)
    path = Path(source).parent / name
    blob = read_regular(path, "CSV file", MAX_CSV_BYTES)
    return {**raw, "data": {**data, "csv_text": decode(blob, str(path))}}


def decode(blob: bytes, where: str) -> str:
    if not blob.strip():
        raise SheetsgdError("is empty: a CSV file with a header row and data rows is needed", where)
    try:
        return blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SheetsgdError(f"is not UTF-8 text (byte {exc.start:,} is 0x{blob[exc.start]:02x}): save the CSV as "
                            "UTF-8", where) from None


@dataclass
class Table:
    """The CSV's header and its data rows (texts, each stripped of surrounding spaces)."""

    name: str  # the file's name, for messages
    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]

    def numbers(self, name: str) -> list[float]:
        """A numeric column: each present value as the sheet stores it, a missing one NaN."""
        out = []
        for k, text in enumerate(self.column(name)):
            if text in MISSING:
                out.append(math.nan)
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
                bad = True
            else:
                bad = not math.isfinite(value)
            if bad:
                raise SheetsgdError(f"{text[:40]!r} in numeric column {name!r} is not a number (give the column in "
                                    "categorical, or fix the value)", self.where(k))
            out.append(sheet_float(value))
        return out

    def is_numeric(self, name: str) -> bool:
        """Every present value of the column is a finite number."""
        for text in self.column(name):
            if text in MISSING:
                continue
            try:
                if not math.isfinite(float(text)):
                    return False
            except ValueError:
                return False
        return True

    def where(self, k: int) -> str:
        """Row ``k`` (0-based data row) as a line of the file: the header is line 1."""
        return f"{self.name} line {k + 2}"


def parse(text: str, name: str) -> Table:
    """The header and rows of a CSV text, checked: one-line errors name the file and its line."""
    if len(text) > MAX_CSV_BYTES:
        raise SheetsgdError(f"the CSV is larger than {MAX_CSV_BYTES / 2**20:g} MB", name)
    if not text.strip():
        raise SheetsgdError("is empty: a CSV file with a header row and data rows is needed", name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # a blank line
            if len(fields) != len(header):
                raise SheetsgdError(f"has {len(fields)} field(s) where the header has {len(header)}",
                                    f"{name} line {reader.line_num}")
            rows.append([f.strip() for f in fields])
            if len(rows) > MAX_CSV_ROWS:
                raise SheetsgdError(f"has more than {MAX_CSV_ROWS:,} data rows, more than a lesson's sheets hold", name)
    except csv.Error as exc:
        raise SheetsgdError(f"is not a readable CSV: {exc}", f"{name} line {reader.line_num}") from None
    empty = [i + 1 for i, h in enumerate(header) if not h]
    if empty:
        raise SheetsgdError(f"the header row has no name for column {empty[0]}: every column needs a name", name)
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise SheetsgdError(f"the header row names {twice[0]!r} twice: column names must differ", name)
    if len(rows) < 2:
        raise SheetsgdError(f"has {len(rows)} data row(s): a lesson needs at least 2", name)
    return Table(name, header, rows)
