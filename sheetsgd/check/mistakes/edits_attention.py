"""The catalogue's edits for the shapes of an attention lesson (one row per sequence; keys s{i}_{j}, e{i}_{j},
a{i}_{j}, ds{i}_{j} for query i and key j; sheetsgd.lessons.attention):

* ``softmax_wrong_axis``: a_ij = e_ij / SUM(e_i1:e_iT) (over query i's row) normalised over the column
  instead, e_ij / (e_1j + … + e_Tj);
* ``attention_scale_missing``: a score (…)/SQRT(d) without the division by √d;
* ``softmax_jacobian_diagonal``: ∂s_ij = a_ij(∂a_ij − SUMPRODUCT(a_i·, ∂a_i·)) written a_ij(1 − a_ij)·∂a_ij, the
  Jacobian's diagonal only (the sigmoid's derivative).
"""
from __future__ import annotations

import re

from sheetsgd.sheet import a1
from sheetsgd.sheet.blocks import Block


def _cell(block: Block, key: str):
    """A same-row reference to this block's column ``key`` (None if the block has no such column)."""
    col = next((c.col for c in block.columns if c.key == key), None)
    if col is None:
        return None
    row = a1.Row("r", 0)
    return ("ref", a1.Ref(None, col, row, col, row))


def _is_sqrt(node) -> bool:
    return node[0] == "call" and node[1] == "SQRT"


def variants(block: Block, key: str, tree) -> list[tuple[str, object]]:
    m = re.fullmatch(r"(a|s|ds)(\d+)_(\d+)", key)
    if not m or block.sheet != "Examples":
        return []
    name, i, j = m.group(1), m.group(2), m.group(3)
    out = []
    if name == "a" and tree[0] == "bin" and tree[1] == "/" and tree[3][0] == "call" and tree[3][1] == "SUM":
        column = []
        for q in range(1, 100):
            ref = _cell(block, f"e{q}_{j}")
            if ref is None:
                break
            column.append(ref)
        total = column[0]
        for ref in column[1:]:
            total = ("bin", "+", total, ref)
        out.append(("softmax_wrong_axis", ("bin", "/", tree[2], total)))
    if name == "s" and tree[0] == "bin" and tree[1] == "/" and _is_sqrt(tree[3]):
        out.append(("attention_scale_missing", tree[2]))
    if name == "ds":
        a, da = _cell(block, f"a{i}_{j}"), _cell(block, f"da{i}_{j}")
        if a is not None and da is not None:
            out.append(("softmax_jacobian_diagonal",
                        ("bin", "*", ("bin", "*", a, ("bin", "-", ("num", 1.0), a)), da)))
    return out
