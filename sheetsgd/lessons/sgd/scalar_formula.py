"""A parsed formula as a Python function of floats: the engine's per-example loop of an own formula
(:mod:`sheetsgd.lessons.sgd.own_model`) without numpy's per-call cost, with the semantics of :mod:`sheetsgd.sheet.evaluate`
(where a spreadsheet shows an error, NaN). tests/test_own_model.py holds it to the evaluator."""
from __future__ import annotations

import math

import numpy as np


def scalar_function(tree, names):
    """The tree as a Python function of floats (``names`` its arguments, in order), with the evaluator's
    spreadsheet semantics: an error (a division by 0, LN of 0, EXP past 709.78, …) is NaN. Compiled from
    the parsed tree only: numbers, the argument names as v0, v1, …, and the helpers below."""
    args = {n: f"v{i}" for i, n in enumerate(names)}

    def src(node):
        kind = node[0]
        if kind == "num":
            return repr(float(node[1]))
        if kind == "name":
            return args[node[1]]
        if kind == "neg":
            return f"(-{src(node[1])})"
        if kind == "call":
            return f"_{node[1].lower()}({', '.join(src(a) for a in node[2])})"
        _, op, a, b = node
        if op == "/":
            return f"_div({src(a)}, {src(b)})"
        if op == "^":
            return f"_power({src(a)}, {src(b)})"
        return f"({src(a)} {op} {src(b)})"
    code = f"lambda {', '.join(args.values())}: {src(tree)}"
    return eval(code, {"__builtins__": {}, **_SCALAR})  # noqa: S307 - text made above from a parsed tree


def _nan_on_error(fn):
    def safe(*a):
        try:
            return fn(*a)
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.nan
    return safe


def _power(a, b):
    if a == 0 and b < 0 or a < 0 and b != math.floor(b):
        return math.nan
    try:
        return float(a ** b)
    except OverflowError:
        return float(np.power(np.float64(a), b))  # ±inf, as the evaluator's numpy power
    except (ValueError, ZeroDivisionError):
        return math.nan


_SCALAR = {
    "_div": lambda a, b: math.nan if b == 0 else a / b, "_power": _power,
    "_exp": lambda x: math.nan if x > 709.78 else math.exp(x) if x == x else math.nan,
    "_ln": lambda x: math.log(x) if x > 0 else math.nan, "_log10": lambda x: math.log10(x) if x > 0 else math.nan,
    "_sqrt": lambda x: math.sqrt(x) if x >= 0 else math.nan, "_abs": abs,
    "_sign": lambda x: math.nan if x != x else float((x > 0) - (x < 0)),
    "_sin": _nan_on_error(math.sin), "_cos": _nan_on_error(math.cos), "_pi": lambda: math.pi,
}
