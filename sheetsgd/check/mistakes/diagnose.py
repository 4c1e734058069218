"""Naming the mistake behind a root cause: from the cell (blank, typed), the formula text (drifting and
wrong-row references) and by value (the catalogue's edits of the pattern, :mod:`sheetsgd.check.mistakes.edits`)."""
from __future__ import annotations

import re

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.sheet.blocks import is_update
from sheetsgd.sheet.evaluate import EvalError, agree, column
from .edits import variants
from sheetsgd.check.structural import cycle
from sheetsgd.read.workbook import CellError, column_index, column_letters

_CELL_REF = re.compile(r"(?:(?:'((?:[^']|'')+)'|([A-Za-z_][\w.]*))!)?(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7})(?![\w(])")


def _student_refs(formula: str, sheet: str, header_row: int, row: int):
    for m in _CELL_REF.finditer(re.sub(r'"[^"]*"', '""', formula)):
        target = (m.group(1) or "").replace("''", "'") or m.group(2) or sheet
        r = int(m.group(6))
        yield {"sheet": target, "row": r, "offset": r - row, "row_anchored": bool(m.group(5)),
               "above": target == sheet and r <= header_row, "text": m.group(0)}


def diagnose(j, ctx, shifts, stores, first: int) -> str:
    b = j.block
    if j.blank[first]:
        return "blank"
    if not b.column(j.key).is_formula:
        return "given_changed"
    if not j.formula[first]:
        return "constant_typed"
    shift = shifts[b.sheet]
    row = int(j.rows[first])
    formula = stores[shift.sheet].sheet.formula(row, j.col) or ""
    header = b.header_row + 1 + shift.rows
    refs = list(_student_refs(formula, shift.sheet, header, row))
    if not refs and not _reads_names(formula):  # only numbers: typed (a named input is a reference too)
        return "constant_typed"
    if any(r["above"] and not r["row_anchored"] for r in refs) and first > 0:
        return "lr_relative"
    path = _cycle(stores[shift.sheet].sheet, row, j.col)
    if path:  # named for what it is, whatever the values say (LibreOffice Err:522, IronCalc #CIRC!)
        j.cycle = path
        own = {shift.col(c.col): c.key for c in b.columns}
        reads_update = any(is_update(own.get(column_index(m.group(4))) or "")
                           for r in refs if r["offset"] == 0 for m in [_CELL_REF.match(r["text"])] if m)
        return "own_row_update" if reads_update else "circular_reference"
    wrong = ~j.ok
    convention = getattr(j, "convention", None)  # rows a convention decides (ŷ clipped): matched apart
    if convention is not None and (wrong & ~convention).any():
        wrong &= ~convention
    elif convention is not None:  # wrong only where ŷ is clipped: the convention, not a formula's slip
        return "clipping_ignored"
    wrong = np.flatnonzero(wrong)
    for name, tree in variants(b, j.key):
        wanted = getattr(ctx, "wants_text", False)
        ctx.wants_text = wanted or any(n[0] == "str" for n in a1.walk(tree))  # an edit that compares text
        try:
            expected, mag = column(tree, ctx, b.n)
        except EvalError:
            continue
        finally:
            ctx.wants_text = wanted
        if np.all(agree(j.found[wrong], expected[wrong], mag[wrong], rel=1e-7)):
            return name
    if any(r["sheet"] == shift.sheet and r["offset"] == 0 and r["row"] > header for r in refs):
        own = {shift.col(c.col): c.key for c in b.columns}
        for r in refs:
            m = _CELL_REF.match(r["text"])
            key = own.get(column_index(m.group(4))) if m and r["sheet"] == shift.sheet else None
            if key and is_update(key) and r["offset"] == 0:
                return "own_row_update"
    pattern_offsets = _pattern_offsets(b, j.key, first)
    if any(r["sheet"] == shift.sheet and not r["above"] and r["offset"] not in pattern_offsets | {0}
           for r in refs):
        return "wrong_row"
    raw = stores[shift.sheet].sheet.value(row, j.col)
    if isinstance(raw, CellError) or not np.isfinite(j.found[first]):
        return "error_value"
    return "unrecognised"




def _reads_names(formula: str) -> bool:
    """The formula reads a defined name (an input such as lr or beta1), not only numbers."""
    try:
        return bool(a1.names(a1.parse(formula)))
    except Exception:  # a formula the parser does not read: judged on its references alone
        return False


def _pattern_offsets(b, key: str, i: int) -> set[int]:
    """Row offsets (from the cell's own row) of this sheet's cells the column's pattern reads at row ``i``:
    the previous step's row is one row up in a step table, a step's height up where a step has several rows
    (collab-filter's users and movies)."""
    out = set()
    for ref in a1.refs(b.tree(key)):
        if ref.sheet not in (None, b.sheet):
            continue
        for r in (ref.row1, ref.row2):
            if r.field in b.fields and len(b.fields[r.field]) > i:
                out.add(int(b.fields[r.field][i]) + r.value - int(b.fields["r"][i]))
    return out


def _cycle(sheet, row: int, col: int) -> str | None:
    """The reference cycle through a cell on its sheet, as text (P9 → L9 → P9), or None."""
    def refs_of(r, c):
        formula = sheet.formula(r, c)
        if not formula:
            return []
        out = []
        for ref in _student_refs(formula, sheet.name, 0, r):
            m = _CELL_REF.match(ref["text"])
            if m and ref["sheet"] == sheet.name:
                out.append((ref["row"], column_index(m.group(4))))
        return out
    found = cycle(sheet, (row, col), refs_of)
    if not found:
        return None
    return " → ".join(f"{column_letters(c)}{r}" for r, c in found + [found[0]])
