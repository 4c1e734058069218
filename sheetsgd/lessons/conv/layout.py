"""Where everything of a convolution workbook lies, and its Steps, Start, Images and Loss blocks.

Steps  one row per SGD step (one image): the image number (given), its label and pixels looked up on the
       Images sheet by that number (INDEX of one column: row-local), the parameters the step starts from
       (the row above's new values; step 1 reads the yellow Start row), the forward pass (z, a = ReLU(z),
       s, p, loss, correct), the backward pass (∂L/∂s, ∂L/∂w, ∂L/∂b, ∂L/∂z, ∂L/∂F, ∂L/∂c) and the new
       parameters. Every formula reads its own row, the row above (the parameters) or fixed ranges, so every
       column is one fill-down. An image is a row of size² pixels (row by row): a 3×3 window is three runs
       of three cells, so z is three SUMPRODUCTs (one per filter row) plus the bias, and ∂L/∂F[u, v] is
       one SUMPRODUCT per feature-map row of ∂L/∂z and the input shifted by (u, v).
Images one row per training image: number, class y, pixels (yellow inputs).
Loss   one row per epoch: the mean loss and the accuracy of its steps.

Row fields: ``r`` this row, ``p`` the row above, ``lo``/``hi`` an epoch's Steps rows.
"""
from __future__ import annotations

import numpy as np
from xlsxwriter.utility import xl_col_to_name

from sheetsgd.sheet.blocks import Block, BlockColumn
from sheetsgd.lessons.sizeguard import WorkbookSize
from .lesson import ConvLesson

INTRO, STEPS, LOSS, IMAGES, PICTURES, FILTERS, MAPS, MANIFEST = (
    "Introduction", "Steps", "Loss", "Images", "Pictures", "Filters", "Maps", "_sheetsgd")
HEADER = 5  # 0-based header row of Steps; the Start row below it, then one row per step
IMAGES_HEADER = 3
LOSS_HEADER = 3
LR_ROW = 3  # 0-based row of the lr input on Steps (column B)
F0, F2, F4, F6 = "0", "0.00", "0.0000", "0.000000"


def L(col: int) -> str:
    return xl_col_to_name(col)


class Layout:
    """Every column of the Steps sheet, by key, and the rows of every sheet (before training: the size guard)."""

    def __init__(self, lesson: ConvLesson):
        self.lesson = lesson
        self.n, self.m, self.K = lesson.size, lesson.map_size, lesson.filters
        self.N, self.S, self.E = lesson.train_images, lesson.steps, lesson.epochs
        self.pool, self.q = lesson.pool, lesson.dense_size  # q: the side of the grids the dense layer reads
        n, m, K = self.n, self.m, self.K
        keys = ["step", "image", "y"] + [self.x(i, j) for i in range(n) for j in range(n)]
        self.param_keys = ([self.f(k, u, v) for k in range(K) for u in range(3) for v in range(3)]
                           + [f"c{k + 1}" for k in range(K)] + self.cells("w") + ["b"])
        keys += self.param_keys + self.cells("z") + self.cells("a") + (self.cells("pool") if self.pool else [])
        keys += ["s", "p", "loss", "correct", "ds"]
        keys += ["grad_" + k for k in self.cells("w")] + ["grad_b"] + self.cells("dz")
        keys += ["grad_" + self.f(k, u, v) for k in range(K) for u in range(3) for v in range(3)]
        keys += [f"grad_c{k + 1}" for k in range(K)] + ["new_" + k for k in self.param_keys]
        self.col = {key: i for i, key in enumerate(keys)}
        self.width = len(keys)

    # keys
    @staticmethod
    def x(i, j):
        return f"x_{i + 1}_{j + 1}"

    @staticmethod
    def f(k, u, v):
        return f"f{k + 1}_{u + 1}_{v + 1}"

    def cells(self, name: str) -> list[str]:
        """The keys of a quantity with one value per filter and grid cell, k, i, j order: the feature maps'
        (z, a, dz) or the dense layer's inputs' (w, and pool: the max-pooled maps)."""
        m = self.q if name in ("w", "pool") else self.m
        return [f"{name}{k + 1}_{i + 1}_{j + 1}" for k in range(self.K) for i in range(m) for j in range(m)]

    @staticmethod
    def L_images(col: int) -> str:
        return L(col)

    def at(self, key: str) -> str:
        """The column letter of a Steps key."""
        return L(self.col[key])

    def span(self, first: str, last: str, row: str = "{r}") -> str:
        return f"{self.at(first)}{row}:{self.at(last)}{row}"

    # 1-based sheet rows
    def step_row(self, s: int) -> int:  # s = 0: the Start row
        return HEADER + 2 + s

    def image_row(self, i: int) -> int:  # 0-based image
        return IMAGES_HEADER + 2 + i

    def loss_row(self, e: int) -> int:  # 0-based epoch
        return LOSS_HEADER + 2 + e


