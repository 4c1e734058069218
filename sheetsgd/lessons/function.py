"""Function lessons: gradient descent on f(x) = (x² − target)², several runs side by side.

Each run has its own start x and learning rate (named input cells) and optionally accumulates its
gradients, as a PyTorch loop that forgets ``zero_grad()`` does. One row per step; a run that
overflows shows it as the sheet really does: huge numbers, then #NUM! from the first overflowing
step on. The engine computes the same steps in float64 and reports the same first overflowing step
(a non-finite value in the engine is an error value on the sheet).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace

import numpy as np

from sheetsgd.errors import SheetsgdError, refuse_options
from sheetsgd.sheet.layouts import LAYOUT_VERSION
from .schedules import Schedule, parse_schedule
from sheetsgd.lessons.sgd.spec import Column

RUNS_SHEET = "Runs"


@dataclass
class Run:
    label: str
    x0: float
    lr: float
    accumulate: bool = False  # g_acc ← g_acc + f'(x): the forgotten zero_grad()


@dataclass
class FunctionLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    target: float
    steps: int
    runs: list[Run]
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    kind: str = "function"
    schedule: Schedule | None = None  # [schedule]: each run's lr scheduled (a column per run, from its own lr)
    layout_version: int = LAYOUT_VERSION  # sheetsgd.sheet.layouts: 1 blanks the asked columns of their own run only

    def blank_with(self, exercise: dict) -> dict:
        """The columns a student version blanks for these asked ones: in layout 2, in every run (``every_run``)."""
        return every_run(exercise, function_columns(self)) if self.layout_version >= 2 else exercise

    def run_lrs(self, run: Run):
        """The lr of each step of a run: its own lr, scheduled (None without a schedule)."""
        return self.schedule.values(run.lr, self.steps, "sgd")["lr"].tolist() if self.schedule else None


@dataclass
class FunctionTrace:
    steps: dict[str, np.ndarray]  # key -> value per step (inf/nan where the run overflowed)
    first_overflow: dict[int, int | None]  # run number -> first step with a non-finite value

    @property
    def n_steps(self) -> int:
        return len(self.steps["step"])

    def summary(self, lesson) -> dict:
        """Per run: its settings and the first step whose values overflow (None if none does)."""
        return {"runs": [{"label": r.label, "x0": r.x0, "lr": r.lr, "accumulate": r.accumulate,
                          "first_overflow_step": self.first_overflow[i]}
                         for i, r in enumerate(lesson.runs, start=1)]}

    def table(self):
        """One dict per step; an overflowed value stays inf/nan (JSON output: null, sheetsgd.runtime.jsonsafe)."""
        return [{k: (int(v[i]) if k == "step" else float(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def parse_function_lesson(raw: dict, name: str, source: str) -> FunctionLesson:
    meta, fn = raw.get("lesson", {}), raw.get("function", {})
    where = f"{source} [function]"
    if fn.get("kind", "double-well") != "double-well":
        raise SheetsgdError(f"unknown function {fn.get('kind')!r}; known: double-well", where)
    runs_raw = raw.get("runs")
    if not isinstance(runs_raw, list) or not runs_raw:
        raise SheetsgdError("needs at least one [[runs]] table with x0 and lr", source)
    runs = []
    for i, r in enumerate(runs_raw, start=1):
        try:
            run = Run(str(r.get("label", f"run {i}")), float(r["x0"]), float(r["lr"]), bool(r.get("accumulate", False)))
        except (KeyError, TypeError, ValueError):
            raise SheetsgdError(f"run {i} needs numbers x0 and lr", f"{source} [[runs]]") from None
        runs.append(run)
    lesson = FunctionLesson(
        name=meta.get("name", name), title=meta.get("title", name), description=meta.get("description", ""),
        tips=list(meta.get("try", [])), target=float(fn.get("target", 9.0)), steps=fn.get("steps", 30),
        runs=runs, source=source, exercise=list(meta.get("exercise", [])), schedule=parse_schedule(raw, source))
    return validate(lesson)


def validate(lesson: FunctionLesson) -> FunctionLesson:
    if isinstance(lesson.steps, bool) or not isinstance(lesson.steps, int) or lesson.steps < 1:
        raise SheetsgdError(f"steps must be an integer ≥ 1, got {lesson.steps!r}", lesson.source)
    for i, run in enumerate(lesson.runs, start=1):
        if not run.lr > 0:
            raise SheetsgdError(f"run {i}: learning rate must be > 0, got {run.lr:g}", lesson.source)
        if not np.isfinite(run.x0):
            raise SheetsgdError(f"run {i}: x0 must be a finite number", lesson.source)
    return lesson


def override_function(lesson: FunctionLesson, *, lr=None, epochs=None, **others) -> FunctionLesson:
    """--lr sets every run's learning rate, --epochs the number of steps; other options do not apply."""
    refuse_options(others, "a function lesson (it has no data or optimizer choice)", lesson.source)
    if lr is not None:
        lesson = replace(lesson, runs=[replace(r, lr=float(lr)) for r in lesson.runs])
    if epochs is not None:
        lesson = replace(lesson, steps=epochs)
    return validate(lesson)


