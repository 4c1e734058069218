"""Writes a convolution workbook: every SGD step one formula row, its filters and feature maps as grids.

Sheets (tab order): Introduction, Steps (the input lr, the yellow Start row, one row per step; see
:mod:`.layout`), Loss (one row per epoch, chart), Images (the training images, one row each: yellow
inputs), Pictures (the images as grids), Filters (each step's filters, gradients, new filters as 3×3
grids), Maps (each step's feature maps and their gradients), and the hidden manifest.
"""
from __future__ import annotations

import textwrap

from sheetsgd.sheet import presentation
from sheetsgd.sheet.blocks import write_block
from sheetsgd.sheet.book import Book, finish_workbook, lesson_entries, write_headers, write_title
from sheetsgd.sheet.chart_data import series_range
from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
from .engine import ConvTrace, train_conv
from .layout import (FILTERS, IMAGES, INTRO, LOSS, LR_ROW, MANIFEST, MAPS, PICTURES, STEPS, Layout, images_block, start_block)
from .lesson import CLASSES
from .rows import loss_block, steps_block
from .views import FILTER_GROUP, filters_block, map_group, maps_block, pictures_block

SHEETS = [INTRO, STEPS, LOSS, IMAGES, PICTURES, FILTERS, MAPS, MANIFEST]
NOTES = {
    STEPS: "One row per SGD step on one image: lookups, forward pass, backward pass, new parameters. Yellow: "
           "the learning rate and the parameters step 1 starts from.",
    LOSS: "One row per epoch: the mean loss and the accuracy of its steps (each measured before its update).",
    IMAGES: "The training images, one row each (pixels row by row): generated bars, horizontal (y = 0) or "
            "vertical (y = 1), with noise. Yellow: inputs you may change.",
    PICTURES: "The training images drawn as grids (from the Images sheet).",
    FILTERS: "Per step: each filter, its gradient ∂L/∂F and its new value, as 3×3 grids (red < 0 < blue).",
    MAPS: "Per step: each filter's feature map a = ReLU(z) and its gradient ∂L/∂z (red < 0 < blue).",
}
DIVERGING = {"type": "3_color_scale", "min_color": "#F8696B", "mid_type": "num", "mid_value": 0,
             "mid_color": "#FFFFFF", "max_color": "#5A8AC6"}
POSITIVE = {"type": "2_color_scale", "min_type": "num", "min_value": 0, "min_color": "#FFFFFF", "max_color": "#5A8AC6"}
GRAY = {"type": "2_color_scale", "min_type": "num", "min_value": 0, "min_color": "#FFFFFF",
        "max_type": "num", "max_value": 1, "max_color": "#262626"}


def all_blocks(lay: Layout, trace):
    blocks = {"images": images_block(lay), "start": start_block(lay, trace), "steps": steps_block(lay, trace),
              "loss": loss_block(lay, trace), "pictures": pictures_block(lay), "filters": filters_block(lay, trace),
              "maps": maps_block(lay, trace)}
    return blocks, list(blocks.values())




def _value_block(book, ws, block):
    """A block of given values written cell by cell; inputs yellow."""
    book.blocks.append(block)
    if book.null:
        return
    for i in range(block.n):
        for c in block.columns:
            style = book.fmt.input(c.number_format) if c.role == "input" else book.fmt.number(c.number_format)
            ws.write_number(block.first_row + i, c.col, block.values[c.key][i], style)
            book.counts["value"] += 1


def _colour(ws, block, first_col, last_col, scale):
    if block.n:
        ws.conditional_format(block.first_row, first_col, block.last_row, last_col, scale)


