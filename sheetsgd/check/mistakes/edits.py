"""The catalogue's edits of a column's parsed pattern: what each mistake does to a correct formula.

``variants(block, key)`` lists (mistake name, edited tree) for every catalogued mistake that can happen
in that column. The edits see the tree (:mod:`sheetsgd.sheet.a1`) and which block column each reference
reads, so one edit serves every lesson kind: a flipped update sign is the same edit on Steps of the
linear lesson, on a Titanic weight or on the lr finder's IF-guarded update.
"""
from __future__ import annotations

import re

from sheetsgd.sheet import a1
from . import edits_attention as mistake_edits_attention
from . import edits_dropout as mistake_edits_dropout
from . import edits_formula as mistake_edits_formula
from . import edits_softmax as mistake_edits_softmax
from sheetsgd.lessons.conv import mistakes as conv_mistakes
from sheetsgd.sheet.blocks import Block, is_update


def _key_at(block: Block, node):
    """The key of this block's column a same-sheet single-cell reference reads (None otherwise)."""
    if node[0] != "ref" or node[1].is_range or (node[1].sheet not in (None, block.sheet)):
        return None
    ref = node[1]
    for c in block.columns:
        if c.col == ref.col1:
            return c.key, ref.row1.field
    return None


def _first(tree, test, edit):
    """The tree with ``edit`` applied to the first node (pre-order) that passes ``test``; None if none does."""
    done = [False]

    def visit(node):
        if done[0]:
            return node
        if test(node):
            done[0] = True
            return edit(node)
        kind = node[0]
        if kind in ("neg", "pct"):
            return (kind, visit(node[1]))
        if kind == "bin":
            return ("bin", node[1], visit(node[2]), visit(node[3]))
        if kind == "call":
            return ("call", node[1], [visit(a) for a in node[2]])
        return node
    out = visit(tree)
    return out if done[0] else None


def _factors(node) -> list:
    if node[0] == "bin" and node[1] == "*":
        return _factors(node[2]) + _factors(node[3])
    return [node]


def _product(factors):
    out = factors[0]
    for f in factors[1:]:
        out = ("bin", "*", out, f)
    return out


def _is_lr(node, block) -> bool:
    if node[0] == "name":
        return node[1].lower().endswith("lr")
    key = _key_at(block, node)
    return bool(key) and (key[0] == "lr" or key[0].endswith("_lr"))  # a scheduled lr column (r2_lr: a run's)


def _drop_factor(tree, test):
    """Drop the first multiplicative factor passing ``test`` from a product (a×b or inside SUMPRODUCT)."""
    def is_product(node):
        return node[0] == "bin" and node[1] == "*" and any(test(f) for f in _factors(node))

    def edit(node):
        fs = _factors(node)
        i = next(i for i, f in enumerate(fs) if test(f))
        rest = fs[:i] + fs[i + 1:]
        return _product(rest)
    out = _first(tree, is_product, edit)
    if out is None:  # SUMPRODUCT(a, b): drop the argument
        def is_sp(node):
            return node[0] == "call" and node[1] == "SUMPRODUCT" and len(node[2]) > 1 and any(test(a) for a in node[2])
        out = _first(tree, is_sp, lambda n: ("call", "SUMPRODUCT", [a for a in n[2] if not test(a)][:1]
                                               + [a for a in n[2] if not test(a)][1:]))
    return out


def _product_site(tree):
    """(factors, rebuild) of a gradient's product: a·b·c, SUMPRODUCT(a·b·c)/n or SUMPRODUCT(a, b)/n."""
    node, outer = tree, (lambda x: x)
    if node[0] == "bin" and node[1] == "/":
        node, outer = node[2], (lambda x, den=node[3]: ("bin", "/", x, den))
    if node[0] == "call" and node[1] == "SUMPRODUCT" and len(node[2]) == 1:
        return _factors(node[2][0]), lambda fs: outer(("call", "SUMPRODUCT", [_product(fs)]))
    if node[0] == "call" and node[1] == "SUMPRODUCT":
        return list(node[2]), lambda fs: outer(("call", "SUMPRODUCT", fs) if len(fs) > 1 else
                                               ("call", "SUM", fs))
    return _factors(node), lambda fs: outer(_product(fs))


def _is_one_minus(node) -> bool:
    return node[0] == "bin" and node[1] == "-" and node[2] == ("num", 1.0)


def _is_feature(node, block) -> bool:
    """A data factor: a reference to another sheet (Data) or to an input column of this row (x), or its power."""
    if node[0] == "bin" and node[1] == "^":
        return _is_feature(node[2], block)
    if node[0] != "ref":
        return False
    if node[1].sheet not in (None, block.sheet):
        return True
    key = _key_at(block, node)
    return bool(key) and key[0] in ("x", "t") or bool(key) and key[0].startswith(("x_", "dpred_"))  # dpred: an own ∂ŷ/∂p


