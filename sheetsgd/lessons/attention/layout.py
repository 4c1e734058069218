"""Where everything of an attention workbook lies, and the Examples block (one row per sequence per step).

Steps     inputs (lr) above; a start row (step 0: the yellow start weights in the "new" columns) and one row
          per step: the weights (the previous row's new ones), their gradients (the batch mean of the
          Examples rows of this step, SUMIF by step number), the new weights p − lr·g; the batch's mean loss
          and the attention it pays to the key token.
Examples  one row per (step, sequence of its batch), every quantity of the forward and backward pass in its own
          column, row-local (one fill-down each): the tokens x (given), the step's weights looked up by step
          number (INDEX(Steps!col, step, 1)), Q, K, V, the scaled scores, each query row's max, the exponentials,
          the attention A, AV, the mean-pooled h, ŷ, the loss; then ∂ŷ, ∂h, ∂A, ∂V, the softmax's Jacobian ∂S,
          ∂Q, ∂K and each weight's gradient of this sequence's loss.
Attention the attention matrix of each step's first sequence as a T × T grid with a colour scale.

Keys: x{t}_{f} token t's feature f (f: 1 the constant, 2 the key marker, 3 the value); wq{f}{k}, wk{f}{k},
wv{f}{k}, wo{k}, b the weights; q{t}_{k}, k{t}_{k}, v{t}_{k}; s{i}_{j}, e{i}_{j}, a{i}_{j} (query i, key j);
m{i}; o{i}_{k}; h{k}; da{i}_{j}, ds{i}_{j}; dv{j}_{k}, dq{i}_{k}, dk{j}_{k}; g_… a weight's gradient.
"""
from __future__ import annotations

import numpy as np
from xlsxwriter.utility import xl_col_to_name

from sheetsgd.sheet.blocks import Block, BlockColumn
from .lesson import FEATURES, AttentionLesson

INTRO, STEPS, EXAMPLES, ATTENTION, MANIFEST = "Introduction", "Steps", "Examples", "Attention", "_sheetsgd"
STEPS_HEADER = 6  # 0-based header row of Steps; the start row below it, then the steps
EX_HEADER = 3  # 0-based header row of Examples and Attention
F6, F3, F0 = "0.000000", "0.000", "0"
FIXED = ("step", "n", "loss", "focus")  # Steps' first columns, before the weights


def L(col: int) -> str:
    return xl_col_to_name(col)


def param_keys(lesson: AttentionLesson) -> list[str]:
    """Every weight, in the order of the Steps sheet: W_Q, W_K, W_V (3 × d, feature by feature), w_o, b."""
    f, d = len(FEATURES), lesson.d
    keys = [f"{w}{i + 1}{k + 1}" for w in ("wq", "wk", "wv") for i in range(f) for k in range(d)]
    return keys + [f"wo{k + 1}" for k in range(d)] + ["b"]


def param_value(p: dict, key: str) -> float:
    """A weight's number in the engine's parameters, by its sheet key."""
    if key == "b":
        return float(p["b"][0])
    if key.startswith("wo"):
        return float(p["wo"][int(key[2:]) - 1])
    return float(p[key[:2]][int(key[2]) - 1, int(key[3:]) - 1])


