"""Conventions the reference depends on, and the rows they decide: ŷ clipped to [ε, 1 − ε]; what a
report expects of a cell (the engine's value for a blank that reads wrong or blank cells).

The binary cross-entropy reads ŷ clipped to [ε, 1 − ε] (ε the named input clip_eps), so its derivative is
0 where ŷ lies outside (torch.clamp's convention): ∂loss/∂ŷ is written IF(OR(ŷ<ε, ŷ>1−ε), 0, …), and
∂loss/∂z, built on it, is 0 there too. A student's (ŷ − y)/(ŷ(1 − ŷ)) or ŷ − y is right everywhere else.
On those rows (the *convention rows* of the guarded column and of every column of its block reading it):

* where a mistake upstream pushed ŷ out of range (a cell the column reads went wrong before, for a reason
  other than this convention), the row is a knock-on of that mistake, not a second root cause;
* otherwise the column is a root cause named ``clipping_ignored``, whose hint explains the convention.
"""
from __future__ import annotations

import math

import numpy as np

from sheetsgd.sheet import a1
from sheetsgd.sheet.evaluate import EvalError, column
from .placement import plain


def _guard(tree):
    """The condition of IF(cond, constant, …) when it reads the clip ε (a name ending in clip_eps), or None."""
    if tree[0] == "call" and tree[1] == "IF" and len(tree[2]) == 3 and tree[2][1][0] == "num" \
            and any(n.lower().endswith("clip_eps") for n in a1.names(tree[2][0])):
        return tree[2][0]
    return None


def _reads(block, key: str, target: str) -> bool:
    """The column reads the ``target`` column of its own block on its own row (directly)."""
    col = block.column(target).col
    return any(r.sheet in (None, block.sheet) and not r.is_range and r.col1 == col and r.row1.field == "r"
               for r in a1.refs(block.tree(key)))


def convention_rows(judged, context) -> None:
    """Set ``j.convention`` (a row mask) on every judged column whose rows a clipping guard decides;
    ``context(block)`` gives the block's evaluation context (the student's values)."""
    by_block = {}
    for j in judged:
        by_block.setdefault(j.block.name, []).append(j)
    for cols in by_block.values():
        b = cols[0].block
        for j in cols:
            c = b.column(j.key)
            cond = _guard(b.tree(j.key)) if c.pattern else None
            if cond is None:
                continue
            ctx = context(b)
            try:
                mask, _ = column(("call", "IF", [cond, ("num", 1.0), ("num", 0.0)]), ctx, b.n)
            except EvalError:
                continue
            mask = np.nan_to_num(mask) > 0.5
            for k in cols:
                if k is j or (b.column(k.key).pattern and _reads(b, k.key, j.key)):
                    k.convention = mask if getattr(k, "convention", None) is None else k.convention | mask


def attribute_upstream(judged) -> bool:
    """Convention rows of a column that a mistake upstream reached first become knock-ons of it (locally
    right: the clipping is the upstream mistake's doing). Returns whether any row changed."""
    candidates = [j for j in judged if getattr(j, "convention", None) is not None and (~j.ok & j.convention).any()
                  and not (~j.ok & ~j.convention).any()]  # a column wrong elsewhere too is a root cause anyway
    if not candidates:
        return False
    first = _first_wrong(judged)
    changed = False
    for j in candidates:
        upstream = min((first[d] + delay for d, delay in j.deps if d in first and d != j.id), default=math.inf)
        rows = j.convention & ~j.ok & (j.block.step >= upstream) & ~j.blank  # a blank is never right, nor
        if j.exercise:  # a typed number in an exercise cell
            rows &= j.formula
        if rows.any():
            j.ok = j.ok | rows
            changed = True
    return changed


def upstream_steps(judged) -> dict:
    """{column id: the first step at which a cell it reads (not itself) is wrong}: before it, the column's
    pattern evaluated on the student's values is what the cell should hold."""
    first = _first_wrong(judged)
    return {j.id: min((first[d] + delay for d, delay in j.deps if d in first and d != j.id), default=math.inf)
            for j in judged}


def _first_wrong(judged) -> dict:
    """Each column's first wrong step through its inputs, not counting the rows a convention decides (so a
    column's own convention rows, reached back through the steps, never count as its own upstream)."""
    first = {}
    for j in judged:
        bad = ~(j.value_ok if j.value_ok is not None else j.ok)
        convention = getattr(j, "convention", None)
        if convention is not None:
            bad = bad & ~convention
        first[j.id] = float(j.block.step[bad].min()) if bad.any() else math.inf
    for _ in range(len(judged) + 1):
        changed = False
        for j in judged:
            best = min([first[j.id]] + [first[d] + delay for d, delay in j.deps if d in first])
            if best < first[j.id]:
                first[j.id], changed = best, True
        if not changed:
            break
    return first


def expectations(judged, engine, expected_at):
    """expected_at(j, i): the column's pattern on the student's values; for a blank that reads a wrong (or
    blank) cell, where that evaluation means nothing, the engine's value (``engine()``: the lesson's blocks
    with its numbers, made once when first needed; None: no such blocks)."""
    upstream = upstream_steps(judged)
    made = []

    def at(j, i: int):
        if not j.blank[i] or engine is None or j.block.step[i] < upstream[j.id]:
            return expected_at(j, i)
        if not made:
            made.append({b.name: b for b in engine()})
        b = made[0].get(j.block.name)
        values = b.values.get(j.key) if b is not None else None
        return plain(values[i]) if values is not None and len(values) == j.block.n else expected_at(j, i)
    return at
