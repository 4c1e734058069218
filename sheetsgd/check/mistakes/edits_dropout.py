"""The catalogue's edits for a dropout lesson (a given 0/1 mask m per example and hidden unit, p = dropout):

* ``dropout_scale_missing``: a kept unit (or its gradient) not scaled by 1/(1 − p): a·m for a·m/(1 − p);
* ``dropout_mask_missing_backward``: ∂loss/∂z of a hidden unit without its mask factor, so a dropped unit
  still gets a gradient;
* ``dropout_in_validation``: the validation output scaled by 1/(1 − p) as in training (dropout is for
  training only: validation reads the unmasked activations, o = v·a + c).
"""
from __future__ import annotations

import re

from sheetsgd.sheet.blocks import Block

ONE_MINUS_P = ("bin", "-", ("num", 1.0), ("name", "dropout"))


def _edit(tree, test, edit):
    """``tree`` with ``edit`` applied to every node passing ``test`` (outermost first)."""
    if test(tree):
        return edit(tree)
    if tree[0] in ("neg", "pct"):
        return (tree[0], _edit(tree[1], test, edit))
    if tree[0] == "bin":
        return ("bin", tree[1], _edit(tree[2], test, edit), _edit(tree[3], test, edit))
    if tree[0] == "call":
        return ("call", tree[1], [_edit(a, test, edit) for a in tree[2]])
    return tree


def _is_scaled(node) -> bool:
    return node[0] == "bin" and node[1] == "/" and node[3] == ONE_MINUS_P


def _reads_mask(block: Block, node) -> bool:
    """A same-row reference to a mask column (m1, m2, …: given 0/1 values) of this block."""
    if node[0] != "ref" or node[1].is_range or node[1].sheet not in (None, block.sheet):
        return False
    return any(c.col == node[1].col1 and re.fullmatch(r"m\d+", c.key) for c in block.columns)


def variants(block: Block, key: str, tree) -> list[tuple[str, object]]:
    out = []
    if re.fullmatch(r"r\d+|dz\d+", key):
        out.append(("dropout_scale_missing", _edit(tree, _is_scaled, lambda n: n[2])))
    if re.fullmatch(r"dz\d+", key):
        out.append(("dropout_mask_missing_backward", _edit(
            tree, lambda n: n[0] == "bin" and n[1] == "*" and (_reads_mask(block, n[2]) or _reads_mask(block, n[3])),
            lambda n: n[2] if _reads_mask(block, n[3]) else n[3])))
    keys = {c.key for c in block.columns}
    if key == "out" and "out_0" in keys and not any(re.fullmatch(r"m\d+", k) for k in keys) \
            and tree[0] == "bin" and tree[1] == "+":  # an evaluation block of a dropout lesson: o = v·a + c
        out.append(("dropout_in_validation", ("bin", "+", ("bin", "/", tree[2], ONE_MINUS_P), tree[3])))
    return out