class Layout:
    """Positions of every sheet's rows and columns for one lesson (before training: the size guard)."""

    def __init__(self, lesson: AttentionLesson):
        self.lesson = lesson
        self.T, self.d, self.B, self.S = lesson.length, lesson.d, lesson.batch_size, lesson.steps
        self.params = param_keys(lesson)
        P = len(self.params)
        self.steps_col = {k: i for i, k in enumerate(FIXED)}
        for i, key in enumerate(self.params):
            self.steps_col[key] = len(FIXED) + i
            self.steps_col[f"grad_{key}"] = len(FIXED) + P + i
            self.steps_col[f"new_{key}"] = len(FIXED) + 2 * P + i
        self.ex_keys = example_keys(lesson, self.params)
        self.ex_col = {k: i for i, k in enumerate(self.ex_keys)}

    # 1-based sheet rows
    @property
    def start_row(self) -> int:
        return STEPS_HEADER + 2

    def step_row(self, s: int) -> int:
        return self.start_row + s

    def example_row(self, s: int, b: int) -> int:
        return EX_HEADER + 2 + (s - 1) * self.B + b

    @property
    def examples_last(self) -> int:
        return self.example_row(self.S, self.B - 1)

    def grid_row(self, s: int, i: int) -> int:
        return EX_HEADER + 2 + (s - 1) * self.T + i

    def ex(self, key: str) -> str:
        """This row's cell of an Examples column (a row pattern)."""
        return f"{L(self.ex_col[key])}{{r}}"

    def ex_all(self, key: str) -> str:
        """An Examples column's every row (all steps)."""
        c = L(self.ex_col[key])
        return f"{EXAMPLES}!${c}${self.example_row(1, 0)}:${c}${self.examples_last}"

    @property
    def cells(self) -> int:
        return self.S * (self.B * len(self.ex_keys) + self.T * (self.T + 3) + len(self.steps_col))


def example_keys(lesson: AttentionLesson, params: list[str]) -> list[str]:
    T, d, F = lesson.length, lesson.d, len(FEATURES)
    t, k = range(1, T + 1), range(1, d + 1)
    keys = ["step", "example"] + [f"x{i}_{f}" for i in t for f in range(1, F + 1)] + ["y"] + params
    for name in ("q", "k", "v"):
        keys += [f"{name}{i}_{j}" for i in t for j in k]
    keys += [f"s{i}_{j}" for i in t for j in t] + [f"m{i}" for i in t]
    keys += [f"e{i}_{j}" for i in t for j in t] + [f"a{i}_{j}" for i in t for j in t]
    keys += [f"o{i}_{j}" for i in t for j in k] + [f"h{j}" for j in k] + ["pred", "loss", "focus", "dpred"]
    keys += [f"dh{j}" for j in k] + [f"da{i}_{j}" for i in t for j in t] + [f"dv{i}_{j}" for i in t for j in k]
    keys += [f"ds{i}_{j}" for i in t for j in t] + [f"dq{i}_{j}" for i in t for j in k]
    keys += [f"dk{i}_{j}" for i in t for j in k] + [f"g_{p}" for p in params]
    return keys


def _sum(terms: list[str]) -> str:
    return "+".join(terms)


