"""Writes an attention workbook: every SGD step of one self-attention head as formula rows.

Sheets (tab order): Introduction, Steps (input lr; the start weights; one row per step: weights, batch-mean
gradients, new weights, loss, attention on the key token), Examples (one row per sequence per step: the whole
forward and backward pass, see :mod:`.layout`), Attention (each step's attention matrix as a grid with a
colour scale, and the loss chart), and the hidden manifest.
"""
from __future__ import annotations

import re
import textwrap

from sheetsgd.sheet import presentation
from sheetsgd.sheet.blocks import write_block
from sheetsgd.sheet.book import Book, finish_workbook, lesson_entries, write_headers, write_title
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
from .engine import train_attention
from .layout import ATTENTION, EX_HEADER, EXAMPLES, INTRO, MANIFEST, STEPS, STEPS_HEADER, Layout, examples_block
from .rows import grid_block, steps_blocks

SHEETS = [INTRO, STEPS, EXAMPLES, ATTENTION, MANIFEST]
NOTES = {
    STEPS: "Yellow: lr and the start weights (step 0). Per step: the weights, ∂L/∂w (the mean over the step's "
           "batch on Examples), the new weights w − lr·∂L/∂w.",
    EXAMPLES: "One row per sequence per step: tokens x, the step's weights, Q K V, scores/√d, row max, exp, "
              "attention A, A·V, h, ŷ, loss; then the backward pass: ∂ŷ, ∂h, ∂A, ∂V, ∂S (softmax Jacobian), ∂Q, ∂K, ∂W.",
    ATTENTION: "Each step's first sequence: its attention matrix, one row per query token (rows sum to 1). "
               "Darker = more attention. Watch the key token's column fill in.",
}
BOLD = ("How to read it", "Try", "Your task", "The Steps columns (step 1's formulas)",
        "The Examples columns (the first row's formulas)")
SCALE = {"type": "2_color_scale", "min_type": "num", "min_value": 0, "max_type": "num", "max_value": 1,
         "min_color": "#FFFFFF", "max_color": "#2F75B5"}  # a colour scale: no formula in it


def all_blocks(lay: Layout, trace):
    steps = steps_blocks(lay, trace)
    blocks = {"start": steps[0], "steps": steps[1], "examples": examples_block(lay, trace),
              "grid": grid_block(lay, trace)}
    return blocks, list(blocks.values())




def _start_row(book, ws, block):
    """The start weights: yellow inputs (a student may change them)."""
    book.blocks.append(block)
    if book.null:
        return
    for c in block.columns:
        value = block.values[c.key][0]
        ws.write_number(block.first_row, c.col, value, book.fmt.input(c.number_format) if c.role else None)
        book.counts["value"] += 1


def build_attention_workbook(lesson, path, trace=None, exercise=None):
    from sheetsgd.lessons.runbounds import guard

    guard(lesson)
    lay = Layout(lesson)
    trace = trace or train_attention(lesson)
    book = Book(path, exercise)
    blocks, flat = all_blocks(lay, trace)
    book.plan_student(flat)
    student = book.student
    wb, fmt = book.wb, book.fmt
    ws = {name: book.sheet(name) for name in SHEETS}
    # Steps
    w = ws[STEPS]
    write_title(w, fmt, lesson.title, NOTES[STEPS])
    w.write_string(3, 0, "lr", fmt.bold)
    w.write_number(3, 1, lesson.lr, fmt.input("General"))
    w.write_string(3, 2, "learning rate", fmt.note)
    wb.define_name("lr", f"={STEPS}!$B$4")
    w.write_string(STEPS_HEADER - 1, 4, "weights", fmt.bold)
    w.write_string(STEPS_HEADER - 1, 4 + len(lay.params), "∂L/∂w (batch mean)", fmt.bold)
    w.write_string(STEPS_HEADER - 1, 4 + 2 * len(lay.params), "new weights", fmt.bold)
    write_headers(w, fmt, blocks["steps"])
    _start_row(book, w, blocks["start"])
    write_block(w, fmt, book.counts, blocks["steps"], student)
    w.freeze_panes(STEPS_HEADER + 1, 1)
    # Examples
    w = ws[EXAMPLES]
    write_title(w, fmt, "Examples: one row per sequence of each step's batch", NOTES[EXAMPLES])
    b = blocks["examples"]
    write_headers(w, fmt, b)
    write_block(w, fmt, book.counts, b, student)
    if not book.null:
        w.conditional_format(b.first_row, lay.ex_col["a1_1"], b.last_row, lay.ex_col[f"a{lay.T}_{lay.T}"], SCALE)
    w.freeze_panes(EX_HEADER + 1, 2)
    # Attention
    w = ws[ATTENTION]
    write_title(w, fmt, "The attention matrix of each step's first sequence", NOTES[ATTENTION])
    g = blocks["grid"]
    write_headers(w, fmt, g)
    write_block(w, fmt, book.counts, g, student)
    if not book.null:
        w.conditional_format(g.first_row, 3, g.last_row, 2 + lay.T, SCALE)
        chart = wb.add_chart({"type": "line"})
        first, last = lay.step_row(1) - 1, lay.step_row(lay.S) - 1
        for col, name in ((2, "loss"), (3, "on key")):
            chart.add_series({"name": name, "categories": [STEPS, first, 0, last, 0],
                              "values": series_range(w, [STEPS, first, col, last, col])})
        chart.set_title({"name": "loss and attention on the key token per step"})
        chart.set_x_axis({"name": "step"})
        chart.set_y_axis({"min": 0})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 640, "height": 360})
        w.insert_chart(EX_HEADER, lay.T + 4, chart)
    w.freeze_panes(EX_HEADER + 1, 0)
    _write_intro(book, ws[INTRO], lesson, lay, trace, blocks)
    if exercise:
        protect_sheets(book)
    finish_workbook(wb, book.path, ws[INTRO], ws[MANIFEST], {"kind": "attention", "lesson": lesson.name,
                                                         **lesson_entries(book, lesson, book.exercise)})
    return book.report(trace.n_steps)


