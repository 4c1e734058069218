"""Where everything of a collab-filter workbook lies, and its blocks (row patterns, fields, engine values).

Full-batch steps, each a band of rows on every step sheet (a block spans all steps; ``step`` says which):

  Users / Movies  one row per (step, user) / (step, movie): the factors the step starts from (the
                  previous step's new ones; step 1 reads the yellow start rows), the gradients
                  2·Σ ∂·(other side's factor)/n + wd·p over the step's Train rows of that user / movie
                  (layout 2: SUMIFS of Train's products by step and id; 1: SUMPRODUCTs over the step's
                  own Train rows), and the new values p − lr·g.
  Predictions     one row per (step, user): the observed ratings, the prediction matrix
                  U·Vᵀ + biases (squashed into y_range) and the error matrix (ŷ − r where rated, 0 elsewhere).
                  Layout 2: a given "movies from" column (the Movies row of the step's first movie); ŷ reads
                  the Users row U rows below and INDEX(every Movies row, movies from + m − 1, 0): one fill-down.
  Train           one row per (step, training rating): its prediction and error looked up in the matrix
                  (INDEX of the user's row), ∂loss/∂z (the y_range derivative), and the user's and the
                  movie's factors (layout 2: each times ∂loss/∂z, what the gradients' SUMIFS add up).
  HeldBack        one row per (step, held-back rating): its prediction and error.
  Loss            one row per step: training MSE, held-back MSE, objective (MSE + wd/2·Σp²).
  Solver          one block of parameters (users then movies), its prediction and error matrices.

Row fields: ``r`` this row, ``p`` the same user/movie one step earlier, ``lo``/``hi`` the step's Train
rows, ``ur``/``mr`` a user's/movie's row of this step, ``pr`` the user's Predictions row, ``du`` the
user's Ratings row, ``mv1``… each movie's Movies row of this step.
"""
from __future__ import annotations

import numpy as np
from xlsxwriter.utility import xl_col_to_name

from sheetsgd.sheet.blocks import Block, BlockColumn
from .engine import CollabTrace
from .lesson import CollabLesson

INTRO, LOSS, RATINGS, PRED, TRAIN = "Introduction", "Loss", "Ratings", "Predictions", "Train"
USERS, MOVIES, HELD, SOLVER, TASTES, MANIFEST = "Users", "Movies", "HeldBack", "Solver", "Tastes", "_sheetsgd"
HEADER = 3  # 0-based header row of every step sheet; rows start below it
LOSS_HEADER = 10
LR_COL = 4  # the Loss sheet's column of a scheduled lr
F6, F3, F0 = "0.000000", "0.000", "0"
ERR_FORMAT = "0.000;-0.000;;"  # an unrated cell's 0 shows empty


def L(col: int) -> str:
    return xl_col_to_name(col)