def value(x, target):  # f(x) = (x² − target)²
    return (x**2 - target) ** 2


def derivative(x, target):  # f'(x) = 4x·(x² − target)
    return 4 * x * (x**2 - target)


def train_function(lesson: FunctionLesson) -> FunctionTrace:
    steps = {"step": np.arange(1, lesson.steps + 1, dtype=float)}
    first_overflow = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for i, run in enumerate(lesson.runs, start=1):
            x, acc = np.float64(run.x0), np.float64(0.0)
            rows = {k: [] for k in ("x", "lr", "f", "grad", "acc", "new")}
            lrs = lesson.run_lrs(run) or [run.lr] * lesson.steps
            for s in range(lesson.steps):
                f, g = value(x, lesson.target), derivative(x, lesson.target)
                if run.accumulate:
                    acc = acc + g
                new = x - lrs[s] * (acc if run.accumulate else g)
                for k, v in zip(rows, (x, lrs[s], f, g, acc, new)):
                    rows[k].append(v)
                x = new
            for k, v in rows.items():
                if (k != "acc" or run.accumulate) and (k != "lr" or lesson.schedule):
                    steps[f"r{i}_{k}"] = np.array(v, dtype=float)
            bad = [s for s in range(lesson.steps)
                   if not all(np.isfinite(steps[k][s]) for k in steps if k.startswith(f"r{i}_"))]
            first_overflow[i] = bad[0] + 1 if bad else None
    return FunctionTrace(steps, first_overflow)


def function_columns(lesson: FunctionLesson) -> list[Column]:
    cols = [Column("step", "step", None, "step", "step number")]
    for i, run in enumerate(lesson.runs, start=1):
        x, lr = f"r{i}_x", f"{{hp:run{i}_lr}}"
        g = f"{{r{i}_acc}}" if run.accumulate else f"{{r{i}_grad}}"
        cols.append(Column(x, f"{run.label}: x", f"{{prev:r{i}_new}}", "param", "x this step starts from"))
        if lesson.schedule:  # the run's own lr, scheduled
            _, _, template, note = lesson.schedule.formulas("sgd")[0]
            cols.append(Column(f"r{i}_lr", f"{run.label}: lr", template.replace("{hp:lr}", lr), "state",
                               f"{note}; lr = run{i}_lr"))
            lr = f"{{r{i}_lr}}"
        cols += [
            Column(f"r{i}_f", f"{run.label}: f(x)", f"({{{x}}}^2-{{hp:target}})^2", "loss", "f(x) = (x² − target)²"),
            Column(f"r{i}_grad", f"{run.label}: f′(x)", f"4*{{{x}}}*({{{x}}}^2-{{hp:target}})", "gradient",
                   "f′(x) = 4x·(x² − target)"),
        ]
        if run.accumulate:
            cols.append(Column(f"r{i}_acc", f"{run.label}: accumulated f′", f"{{prev:r{i}_acc}}+{{r{i}_grad}}", "state",
                               "sum of all gradients so far: what x.grad holds when zero_grad() is forgotten"))
        cols.append(Column(f"r{i}_new", f"{run.label}: new x", f"{{{x}}}-{lr}*{g}", "update", "x after this step"))
    return cols


def every_run(exercise: dict, columns) -> dict:
    """The asked columns blank in every run that has them (r2_grad: r1_grad … r4_grad too), so no run next to
    the blank one shows its answer; the exercise keeps its blocks for planning the blanks."""
    keys = {c.key for c in columns}
    out = copy.copy(exercise)
    for name, asked in exercise.items():
        quantities = {k.split("_", 1)[1] for k in asked if re.fullmatch(r"r\d+_\w+", k)}
        out[name] = set(asked) | {k for k in keys if re.fullmatch(r"r\d+_\w+", k) and k.split("_", 1)[1] in quantities}
    return out


def _column_at(ws, pixels: int) -> int:
    """The first column starting at least ``pixels`` from the sheet's left edge (charts side by side)."""
    from sheetsgd.sheet.presentation import widths

    w, x, col = widths(ws).width, 0, 0
    while x < pixels:
        x += int(w.get(col, 8.43) * 7 + 0.5) + 5
        col += 1
    return col