def variants(block: Block, key: str) -> list[tuple[str, object]]:
    tree = block.tree(key)
    out: list[tuple[str, object]] = []
    update = is_update(key)
    if update:
        out.append(("update_sign_flipped", _first(tree, lambda n: n[0] == "bin" and n[1] == "-",
                                                  lambda n: ("bin", "+", n[2], n[3]))))
        out.append(("lr_missing", _drop_factor(tree, lambda f: _is_lr(f, block))))
        out.append(("sqrt_missing", _first(tree, lambda n: n[0] == "call" and n[1] == "SQRT", lambda n: n[2][0])))
    swaps = {}  # mhat_ → m_, vhat_ → v_, dloss (2·err) → err: references to one column read from another
    for c in block.columns:
        for hat, raw in (("mhat_", "m_"), ("vhat_", "v_")):
            if c.key.startswith(hat) and any(d.key == raw + c.key[len(hat):] for d in block.columns):
                swaps.setdefault("bias_correction_omitted", []).append((c.key, raw + c.key[len(hat):]))
        if c.pattern and c.key != key:
            t = block.tree(c.key)
            if t[0] == "bin" and t[1] == "*" and t[2] == ("num", 2.0) and _key_at(block, t[3]):
                swaps.setdefault("mse_factor_2_missing", []).append((c.key, _key_at(block, t[3])[0]))
    for name, pairs in swaps.items():
        for old, new in pairs:
            col_new = block.column(new).col
            out.append((name, _first(tree, lambda n, o=old: (_key_at(block, n) or ("",))[0] == o,
                                     lambda n: ("ref", a1.Ref(n[1].sheet, col_new, n[1].row1, col_new, n[1].row1,
                                                              n[1].col1_abs, n[1].col2_abs)))))
        if len(pairs) > 1:  # every swap at once: Adam's update written with m and v instead of m̂ and v̂
            out.append((name, _read_instead(block, tree, dict(pairs))))
    out.append(("mse_factor_2_missing", _drop_factor(tree, lambda f: f == ("num", 2.0))))
    out.append(("bias_correction_omitted", _first(
        tree, lambda n: n[0] == "bin" and n[1] == "/" and _is_one_minus(n[3]) and n[3][3][0] == "bin" and n[3][3][1] == "^",
        lambda n: n[2])))
    if key.startswith("grad_"):
        factors, rebuild = _product_site(tree)
        mine = next((f for f in factors if _is_feature(f, block)), None)
        if mine is not None:
            out.append(("feature_missing", rebuild([f for f in factors if f is not mine]) if len(factors) > 1 else None))
        out.append(("gradient_negated", ("neg", tree)))
        for c in block.columns:
            if c.key.startswith("grad_") and c.key != key and c.pattern:
                other = next((f for f in _product_site(block.tree(c.key))[0] if _is_feature(f, block)), None)
                if other is not None and other != mine:
                    out.append(("wrong_feature", rebuild([other if f is mine else f for f in factors])
                                if mine is not None else rebuild(factors + [other])))
    if not update:  # ŷ − y written y − ŷ: the first difference of two cells of this row
        reversed_ = _first(
            tree, lambda n: n[0] == "bin" and n[1] == "-" and all(_key_at(block, x) for x in (n[2], n[3]))
            and _key_at(block, n[2])[1] == _key_at(block, n[3])[1] == "r", lambda n: ("bin", "-", n[3], n[2]))
        if reversed_ is None and ERROR_COLUMN.fullmatch(key):  # an error-like column written another way
            # (∂loss/∂z as ∂loss/∂ŷ·σ′, which equals ŷ − y): y − ŷ is its negation
            reversed_ = ("neg", tree)
        out.append(("error_reversed", reversed_))
    out.append(("sum_instead_of_mean", _first(
        tree, lambda n: n[0] == "bin" and n[1] == "/" and (n[3][0] == "field" or n[3][0] == "call" and n[3][1] == "COUNT"
                                                            or _counts_batch(block, n[3])), lambda n: n[2])))
    if "n" in block.fields and len(block.fields["n"]):
        most = float(block.fields["n"].max())
        out.append(("batch_size_fixed", _first(tree, lambda n: n == ("field", "n"), lambda n: ("num", most))))
    params = {c.key for c in block.columns if c.pattern and (lambda t: t[0] == "ref" and _key_at(block, t)
                                                             and _key_at(block, t)[1] == "p")(block.tree(c.key))}
    if key not in params:
        def stale(node):
            k = _key_at(block, node)
            return ("ref", a1.Ref(node[1].sheet, node[1].col1, a1.Row("p", 0), node[1].col2, a1.Row("p", 0),
                                  node[1].col1_abs, node[1].col2_abs)) if k and k[0] in params and k[1] == "r" else node
        edited = a1.transform(tree, stale)
        out.append(("stale_parameter", edited if edited != tree else None))
    # β·old + (1 − β)·new: a running average
    if tree[0] == "bin" and tree[1] == "+" and tree[2][0] == "bin" and tree[2][1] == "*" and \
            tree[3][0] == "bin" and tree[3][1] == "*" and tree[3][2] == ("bin", "-", ("num", 1.0), tree[2][2]):
        beta, old, new = tree[2][2], tree[2][3], tree[3][3]
        out.append(("beta_swapped", ("bin", "+", ("bin", "*", ("bin", "-", ("num", 1.0), beta), old),
                                     ("bin", "*", beta, new))))
        if new[0] == "bin" and new[1] == "^" and new[3] == ("num", 2.0):
            out.append(("not_squared", ("bin", "+", tree[2], ("bin", "*", tree[3][2], new[2]))))
    out.append(("sigmoid_derivative_incomplete", _drop_factor(tree, lambda f: _is_one_minus(f) and any(
        g == f[3] for g in _factors(tree)))))
    out.append(("relu_derivative_wrong_side", _first(  # IF(z>0,1,0): the step function of ReLU's derivative
        tree, lambda n: n[0] == "call" and n[1] == "IF" and len(n[2]) == 3 and n[2][0][0] == "bin"
        and n[2][0][1] in ("<", ">", "<=", ">=") and sorted(map(repr, n[2][1:])) == [repr(("num", 0.0)), repr(("num", 1.0))],
        lambda n: ("call", "IF", [n[2][0], n[2][2], n[2][1]]))))
    out.append(("log_base_swapped", _first(tree, lambda n: n[0] == "call" and n[1] in ("LN", "LOG10"),
                                           lambda n: ("call", "LOG10" if n[1] == "LN" else "LN", n[2]))))
    out.append(("log_base_swapped", a1.transform(  # every log of the formula (the BCE's two): LOG for LN
        tree, lambda n: ("call", "LOG10" if n[1] == "LN" else "LN", n[2])
        if n[0] == "call" and n[1] in ("LN", "LOG10") else n)))
    if tree[0] == "bin" and tree[1] == "*" and tree[3][0] == "bin" and tree[3][1] == "^" and \
            tree[3][2][0] == "bin" and tree[3][2][1] == "/" and tree[3][2][3] == tree[2]:
        start, end, power = tree[2], tree[3][2][2], tree[3][3]
        out.append(("lr_additive", ("bin", "+", start, ("bin", "*", ("bin", "-", end, start), power))))
    if tree[0] == "bin" and tree[1] == "+":
        def relu_input(n):  # MAX(0, z) or IF(z<0, 0, z)
            if n[0] == "call" and n[1] == "MAX" and len(n[2]) == 2 and n[2][0] == ("num", 0.0):
                return n[2][1]
            if n[0] == "call" and n[1] == "IF" and len(n[2]) == 3 and n[2][1] == ("num", 0.0):
                return n[2][2]
            key_ = _key_at(block, n)
            if key_ and block.column(key_[0]).pattern:
                return relu_input(block.tree(key_[0])) if key_[1] == "r" else None
            return None
        a, b = relu_input(tree[2]), relu_input(tree[3])
        if a is not None and b is not None:
            out.append(("relu_after_sum", ("call", "MAX", [("num", 0.0), ("bin", "+", a, b)])))
    out += _decay_variants(tree)
    out += _schedule_variants(block, key, tree)
    out += _embedding_variants(block, key, tree, update)
    out += mistake_edits_softmax.variants(block, key, tree)
    out += mistake_edits_dropout.variants(block, key, tree)
    out += mistake_edits_formula.variants(block, key, tree, _key_at, _drop_factor)
    out += mistake_edits_attention.variants(block, key, tree)
    out += conv_mistakes.variants(block, key, tree)
    return [(name, t) for name, t in out if t is not None and t != tree]