class Layout:
    """Positions of every sheet's rows and columns for one lesson (before training: the size guard)."""

    def __init__(self, lesson: CollabLesson):
        self.lesson = lesson
        self.k, self.U, self.M, self.S = lesson.factors, lesson.users, lesson.movies, lesson.steps
        data = lesson.ratings
        self.train_cells, self.held_cells = data.train_cells, data.held_cells
        self.N, self.H = len(self.train_cells), len(self.held_cells)
        self.yr = lesson.y_range is not None
        k = self.k
        # Users and Movies: step, id, f1..fk, bias, grad_f1..grad_fk, grad_bias, new_f1..new_fk, new_bias
        self.f = lambda j: 2 + j
        self.bias = 2 + k
        self.g = lambda j: 3 + k + j
        self.gbias = 3 + 2 * k
        self.new = lambda j: 4 + 2 * k + j
        self.newbias = 4 + 3 * k
        # Ratings: the training matrix (header row 3), the held-back matrix below it
        self.ratings_first = HEADER + 1  # 0-based
        self.held_header = self.ratings_first + self.U + 1
        self.held_first = self.held_header + 1
        # Predictions: step, user | observed m1..M | predictions | errors
        self.obs = lambda j: 3 + j
        self.pred = lambda j: 4 + self.M + j
        self.err = lambda j: 5 + 2 * self.M + j
        # Train: step, user, movie, rating, pred, err, [dz], u1..uk, v1..vk
        self.t = {"rating": 3, "pred": 4, "err": 5}
        if self.yr:
            self.t["dz"] = 6
        base = 3 + len(self.t)
        self.tu = lambda j: base + j  # the user's factor j (version 2: times ∂loss/∂z)
        self.tv = lambda j: base + k + j  # the movie's factor j (version 2: times ∂loss/∂z)
        self.v2 = lesson.layout_version >= 2
        self.first_movie = 2  # Predictions (version 2): the Movies row of the step's first movie
        # Solver: label, id, f1..fk, bias | predictions | errors (rows: users then movies)
        self.solver_header, self.solver_first = 6, 7
        self.spred = lambda j: 1 + j
        self.serr = lambda j: 2 + self.M + j

    # 1-based sheet rows
    def users_row(self, s, u):  # s = 0: the start rows
        return HEADER + 2 + s * self.U + u

    def movies_row(self, s, m):
        return HEADER + 2 + s * self.M + m

    def pred_row(self, s, u):
        return HEADER + 2 + (s - 1) * self.U + u

    @property
    def train_last(self) -> int:
        return self.train_row(self.S, self.N - 1)

    def train_all(self, col: int) -> str:
        """A Train column's every row (all steps): what a per-step SUMIFS picks from by step number."""
        return f"{TRAIN}!${L(col)}${self.train_row(1, 0)}:${L(col)}${self.train_last}"

    def train_row(self, s, i):
        return HEADER + 2 + (s - 1) * self.N + i

    def held_row(self, s, j):
        return HEADER + 2 + (s - 1) * self.H + j

    def ratings_row(self, u):
        return self.ratings_first + 1 + u

    def held_ratings_row(self, u):
        return self.held_first + 1 + u

    def loss_row(self, s):
        return LOSS_HEADER + 1 + s

    @property
    def ratings_range(self) -> str:
        return f"{RATINGS}!$B${self.ratings_row(0)}:${L(self.M)}${self.ratings_row(self.U - 1)}"

    @property
    def solver_params_range(self) -> str:
        return f"$C${self.solver_first + 1}:${L(self.bias)}${self.solver_first + self.U + self.M}"


def _steps(n_per_step: int, steps: int) -> np.ndarray:
    return np.repeat(np.arange(1, steps + 1), n_per_step)


