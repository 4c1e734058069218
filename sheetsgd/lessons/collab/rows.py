"""The collab-filter blocks besides the factor tables and the prediction matrix (:mod:`.layout`):
Ratings (the data), Train and HeldBack (one row per rating per step), Loss (one row per step), Solver."""
from __future__ import annotations

import numpy as np

from sheetsgd.sheet.blocks import Block, BlockColumn
from sheetsgd.sheet.formula import Resolver, compile_template
from .engine import CollabTrace, forward
from .layout import (ERR_FORMAT, F0, F3, F6, HELD, HEADER, LOSS, LOSS_HEADER, LR_COL, MOVIES, PRED, RATINGS, SOLVER, TRAIN, USERS, L,
    Layout, _steps, dot)


def ratings_blocks(lay: Layout) -> list[Block]:
    """The training matrix and the held-back matrix: inputs (written by the workbook, blanks where unrated)."""
    data = lay.lesson.ratings
    out = []
    for name, header, first, matrix in ((RATINGS, HEADER, lay.ratings_first, data.train),
                                        ("HeldBackRatings", lay.held_header, lay.held_first, data.held)):
        cols = [BlockColumn("id", "user", 0, None, F0)]
        cols += [BlockColumn(f"m{j + 1}", f"m{j + 1}", 1 + j, None, F0, role="input") for j in range(lay.M)]
        values = {"id": list(range(1, lay.U + 1))}
        values.update({f"m{j + 1}": [float(x) if np.isfinite(x) else None for x in matrix[:, j]] for j in range(lay.M)})
        out.append(Block(RATINGS, name, header, first, cols, lay.U, values=values, step=np.zeros(lay.U, np.int64)))
    return out


def _lookup(lay: Layout, sheet_row: str, first_col: int, last_col: int, sheet: str) -> str:
    """INDEX of this row's movie in one row of a matrix (a user's row): row 1, column n, explicitly (the
    one-argument form on a one-row range is not computed alike everywhere; layout version 1 wrote it)."""
    position = "1,$C{r}" if lay.lesson.layout_version >= 2 else "$C{r}"
    return f"INDEX({sheet}!${L(first_col)}{sheet_row}:${L(last_col)}{sheet_row},{position})"


def train_block(lay: Layout, trace: CollabTrace | None) -> Block:
    k, M, S, N = lay.k, lay.M, lay.S, lay.N
    t = lay.t
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("user", "user", 1, None, F0),
            BlockColumn("movie", "movie", 2, None, F0),
            BlockColumn("rating", "rating", t["rating"], _lookup(lay, "{du}", 1, M, RATINGS), F0,
                        note="the rating (Ratings sheet)"),
            BlockColumn("pred", "ŷ", t["pred"], _lookup(lay, "{pr}", lay.pred(0), lay.pred(M - 1), PRED), F6,
                        note="its prediction (Predictions sheet)"),
            BlockColumn("err", "err", t["err"], _lookup(lay, "{pr}", lay.err(0), lay.err(M - 1), PRED), F6,
                        note="its error ŷ − r (Predictions sheet)")]
    if lay.yr:
        e, p = L(t["err"]), L(t["pred"])
        cols.append(BlockColumn("dz", "∂/∂z", t["dz"], f"{e}{{r}}*({p}{{r}}-y_low)*(y_high-{p}{{r}})/(y_high-y_low)", F6,
                                note="err · dŷ/dz, with dŷ/dz = (ŷ − low)(high − ŷ)/(high − low): the y_range's derivative"))
    dz = L(t["dz"] if lay.yr else t["err"])
    for j in range(k):  # version 2: ∂loss/∂z times a factor, what the other side's SUMIFS adds up
        if lay.v2:
            cols.append(BlockColumn(f"gv{j + 1}", f"∂·user f{j + 1}", lay.tu(j), f"{dz}{{r}}*{USERS}!{L(lay.f(j))}{{ur}}",
                                    F6, note=f"∂loss/∂z · the user's factor {j + 1}: this rating's part of the movie's gradient"))
        else:
            cols.append(BlockColumn(f"u{j + 1}", f"user f{j + 1}", lay.tu(j), f"{USERS}!{L(lay.f(j))}{{ur}}", F6,
                                    note=f"the user's factor {j + 1} this step"))
    for j in range(k):
        if lay.v2:
            cols.append(BlockColumn(f"gu{j + 1}", f"∂·movie f{j + 1}", lay.tv(j), f"{dz}{{r}}*{MOVIES}!{L(lay.f(j))}{{mr}}",
                                    F6, note=f"∂loss/∂z · the movie's factor {j + 1}: this rating's part of the user's gradient"))
        else:
            cols.append(BlockColumn(f"v{j + 1}", f"movie f{j + 1}", lay.tv(j), f"{MOVIES}!{L(lay.f(j))}{{mr}}", F6,
                                    note=f"the movie's factor {j + 1} this step"))
    steps = _steps(N, S)
    cells = lay.train_cells * S
    us = np.array([c[0] for c in cells])
    ms = np.array([c[1] for c in cells])
    fields = {"du": np.array([lay.ratings_row(u) for u in us]),
              "pr": np.array([lay.pred_row(s, u) for s, u in zip(steps, us)]),
              "ur": np.array([lay.users_row(s, u) for s, u in zip(steps, us)]),
              "mr": np.array([lay.movies_row(s, m) for s, m in zip(steps, ms)])}
    values = {"step": steps.tolist(), "user": (us + 1).tolist(), "movie": (ms + 1).tolist(),
              "rating": [float(lay.lesson.ratings.train[u, m]) for u, m in zip(us, ms)]}
    for key, src in (("pred", "pred"), ("err", "err"), ("dz", "dz")):
        arr = getattr(trace, src) if trace else None
        values[key] = [float(arr[s - 1, u, m]) if trace else 0.0 for s, u, m in zip(steps, us, ms)]
    dzs = values["dz" if lay.yr else "err"]
    for j in range(k):
        uf = [float(trace.params[s - 1]["users"][u, j]) if trace else 0.0 for s, u in zip(steps, us)]
        mf = [float(trace.params[s - 1]["movies"][m, j]) if trace else 0.0 for s, m in zip(steps, ms)]
        if lay.v2:
            values[f"gu{j + 1}"] = [d * f for d, f in zip(dzs, mf)]
            values[f"gv{j + 1}"] = [d * f for d, f in zip(dzs, uf)]
        else:
            values[f"u{j + 1}"], values[f"v{j + 1}"] = uf, mf
    return Block(TRAIN, TRAIN, HEADER, lay.train_row(1, 0) - 1, cols, N * S, fields=fields, values=values, step=steps)


