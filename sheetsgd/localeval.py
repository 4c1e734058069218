"""Evaluating a column's formula template over all steps at once, on a student's own values.

The checker asks, for every cell: does this value follow from the values of the cells it reads?
It answers with the same template the writer renders into the sheet (one definition for both), parsed
here into numpy operations and evaluated for all rows together: ``{key}`` is the sheet's column
``key``, ``{prev:key}`` the same column one row up (the start row above step 1), ``{hp:name}`` a
named input, ``{data:col}`` the step's data (one example, or a batch as a padded matrix). Spreadsheet
semantics where they matter: unary minus binds tighter than ``^``; any error or overflow is NaN.

Beside each value the evaluator carries a magnitude (Σ|terms|, the scale rounding errors live on),
so "equal" can mean "equal up to rounding of the numbers involved" even where ŷ − y cancels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

_TOKEN = re.compile(r"\s*(?:(\{[\w:]+\})|(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][\w.]*)\s*(?=\()"
                    r"|(<=|>=|<>|[-+*/^(),<>=]))")


class TemplateError(ValueError):
    pass


@dataclass
class Val:
    """Values (n, 1) per row, (n, m) per batch element, or scalar; ``mag`` the rounding scale; ``mask``
    marks the real elements of a padded batch; ``full`` a whole data column for INDEX."""

    v: np.ndarray
    mag: np.ndarray
    mask: np.ndarray | None = None
    full: bool = False


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise TemplateError(f"cannot read {text[pos:pos + 20]!r} in template {text!r}")
        kind = ("ref", "num", "func", "op")[[g is not None for g in m.groups()].index(True)]
        out.append((kind, m.group(m.lastindex)))
        pos = m.end()
    return out


# precedence: comparison < +,- < *,/ < ^ < unary minus (spreadsheet order)
_BINARY = {"=": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "<>": 1, "+": 2, "-": 2, "*": 3, "/": 3, "^": 4}


def parse(text: str):
    """A template → a nested tuple tree: ('num', x) ('ref', '{..}') ('neg', t) ('bin', op, a, b) ('call', f, [args])."""
    toks = _tokens(text)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else ("end", "")

    def take(expected=None):
        nonlocal pos
        tok = peek()
        if expected and tok[1] != expected:
            raise TemplateError(f"expected {expected!r} in {text!r}")
        pos += 1
        return tok

    def primary():
        kind, val = take()
        if kind == "num":
            return ("num", float(val))
        if kind == "ref":
            return ("ref", val[1:-1])
        if kind == "func":
            take("(")
            args = []
            if peek()[1] != ")":
                args.append(expr(0))
                while peek()[1] == ",":
                    take()
                    args.append(expr(0))
            take(")")
            return ("call", val.upper(), args)
        if val == "(":
            inner = expr(0)
            take(")")
            return inner
        if val in ("-", "+"):  # unary minus applies before ^, as in spreadsheets: -2^2 = 4
            operand = primary()
            return ("neg", operand) if val == "-" else operand
        raise TemplateError(f"unexpected {val!r} in {text!r}")

    def expr(min_prec):
        left = primary()
        while True:
            kind, op = peek()
            prec = _BINARY.get(op) if kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            take()
            right = expr(prec + 1)  # left-associative, ^ included (spreadsheets: 2^3^2 = 64)
            left = ("bin", op, left, right)

    tree = expr(0)
    if pos != len(toks):
        raise TemplateError(f"trailing text in {text!r}")
    return tree


class Context:
    """Where placeholders get their values: column arrays, start-row values, inputs, data."""

    def __init__(self, n: int, columns: dict[str, np.ndarray], start: dict[str, float], hyper: dict[str, float],
                 data: Callable[[str], Val]):
        self.n, self.columns, self.start, self.hyper, self.data = n, columns, start, hyper, data

    def ref(self, name: str) -> Val:
        prefix, _, key = name.rpartition(":")
        if prefix == "hp":
            if key not in self.hyper:
                raise TemplateError(f"no input named {key}")
            x = np.float64(self.hyper[key])
            return Val(x, np.abs(x))
        if prefix == "data":
            return self.data(key)
        if key not in self.columns:
            raise TemplateError(f"no column {key}")
        col = self.columns[key]
        if prefix == "prev":
            col = np.concatenate([[self.start.get(key, np.nan)], col[:-1]])
        col = col.reshape(-1, 1)
        return Val(col, np.abs(col))


def _combine(a: Val, b: Val):
    if a.mask is None:
        return b.mask
    if b.mask is None:
        return a.mask
    return a.mask & b.mask


def evaluate(tree, ctx: Context) -> Val:
    kind = tree[0]
    if kind == "num":
        x = np.float64(tree[1])
        return Val(x, np.abs(x))
    if kind == "ref":
        return ctx.ref(tree[1])
    if kind == "neg":
        a = evaluate(tree[1], ctx)
        return Val(-a.v, a.mag, a.mask)
    if kind == "bin":
        _, op, left, right = tree
        a, b = evaluate(left, ctx), evaluate(right, ctx)
        mask = _combine(a, b)
        if op in "+-":
            return Val(a.v + b.v if op == "+" else a.v - b.v, a.mag + b.mag, mask)
        if op == "*":
            return Val(a.v * b.v, a.mag * b.mag, mask)
        if op == "/":
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(b.v == 0, np.nan, a.v / np.where(b.v == 0, 1, b.v))
                return Val(v, np.abs(a.mag / np.where(b.v == 0, 1, b.v)), mask)
        if op == "^":
            v = np.power(a.v, b.v)
            return Val(v, np.power(a.mag, b.v) * (1 + np.abs(b.v)), mask)
        compare = {"=": np.equal, "<": np.less, ">": np.greater, "<=": np.less_equal, ">=": np.greater_equal,
                   "<>": np.not_equal}[op]
        return Val(compare(a.v, b.v).astype(float), np.zeros_like(a.mag, dtype=float), mask)
    if kind == "call":
        return _call(tree[1], [evaluate(arg, ctx) for arg in tree[2]], ctx)
    raise TemplateError(f"cannot evaluate {tree!r}")


def _row_sum(x: Val, values: np.ndarray) -> np.ndarray:
    if x.mask is None:
        return values if np.ndim(values) < 2 else values.sum(axis=1, keepdims=True)
    return np.where(x.mask, values, 0).sum(axis=1, keepdims=True)


def _call(name: str, args: list[Val], ctx: Context) -> Val:
    if name == "SUMPRODUCT":
        prod = args[0]
        for other in args[1:]:
            prod = Val(prod.v * other.v, prod.mag * other.mag, _combine(prod, other))
        return Val(_row_sum(prod, prod.v), _row_sum(prod, prod.mag))
    if name in ("SUM", "AVERAGE", "COUNT"):
        total = sum((_row_sum(a, np.broadcast_to(a.v, a.mask.shape) if a.mask is not None else a.v) for a in args))
        mags = sum((_row_sum(a, np.broadcast_to(a.mag, a.mask.shape) if a.mask is not None else a.mag) for a in args))
        count = sum((a.mask.sum(axis=1, keepdims=True) if a.mask is not None else np.ones_like(np.atleast_1d(a.v))
                     for a in args))
        if name == "COUNT":
            return Val(np.asarray(count, dtype=float), np.zeros_like(count, dtype=float))
        if name == "SUM":
            return Val(total, mags)
        return Val(total / count, mags / count)
    if name == "INDEX":
        table, k = args[0], args[1]
        if not table.full:
            raise TemplateError("INDEX needs a whole data column")
        idx = np.asarray(k.v, dtype=float)
        ok = np.isfinite(idx) & (idx >= 1) & (idx <= len(table.v)) & (idx == np.floor(idx))
        picked = np.where(ok, table.v[np.where(ok, idx, 1).astype(int) - 1], np.nan)
        return Val(picked, np.abs(picked))
    (a,) = args[:1]
    with np.errstate(all="ignore"):
        if name == "SQRT":
            v = np.where(a.v >= 0, np.sqrt(np.abs(a.v)), np.nan)
            return Val(v, np.sqrt(np.abs(a.mag)), a.mask)
        if name == "ABS":
            return Val(np.abs(a.v), a.mag, a.mask)
        if name == "SIGN":
            return Val(np.sign(a.v), np.zeros_like(a.mag), a.mask)
        if name == "EXP":
            v = np.exp(a.v)
            return Val(v, np.abs(v) * (1 + a.mag), a.mask)
        if name == "LN":
            v = np.where(a.v > 0, np.log(np.abs(a.v)), np.nan)
            return Val(v, a.mag / np.abs(a.v), a.mask)
    raise TemplateError(f"the checker cannot evaluate {name}()")


def evaluate_template(template: str, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """(values, magnitudes) of a template for every step, as 1-D arrays; non-finite results are NaN."""
    with np.errstate(all="ignore"):  # overflow is an answer here (the sheet shows #NUM!), not a warning
        out = evaluate(parse(template), ctx)
        v = np.broadcast_to(np.asarray(out.v, dtype=float), (ctx.n, 1)).reshape(ctx.n)
        mag = np.broadcast_to(np.asarray(out.mag, dtype=float), (ctx.n, 1)).reshape(ctx.n)
    v = np.where(np.isfinite(v), v, np.nan)
    return v, mag


def agree(found: np.ndarray, expected: np.ndarray, mag: np.ndarray, rel: float = 1e-9) -> np.ndarray:
    """Per element: equal up to rounding (rel × magnitude of the terms), or both not a finite number."""
    found_bad, exp_bad = ~np.isfinite(found), ~np.isfinite(expected)
    with np.errstate(all="ignore"):
        scale = np.where(np.isfinite(mag), np.maximum(np.abs(mag), np.abs(expected)), np.abs(expected))
        close = np.abs(found - expected) <= rel * np.nan_to_num(scale, nan=0.0, posinf=0.0) + 1e-12
    return np.where(found_bad | exp_bad, found_bad & exp_bad, close)