def build_conv_workbook(lesson, path, trace: ConvTrace | None = None, exercise=None):
    from sheetsgd.lessons.runbounds import guard

    guard(lesson)
    lay = Layout(lesson)
    trace = trace or train_conv(lesson)
    book = Book(path, exercise)
    blocks, flat = all_blocks(lay, trace)
    book.plan_student(flat)
    student = book.student
    wb, fmt = book.wb, book.fmt
    ws = {name: book.sheet(name) for name in SHEETS}
    # Steps: lr, group labels, the Start row, one row per step
    w = ws[STEPS]
    write_title(w, fmt, lesson.title, NOTES[STEPS])
    w.write_string(LR_ROW, 0, "lr", fmt.bold)
    w.write_number(LR_ROW, 1, lesson.lr, fmt.input("General"))
    w.write_string(LR_ROW, 2, "learning rate (every parameter: p − lr·∂L/∂p)", fmt.note)
    wb.define_name("lr", f"={STEPS}!$B${LR_ROW + 1}")
    steps = blocks["steps"]
    groups = (("image", "the image (looked up on Images)"), (lay.f(0, 0, 0), "parameters this step starts from"),
              (lay.cells("z")[0], "forward: z = window·F + c, a = ReLU(z), s = w·a + b, p = σ(s)"),
              ("ds", "backward: ∂L/∂s, ∂L/∂w, ∂L/∂z, ∂L/∂F"), ("new_" + lay.f(0, 0, 0), "new parameters"))
    for key, label in groups:
        w.write_string(steps.header_row - 1, lay.col[key], label, fmt.bold)
    write_headers(w, fmt, steps)
    start = blocks["start"]
    _value_block(book, w, start)
    write_block(w, fmt, book.counts, steps, student)
    w.freeze_panes(steps.first_row, 2)
    for name in ("z", "a", "dz"):
        keys = lay.cells(name)
        _colour(w, steps, lay.col[keys[0]], lay.col[keys[-1]], POSITIVE if name == "a" else DIVERGING)
    for prefix in ("", "grad_", "new_"):
        _colour(w, steps, lay.col[prefix + lay.f(0, 0, 0)], lay.col[prefix + lay.f(lay.K - 1, 2, 2)], DIVERGING)
    _colour(w, steps, lay.col[lay.x(0, 0)], lay.col[lay.x(lay.n - 1, lay.n - 1)], GRAY)
    # Loss: one row per epoch, chart
    w = ws[LOSS]
    write_title(w, fmt, "Loss and accuracy per epoch", NOTES[LOSS])
    loss = blocks["loss"]
    write_headers(w, fmt, loss)
    write_block(w, fmt, book.counts, loss, student)
    presentation.widths(w).fit_range(0, 2, 12)
    chart = wb.add_chart({"type": "line"})
    for col, name in ((1, "mean loss"), (2, "accuracy")):
        chart.add_series({"name": name, "categories": [LOSS, loss.first_row, 0, loss.last_row, 0],
                          "values": series_range(w, [LOSS, loss.first_row, col, loss.last_row, col])})
    chart.set_title({"name": "loss and accuracy per epoch"})
    chart.set_x_axis({"name": "epoch"})
    chart.set_y_axis({"min": 0})
    chart.set_size({"width": 640, "height": 360})
    w.insert_chart(loss.last_row + 2, 0, chart)
    # Images, Pictures
    w = ws[IMAGES]
    write_title(w, fmt, "Training images", NOTES[IMAGES])
    images = blocks["images"]
    write_headers(w, fmt, images)
    _value_block(book, w, images)
    _colour(w, images, 2, 1 + lay.n * lay.n, GRAY)
    presentation.widths(w).fit_range(0, 1, 7)
    presentation.widths(w).fit_range(2, 1 + lay.n * lay.n, 7)
    w.freeze_panes(images.first_row, 2)
    w = ws[PICTURES]
    write_title(w, fmt, "The training images as pictures", NOTES[PICTURES])
    pictures = blocks["pictures"]
    pictures._presented = True  # pixels as the Images sheet shows them (0.00), not widened to the noise's digits
    write_headers(w, fmt, pictures)
    write_block(w, fmt, book.counts, pictures, student)
    _colour(w, pictures, 3, 2 + lay.n, GRAY)
    presentation.widths(w).fit_range(3, 2 + lay.n, 5)
    # Filters, Maps
    w = ws[FILTERS]
    write_title(w, fmt, "Filters per step: F, ∂L/∂F, new F", NOTES[FILTERS])
    filters = blocks["filters"]
    write_headers(w, fmt, filters)
    write_block(w, fmt, book.counts, filters, student)
    for k in range(lay.K):
        for g in range(3):
            first = 2 + k * FILTER_GROUP + 4 * g
            _colour(w, filters, first, first + 2, DIVERGING)
    w.freeze_panes(filters.first_row, 2)
    w = ws[MAPS]
    write_title(w, fmt, "Feature maps per step: a = ReLU(z) and ∂L/∂z", NOTES[MAPS])
    maps = blocks["maps"]
    write_headers(w, fmt, maps)
    write_block(w, fmt, book.counts, maps, student)
    for k in range(lay.K):
        for g in range(2):
            first = 2 + k * map_group(lay) + g * (lay.m + 1)
            _colour(w, maps, first, first + lay.m - 1, POSITIVE if g == 0 else DIVERGING)
    w.freeze_panes(maps.first_row, 2)
    _write_intro(book, ws[INTRO], lesson, lay, trace)
    if exercise:
        protect_sheets(book)
    finish_workbook(wb, book.path, ws[INTRO], ws[MANIFEST], {"kind": "conv", "lesson": lesson.name,
                                                         **lesson_entries(book, lesson, book.exercise)})
    return book.report(trace.n_steps)


