"""The catalogue's edits for the shapes of a softmax lesson (several classes per example):

* ``softmax_not_normalised``: p = e / SUM(e1:eK) written as the bare e;
* ``one_hot_wrong_class``: a one-hot IF(species="A",1,0) that tests another class's name (the one a
  sibling one-hot column tests);
* ``bias_gradient_summed_over_classes``: a class's bias gradient that sums ∂loss/∂z over every class
  (the run of columns its sibling bias gradients read) instead of its own class's column.
"""
from __future__ import annotations

import dataclasses
import re

from sheetsgd.sheet import a1
from sheetsgd.sheet.blocks import Block


def _same_row_ref(node) -> bool:
    return node[0] == "ref" and not node[1].is_range and node[1].row1.field == "r"


def _one_hot_test(tree):
    """The class name of IF(x="name",1,0), or None."""
    if tree[0] == "call" and tree[1] == "IF" and len(tree[2]) == 3 and tree[2][1:] == [("num", 1.0), ("num", 0.0)]:
        cond = tree[2][0]
        if cond[0] == "bin" and cond[1] == "=" and cond[3][0] == "str":
            return cond[3][1]
    return None


def _single_ref(tree):
    """The one reference a bias gradient reads: dz (a cell) or SUM(range of dz)/n; None otherwise."""
    found = a1.refs(tree)
    return found[0] if len(found) == 1 else None


def _summed_over_classes(block: Block, key: str, tree) -> list[tuple[str, object]]:
    """A bias gradient read by step number (SUMIF(…, dz_j)/n): the same over every class's dz, added up."""
    refs = a1.refs(tree)
    siblings = [a1.refs(block.tree(c.key)) for c in block.columns if c.pattern and re.fullmatch(r"grad_b\d+", c.key)]
    if len(siblings) < 2 or any(len(s) != len(refs) for s in siblings):
        return []
    varying = [i for i in range(len(refs)) if len({s[i].col1 for s in siblings}) > 1]
    if len(varying) != 1:
        return []
    mine = refs[varying[0]]
    terms = [a1.transform(tree, lambda n, c=s[varying[0]]: ("ref", c) if n[0] == "ref" and n[1] == mine else n)
             for s in siblings]
    total = terms[0]
    for t in terms[1:]:
        total = ("bin", "+", total, t)
    return [("bias_gradient_summed_over_classes", total)]


def variants(block: Block, key: str, tree) -> list[tuple[str, object]]:
    out = []
    if tree[0] == "bin" and tree[1] == "/" and _same_row_ref(tree[2]) and tree[3][0] == "call" \
            and tree[3][1] == "SUM" and len(tree[3][2]) == 1 and tree[3][2][0][0] == "ref" and tree[3][2][0][1].is_range:
        out.append(("softmax_not_normalised", tree[2]))
    mine = _one_hot_test(tree)
    if mine is not None:
        for c in block.columns:
            other = _one_hot_test(block.tree(c.key)) if c.pattern and c.key != key else None
            if other is not None and other != mine:
                cond = tree[2][0]
                out.append(("one_hot_wrong_class", ("call", "IF", [("bin", "=", cond[2], ("str", other))] + tree[2][1:])))
    if re.fullmatch(r"grad_b\d+", key):
        ref = _single_ref(tree)
        siblings = [_single_ref(block.tree(c.key)) for c in block.columns
                    if c.pattern and re.fullmatch(r"grad_b\d+", c.key)]
        cols = sorted({r.col1 for r in siblings if r is not None and ref is not None and r.sheet == ref.sheet
                       and r.row1 == ref.row1 and r.row2 == ref.row2})
        if ref is None:  # SUMIF(step, this step, dz)/n: the one reference its siblings read in other columns
            out += _summed_over_classes(block, key, tree)
        elif len(cols) > 1 and cols == list(range(cols[0], cols[-1] + 1)):
            wide = dataclasses.replace(ref, col1=cols[0], col2=cols[-1], is_range=True)
            if ref.is_range:
                out.append(("bias_gradient_summed_over_classes",
                            a1.transform(tree, lambda n: ("ref", wide) if n[0] == "ref" else n)))
            else:
                out.append(("bias_gradient_summed_over_classes", ("call", "SUM", [("ref", wide)])))
    return out
