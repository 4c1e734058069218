"""The catalogue's edits for a convolution's columns (Steps of a ``conv`` lesson):

* ``filter_flipped``: z computed as a convolution, Σ x[i+u, j+v]·F[2−u, 2−v] (the filter turned by 180°),
  where the network (as PyTorch's conv2d) cross-correlates, Σ x[i+u, j+v]·F[u, v];
* ``window_off_by_one``: the input window of z or of ∂L/∂F one pixel too far right, one row too low, or both;
* ``pooling_gradient_spread``: with 2×2 max-pooling, ∂L/∂z given to every cell of the window (where z > 0),
  not to its maximum only.

An image is a row of size² pixel cells (row by row): a window's row is a run of cells, so moving the window
one pixel right moves every pixel range one column, one row down moves it ``size`` columns.
"""
from __future__ import annotations

import re

from sheetsgd.sheet import a1

Z = re.compile(r"z\d+_\d+_\d+")
GRAD_F = re.compile(r"grad_f\d+_\d+_\d+")
DZ = re.compile(r"dz\d+_\d+_\d+")


def _pixels(block) -> tuple[int, int] | None:
    """(first, last) column of the block's pixel cells x_i_j; None for a block without them."""
    cols = [c.col for c in block.columns if re.fullmatch(r"x_\d+_\d+", c.key)]
    return (min(cols), max(cols)) if cols else None


def _cell(ref: a1.Ref, offset: int) -> tuple:
    col = ref.col1 + offset
    return ("ref", a1.Ref(ref.sheet, col, ref.row1, col, ref.row1, ref.col1_abs, ref.col1_abs))


def _flipped(tree, pixels) -> object:
    """Each SUMPRODUCT(window row u, filter row u) replaced by Σ_v x[u, v]·F[2 − u, 2 − v]."""
    calls = [n for n in a1.walk(tree) if n[0] == "call" and n[1] == "SUMPRODUCT" and len(n[2]) == 2]
    if len(calls) != 3 or not all(c[2][0][0] == "ref" and c[2][1][0] == "ref" for c in calls):
        return None
    if not all(pixels[0] <= c[2][0][1].col1 <= pixels[1] and c[2][0][1].width == 3 == c[2][1][1].width for c in calls):
        return None
    filters = [c[2][1][1] for c in calls]

    def edit(node):
        if node in calls:
            u = calls.index(node)
            window = node[2][0][1]
            out = None
            for v in range(3):
                term = ("bin", "*", _cell(window, v), _cell(filters[2 - u], 2 - v))
                out = term if out is None else ("bin", "+", out, term)
            return out
        return node
    return a1.transform(tree, edit)


def _shifted(tree, pixels, shift: int):
    """Every pixel range (and cell) of the formula read ``shift`` columns further on."""
    def edit(node):
        if node[0] == "ref" and node[1].sheet is None and pixels[0] <= node[1].col1 <= pixels[1]:
            r = node[1]
            return ("ref", a1.Ref(r.sheet, r.col1 + shift, r.row1, r.col2 + shift, r.row2, r.col1_abs, r.col2_abs,
                                  r.is_range))
        return node
    edited = a1.transform(tree, edit)
    return edited if edited != tree else None


def _spread(tree):
    """IF(z>0, IF(a=max, ∂L/∂s·w, 0), 0) → IF(z>0, ∂L/∂s·w, 0): every cell of the window gets the gradient."""
    if tree[0] == "call" and tree[1] == "IF" and len(tree[2]) == 3:
        inner = tree[2][1]
        if inner[0] == "call" and inner[1] == "IF" and len(inner[2]) == 3 and inner[2][0][0] == "bin" \
                and inner[2][0][1] == "=" and inner[2][2] == ("num", 0.0):
            return ("call", "IF", [tree[2][0], inner[2][1], tree[2][2]])
    return None


def variants(block, key: str, tree) -> list[tuple[str, object]]:
    if DZ.fullmatch(key):
        return [("pooling_gradient_spread", _spread(tree))]
    if not (Z.fullmatch(key) or GRAD_F.fullmatch(key)):
        return []
    pixels = _pixels(block)
    if pixels is None:
        return []
    size = round((pixels[1] - pixels[0] + 1) ** 0.5)
    out = []
    if Z.fullmatch(key):
        out.append(("filter_flipped", _flipped(tree, pixels)))
    for shift in (1, size, size + 1):  # one pixel right, one row down, both
        out.append(("window_off_by_one", _shifted(tree, pixels, shift)))
    return out
