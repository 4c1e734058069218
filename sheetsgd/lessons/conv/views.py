"""The grids drawn from the Steps rows and the Images rows, so a student sees the numbers as pictures:

Filters   per step three rows (a filter's rows u = 1..3): each filter, its gradient ∂L/∂F and its new
          value as 3×3 grids (colour scales: red negative, blue positive).
Maps      per step size − 2 rows: each filter's feature map a = ReLU(z) and its gradient ∂L/∂z.
Pictures  per training image size rows: the image as a grid.

Each cell is INDEX(the step's (image's) row of one quantity, 1, width·(grid row − 1) + column): one row of
one sheet, its position by the grid row in column B (portable: INDEX of a one-row range by column).
Row fields: ``sr`` the step's Steps row, ``ir`` the image's Images row.
"""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet.blocks import Block, BlockColumn
from .layout import F0, F2, F4, FILTERS, IMAGES, MAPS, PICTURES, STEPS, Layout, L

VIEW_HEADER = 3
FILTER_GROUP = 12  # columns per filter on Filters: F (3), gap, ∂L/∂F (3), gap, new F (3), gap


def _grid(sheet_range: str, width: int, j: int) -> str:
    return f"INDEX({sheet_range},1,{width}*($B{{r}}-1)+{j + 1})"


def filters_block(lay: Layout, trace) -> Block:
    S, K = lay.S, lay.K
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("row", "row", 1, None, F0)]
    values = {"step": np.repeat(np.arange(1, S + 1), 3).tolist(), "row": np.tile([1, 2, 3], S).tolist()}
    for k in range(K):
        for g, (prefix, label, source) in enumerate((("", "F", "params"), ("grad_", "∂L/∂F", "grads"),
                                                     ("new_", "newF", "new"))):
            first, last = prefix + lay.f(k, 0, 0), prefix + lay.f(k, 2, 2)
            rng = f"{STEPS}!${lay.at(first)}{{sr}}:${lay.at(last)}{{sr}}"
            for v in range(3):
                key = f"view{prefix[:-1] or 'f'}{k + 1}_{v + 1}"
                cols.append(BlockColumn(key, f"{label}{k + 1}[·,{v + 1}]", 2 + k * FILTER_GROUP + 4 * g + v,
                                        _grid(rng, 3, v), F4, note=f"{label}{k + 1} of this step, row by row"))
                values[key] = [float(getattr(trace, source)[s]["f"][k, u, v]) if trace else 0.0
                               for s in range(S) for u in range(3)]
    sr = np.repeat([lay.step_row(s) for s in range(1, S + 1)], 3)
    return Block(FILTERS, FILTERS, VIEW_HEADER, VIEW_HEADER + 1, cols, 3 * S, fields={"sr": sr}, values=values,
                 step=np.repeat(np.arange(1, S + 1), 3))


def map_group(lay: Layout) -> int:
    return 2 * lay.m + 2


def maps_block(lay: Layout, trace) -> Block:
    S, K, m = lay.S, lay.K, lay.m
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("row", "row", 1, None, F0)]
    values = {"step": np.repeat(np.arange(1, S + 1), m).tolist(), "row": np.tile(np.arange(1, m + 1), S).tolist()}
    for k in range(K):
        for g, (name, label, arr) in enumerate((("a", "a", "a"), ("dz", "∂L/∂z", "dz"))):
            keys = lay.cells(name)[k * m * m:(k + 1) * m * m]
            rng = f"{STEPS}!${lay.at(keys[0])}{{sr}}:${lay.at(keys[-1])}{{sr}}"
            for j in range(m):
                key = f"view{name}{k + 1}_{j + 1}"
                cols.append(BlockColumn(key, f"{label}{k + 1}[·,{j + 1}]", 2 + k * map_group(lay) + g * (m + 1) + j,
                                        _grid(rng, m, j), F4, note=f"{label} of filter {k + 1} this step, row by row"))
                values[key] = [float(getattr(trace, arr)[s, k, i, j]) if trace else 0.0 for s in range(S)
                               for i in range(m)]
    sr = np.repeat([lay.step_row(s) for s in range(1, S + 1)], m)
    return Block(MAPS, MAPS, VIEW_HEADER, VIEW_HEADER + 1, cols, m * S, fields={"sr": sr}, values=values,
                 step=np.repeat(np.arange(1, S + 1), m))


def pictures_block(lay: Layout) -> Block:
    n, N = lay.n, lay.N
    data = lay.lesson.data
    rng = f"{IMAGES}!$C{{ir}}:${L(1 + n * n)}{{ir}}"
    cols = [BlockColumn("image", "image", 0, None, F0), BlockColumn("row", "row", 1, None, F0),
            BlockColumn("viewy", "y", 2, f"{IMAGES}!$B{{ir}}", F0, note="the image's class (1: vertical)")]
    values = {"image": np.repeat(np.arange(1, N + 1), n).tolist(), "row": np.tile(np.arange(1, n + 1), N).tolist(),
              "viewy": np.repeat(data.y, n).tolist()}
    for j in range(n):
        key = f"viewx_{j + 1}"
        cols.append(BlockColumn(key, f"x[·,{j + 1}]", 3 + j, _grid(rng, n, j), F2, note="the image, row by row"))
        values[key] = data.x[:, :, j].ravel().tolist()
    ir = np.repeat([lay.image_row(i) for i in range(N)], n)
    return Block(PICTURES, PICTURES, VIEW_HEADER, VIEW_HEADER + 1, cols, n * N, fields={"ir": ir}, values=values,
                 step=np.zeros(n * N, np.int64))


def conv_frames(lesson, trace) -> dict:
    """{sheet: a function making its DataFrame} (``sheetsgd.api``): the numbers the workbook caches."""
    from .rows import loss_block, steps_block

    lay = Layout(lesson)

    def frame(block):
        import pandas as pd

        return pd.DataFrame({c.key: np.asarray(block.values[c.key]) for c in block.columns})
    return {STEPS: lambda: frame(steps_block(lay, trace)), "Loss": lambda: frame(loss_block(lay, trace)),
            FILTERS: lambda: frame(filters_block(lay, trace)), MAPS: lambda: frame(maps_block(lay, trace))}