def factor_blocks(lay: Layout, trace: CollabTrace | None, side: str) -> list[Block]:
    """The start rows (yellow inputs) and the step rows of the Users or Movies sheet."""
    k, S = lay.k, lay.S
    users = side == "users"
    sheet, count = (USERS, lay.U) if users else (MOVIES, lay.M)
    who, other, bias_key = ("user", "movie", "user_bias") if users else ("movie", "user", "movie_bias")
    id_col = 1 if users else 2  # the Train column of this side's id
    copy = lay.tv if users else lay.tu  # the other side's factors, copied into Train rows
    row = lay.users_row if users else lay.movies_row
    start_cols = [BlockColumn("id", who, 1, None, F0)]
    start_cols += [BlockColumn(f"new_f{j + 1}", f"new f{j + 1}", lay.new(j), None, F6, role="input") for j in range(k)]
    start_cols.append(BlockColumn("new_bias", "new bias", lay.newbias, None, F6, role="input"))
    init = trace.params[0] if trace else None
    start_values = {"id": list(range(1, count + 1))}
    for j in range(k):
        start_values[f"new_f{j + 1}"] = init[side][:, j].tolist() if trace else [0.0] * count
    start_values["new_bias"] = init[bias_key].tolist() if trace else [0.0] * count
    start = Block(sheet, f"{sheet}Start", HEADER, HEADER + 1, start_cols, count, values=start_values,
                  step=np.zeros(count, dtype=np.int64))
    T = lambda c: f"{TRAIN}!${L(c)}${{lo}}:${L(c)}${{hi}}"  # noqa: E731 - the step's Train rows of a column
    dz_col = lay.t["dz"] if lay.yr else lay.t["err"]
    dz = T(dz_col)
    count_n = f"COUNT({T(lay.t['rating'])})"
    mask = f"({T(id_col)}=$B{{r}})"
    if lay.v2:  # the Train rows of this step and this user (movie), found by number: one fill-down
        count_n = f"COUNT({TRAIN}!${L(lay.t['rating'])}${lay.train_row(1, 0)}:${L(lay.t['rating'])}${lay.train_row(1, lay.N - 1)})"  # n (COUNTIFS by step: IronCalc 3× slower)
        mine = f"{lay.train_all(0)},$A{{r}},{lay.train_all(id_col)},$B{{r}}"
        grad_sum = lambda j: f"SUMIFS({lay.train_all(dz_col if j is None else copy(j))},{mine})"  # noqa: E731
    else:
        grad_sum = lambda j: f"SUMPRODUCT({mask}*{dz}{'' if j is None else '*' + T(copy(j))})"  # noqa: E731
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("id", who, 1, None, F0)]
    for j in range(k):
        cols.append(BlockColumn(f"f{j + 1}", f"f{j + 1}", lay.f(j), f"{L(lay.new(j))}{{p}}", F6,
                                note=f"factor {j + 1} of this {who} (the previous step's new value)"))
    cols.append(BlockColumn("bias", "bias", lay.bias, f"{L(lay.newbias)}{{p}}", F6, note=f"this {who}'s bias"))
    for j in range(k):
        cols.append(BlockColumn(
            f"grad_f{j + 1}", f"∂/∂f{j + 1}", lay.g(j),
            f"2*{grad_sum(j)}/{count_n}+wd*{L(lay.f(j))}{{r}}", F6,
            note=f"2·Σ ∂loss/∂z · {other}'s factor {j + 1} over this {who}'s ratings / n + wd·f{j + 1}"
                 + (f" (Train's ∂·{other} f{j + 1} of this step's rows of this {who}; n: one step's Train rows)"
                    if lay.v2 else "")))
    cols.append(BlockColumn("grad_bias", "∂/∂bias", lay.gbias,
                            f"2*{grad_sum(None)}/{count_n}+wd*{L(lay.bias)}{{r}}", F6,
                            note=f"2·Σ ∂loss/∂z over this {who}'s ratings / n + wd·bias"))
    lr = f"{LOSS}!${L(LR_COL)}${{ls}}" if lay.lesson.schedule else "lr"  # a schedule: the step's lr on Loss
    for j in range(k):
        cols.append(BlockColumn(f"new_f{j + 1}", f"new f{j + 1}", lay.new(j),
                                f"{L(lay.f(j))}{{r}}-{lr}*{L(lay.g(j))}{{r}}", F6, note="f − lr·∂/∂f"))
    cols.append(BlockColumn("new_bias", "new bias", lay.newbias, f"{L(lay.bias)}{{r}}-{lr}*{L(lay.gbias)}{{r}}", F6,
                            note="bias − lr·∂/∂bias"))
    steps = _steps(count, S)
    ids = np.tile(np.arange(count), S)
    first = row(1, 0)
    r = first + np.arange(count * S)
    lo = np.array([lay.train_row(s, 0) for s in steps])
    fields = {"p": r - count, "lo": lo, "hi": lo + lay.N - 1, "ls": np.array([lay.loss_row(s) for s in steps])}
    values = {"step": steps.tolist(), "id": (ids + 1).tolist()}
    if trace:
        for key, src in (("f", trace.params), ("grad_f", trace.grads), ("new_f", trace.new)):
            for j in range(k):
                values[f"{key}{j + 1}"] = [float(src[s - 1][side][i, j]) for s, i in zip(steps, ids)]
        for key, src in (("bias", trace.params), ("grad_bias", trace.grads), ("new_bias", trace.new)):
            values[key] = [float(src[s - 1][bias_key][i]) for s, i in zip(steps, ids)]
    else:
        values.update({c.key: [0.0] * len(steps) for c in cols if c.key not in values})
    steps_block = Block(sheet, sheet, HEADER, first - 1, cols, count * S, fields=fields, values=values, step=steps)
    return [start, steps_block]