def held_block(lay: Layout, trace: CollabTrace | None) -> Block:
    M, S, H = lay.M, lay.S, lay.H
    cols = [BlockColumn("step", "step", 0, None, F0), BlockColumn("user", "user", 1, None, F0),
            BlockColumn("movie", "movie", 2, None, F0),
            BlockColumn("rating", "rating", 3, _lookup(lay, "{hr}", 1, M, RATINGS), F0,
                        note="the held-back rating (Ratings sheet)"),
            BlockColumn("pred", "ŷ", 4, _lookup(lay, "{pr}", lay.pred(0), lay.pred(M - 1), PRED), F6,
                        note="its prediction with this step's factors"),
            BlockColumn("err", "err", 5, "E{r}-D{r}", F6, note="ŷ − r")]
    steps = _steps(H, S)
    cells = lay.held_cells * S
    us = np.array([c[0] for c in cells])
    ms = np.array([c[1] for c in cells])
    held = lay.lesson.ratings.held
    fields = {"hr": np.array([lay.held_ratings_row(u) for u in us]),
              "pr": np.array([lay.pred_row(s, u) for s, u in zip(steps, us)])}
    pred = [float(trace.pred[s - 1, u, m]) if trace else 0.0 for s, u, m in zip(steps, us, ms)]
    values = {"step": steps.tolist(), "user": (us + 1).tolist(), "movie": (ms + 1).tolist(),
              "rating": [float(held[u, m]) for u, m in zip(us, ms)], "pred": pred,
              "err": [p - float(held[u, m]) for p, u, m in zip(pred, us, ms)]}
    return Block(HELD, HELD, HEADER, lay.held_row(1, 0) - 1, cols, H * S, fields=fields, values=values, step=steps)


