"""An author's own data for a data lesson: ``[data] csv = "houses.csv"``, ``inputs = ["t"]``, ``target = "y"``.

The file is read once, when the template is (a path relative to the template file; a regular file; at most
:data:`MAX_CSV_BYTES`; UTF-8 with a header row), and its two columns become the template's ``x`` and ``y``
lists: the workbook's manifest records the data itself, so a checker never opens a path a workbook names.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.inputfile import read_regular

MAX_CSV_BYTES = 16 * 2**20  # a million rows of two numbers fit; a data lesson's sheet holds at most that
MAX_ROWS = 1_000_000  # schema.MAX_EXAMPLES


def _show(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "…")


def read_csv_columns(path: Path, input_name: str, target: str, where: str) -> tuple[list[float], list[float]]:
    """The input and target columns of an author's CSV file, as numbers; every problem a one-line error
    naming the file and, for a cell, its row and column."""
    data = read_regular(path, "CSV file", MAX_CSV_BYTES)
    shown = str(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SheetsgdError(f"is not UTF-8 text (byte {exc.start:,} cannot be read); save it as UTF-8 CSV", shown) from None
    if "\0" in text:
        raise SheetsgdError("holds a NUL character: not a CSV text file", shown)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise SheetsgdError("is empty: a CSV needs a header row and at least one row of data", shown)
        names = [h.strip() for h in header]
        columns = []
        for name in (input_name, target):
            if name not in names:
                raise SheetsgdError(f"has no column {_show(name)} (its header: {', '.join(map(_show, names[:20]))}"
                                    f"{' …' if len(names) > 20 else ''}); {where} names it", shown)
            if names.count(name) > 1:
                raise SheetsgdError(f"has two columns named {_show(name)}", shown)
            columns.append(names.index(name))
        xs, ys = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line (a trailing newline in a spreadsheet's export)
            if len(xs) >= MAX_ROWS:
                raise SheetsgdError(f"has more than {MAX_ROWS:,} rows; a data lesson holds at most that many", shown)
            line = reader.line_num
            for out, col, name in ((xs, columns[0], input_name), (ys, columns[1], target)):
                cell = row[col].strip() if col < len(row) else ""
                try:
                    value = float(cell)
                except ValueError:
                    raise SheetsgdError(f"line {line:,}, column {_show(name)}: {_show(cell)} is not a number", shown) from None
                if not math.isfinite(value):
                    raise SheetsgdError(f"line {line:,}, column {_show(name)}: {cell} is not a finite number", shown)
                out.append(value)
    except csv.Error as exc:
        raise SheetsgdError(f"is not a readable CSV (line {reader.line_num:,}: {exc})", shown) from None
    if not xs:
        raise SheetsgdError("has a header row but no rows of data", shown)
    return xs, ys


def _raise(message: str, where: str):
    raise SheetsgdError(message, where)


def check_csv_keys(data: dict, fail) -> None:
    """csv comes with inputs and target, and instead of x, y, columns and generate."""
    if not {"csv", "inputs", "target"} & set(data):
        return
    if "csv" in data and ({"x", "y", "generate", "columns"} & set(data)):
        fail("give csv (with inputs and target) or x and y lists or a [data.generate] table, one of them")
    if "csv" not in data:
        fail("inputs and target name a csv file's columns: give csv too")


def csv_path(spec: dict, template: str | None, where: str) -> Path:
    """The CSV file a ``[data]`` table names, relative to the template file's folder."""
    if template is None:
        raise SheetsgdError("csv is read from a template file only", where)
    return Path(template).parent / spec["csv"]


def csv_names(spec: dict, where: str) -> tuple[str, str]:
    inputs, target = spec.get("inputs"), spec.get("target")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], str):
        raise SheetsgdError("csv needs inputs = [\"<column>\"]: a data lesson's model has one input column", where)
    if not isinstance(target, str):
        raise SheetsgdError("csv needs target = \"<column>\": the column the model predicts", where)
    if inputs[0] == target:
        raise SheetsgdError(f"the input and the target are the same column {_show(target)}", where)
    return inputs[0], target


def inline_csv(raw: dict, source: str) -> dict:
    """The template with its ``[data] csv`` read into ``x``, ``y`` and ``columns``: what the workbook records."""
    data = raw["data"]
    where = f"{source} [data]"
    check_csv_keys(data, lambda message: _raise(message, where))
    input_name, target = csv_names(data, where)
    xs, ys = read_csv_columns(csv_path(data, source, where), input_name, target, where)
    kept = {k: v for k, v in data.items() if k not in ("csv", "inputs", "target", "columns")}
    return {**raw, "data": {**kept, "x": xs, "y": ys, "columns": [input_name, target]}}