def dot(lay: Layout, user_row: str, movie_row: str, users=USERS, movies=MOVIES, sheet_prefix=True) -> str:
    """U·V + b_u + b_m of one user row and one movie row (squashed into y_range when the lesson has one)."""
    k = lay.k
    us, ms = (f"{users}!", f"{movies}!") if sheet_prefix else ("", "")
    z = (f"SUMPRODUCT({us}$C{user_row}:${L(lay.f(k - 1))}{user_row},{ms}$C{movie_row}:${L(lay.f(k - 1))}{movie_row})"
         f"+{us}${L(lay.bias)}{user_row}+{ms}${L(lay.bias)}{movie_row}")
    return f"y_low+(y_high-y_low)/(1+EXP(-({z})))" if lay.yr else z


def _row_local_dot(lay: Layout, j: int) -> str:
    """Version 2's ŷ of movie j: the user's factors on the Users row U rows below (the same user, this step)
    and movie j's of this step, found by the given first-movie row (one fill-down)."""
    k, last = lay.k, lay.movies_row(lay.S, lay.M - 1)
    movie = f"$C{{r}}+{j}" if j else "$C{r}"
    z = (f"SUMPRODUCT({USERS}!$C{{ur}}:${L(lay.f(k - 1))}{{ur}},INDEX({MOVIES}!$C$1:${L(lay.f(k - 1))}${last},{movie},0))"
         f"+{USERS}!${L(lay.bias)}{{ur}}+INDEX({MOVIES}!${L(lay.bias)}$1:${L(lay.bias)}${last},{movie},1)")
    return f"y_low+(y_high-y_low)/(1+EXP(-({z})))" if lay.yr else z


def prediction_block(lay: Layout, trace: CollabTrace | None) -> Block:
    M, S = lay.M, lay.S
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("id", "user", 1, None, F0)]
    if lay.v2:
        cols.append(BlockColumn("first_movie", "movies from", lay.first_movie, None, F0))
    for j in range(M):
        cell = f"{RATINGS}!{L(1 + j)}{{du}}"
        cols.append(BlockColumn(f"obs_m{j + 1}", f"r m{j + 1}", lay.obs(j), f'IF({cell}="","",{cell})', F0,
                                note="the observed rating (Ratings sheet)"))
    for j in range(M):
        cols.append(BlockColumn(f"pred_m{j + 1}", f"ŷ m{j + 1}", lay.pred(j),
                                _row_local_dot(lay, j) if lay.v2 else dot(lay, "{ur}", f"{{mv{j + 1}}}"), "0.00",
                                note="prediction: user factors · movie factors + user bias + movie bias"
                                     + (", squashed into y_range" if lay.yr else "")
                                     + ("; the user's Users row is this step's, movie m's is on Movies row "
                                        "“movies from” + m − 1" if lay.v2 else "")))
    for j in range(M):  # version 2 reads the observed rating on its own row: one fill-down
        cell = f"{L(lay.obs(j))}{{r}}" if lay.lesson.layout_version >= 2 else f"{RATINGS}!{L(1 + j)}{{du}}"
        cols.append(BlockColumn(f"err_m{j + 1}", f"err m{j + 1}", lay.err(j),
                                f'IF({cell}="",0,{L(lay.pred(j))}{{r}}-{cell})', ERR_FORMAT,
                                note="error ŷ − r where rated; 0 where not (unrated cells are not in the loss)"))
    steps = _steps(lay.U, S)
    users = np.tile(np.arange(lay.U), S)
    first = lay.pred_row(1, 0)
    fields = {"du": np.array([lay.ratings_row(u) for u in users]),
              "ur": np.array([lay.users_row(s, u) for s, u in zip(steps, users)])}
    for j in range(M):
        fields[f"mv{j + 1}"] = np.array([lay.movies_row(s, j) for s in steps])
    values = {"step": steps.tolist(), "id": (users + 1).tolist()}
    if lay.v2:
        values["first_movie"] = [lay.movies_row(s, 0) for s in steps]
    train = lay.lesson.ratings.train
    for j in range(M):
        values[f"obs_m{j + 1}"] = ["" if not np.isfinite(train[u, j]) else float(train[u, j]) for u in users]
        values[f"pred_m{j + 1}"] = [float(trace.pred[s - 1, u, j]) if trace else 0.0 for s, u in zip(steps, users)]
        values[f"err_m{j + 1}"] = [float(trace.err[s - 1, u, j]) if trace else 0.0 for s, u in zip(steps, users)]
    return Block(PRED, PRED, HEADER, first - 1, cols, lay.U * S, fields=fields, values=values, step=steps)