def estimate(lesson: ConvLesson) -> WorkbookSize:
    """The workbook's cells, rows and columns, counted from the layout (nothing trained)."""
    lay = Layout(lesson)
    n, m, K, N, S = lay.n, lay.m, lay.K, lay.N, lay.S
    views = S * 3 * (2 + 12 * K) + S * m * (2 + K * (2 * m + 2)) + N * n * (3 + n)
    cells = (S + 1) * lay.width + N * (2 + n * n) + 3 * lay.E + views + 200
    rows = max(S * max(3, m), N * n) + 20
    longest = 60 * max(3, m) + 40
    return WorkbookSize(cells=cells, formula_cells=cells, longest_formula=longest, max_rows=rows,
                        max_columns=max(lay.width, 2 + n * n, 2 + K * (2 * m + 2)))


def images_block(lay: Layout) -> Block:
    data = lay.lesson.data
    n = lay.n
    cols = [BlockColumn("image", "image", 0, None, F0), BlockColumn("y", "y", 1, None, F0, role="input")]
    values = {"image": list(range(1, lay.N + 1)), "y": data.y.tolist()}
    for i in range(n):
        for j in range(n):
            key = lay.x(i, j)
            cols.append(BlockColumn(key, f"x[{i + 1},{j + 1}]", 2 + i * n + j, None, F2, role="input"))
            values[key] = data.x[:, i, j].tolist()
    return Block(IMAGES, IMAGES, IMAGES_HEADER, IMAGES_HEADER + 1, cols, lay.N, values=values,
                 step=np.zeros(lay.N, np.int64))


def start_block(lay: Layout, trace) -> Block:
    init = trace.params[0] if trace else lay.lesson.init()
    flat = _flat(lay, init)
    cols = [BlockColumn("step", "step", 0, None, F0)]
    cols += [BlockColumn("new_" + k, _header(lay, "new_" + k), lay.col["new_" + k], None, F4, role="input")
            for k in lay.param_keys]
    return Block(STEPS, "Start", HEADER, HEADER + 1, cols, 1, values={"step": [0], **{"new_" + k: [flat[k]] for k in lay.param_keys}},
                 step=np.zeros(1, np.int64))


def _flat(lay: Layout, params: dict) -> dict[str, float]:
    """{parameter key: value} of a parameter dict (f, c, w, b)."""
    out = {}
    for k in range(lay.K):
        for u in range(3):
            for v in range(3):
                out[lay.f(k, u, v)] = float(params["f"][k, u, v])
        out[f"c{k + 1}"] = float(params["c"][k])
    for key, value in zip(lay.cells("w"), np.ravel(params["w"])):
        out[key] = float(value)
    out["b"] = float(params["b"][0])
    return out


def _header(lay: Layout, key: str) -> str:
    """A column's header: x[1,2], F1[3,3], ∂L/∂z2[4,4], new w1[1,1] …"""
    prefix = ""
    if key.startswith("new_"):
        prefix, key = "new ", key[4:]
    elif key.startswith("grad_"):
        prefix, key = "∂L/∂", key[5:]
    elif key.startswith("dz"):
        prefix, key = "∂L/∂", key[1:]
    fixed = {"s": "s", "p": "p = σ(s)", "loss": "loss", "correct": "correct", "ds": "∂L/∂s", "b": "b",
             "step": "step", "image": "image", "y": "y"}
    if key in fixed:
        return prefix + fixed[key]
    name, _, rest = key.partition("_")
    name = "max" + name[4:] if name.startswith("pool") else name
    if not rest:  # c1, c2
        return prefix + name
    name = "F" + name[1:] if name.startswith("f") else name
    return prefix + f"{name}[{rest.replace('_', ',')}]"
