"""The Steps blocks (the start weights, then per step: weights, batch-mean gradients, new weights, the batch's
loss and focus) and the Attention grid (each step's first sequence's attention matrix, a row per query)."""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet.blocks import Block, BlockColumn
from .layout import ATTENTION, EX_HEADER, EXAMPLES, F0, F3, F6, STEPS, STEPS_HEADER, L, Layout, param_value


def steps_blocks(lay: Layout, trace) -> list[Block]:
    """The start row (yellow: the start weights in the "new" columns) and one row per step."""
    init = lay.lesson.init()
    start_cols = [BlockColumn("step", "step", 0, None, F0)]
    start_cols += [BlockColumn(f"new_{p}", f"new {p}", lay.steps_col[f"new_{p}"], None, F6, role="input")
                   for p in lay.params]
    start_values = {"step": [0], **{f"new_{p}": [param_value(init, p)] for p in lay.params}}
    start = Block(STEPS, "StepsStart", STEPS_HEADER, STEPS_HEADER + 1, start_cols, 1, values=start_values,
                  step=np.zeros(1, dtype=np.int64))
    mean = lambda key: (f"SUMIF({lay.ex_all('step')},$A{{r}},{lay.ex_all(key)})/$B{{r}}")  # noqa: E731
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("n", "batch", 1, None, F0),
            BlockColumn("loss", "loss", 2, mean("loss"), F6, note="the batch's mean loss (Examples, by step number)"),
            BlockColumn("focus", "on key", 3, mean("focus"), F3,
                        note="the batch's mean attention on the key token (1/T: none; 1: all of it)")]
    for p in lay.params:
        cols.append(BlockColumn(p, p, lay.steps_col[p], f"{L(lay.steps_col['new_' + p])}{{p}}", F6,
                                note="the weight this step starts from (the row above's new value)"))
    for p in lay.params:
        cols.append(BlockColumn(f"grad_{p}", f"∂{p}", lay.steps_col[f"grad_{p}"], mean(f"g_{p}"), F6,
                                note=f"∂L/∂{p}: the batch mean of the Examples' ∂{p} of this step"))
    for p in lay.params:
        cols.append(BlockColumn(f"new_{p}", f"new {p}", lay.steps_col[f"new_{p}"],
                                f"{L(lay.steps_col[p])}{{r}}-lr*{L(lay.steps_col['grad_' + p])}{{r}}", F6,
                                note=f"{p} − lr·∂L/∂{p}"))
    S = lay.S
    steps = np.arange(1, S + 1)
    values = {"step": steps.tolist(), "n": [lay.B] * S}
    if trace is None:
        values.update({c.key: [0.0] * S for c in cols if c.key not in values})
    else:
        values["loss"], values["focus"] = trace.loss.tolist(), trace.focus.tolist()
        for p in lay.params:
            values[p] = [param_value(trace.params[s], p) for s in range(S)]
            values[f"new_{p}"] = [param_value(trace.new[s], p) for s in range(S)]
            values[f"grad_{p}"] = [param_value(trace.grads[s], p) for s in range(S)]
    block = Block(STEPS, STEPS, STEPS_HEADER, STEPS_HEADER + 2, cols, S, values=values, step=steps)
    return [start, block]


def grid_block(lay: Layout, trace) -> Block:
    """Per step, T rows (one per query token i) of the attention a_i1 … a_iT of the step's first sequence:
    INDEX into that Examples row's attention columns at (i − 1)·T + j (one fill-down per column)."""
    T, S = lay.T, lay.S
    first, last = L(lay.ex_col["a1_1"]), L(lay.ex_col[f"a{T}_{T}"])
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("query", "query", 1, None, F0),
            BlockColumn("key_at", "key at", 2, None, F0, note="the position of the key token in this sequence")]
    for j in range(1, T + 1):
        cols.append(BlockColumn(f"to{j}", f"→ {j}", 2 + j,
                                f"INDEX({EXAMPLES}!${first}{{er}}:${last}{{er}},1,($B{{r}}-1)*{T}+{j})", F3,
                                note=f"the attention of this query on token {j} (Examples, the step's first sequence)"))
    steps = np.repeat(np.arange(1, S + 1), T)
    queries = np.tile(np.arange(1, T + 1), S)
    lesson = lay.lesson
    keys = [int(lesson.data.key[lesson.batch(s)[0]]) + 1 for s in steps]
    values = {"step": steps.tolist(), "query": queries.tolist(), "key_at": keys}
    for j in range(1, T + 1):
        values[f"to{j}"] = ([float(trace.rows[s - 1]["a"][0, i - 1, j - 1]) for s, i in zip(steps, queries)]
                            if trace is not None else [0.0] * len(steps))
    fields = {"er": np.array([lay.example_row(s, 0) for s in steps])}
    return Block(ATTENTION, ATTENTION, EX_HEADER, EX_HEADER + 1, cols, S * T, fields=fields, values=values, step=steps)