def example_columns(lay: Layout) -> list[BlockColumn]:
    """Every Examples column: its key, header, row pattern (None: given) and note."""
    T, d, F = lay.T, lay.d, len(FEATURES)
    R = lay.ex
    t, k = range(1, T + 1), range(1, d + 1)
    root = f"SQRT({d})"
    first, last = lay.step_row(1), lay.step_row(lay.S)
    cols = {"step": (None, F0, "the step this sequence trains in"), "example": (None, F0, "which sequence")}
    for i in t:
        for f, name in enumerate(FEATURES, 1):
            cols[f"x{i}_{f}"] = (None, "0.00", f"token {i}'s {name} feature" + (" (1 on the key token)" if f == 2 else ""))
    cols["y"] = (None, "0.00", "target: the value the key token carries")
    for p in lay.params:
        c = L(lay.steps_col[p])
        cols[p] = (f"INDEX({STEPS}!${c}${first}:${c}${last},$A{{r}},1)", F6, "this step's weight (Steps, by step number)")
    for name, w in (("q", "wq"), ("k", "wk"), ("v", "wv")):
        for i in t:
            for j in k:
                cols[f"{name}{i}_{j}"] = (_sum([f"{R(f'x{i}_{f}')}*{R(f'{w}{f}{j}')}" for f in range(1, F + 1)]), F6,
                                          f"{name.upper()} = X·W_{name.upper()}: token {i}, column {j}")
    for i in t:
        for j in t:
            cols[f"s{i}_{j}"] = (f"({_sum([R(f'q{i}_{c}') + '*' + R(f'k{j}_{c}') for c in k])})/{root}", F6,
                                 f"score of query {i} on key {j}: q{i}·k{j}/√d")
    for i in t:
        cols[f"m{i}"] = (f"MAX({R(f's{i}_1')}:{R(f's{i}_{T}')})", F6, f"the largest score of query {i} (for a stable softmax)")
    for i in t:
        for j in t:
            cols[f"e{i}_{j}"] = (f"EXP({R(f's{i}_{j}')}-{R(f'm{i}')})", F6, "exp(score − row max)")
    for i in t:
        for j in t:
            cols[f"a{i}_{j}"] = (f"{R(f'e{i}_{j}')}/SUM({R(f'e{i}_1')}:{R(f'e{i}_{T}')})", F6,
                                 f"attention of query {i} on key {j}: the softmax over query {i}'s row")
    for i in t:
        for j in k:
            cols[f"o{i}_{j}"] = (_sum([f"{R(f'a{i}_{c}')}*{R(f'v{c}_{j}')}" for c in t]), F6, f"(A·V) row {i}, column {j}")
    for j in k:
        cols[f"h{j}"] = (f"({_sum([R(f'o{i}_{j}') for i in t])})/{T}", F6, f"mean over the tokens of A·V, column {j}")
    cols["pred"] = (_sum([f"{R(f'h{j}')}*{R(f'wo{j}')}" for j in k] + [R("b")]), F6, "ŷ = h·w_o + b")
    cols["loss"] = (f"({R('pred')}-{R('y')})^2", F6, "(ŷ − y)²")
    cols["focus"] = (f"({_sum([R(f'x{j}_2') + '*(' + _sum([R(f'a{i}_{j}') for i in t]) + ')' for j in t])})/{T}", F3,
                     "the attention paid to the key token, averaged over the queries")
    cols["dpred"] = (f"2*({R('pred')}-{R('y')})", F6, "∂loss/∂ŷ = 2(ŷ − y)")
    for j in k:
        cols[f"dh{j}"] = (f"{R('dpred')}*{R(f'wo{j}')}", F6, f"∂loss/∂h{j} = ∂ŷ · w_o{j}")
    for i in t:
        for j in t:
            cols[f"da{i}_{j}"] = (f"({_sum([R(f'dh{c}') + '*' + R(f'v{j}_{c}') for c in k])})/{T}", F6,
                                  f"∂loss/∂a{i}_{j} = Σ_k ∂O{i}k·v{j}k, with ∂O{i}k = ∂h_k/T")
    for j in t:
        for c in k:
            cols[f"dv{j}_{c}"] = (f"({_sum([R(f'a{i}_{j}') for i in t])})*{R(f'dh{c}')}/{T}", F6,
                                  f"∂loss/∂v{j}_{c} = Σ_i a_i{j}·∂O_i{c}")
    for i in t:
        for j in t:
            cols[f"ds{i}_{j}"] = (f"{R(f'a{i}_{j}')}*({R(f'da{i}_{j}')}-SUMPRODUCT({R(f'a{i}_1')}:{R(f'a{i}_{T}')},"
                                  f"{R(f'da{i}_1')}:{R(f'da{i}_{T}')}))", F6,
                                  f"∂loss/∂s{i}_{j}: the softmax's Jacobian, a_ij(∂a_ij − Σ_l a_il·∂a_il)")
    for i in t:
        for c in k:
            cols[f"dq{i}_{c}"] = (f"({_sum([R(f'ds{i}_{j}') + '*' + R(f'k{j}_{c}') for j in t])})/{root}", F6,
                                  f"∂loss/∂q{i}_{c} = Σ_j ∂s{i}j·k_j{c}/√d")
    for j in t:
        for c in k:
            cols[f"dk{j}_{c}"] = (f"({_sum([R(f'ds{i}_{j}') + '*' + R(f'q{i}_{c}') for i in t])})/{root}", F6,
                                  f"∂loss/∂k{j}_{c} = Σ_i ∂s_i{j}·q_i{c}/√d")
    for p in lay.params:
        if p == "b":
            cols["g_b"] = (R("dpred"), F6, "∂loss/∂b = ∂ŷ")
        elif p.startswith("wo"):
            cols[f"g_{p}"] = (f"{R('dpred')}*{R('h' + p[2:])}", F6, f"∂loss/∂{p} = ∂ŷ · h{p[2:]}")
        else:
            src, f, c = {"wq": "dq", "wk": "dk", "wv": "dv"}[p[:2]], p[2], p[3:]
            cols[f"g_{p}"] = (_sum([f"{R(f'x{i}_{f}')}*{R(f'{src}{i}_{c}')}" for i in t]), F6,
                              f"∂loss/∂{p} = Σ_t x_t{f}·∂{src[1].upper()}_t{c} (this sequence)")
    out = []
    for key in lay.ex_keys:
        pattern, fmt, note = cols[key]
        out.append(BlockColumn(key, _header(key), lay.ex_col[key], pattern, fmt, note=note))
    return out


