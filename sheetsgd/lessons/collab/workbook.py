"""Writes a collab-filter workbook: every full-batch step as formula rows, Solver beside SGD, the true tastes.

Sheets (tab order): Introduction, Loss (inputs lr, wd, y_low, y_high; one row per step; chart), Ratings
(the training matrix and the held-back one), Predictions, Train, Users, Movies, HeldBack (see
:mod:`.layout`), Solver (one parameter block, Excel Solver pre-configured on its objective), Tastes (the
factors that made the data: look last), and the hidden manifest.
"""
from __future__ import annotations

import textwrap

import numpy as np

from sheetsgd.sheet import presentation
from sheetsgd.sheet.blocks import write_block
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.sheet.book import Book, finish_workbook, lesson_entries, write_headers, write_title
from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
from sheetsgd.sheet.hidden_names import hide_defined_names
from sheetsgd.lessons.schedules import NOTES as SCHEDULE_NOTES
from .engine import CollabTrace, objective, train_collab
from .layout import (F0, F6, HEADER, HELD, INTRO, LOSS, LOSS_HEADER, MANIFEST, MOVIES, PRED, RATINGS, SOLVER, TASTES, TRAIN, USERS, L,
    Layout, factor_blocks, prediction_block)
from .rows import held_block, loss_block, ratings_blocks, solver_blocks, train_block

SHEETS = [INTRO, LOSS, RATINGS, PRED, TRAIN, USERS, MOVIES, HELD, SOLVER, TASTES, MANIFEST]
NOTES = {
    LOSS: "One row per full-batch step (each step sees every training rating once: a step is an epoch).",
    RATINGS: "Training ratings (blank: not rated). Below: the held-back ratings, never trained on.",
    PRED: "Per step and user: the observed ratings, the predictions ŷ and the errors ŷ − r (0 where unrated).",
    TRAIN: "Per step and training rating: its ŷ and error from Predictions, and the factors the gradients multiply.",
    USERS: "Yellow: the start factors (step 0). Per step and user: factors, gradients, new factors.",
    MOVIES: "Yellow: the start factors (step 0). Per step and movie: factors, gradients, new factors.",
    HELD: "Per step and held-back rating: the prediction with that step's factors, and its error.",
}


def all_blocks(lay: Layout, trace: CollabTrace | None):
    blocks = {"ratings": ratings_blocks(lay), "users": factor_blocks(lay, trace, "users"),
              "movies": factor_blocks(lay, trace, "movies"), "pred": prediction_block(lay, trace),
              "train": train_block(lay, trace), "held": held_block(lay, trace), "loss": loss_block(lay, trace),
              "solver": solver_blocks(lay)}
    flat = [b for v in blocks.values() for b in (v if isinstance(v, list) else [v])]
    return blocks, flat




def _value_block(book, ws, block, label=None):
    """A block of values written cell by cell (blanks where a value is None); inputs yellow."""
    book.blocks.append(block)
    if book.null:
        return
    fmt = book.fmt
    for i in range(block.n):
        row = block.first_row + i
        if label:
            ws.write_string(row, 0, label(i), fmt.bold)
        for c in block.columns:
            v = block.values[c.key][i]
            style = _input(book, c.number_format) if c.role == "input" else fmt.number(c.number_format)
            if v is None:
                ws.write_blank(row, c.col, None, style)
            else:
                ws.write_number(row, c.col, v, style)
                book.counts["value"] += 1


