"""INDEX, MATCH and the conditional sums (SUMIF, SUMIFS, COUNTIFS) evaluated with numpy, in the forms
sheetsgd writes: a position in a range (a row of a range with column 0), an exact match, criteria that are
numbers matched for equality (a batch's or a step's rows found by step number)."""
from __future__ import annotations

import numpy as np

from .values import EvalError, Val


def _is_one(a: Val) -> bool:
    return bool(np.all(a.v == 1))


def _index(args):
    table, k = args[0], args[1]
    if len(args) > 2 and table.rows is not None and np.all(args[2].v == 0):
        return _index_row(table, args[1])
    if len(args) > 2:  # INDEX(range, row, col) of a one-row or one-column range: the position is the other
        k = args[1] if table.v.shape[1] > 1 and not _is_one(args[1]) else args[2] if _is_one(args[1]) else args[1]
    idx = np.asarray(k.v, dtype=float)
    width = table.v.shape[1]
    ok = np.isfinite(idx) & (idx >= 1) & (idx <= width) & (idx == np.floor(idx))
    safe = np.where(ok, idx, 1).astype(int) - 1
    rows = np.arange(max(table.v.shape[0], safe.shape[0])).reshape(-1, 1)
    v_table = np.broadcast_to(table.v, (rows.shape[0], width))
    picked = np.take_along_axis(v_table, np.broadcast_to(safe, (rows.shape[0], safe.shape[1])), axis=1)
    if table.mask is not None:
        real = np.take_along_axis(np.broadcast_to(table.mask, v_table.shape), np.broadcast_to(safe, picked.shape), axis=1)
        ok = ok & real
    picked = np.where(ok, picked, np.nan)
    return Val(picked, np.abs(picked))


def _index_row(table: Val, k: Val) -> Val:
    """INDEX(range, n, 0): the range's n-th row (its cells are stored row by row)."""
    if table.v.shape[0] != 1 or np.size(table.rows) != 1:
        raise EvalError("INDEX(range, n, 0) is evaluated on a fixed range only")
    height = int(np.ravel(table.rows)[0])
    width = table.v.shape[1] // max(height, 1)
    idx = np.asarray(k.v, dtype=float).reshape(-1, 1)
    ok = np.isfinite(idx) & (idx >= 1) & (idx <= height) & (idx == np.floor(idx))
    cells = (np.where(ok, idx, 1).astype(int) - 1) * width + np.arange(width).reshape(1, -1)  # (n, width)
    picked = np.where(ok, table.v[0][cells], np.nan)
    picked = picked if table.mask is None else np.where(table.mask[0][cells], picked, 0.0)  # a blank: no number
    return Val(picked, np.abs(picked))


def _matching(pairs: list[Val], width: int) -> np.ndarray:
    """SUMIFS/COUNTIFS criteria (range, number, …): where every criteria cell equals its number (the one form written)."""
    keep = np.full((1, width), bool(pairs) and len(pairs) % 2 == 0)
    for rng, value in zip(pairs[0::2], pairs[1::2]):
        if rng.v.shape[1] != width or value.v.shape[1] != 1 or np.any(value.s != None):  # noqa: E711
            raise EvalError("…IFS is evaluated with ranges of one size, each matched to a number")
        keep = keep & (rng.v == value.v) & (True if rng.mask is None else rng.mask)
    return keep


def _sumifs(args):
    keep = _matching(args[1:], args[0].v.shape[1]) & (True if args[0].mask is None else args[0].mask)
    v, mag = (np.sum(np.where(keep, x, 0.0), axis=1, keepdims=True) for x in (args[0].v, args[0].mag))
    unknown = np.any([np.isnan(c.v).any(axis=1) for c in args[2::2]], axis=0).reshape(-1, 1)  # an error criterion
    return Val(np.where(unknown, np.nan, v), mag)


def _countifs(args):
    n = np.sum(_matching(args, args[0].v.shape[1]), axis=1, keepdims=True).astype(float)
    return Val(n, np.zeros_like(n))


def _sumif(args):
    """SUMIF(range, number, [sum_range]): SUMIFS with the sum range first (a batch's rows by step number)."""
    if len(args) not in (2, 3):
        raise EvalError("SUMIF takes a range, a criterion and a sum range")
    return _sumifs([args[2] if len(args) > 2 else args[0], args[0], args[1]])


def _match(args):
    """MATCH(x, range, 0): the 1-based position of the first exact match (the only form sheetsgd writes)."""
    x, table = args[0], args[1]
    if len(args) > 2 and not np.all(args[2].v == 0):
        raise EvalError("MATCH is evaluated with match type 0 only")
    values = table.v if table.mask is None else np.where(table.mask, table.v, np.nan)
    hit = np.broadcast_to(values, np.broadcast_shapes(values.shape, x.v.shape)) == x.v
    pos = np.where(hit.any(axis=1, keepdims=True), np.argmax(hit, axis=1).reshape(-1, 1) + 1.0, np.nan)
    return Val(pos, np.zeros_like(pos))
