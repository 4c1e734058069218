"""Golden dumps: every bundled lesson's workbook as (sheet, cell, formula, cached value, number format).

A refactor must not change what a user sees unless it means to. ``python tests/golden_dump.py``
rewrites the dumps under tests/golden/ (do it only for an intended change, and say why in the
commit); tests/test_golden.py builds each lesson again and compares.
"""
from __future__ import annotations

import gzip
import json
import math
import sys
import tempfile
from pathlib import Path

import openpyxl

from sheetsgd.lessons import kinds

GOLDEN = Path(__file__).resolve().parent / "golden"
# small but complete: every sheet, block and chart source of each lesson at 1-2 epochs (or rows)
OPTIONS = {
    "linear": {"epochs": 2}, "quadratic": {"epochs": 2}, "too-high": {"epochs": 10},
    "optimizers": {"epochs": 1}, "optimizers-classic": {"epochs": 1}, "one-cycle": {"epochs": 1},
    "lr-finder": {"epochs": 40}, "lr-finder-titanic": {"epochs": 30},
    "titanic-linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1}, "titanic-mlp": {"epochs": 1},
    "titanic-relu2": {"epochs": 1}, "penguins-softmax": {"epochs": 1}, "dropout": {"epochs": 1},
    "weight-decay": {"epochs": 1}, "collab-filter": {"epochs": 3}, "conv": {"epochs": 1}, "attention": {"epochs": 1},
}


def _value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def dump(path: Path) -> dict:
    """{"cells": [[sheet, cell, formula|None, cached value, number format], ...], "names": {...}}."""
    formulas = openpyxl.load_workbook(path, read_only=True)
    values = openpyxl.load_workbook(path, read_only=True, data_only=True)
    cells = []
    for ws in formulas.worksheets:
        cached = {(c.row, c.column): c.value for row in values[ws.title].iter_rows() for c in row
                  if getattr(c, "value", None) is not None}
        for row in ws.iter_rows():
            for c in row:
                if getattr(c, "value", None) is None:
                    continue
                formula = c.value if isinstance(c.value, str) and c.value.startswith("=") else None
                cells.append([ws.title, c.coordinate, formula, _value(cached.get((c.row, c.column))), c.number_format])
    names = {n: formulas.defined_names[n].attr_text for n in formulas.defined_names}
    formulas.close()
    values.close()
    return {"sheets": formulas.sheetnames, "cells": cells, "names": names}


def build_and_dump(name: str) -> dict:
    lesson = kinds.load(name, **OPTIONS[name])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.xlsx"
        kinds.kind_of(lesson).build(lesson, out)
        return dump(out)


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json.gz"


def read_golden(name: str) -> dict:
    return json.loads(gzip.decompress(golden_path(name).read_bytes()))


def main(names: list[str]) -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name in names or OPTIONS:
        data = build_and_dump(name)
        golden_path(name).write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))
        print(f"{name}: {len(data['cells'])} cells")


if __name__ == "__main__":
    main(sys.argv[1:])