HEADINGS = ("How to read it", "Columns of the Steps sheet", "Try", "Your task")


def _legend(lay: Layout) -> list[str]:
    """One line per group of Steps columns: its first header (the rest of the group follow the same pattern
    with their own indices), its last, and what it computes."""
    from .rows import steps_block

    block = steps_block(lay, None)
    groups: list[list] = []
    for c in block.columns:
        group = c.key.split("_")[0] if "_" in c.key and not c.key.startswith(("grad_", "new_")) else \
            "_".join(c.key.split("_")[:2]) if c.key.count("_") > 1 else c.key
        if groups and groups[-1][0] == group.rstrip("0123456789") + ("#" if group[-1:].isdigit() else ""):
            groups[-1][2] = c
        else:
            groups.append([group.rstrip("0123456789") + ("#" if group[-1:].isdigit() else ""), c, c])
    lines = []
    for _, first, last in groups:
        span = first.header if first is last else f"{first.header} … {last.header}"
        lines.append(f"{span}: {first.note or 'given'}")
    return lines


def _write_intro(book, w, lesson, lay: Layout, trace: ConvTrace):
    fmt = book.fmt
    w.write_string(0, 0, lesson.title, fmt.title)
    lines = [" ".join(p.split()) for p in lesson.description.strip().split("\n\n") if p.strip()]
    loss, acc = trace.epoch_means(lay.N)
    lines += ["", "How to read it",
              f"{lay.N} training images of {lay.n}×{lay.n} pixels ({' / '.join(CLASSES)} bars); {lay.K} filters "
              f"of 3×3, each giving a {lay.m}×{lay.m} feature map; {lay.S} SGD steps ({lay.E} epochs), one image "
              "each, in a seeded order.",
              "z = Σ window·F + c (three SUMPRODUCTs, one per filter row), a = MAX(0, z), "
              + ("max = MAX of each 2×2 window of a, s = Σ w·max + b, " if lay.pool else "s = Σ w·a + b, ")
              + "p = 1/(1 + e^(−s)), loss = −(y ln p + (1 − y) ln(1 − p)).",
              "∂L/∂s = p − y; ∂L/∂w = ∂L/∂s · " + ("max" if lay.pool else "a") + "; ∂L/∂z = ∂L/∂s · w where z > 0"
              + (" and a is its window's maximum (0 for the other three cells)" if lay.pool else "")
              + "; ∂L/∂F[u,v] = Σ ∂L/∂z[i,j] · x[i+u, j+v]; ∂L/∂c = Σ ∂L/∂z; new p = p − lr · ∂L/∂p.",
              f"Mean loss: epoch 1 {loss[0]:.3f}, epoch {lay.E} {loss[-1]:.3f}; accuracy in the last epoch "
              f"{acc[-1]:.0%}. On {lesson.test_images} more images never trained on: {trace.test_accuracy_start:.0%} "
              f"before training, {trace.test_accuracy:.0%} after."]
    lines += ["", "Columns of the Steps sheet"] + _legend(lay)
    if lesson.tips:
        lines += ["", "Try"] + [f"• {t}" for t in lesson.tips]
    if book.exercise:
        lines += ["", "Your task"] + block_task_lines(book.blocks, book.exercise)
    rows = [part for line in lines for part in (textwrap.wrap(line, 125, subsequent_indent="  ") or [""])]
    for i, line in enumerate(rows):
        w.write_string(2 + i, 0, line, fmt.bold if line in HEADINGS else None)
    presentation.widths(w).fit_range(0, 0, 130)