def build_collab_workbook(lesson, path, trace: CollabTrace | None = None, exercise=None):
    from sheetsgd.lessons.runbounds import guard

    guard(lesson)
    lay = Layout(lesson)
    trace = trace or train_collab(lesson)
    book = Book(path, exercise)
    blocks, flat = all_blocks(lay, trace)
    book.plan_student(flat)
    student = book.student
    wb, fmt = book.wb, book.fmt
    ws = {name: book.sheet(name) for name in SHEETS}
    names = {"lr": (lesson.lr, "learning rate"), "wd": (lesson.wd, "weight decay (added to every gradient: wd·p)")}
    if lay.yr:
        names["y_low"] = (lesson.y_range[0], "y_range low: ŷ = low + (high − low)·σ(z)")
        names["y_high"] = (lesson.y_range[1], "y_range high")
    # Loss: inputs, baseline, one row per step, chart
    w = ws[LOSS]
    write_title(w, fmt, lesson.title, NOTES[LOSS])
    schedule_cells = lesson.schedule.cells("sgd", lesson.steps) if lesson.schedule else []
    inputs = list(names.items())
    for i in range(max(len(inputs), len(schedule_cells))):  # row by row (constant memory): a schedule's beside
        if i < len(inputs):
            name, (value, note) = inputs[i]
            w.write_string(3 + i, 0, name, fmt.bold)
            w.write_number(3 + i, 1, value, _input(book, "General"))
            w.write_string(3 + i, 2, note, fmt.note)
            wb.define_name(name, f"={LOSS}!$B${4 + i}")
        if i < len(schedule_cells):  # columns J–L: clear of the notes in C, which run on over D–I
            name, value = schedule_cells[i]
            w.write_string(3 + i, 9, name, fmt.bold)
            w.write_number(3 + i, 10, value, _input(book, "General"))
            w.write_string(3 + i, 11, SCHEDULE_NOTES.get(name, ""), fmt.note)
            wb.define_name(name, f"={LOSS}!$K${4 + i}")
    held_rng = f"{HELD}!$D${lay.held_row(1, 0)}:$D${lay.held_row(1, lay.H - 1)}"
    mean = f"AVERAGE({lay.ratings_range})"
    w.write_string(8, 0, "all-means baseline", fmt.bold)
    w.write_formula(8, 1, f"=SUMSQ({held_rng})/COUNT({held_rng})-2*{mean}*AVERAGE({held_rng})+{mean}^2",
                    fmt.number(F6), trace.baseline)
    w.write_string(8, 2, "held-back MSE when every rating is predicted as the mean training rating", fmt.note)
    write_headers(w, fmt, blocks["loss"])
    write_block(w, fmt, book.counts, blocks["loss"], student)
    presentation.widths(w).fit_range(0, 0, 18)
    presentation.widths(w).fit_range(1, 3 + bool(schedule_cells), 13)
    if schedule_cells:  # the schedule's input names (total_steps the longest)
        presentation.widths(w).fit_range(9, 9, max(presentation.header_width(n) for n, _ in schedule_cells))
    chart = wb.add_chart({"type": "line"})
    first, last = LOSS_HEADER + 1, LOSS_HEADER + lay.S
    for col, name in ((1, "training MSE"), (2, "held-back MSE")):
        chart.add_series({"name": name, "categories": [LOSS, first, 0, last, 0],
                          "values": series_range(w, [LOSS, first, col, last, col])})
    chart.set_title({"name": "loss per step (= per epoch)"})
    chart.set_x_axis({"name": "step"})
    chart.set_y_axis({"name": "MSE", "min": 0})
    chart.set_size({"width": 640, "height": 360})
    w.insert_chart(LOSS_HEADER, 5, chart)
    w.freeze_panes(LOSS_HEADER + 1, 1)
    # Ratings
    w = ws[RATINGS]
    write_title(w, fmt, "Ratings: users × movies, generated from known tastes (see the Tastes sheet, last)", NOTES[RATINGS])
    train_b, held_b = blocks["ratings"]
    write_headers(w, fmt, train_b)
    _value_block(book, w, train_b)
    w.write_string(lay.held_header - 1, 0, "Held back (never trained on): the held-back MSE is measured on these",
                   fmt.bold)
    write_headers(w, fmt, held_b)
    _value_block(book, w, held_b)
    presentation.widths(w).fit_range(0, 0, 6)
    presentation.widths(w).fit_range(1, lay.M, 5)
    # the step sheets
    for name, key in ((PRED, "pred"), (TRAIN, "train"), (USERS, "users"), (MOVIES, "movies"), (HELD, "held")):
        w = ws[name]
        write_title(w, fmt, f"{name}: one block of rows per step", NOTES[name])
        b = blocks[key]
        if name == PRED:
            for col, label in ((lay.obs(0), "observed ratings"), (lay.pred(0), "predictions ŷ"),
                               (lay.err(0), "errors ŷ − r")):
                w.write_string(HEADER - 1, col, label, fmt.bold)
        if isinstance(b, list):  # Users / Movies: the start rows, then the steps
            start, b = b
            write_headers(w, fmt, b)
            _value_block(book, w, start)
        else:
            write_headers(w, fmt, b)
        write_block(w, fmt, book.counts, b, student)
        for c in b.columns:
            presentation.widths(w).fit_range(c.col, c.col, _width(c))
        w.freeze_panes(HEADER + 1, 2)
    _write_solver(book, ws[SOLVER], lay, blocks["solver"], trace, student)
    _write_tastes(book, ws[TASTES], lay)
    _write_intro(book, ws[INTRO], lesson, lay, trace)
    if exercise:
        protect_sheets(book)
    hidden = book.null or _hide_solver_names(wb)
    finish_workbook(wb, book.path, ws[INTRO], ws[MANIFEST], {"kind": "collab", "lesson": lesson.name,
                                                         **lesson_entries(book, lesson, book.exercise)})
    if not hidden:
        hide_defined_names(path, "solver_")
    return book.report(trace.n_steps)


