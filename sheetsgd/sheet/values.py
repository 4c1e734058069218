"""The values formulas are evaluated to (:mod:`sheetsgd.sheet.evaluate`): an (n, k) array per row of a block, with
a magnitude (the scale rounding errors live on) and, for a padded range, the mask of its real cells."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class EvalError(ValueError):
    pass


@dataclass
class Val:
    v: np.ndarray
    mag: np.ndarray
    mask: np.ndarray | None = None  # real elements of a padded range
    rows: np.ndarray | None = None  # for a range: its number of rows per block row (ROWS)
    s: np.ndarray | None = None  # text per element (object array; None where a number), for = and IF


def scalar(x: float) -> Val:
    x = np.float64(x)
    return Val(np.reshape(x, (1, 1)), np.reshape(np.abs(x), (1, 1)))


def _mask(*vals: Val):
    masks = [a.mask for a in vals if a.mask is not None]
    if not masks:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out