def _legend(block, blank, group=False) -> list[str]:
    """A line per column (``group``: per run of columns with the same name but for its numbers): its header,
    what it holds and its first row's formula (none for a column the student writes)."""
    lines, seen = [], set()
    for c in block.columns:
        name = re.sub(r"\d", "", c.key) if group else c.key
        if name in seen:
            continue
        seen.add(name)
        last = [d for d in block.columns if re.sub(r"\d", "", d.key) == name][-1] if group else c
        head = c.header if last is c else f"{c.header} … {last.header}"
        formula = "" if c.pattern is None or c.key in blank else "   =" + c.pattern.format_map(block.row_fields(0))
        lines.append(f"{head}: {c.note or 'given'}{formula}")
    return lines


def _write_intro(book, w, lesson, lay: Layout, trace, blocks):
    fmt = book.fmt
    w.write_string(0, 0, lesson.title, fmt.title)
    lines = [" ".join(p.split()) for p in lesson.description.strip().split("\n\n") if p.strip()]
    end = trace.evaluate(lesson) if trace.n_steps else {}
    lines += ["", "How to read it",
              f"{lesson.examples} sequences of {lay.T} tokens; a token is (1, key marker, value). The target is the "
              f"value of the token marked as the key. One attention head of size d = {lay.d}; batches of {lay.B}; "
              f"{lay.S} SGD steps (lr on the Steps sheet).",
              "Q = X·W_Q, K = X·W_K, V = X·W_V; scores S = Q·Kᵀ/√d; A = softmax of each row of S (the row's max "
              "subtracted first: the same A, no overflow); h = mean over the tokens of A·V; ŷ = h·w_o + b; "
              "loss = (ŷ − y)².",
              "Backward: ∂ŷ = 2(ŷ − y); ∂h = ∂ŷ·w_o; ∂A_ij = Σ_k (∂h_k/T)·V_jk; ∂V_jk = Σ_i A_ij·∂h_k/T; "
              "∂S_ij = A_ij(∂A_ij − Σ_l A_il·∂A_il) (the softmax's Jacobian); ∂Q = ∂S·K/√d; ∂K = ∂Sᵀ·Q/√d; "
              "∂W_Q = Xᵀ·∂Q, ∂W_K = Xᵀ·∂K, ∂W_V = Xᵀ·∂V.",
              "Steps averages each weight's ∂ over the step's batch (SUMIF by step number) and takes w − lr·∂."]
    if end:
        lines.append(f"After step {lay.S}, on {lesson.test_examples} new sequences: MSE {end['mse']:.4f} "
                     f"(predicting the mean: {end['baseline_mse']:.4f}); attention on the key token "
                     f"{end['focus']:.2f} on average (1/{lay.T} = {1 / lay.T:.2f} would be no preference).")
    for title, name, group in (("The Steps columns (step 1's formulas)", "steps", False),
                               ("The Examples columns (the first row's formulas)", "examples", True)):
        block = blocks[name]
        lines += ["", title] + _legend(block, book.exercise.get(block.name, set()), group)
    if lesson.tips:
        lines += ["", "Try"] + [f"• {t}" for t in lesson.tips]
    if book.exercise:
        lines += ["", "Your task"] + block_task_lines(book.blocks, book.exercise)
    rows = [part for line in lines for part in (textwrap.wrap(line, 125, subsequent_indent="  ") or [""])]
    for i, line in enumerate(rows):
        w.write_string(2 + i, 0, line, fmt.bold if line in BOLD else None)
    presentation.widths(w).fit_range(0, 0, 130)
