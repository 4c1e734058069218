"""Evaluating a parsed formula for many rows at once with numpy, and the one function registry.

``FUNCTIONS`` maps each function a sheetsgd workbook may use to its numpy implementation; its keys are
the portable set (:data:`sheetsgd.sheet.formula.PORTABLE_FUNCTIONS`): a function the checker cannot evaluate
cannot be written. Values are :class:`Val`: an (n, k) array per row of a block (k = 1 for a cell, the
cells of a range otherwise, ``mask`` marking the real ones of a padded range), with a magnitude (Σ|terms|,
the scale rounding errors live on) so "equal" can mean "equal up to rounding" even where ŷ − y cancels.
Errors and text are NaN, as the sheet shows them as error values; spreadsheet semantics where they
matter (unary minus before ^, 0^0 = 1 is not an error, division by 0 is).
"""
from __future__ import annotations

from typing import Callable

import numpy as np


from .values import EvalError, Val, _mask, scalar  # noqa: F401 (the evaluator's types, imported from here too)
from .lookup_functions import _countifs, _index, _match, _sumif, _sumifs


def _elementwise(fn, mag_fn=None):
    def impl(args):
        (a,) = args
        with np.errstate(all="ignore"):
            v = fn(a.v)
            return Val(v, mag_fn(a, v) if mag_fn else np.abs(v), a.mask)
    return impl


def _reduce(values: list[Val], fill: float, op) -> tuple[np.ndarray, np.ndarray]:
    """Reduce every argument along its cells (masked ones → fill), then across arguments."""
    parts, mags = [], []
    for a in values:
        v, mag = a.v, a.mag
        if a.mask is not None:
            v, mag = np.where(a.mask, v, fill), np.where(a.mask, mag, 0)
        parts.append(op(v, axis=1, keepdims=True))
        mags.append(np.sum(mag, axis=1, keepdims=True))
    total = parts[0]
    for p in parts[1:]:
        total = op(np.concatenate(np.broadcast_arrays(total, p), axis=1), axis=1, keepdims=True)
    return total, sum(mags[1:], mags[0])


def _count(values: list[Val]) -> np.ndarray:
    out = 0
    for a in values:
        real = np.isfinite(a.v) if a.mask is None else a.mask & np.isfinite(a.v)
        out = out + np.sum(real, axis=1, keepdims=True)
    return np.asarray(out, dtype=float)


def _sum(args):
    v, mag = _reduce(args, 0.0, np.sum)
    return Val(v, mag)


def _average(args):
    v, mag = _reduce(args, 0.0, np.sum)
    n = _count(args)
    with np.errstate(all="ignore"):
        return Val(np.where(n > 0, v / np.where(n > 0, n, 1), np.nan), mag / np.maximum(n, 1))