def loss_block(lay: Layout, trace: CollabTrace | None) -> Block:
    S = lay.S
    err = f"{PRED}!${L(lay.err(0))}${{lo}}:${L(lay.err(lay.M - 1))}${{hi}}"
    params = lambda sheet: f"SUMSQ({sheet}!$C${{{sheet[0].lower()}lo}}:${L(lay.bias)}${{{sheet[0].lower()}hi}})"  # noqa: E731
    cols = [BlockColumn("step", "step", 0, None, F0),
            BlockColumn("loss", "training MSE", 1, f"SUMSQ({err})/COUNT({lay.ratings_range})", F6,
                        note="mean of the squared errors over the training ratings"),
            BlockColumn("held_loss", "held-back MSE", 2,
                        f"SUMSQ({HELD}!$F${{hlo}}:$F${{hhi}})/COUNT({HELD}!$D${{hlo}}:$D${{hhi}})", F6,
                        note="mean squared error on the held-back ratings"),
            BlockColumn("objective", "objective", 3, f"B{{r}}+wd/2*({params(USERS)}+{params(MOVIES)})", F6,
                        note="training MSE + wd/2 · Σ p² (what the gradients descend)")]
    schedule = lay.lesson.schedule
    if schedule:  # the lr of each step, which the Users and Movies updates read (column E: LR_COL)
        _, header, template, note = schedule.formulas("sgd")[0]
        formula = compile_template(template, Resolver(lambda key, which: "A{r}", hp=str, data=str))
        cols.append(BlockColumn("lr", header, LR_COL, formula, "0.000E+00", note=note))
    steps = np.arange(1, S + 1)
    fields = {"lo": np.array([lay.pred_row(s, 0) for s in steps]),
              "hi": np.array([lay.pred_row(s, lay.U - 1) for s in steps]),
              "hlo": np.array([lay.held_row(s, 0) for s in steps]),
              "hhi": np.array([lay.held_row(s, lay.H - 1) for s in steps]),
              "ulo": np.array([lay.users_row(s, 0) for s in steps]),
              "uhi": np.array([lay.users_row(s, lay.U - 1) for s in steps]),
              "mlo": np.array([lay.movies_row(s, 0) for s in steps]),
              "mhi": np.array([lay.movies_row(s, lay.M - 1) for s in steps])}
    values = {"step": steps.tolist()}
    for key, src in (("loss", "loss"), ("held_loss", "held_loss"), ("objective", "objective")):
        values[key] = getattr(trace, src).tolist() if trace else [0.0] * S
    if schedule:
        values["lr"] = trace.lr.tolist() if trace else [0.0] * S
    return Block(LOSS, LOSS, LOSS_HEADER, LOSS_HEADER + 1, cols, S, fields=fields, values=values, step=steps)


def solver_blocks(lay: Layout) -> list[Block]:
    """One parameter block (users, then movies; yellow inputs at the initial values) and, beside its user
    rows, the prediction and error matrices it gives. The Solver objective cell sums them up."""
    k, U, M = lay.k, lay.U, lay.M
    init = lay.lesson.init()
    cols = [BlockColumn("id", "id", 1, None, F0)]
    cols += [BlockColumn(f"f{j + 1}", f"f{j + 1}", lay.f(j), None, F6, role="input") for j in range(k)]
    cols.append(BlockColumn("bias", "bias", lay.bias, None, F6, role="input"))
    values = {"id": list(range(1, U + 1)) + list(range(1, M + 1))}
    for j in range(k):
        values[f"f{j + 1}"] = init["users"][:, j].tolist() + init["movies"][:, j].tolist()
    values["bias"] = init["user_bias"].tolist() + init["movie_bias"].tolist()
    n = U + M
    params = Block(SOLVER, "SolverParams", lay.solver_header, lay.solver_first, cols, n, values=values,
                   step=np.full(n, lay.S, np.int64))
    pred, _ = forward(lay.lesson, init)
    train = lay.lesson.ratings.train
    cols = []
    for j in range(M):
        movie_row = f"${lay.solver_first + 1 + U + j}"
        cols.append(BlockColumn(f"pred_m{j + 1}", f"ŷ m{j + 1}", lay.spred(j),
                                dot(lay, "{ur}", movie_row, sheet_prefix=False), "0.00",
                                note="prediction from the Solver's parameters"))
    for j in range(M):
        cell = f"{RATINGS}!{L(1 + j)}{{du}}"
        cols.append(BlockColumn(f"err_m{j + 1}", f"err m{j + 1}", lay.serr(j),
                                f'IF({cell}="",0,{L(lay.spred(j))}{{r}}-{cell})', ERR_FORMAT, note="ŷ − r where rated"))
    values = {}
    for j in range(M):
        values[f"pred_m{j + 1}"] = pred[:, j].tolist()
        values[f"err_m{j + 1}"] = [float(pred[u, j] - train[u, j]) if np.isfinite(train[u, j]) else 0.0
                                   for u in range(U)]
    fields = {"du": np.array([lay.ratings_row(u) for u in range(U)]),
              "ur": lay.solver_first + 1 + np.arange(U)}
    header = lay.solver_first + n + 2  # below the parameters (rows go out in order)
    matrix = Block(SOLVER, "Solver", header, header + 1, cols, U, fields=fields, values=values,
                   step=np.full(U, lay.S, np.int64))
    return [params, matrix]


__all__ = ["ratings_blocks", "train_block", "held_block", "loss_block", "solver_blocks", "F3", "PRED"]
