"""Datasets a lesson trains on: inline lists or a seeded generator; values rounded to what a sheet stores."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sheetsgd.errors import SheetsgdError

SIGNIFICANT_DIGITS = 15  # a spreadsheet keeps 15 significant digits; the engine sees the same numbers


def sheet_float(value: float) -> float:
    """The float a spreadsheet reads back after the value is written into a cell."""
    return float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")


@dataclass
class Dataset:
    x: np.ndarray
    y: np.ndarray
    x_name: str = "x"
    y_name: str = "y"

    def __len__(self) -> int:
        return len(self.x)


def _axis(spec, where: str) -> np.ndarray:
    if isinstance(spec, list):
        return np.asarray(spec, dtype=float)
    if isinstance(spec, dict) and {"start", "stop", "num"} <= spec.keys():
        return np.linspace(spec["start"], spec["stop"], int(spec["num"]))
    raise SheetsgdError("x must be a list of numbers or {start, stop, num}", where)


def polynomial(spec: dict, where: str = "[data.generate]") -> tuple[np.ndarray, np.ndarray]:
    """y = (Σ c_k·(x − center)^k)·(1 + relative_noise·N₁) + noise·N₂, N from numpy's seeded default_rng.

    fastbook's speed curve is ``coefficients = [1, 0, 0.75], center = 9.5, noise = 3`` over t = 0..19.
    """
    x = _axis(spec.get("x"), where)
    coefficients = spec.get("coefficients")
    if not isinstance(coefficients, list) or not coefficients:
        raise SheetsgdError("coefficients must be a non-empty list (constant term first)", where)
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    shifted = x - float(spec.get("center", 0.0))
    y = sum(float(c) * shifted**k for k, c in enumerate(coefficients))
    if spec.get("relative_noise"):
        y = y * (1 + float(spec["relative_noise"]) * rng.standard_normal(len(x)))
    if spec.get("noise"):
        y = y + float(spec["noise"]) * rng.standard_normal(len(x))
    decimals = int(spec.get("decimals", 4))
    return np.round(x, decimals), np.round(y, decimals)


GENERATORS = {"polynomial": polynomial}


def load_dataset(spec: dict, where: str = "[data]") -> Dataset:
    """Build the dataset a template's ``[data]`` table describes."""
    names = spec.get("columns", ["x", "y"])
    if {"inputs", "target"} & set(spec):  # a csv's table is read into x and y first (sheetsgd.lessons.sgd.own_data)
        raise SheetsgdError("inputs and target name a csv file's columns: give csv too", where)
    if "generate" in spec:
        gen = spec["generate"]
        kind = gen.get("kind", "polynomial")
        if kind not in GENERATORS:
            raise SheetsgdError(f"unknown generator {kind!r}; known: {', '.join(GENERATORS)}", where)
        x, y = GENERATORS[kind](gen, f"{where[:-1]}.generate]")
    else:
        if "x" not in spec or "y" not in spec:
            raise SheetsgdError("needs x and y lists, or a [data.generate] table", where)
        try:
            x, y = np.asarray(spec["x"], dtype=float), np.asarray(spec["y"], dtype=float)
        except (TypeError, ValueError):
            raise SheetsgdError("x and y must be lists of numbers", where) from None
    if x.ndim != 1 or x.shape != y.shape or len(x) < 1:
        raise SheetsgdError(f"x and y must be equally long non-empty lists (got {x.size} and {y.size})", where)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise SheetsgdError("data holds NaN or infinity", where)
    to_sheet = np.vectorize(sheet_float, otypes=[float])
    return Dataset(to_sheet(x), to_sheet(y), *names[:2])
