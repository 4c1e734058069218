"""The catalogue's edits of an own formula's ∂ŷ/∂p columns (``dpred_<p>``, :mod:`sheetsgd.lessons.sgd.own_model`).

A derivative written by hand goes wrong in a few ways that show by value: its sign (the minus of
EXP(−b·t) lost), the inner derivative of the chain rule left out (−t for EXP(−b·t) in b), or another
parameter's derivative written in its place.
"""
from __future__ import annotations

from sheetsgd.sheet.blocks import Block


def variants(block: Block, key: str, tree, key_at, drop_factor) -> list[tuple[str, object]]:
    if not key.startswith("dpred_"):
        return []
    out = [("derivative_negated", ("neg", tree)),
           ("chain_rule_factor_missing", drop_factor(tree, lambda f: (key_at(block, f) or ("",))[0] == "x"))]
    for c in block.columns:
        if c.key.startswith("dpred_") and c.key != key and c.pattern:
            out.append(("wrong_parameter_derivative", block.tree(c.key)))
    return out