def build_function_workbook(lesson: FunctionLesson, path, trace: FunctionTrace | None = None, exercise=None):
    from sheetsgd.sheet.book import lesson_entries
    from sheetsgd.lessons.sgd.student import block_task_lines, protect_sheets
    from sheetsgd.lessons.sgd.workbook import (INTRO, MANIFEST, Book, finish_workbook, layout_entries, write_intro, write_steps_sheet)

    from .runbounds import guard

    guard(lesson)  # refuse a workbook that will not fit, before training
    trace = trace or train_function(lesson)
    if exercise:
        exercise = lesson.blank_with(exercise)
    book = Book(path, exercise)
    wb, fmt, counts = book.wb, book.fmt, book.counts
    intro, ws, manifest = book.sheet(INTRO), book.sheet(RUNS_SHEET), book.sheet(MANIFEST)
    blanks = frozenset(book.exercise.get(RUNS_SHEET, ()))
    columns = function_columns(lesson)
    hyper = [("target", lesson.target)] + [(f"run{i}_lr", r.lr) for i, r in enumerate(lesson.runs, start=1)]
    hyper += lesson.schedule.cells("sgd", lesson.steps) if lesson.schedule else []
    notes = {"target": "f(x) = (x² − target)²: minima at x = ±√target"}
    notes.update({f"run{i}_lr": f"learning rate of run {i} ({r.label})" for i, r in enumerate(lesson.runs, start=1)})
    starts = {f"r{i}_new": (r.x0, True) for i, r in enumerate(lesson.runs, start=1)}
    starts.update({f"r{i}_acc": (0.0, False) for i, r in enumerate(lesson.runs, start=1) if r.accumulate})
    overflow = "; ".join(f"{r.label}: #NUM! from step {trace.first_overflow[i]}" for i, r in
                         enumerate(lesson.runs, start=1) if trace.first_overflow[i])
    layout = write_steps_sheet(
        ws, wb, fmt, counts, title=lesson.title, hyper_notes=notes, columns=columns, start_values=starts,
        subtitle="Gradient descent on f(x) = (x² − target)². Yellow cells are inputs. " + (overflow or ""),
        hyper=hyper, values={c.key: trace.steps[c.key].tolist() for c in columns}, n_steps=trace.n_steps,
        exercise=blanks, block_name=RUNS_SHEET)

    # one chart per run, each axis fitted to its own run: a diverging run's growth is readable beside a
    # converging run's approach (a shared −reach…reach axis drew the diverging run as vertical strokes)
    from sheetsgd.sheet.chart_data import series_range
    first, last = layout.first_step_row, layout.first_step_row + trace.n_steps - 1
    for i, run in enumerate(lesson.runs, start=1):
        chart = wb.add_chart({"type": "line"})
        col = layout.columns[f"r{i}_x"]
        end = last if not trace.first_overflow[i] else min(last, first + trace.first_overflow[i] - 2)
        # a run that overflows is plotted up to its last number: its #NUM! cells are left out of the series
        chart.add_series({"name": run.label, "categories": [RUNS_SHEET, first, 0, end, 0],
                          "values": series_range(ws, [RUNS_SHEET, first, col, end, col]),
                          "marker": {"type": "circle", "size": 3}})
        chart.set_title({"name": f"x by step: {run.label}", "name_font": {"size": 10}})
        chart.set_x_axis({"name": "step"})
        chart.set_y_axis({"name": "x"})  # fitted to this run's values
        chart.set_legend({"none": True})
        chart.show_blanks_as("gap")
        chart.set_size({"width": 480, "height": 260})
        ws.insert_chart(last + 2 + 14 * ((i - 1) // 2), 0 if i % 2 else _column_at(ws, 500), chart)

    write_intro(intro, fmt, lesson.title, lesson.description, lesson.tips, columns, layout, RUNS_SHEET,
                how=["Each run has its own learning rate (runN_lr) and start x (the yellow start row).",
                     "Every row takes one gradient step: new x = x − lr · f′(x).",
                     "A run that overflows shows #NUM! from its first overflowing step on, as any spreadsheet does."],
                exercise=blanks, tasks=block_task_lines(book.blocks, book.exercise) if blanks else ())
    if blanks:
        protect_sheets(book)
    finish_workbook(wb, book.path, intro, manifest, {"kind": "function", "lesson": lesson.name,
                                                **layout_entries(layout, columns, RUNS_SHEET),
                                                "exercise_defaults": lesson.exercise,
                                                **lesson_entries(book, lesson, book.exercise)})
    report = book.report(trace.n_steps)
    if book.exercise:
        report.exercise = {name: set(keys) for name, keys in book.exercise.items()}  # every run's, as blank
    return report