def _stdevp(args):
    """STDEVP: the population standard deviation of the numbers in every argument."""
    mean = _average(args)
    total, n = 0.0, _count(args)
    for a in args:
        v = a.v - mean.v
        total = total + np.sum(v * v if a.mask is None else np.where(a.mask, v * v, 0.0), axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        v = np.where(n > 0, np.sqrt(total / np.where(n > 0, n, 1)), np.nan)
    return Val(v, np.abs(v) + mean.mag)


def _minmax(op, fill):
    def impl(args):
        v, _ = _reduce(args, fill, op)
        v = np.where(np.isinf(v) & (v == fill), 0.0, v)  # MIN/MAX of nothing is 0
        return Val(v, np.abs(v))
    return impl


def _sumproduct(args):
    prod = args[0]
    for other in args[1:]:
        if other.v.shape[1] != prod.v.shape[1] and 1 not in (other.v.shape[1], prod.v.shape[1]):
            raise EvalError("SUMPRODUCT of ranges of different sizes")
        prod = Val(prod.v * other.v, prod.mag * other.mag, _mask(prod, other))
    return _sum([prod])


def _sumsq(args):
    return _sum([Val(a.v * a.v, a.mag * a.mag, a.mask) for a in args])


def _power(a: Val, b: Val) -> Val:
    with np.errstate(all="ignore"):
        v = np.power(a.v, b.v)
        bad = (a.v == 0) & (b.v < 0) | (a.v < 0) & (b.v != np.floor(b.v))
        v = np.where(bad, np.nan, v)
        return Val(v, np.power(a.mag, b.v) * (1 + np.abs(b.v)), _mask(a, b))


def _if(args):
    cond = args[0]
    yes = args[1] if len(args) > 1 else scalar(1.0)
    no = args[2] if len(args) > 2 else scalar(0.0)
    c = cond.v
    v = np.where(np.isnan(c), np.nan, np.where(c != 0, yes.v, no.v))
    mag = np.where(c != 0, yes.mag, no.mag)
    text = None
    if yes.s is not None or no.s is not None:
        shape = np.broadcast_shapes(c.shape, yes.v.shape, no.v.shape)
        pick = lambda a: np.broadcast_to(a.s if a.s is not None else np.full(a.v.shape, None, object), shape)
        text = np.where(np.broadcast_to(c != 0, shape), pick(yes), pick(no))
    return Val(v, mag, _mask(cond, yes, no), s=text)


def _logical(op):
    def impl(args):
        parts = []
        for a in args:
            v = a.v if a.mask is None else np.where(a.mask, a.v, 1.0 if op is np.all else 0.0)
            parts.append(op(v != 0, axis=1, keepdims=True) | np.any(np.isnan(v), axis=1, keepdims=True) * 0)
            if np.any(np.isnan(v)):
                parts[-1] = np.where(np.any(np.isnan(v), axis=1, keepdims=True), np.nan, parts[-1])
        out = parts[0].astype(float)
        for p in parts[1:]:
            out = np.where(np.isnan(out) | np.isnan(p), np.nan, op(np.stack(np.broadcast_arrays(out != 0, p != 0)), axis=0))
        return Val(np.asarray(out, dtype=float), np.zeros_like(out, dtype=float))
    return impl


def _rows(args):
    (a,) = args
    n = a.rows if a.rows is not None else np.ones((1, 1))
    return Val(np.asarray(n, dtype=float).reshape(-1, 1), np.zeros((np.size(n), 1)))


def _countblank(args):
    """COUNTBLANK(range): the range's cells less its non-blank ones (a padded range's mask marks both padding
    and blanks, so the cells are counted from its rows per block row); one cell: blank when its text is ""."""
    (a,) = args
    if a.rows is None:
        blank = np.zeros(a.v.shape) if a.s is None else np.vectorize(lambda t: float(t == ""), otypes=[float])(a.s)
        return Val(blank, np.zeros_like(blank))
    rows = np.asarray(a.rows, dtype=float).reshape(-1, 1)
    width = a.v.shape[1] // max(1, int(rows.max(initial=1)))
    filled = np.sum(a.mask, axis=1, keepdims=True) if a.mask is not None else np.full(rows.shape, float(a.v.shape[1]))
    v = rows * width - filled
    return Val(v, np.zeros_like(v))


def _mod(args):
    a, b = args
    with np.errstate(all="ignore"):
        v = np.where(b.v == 0, np.nan, a.v - b.v * np.floor(a.v / np.where(b.v == 0, 1, b.v)))
    return Val(v, np.abs(v), _mask(a, b))


def _iserror(args):
    (a,) = args
    return Val((~np.isfinite(a.v)).astype(float), np.zeros_like(a.v), a.mask)


def _na(args):
    return Val(np.full((1, 1), np.nan), np.zeros((1, 1)))


FUNCTIONS: dict[str, Callable[[list[Val]], Val]] = {
    "ABS": _elementwise(np.abs, lambda a, v: a.mag),
    "AVERAGE": _average,
    "COS": _elementwise(np.cos, lambda a, v: np.abs(v) + a.mag),  # |Δcos| ≤ |Δx|: the argument's rounding
    "COUNT": lambda args: Val(_count(args), np.zeros_like(_count(args))),
    "COUNTBLANK": _countblank,  # a student version's conditional formats: hidden while a blank is empty
    "COUNTIFS": _countifs,
    # an overflow is an error in every spreadsheet (#NUM!), not +inf that 1/(1+EXP(…)) would turn into 0
    "EXP": _elementwise(lambda x: np.where(x > 709.78, np.nan, np.exp(np.minimum(x, 709.78))),
                        lambda a, v: np.abs(v) * (1 + a.mag)),
    "IF": _if,
    "INDEX": _index,
    "INT": _elementwise(np.floor),
    "LN": _elementwise(lambda x: np.where(x > 0, np.log(np.abs(x)), np.nan), lambda a, v: a.mag / np.abs(a.v)),
    "LOG10": _elementwise(lambda x: np.where(x > 0, np.log10(np.abs(x)), np.nan),
                          lambda a, v: a.mag / np.abs(a.v) / np.log(10)),
    "MAX": _minmax(np.max, -np.inf),
    "MIN": _minmax(np.min, np.inf),
    "MOD": _mod,
    "PI": lambda args: scalar(np.pi),
    "POWER": lambda args: _power(args[0], args[1]),
    "ROWS": _rows,
    "SIGN": _elementwise(np.sign, lambda a, v: np.zeros_like(v)),
    "SIN": _elementwise(np.sin, lambda a, v: np.abs(v) + a.mag),  # an own formula's sine (sheetsgd.lessons.sgd.own_model)
    "STDEVP": _stdevp,
    "SQRT": _elementwise(lambda x: np.where(x >= 0, np.sqrt(np.abs(x)), np.nan), lambda a, v: np.sqrt(np.abs(a.mag))),
    "SUM": _sum,
    "SUMIFS": _sumifs,  # per-step sums found by step number (collab-filter's gradients)
    "SUMPRODUCT": _sumproduct,
    "SUMSQ": _sumsq,
    "SUMIF": _sumif,
    "AND": _logical(np.all),
    "OR": _logical(np.any),
    "NOT": _elementwise(lambda x: np.where(np.isnan(x), np.nan, (x == 0).astype(float))),
    "ISERROR": _iserror,
    "MATCH": _match,
    "NA": _na,
}
_COMPARE = {"=": np.equal, "<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal,
            "<>": np.not_equal}


class Context:
    """Where a tree's leaves get their values: ``ref(Ref)``, ``name(str)``, ``field(str)`` → Val."""

    def ref(self, ref) -> Val:  # pragma: no cover - interface
        raise NotImplementedError

    def name(self, name: str) -> Val:  # pragma: no cover - interface
        raise NotImplementedError

    def field(self, name: str) -> Val:  # pragma: no cover - interface
        raise NotImplementedError


def evaluate(tree, ctx: Context) -> Val:
    kind = tree[0]
    if kind == "num":
        return scalar(tree[1])
    if kind == "bool":
        return scalar(1.0 if tree[1] else 0.0)
    if kind == "str":  # text is never a number; = and IF see it
        return Val(np.full((1, 1), np.nan), np.zeros((1, 1)), s=np.full((1, 1), tree[1], object))
    if kind == "ref":
        return ctx.ref(tree[1])
    if kind == "name":
        return ctx.name(tree[1])
    if kind == "field":
        return ctx.field(tree[1])
    if kind == "neg":
        a = evaluate(tree[1], ctx)
        return Val(-a.v, a.mag, a.mask)
    if kind == "pct":
        a = evaluate(tree[1], ctx)
        return Val(a.v / 100, a.mag / 100, a.mask)
    if kind == "call":
        impl = FUNCTIONS.get(tree[1])
        if impl is None:
            raise EvalError(f"{tree[1]}() is not in the portable set")
        return impl([evaluate(arg, ctx) for arg in tree[2]])
    _, op, left, right = tree
    a, b = evaluate(left, ctx), evaluate(right, ctx)
    mask = _mask(a, b)
    with np.errstate(all="ignore"):
        if op == "+":
            return Val(a.v + b.v, a.mag + b.mag, mask)
        if op == "-":
            return Val(a.v - b.v, a.mag + b.mag, mask)
        if op == "*":
            return Val(a.v * b.v, a.mag * b.mag, mask)
        if op == "/":
            den = np.where(b.v == 0, 1, b.v)
            v = np.where(b.v == 0, np.nan, a.v / den)
            # the denominator's rounding too: ŷ(1 − ŷ) with ŷ near 1 is a cancellation (d(a/b) = da/b − a·db/b²)
            return Val(v, np.abs(a.mag / den) + np.abs(v) * np.maximum(b.mag / np.abs(den), 1.0), mask)
        if op == "^":
            return _power(a, b)
        if op == "&":
            raise EvalError("text concatenation is not evaluated")
        if (a.s is not None or b.s is not None) and op in ("=", "<>"):
            v = _text_equal(a, b)
            return Val(v if op == "=" else 1.0 - v, np.zeros_like(v), mask)
        v = np.where(np.isnan(a.v) | np.isnan(b.v), np.nan, _COMPARE[op](a.v, b.v).astype(float))
        return Val(v, np.zeros_like(v), mask)


def _text_equal(a: Val, b: Val) -> np.ndarray:
    """= where text is involved: text equals text case-blind, a blank cell equals "", text never equals a number."""
    shape = np.broadcast_shapes(a.v.shape, b.v.shape)
    sa = np.broadcast_to(a.s if a.s is not None else np.full(a.v.shape, None, object), shape)
    sb = np.broadcast_to(b.s if b.s is not None else np.full(b.v.shape, None, object), shape)
    va, vb = np.broadcast_to(a.v, shape), np.broadcast_to(b.v, shape)
    text_a, text_b = np.not_equal(sa, None), np.not_equal(sb, None)
    out = np.zeros(shape)
    both = text_a & text_b
    if both.any():
        out[both] = np.char.lower(sa[both].astype(str)) == np.char.lower(sb[both].astype(str))
    numbers = ~text_a & ~text_b
    out[numbers] = va[numbers] == vb[numbers]
    return out


def column(tree, ctx: Context, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, magnitudes) of a single-cell formula for n rows, as 1-D arrays; non-finite → NaN."""
    with np.errstate(all="ignore"):  # overflow is an answer here (the sheet shows #NUM!), not a warning
        out = evaluate(tree, ctx)
        if out.v.shape[1] != 1:
            raise EvalError("the formula gives a range, not one value")
        v = np.broadcast_to(np.asarray(out.v, dtype=float), (n, 1)).reshape(n)
        mag = np.broadcast_to(np.asarray(out.mag, dtype=float), (n, 1)).reshape(n)
    return np.where(np.isfinite(v), v, np.nan), mag


def agree(found: np.ndarray, expected: np.ndarray, mag: np.ndarray, rel: float = 1e-9) -> np.ndarray:
    """Per element: equal up to rounding (rel × magnitude of the terms), or both not a finite number."""
    found_bad, exp_bad = ~np.isfinite(found), ~np.isfinite(expected)
    with np.errstate(all="ignore"):
        scale = np.where(np.isfinite(mag), np.maximum(np.abs(mag), np.abs(expected)), np.abs(expected))
        close = np.abs(found - expected) <= rel * np.nan_to_num(scale, nan=0.0, posinf=0.0) + 1e-12
    return np.where(found_bad | exp_bad, found_bad & exp_bad, close)