def _counts_batch(block: Block, node) -> bool:
    """A batch's size from its given from/to columns: (last − first + 1), as row-local mini-batches divide by."""
    return node[0] == "bin" and any((_key_at(block, n) or ("",))[0] == "last" for n in a1.walk(node))


ERROR_COLUMN = re.compile(r"(err|dloss|dz|dout)\w*")  # the error and the loss's derivatives (keys)


def _read_instead(block: Block, tree, pairs: dict[str, str]):
    """The tree with every same-row reference to a column of ``pairs`` reading the paired column instead."""
    def edit(n):
        key = _key_at(block, n)
        if not key or key[0] not in pairs:
            return n
        col = block.column(pairs[key[0]]).col
        return ("ref", a1.Ref(n[1].sheet, col, n[1].row1, col, n[1].row1, n[1].col1_abs, n[1].col2_abs))
    return a1.transform(tree, edit)


def _has_decay(node) -> bool:
    """The formula reads a weight decay input (weight_decay, adamw_weight_decay; wd in collab-filter)."""
    return any(n[0] == "name" and (n[1].lower().endswith("weight_decay") or n[1].lower() == "wd")
               for n in a1.walk(node))


def _decay_variants(tree) -> list[tuple[str, object]]:
    """Weight decay left out: AdamW's p·(1 − lr·wd) written p; the L2 gradient g + wd·p written g."""
    out = [("weight_decay_missing", _drop_factor(tree, lambda f: _is_one_minus(f) and _has_decay(f)))]
    out.append(("weight_decay_missing", _first(
        tree, lambda n: n[0] == "bin" and n[1] == "+" and n[3][0] == "bin" and n[3][1] == "*" and _has_decay(n[3])
        and not _has_decay(n[2]), lambda n: n[2])))
    return out