def _input(book, num_format: str):
    """A yellow input cell (unlocked) showing the column's number format."""
    cache = book.__dict__.setdefault("_inputs", {})
    if num_format not in cache:
        cache[num_format] = book.wb.add_format({"bg_color": "#FFF2CC", "border": 1, "num_format": num_format,
                                                "locked": False})
    return cache[num_format]


def _width(c) -> float:
    """Wide enough for the header on one line and for the column's numbers (no ### and no clipped header)."""
    numbers = {F0: 4, "0.00": 6, F6: 10}.get(c.number_format, 7)
    return max(numbers, len(c.header) + 1.5)


def _hide_solver_names(wb) -> bool:
    from sheetsgd.lessons.tabular.workbook import _mark_names_hidden

    return _mark_names_hidden(wb, "solver_")


def _write_solver(book, w, lay: Layout, blocks, trace, student):
    fmt = book.fmt
    params, matrix = blocks
    U, M = lay.U, lay.M
    write_title(w, fmt, "Solver beside SGD: the same objective from one block of parameters",
           "Excel: Data ▸ Solver is set up to minimise the yellow objective by changing the yellow parameters "
           "(GRG Nonlinear). Google Sheets and LibreOffice have no Excel Solver: the step sheets are how they train.")
    err = f"${L(lay.serr(0))}${matrix.first_row + 1}:${L(lay.serr(M - 1))}${matrix.last_row + 1}"
    rng = lay.solver_params_range
    w.write_string(3, 0, "objective (minimise)", fmt.bold)
    w.write_formula(3, 1, f"=SUMSQ({err})/COUNT({lay.ratings_range})+wd/2*SUMSQ({rng})", _input(book, F6),
                    objective(lay.lesson, lay.lesson.init()))
    w.write_string(4, 0, f"SGD, step {lay.S}", fmt.bold)
    w.write_formula(4, 1, f"={LOSS}!$D${lay.loss_row(lay.S - 1) + 1}", fmt.number(F6),
                    "" if student is not None else float(trace.objective[-1]))
    w.write_string(4, 2, "the objective on the Loss sheet at SGD's last step", fmt.note)
    write_headers(w, fmt, params)
    w.write_string(params.header_row, 0, "parameters", fmt.header)
    _value_block(book, w, params, label=lambda i: f"user {i + 1}" if i < U else f"movie {i - U + 1}")
    w.write_string(matrix.header_row - 1, 0, "the predictions and errors these parameters give", fmt.bold)
    write_headers(w, fmt, matrix)
    write_block(w, fmt, book.counts, matrix, student)
    widths = {0: 20, 1: 11, **{col: 10 for col in range(2, lay.bias + 1)}}
    for c in matrix.columns:  # the matrices sit below the parameters, in the same columns
        widths[c.col] = max(widths.get(c.col, 0), _width(c))
    for col, width in widths.items():
        presentation.widths(w).fit_range(col, col, width)
    solver = {"solver_opt": f"{SOLVER}!$B$4", "solver_adj": f"{SOLVER}!{rng}", "solver_typ": "2",
              "solver_eng": "1", "solver_neg": "2", "solver_num": "0", "solver_ver": "3"}
    for name, ref in solver.items():
        book.wb.define_name(f"{SOLVER}!{name}", f"={ref}")