def _header(key: str) -> str:
    names = {"pred": "ŷ", "loss": "loss", "focus": "on key", "dpred": "∂ŷ", "y": "y", "step": "step",
             "example": "seq"}
    if key in names:
        return names[key]
    if key.startswith("g_"):
        return "∂" + key[2:]
    return key


def examples_block(lay: Layout, trace) -> Block:
    cols = example_columns(lay)
    S, B, T, d = lay.S, lay.B, lay.T, lay.d
    steps = np.repeat(np.arange(1, S + 1), B)
    values: dict[str, list] = {}
    lesson = lay.lesson
    data = lesson.data
    idx = np.concatenate([lesson.batch(s) for s in range(1, S + 1)])
    values["step"], values["example"] = steps.tolist(), (idx + 1).tolist()
    for i in range(T):
        for f in range(len(FEATURES)):
            values[f"x{i + 1}_{f + 1}"] = data.x[idx, i, f].tolist()
    values["y"] = data.y[idx].tolist()
    if trace is None:
        for c in cols:
            values.setdefault(c.key, [0.0] * len(steps))
        return Block(EXAMPLES, EXAMPLES, EX_HEADER, EX_HEADER + 1, cols, len(steps), values=values, step=steps)
    rows = trace.rows

    def cat(name):
        return np.concatenate([r[name] for r in rows])
    for p in lay.params:
        values[p] = [param_value(trace.params[s - 1], p) for s in steps]
    for name in ("q", "k", "v", "o", "dv", "dq", "dk"):
        arr = cat(name)
        for i in range(T):
            for j in range(d):
                values[f"{name}{i + 1}_{j + 1}"] = arr[:, i, j].tolist()
    for name in ("s", "e", "a", "da", "ds"):
        arr = cat(name)
        for i in range(T):
            for j in range(T):
                values[f"{name}{i + 1}_{j + 1}"] = arr[:, i, j].tolist()
    m = cat("m")
    for i in range(T):
        values[f"m{i + 1}"] = m[:, i].tolist()
    for name in ("h", "dh"):
        arr = cat(name)
        for j in range(d):
            values[f"{name}{j + 1}"] = arr[:, j].tolist()
    for name in ("pred", "loss", "focus", "dpred"):
        values[name] = cat(name).tolist()
    g = {name: np.concatenate([r["g"][name] for r in rows]) for name in ("wq", "wk", "wv", "wo", "b")}
    for p in lay.params:
        if p == "b":
            values["g_b"] = g["b"][:, 0].tolist()
        elif p.startswith("wo"):
            values[f"g_{p}"] = g["wo"][:, int(p[2:]) - 1].tolist()
        else:
            values[f"g_{p}"] = g[p[:2]][:, int(p[2]) - 1, int(p[3:]) - 1].tolist()
    return Block(EXAMPLES, EXAMPLES, EX_HEADER, EX_HEADER + 1, cols, len(steps), values=values, step=steps)