def _embedding_variants(block: Block, key: str, tree, update: bool) -> list[tuple[str, object]]:
    """The collab-filter lesson's mistakes, where its shapes are: several rows per step (users, movies), the
    prediction and error matrices (pred_m…, err_m…) and a y_range ∂loss/∂z."""
    out = []
    per_step = int(block.fields["r"][0] - block.fields["p"][0]) if block.n else 1  # rows per step (users …)
    if update and per_step > 1:  # p − lr·g of the row above or below: another user's (movie's) gradient
        for shift in (-1, 1):
            def other(node, shift=shift):
                k = _key_at(block, node)
                if k and k[0].startswith("grad_") and k[1] == "r":
                    row = a1.Row("r", shift)
                    return ("ref", a1.Ref(node[1].sheet, node[1].col1, row, node[1].col2, row,
                                          node[1].col1_abs, node[1].col2_abs))
                return node
            out.append(("another_users_gradient", a1.transform(tree, other)))

    def is_bias(n):  # a bias cell, or its INDEX in the step's rows (layout 2)
        return n[0] == "ref" or n[0] == "call" and n[1] == "INDEX"

    def is_biased_sum(n):  # SUMPRODUCT(…) + b_u + b_m
        return n[0] == "bin" and n[1] == "+" and is_bias(n[3]) and n[2][0] == "bin" and n[2][1] == "+" \
            and is_bias(n[2][3]) and n[2][2][0] == "call" and n[2][2][1] == "SUMPRODUCT"
    if not key.startswith(("pred_m", "err_m", "dz")):  # the prediction and error matrices, ∂loss/∂z
        return out
    out.append(("bias_missing", _first(tree, is_biased_sum, lambda n: n[2])))
    out.append(("bias_missing", _first(tree, is_biased_sum, lambda n: ("bin", "+", n[2][2], n[3]))))
    out.append(("unrated_included", _first(  # IF(r="", 0, ŷ − r) → ŷ − r
        tree, lambda n: n[0] == "call" and n[1] == "IF" and len(n[2]) == 3 and n[2][0][0] == "bin"
        and n[2][0][1] == "=" and n[2][0][3] == ("str", "") and n[2][1] == ("num", 0.0), lambda n: n[2][2])))
    if key == "dz" and ("name", "y_low") in list(a1.walk(tree)):  # err · dŷ/dz → err (y_range's ∂loss/∂z)
        err = next((f for f in _factors(tree[2] if tree[0] == "bin" and tree[1] == "/" else tree)
                    if (_key_at(block, f) or ("",))[0] == "err"), None)
        out.append(("y_range_derivative_missing", err))
    return out


SCHEDULE_COLUMNS = ("lr", "mom", "beta1")  # sheetsgd.lessons.schedules' columns


def _schedule_variants(block: Block, key: str, tree) -> list[tuple[str, object]]:
    """A schedule's mistakes: step t at position t/N instead of (t − 1)/N; one-cycle's two cosines swapped."""
    if key not in SCHEDULE_COLUMNS and not key.endswith("_lr"):
        return []

    def step_minus_one(n):
        return n[0] == "bin" and n[1] == "-" and n[3] == ("num", 1.0) and (_key_at(block, n[2]) or ("",))[0] == "step"
    out = [("schedule_phase_off_by_one", a1.transform(tree, lambda n: n[2] if step_minus_one(n) else n))]
    out.append(("schedule_phases_swapped", _first(tree, lambda n: n[0] == "call" and n[1] == "IF" and len(n[2]) == 3,
                                                  lambda n: ("call", "IF", [n[2][0], n[2][2], n[2][1]]))))
    return out