def _write_tastes(book, w, lay: Layout):
    if book.null:
        return
    fmt, data = book.fmt, lay.lesson.ratings
    kt = data.true_users.shape[1]
    w.write_string(0, 0, "The tastes that made the data (look at this sheet last)", fmt.title)
    w.write_string(1, 0, "Each rating = round(3 + user tastes · movie features / √k + user bias + movie bias + noise), "
                         "clipped to 1–5. Learned factors match these only up to a rotation; compare the predictions "
                         "with the noise-free ratings below.", fmt.note)
    row = 3
    for label, factors, bias in (("user", data.true_users, data.true_user_bias),
                                 ("movie", data.true_movies, data.true_movie_bias)):
        w.write_row(row, 0, [label] + [f"taste {j + 1}" for j in range(kt)] + ["bias"], fmt.header)
        for i in range(len(bias)):
            w.write_number(row + 1 + i, 0, i + 1)
            for j in range(kt):
                w.write_number(row + 1 + i, 1 + j, float(factors[i, j]), fmt.number("0.000"))
            w.write_number(row + 1 + i, 1 + kt, float(bias[i]), fmt.number("0.000"))
        row += len(bias) + 2
    w.write_row(row, 0, ["noise-free"] + [f"m{j + 1}" for j in range(lay.M)], fmt.header)
    for u in range(lay.U):
        w.write_number(row + 1 + u, 0, u + 1)
        for j in range(lay.M):
            w.write_number(row + 1 + u, 1 + j, float(data.clean[u, j]), fmt.number("0.00"))
    book.counts["value"] += (lay.U + lay.M) * (kt + 2) + lay.U * (lay.M + 1)
    presentation.widths(w).fit_range(0, 0, 11)
    presentation.widths(w).fit_range(1, lay.M, 7)


def _write_intro(book, w, lesson, lay: Layout, trace):
    fmt = book.fmt
    w.write_string(0, 0, lesson.title, fmt.title)
    lines = [" ".join(p.split()) for p in lesson.description.strip().split("\n\n") if p.strip()]
    lines += ["", "How to read it",
              f"{lay.U} users × {lay.M} movies, {lay.N} training ratings, {lay.H} held back; {lay.k} factors per "
              f"user and per movie plus a bias each; {lay.S} full-batch gradient steps (lr and wd on the Loss sheet).",
              "ŷ = user factors · movie factors + user bias + movie bias" +
              (f", squashed into ({lesson.y_range[0]:g}, {lesson.y_range[1]:g}) by y_low + (y_high − y_low)·σ(z)"
               if lay.yr else "") + "; loss = mean of (ŷ − r)² over the training ratings.",
              "Each step is a band of rows on Predictions, Train, Users, Movies and HeldBack; the next step's "
              "factors are this step's new ones. Loss has one row per step and the chart.",
              f"After step {lay.S}: held-back MSE {trace.held_loss[-1]:.4f} against {trace.baseline:.4f} for the "
              "all-means baseline (every rating predicted as the mean training rating)."]
    if lesson.tips:
        lines += ["", "Try"] + [f"• {t}" for t in lesson.tips]
    if book.exercise:
        lines += ["", "Your task"] + block_task_lines(book.blocks, book.exercise)
    rows = [part for line in lines for part in (textwrap.wrap(line, 125, subsequent_indent="  ") or [""])]
    for i, line in enumerate(rows):  # one line per row: rows keep their height (constant_memory sets none)
        w.write_string(2 + i, 0, line, fmt.bold if line in ("How to read it", "Try", "Your task") else None)
    presentation.widths(w).fit_range(0, 0, 130)


__all__ = ["build_collab_workbook", "all_blocks", "F0", "np", "RATINGS"]
