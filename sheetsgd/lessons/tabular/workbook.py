"""Writes a Titanic lesson workbook: Data with feature formulas, SGD steps as formula rows, Solver beside it.

Sheets
  Introduction  what the lesson is, how to read it, the data's attribution, a legend of columns.
  Steps         named hyperparameters on top, a start row (initial weights, zero optimizer state),
                then one row per step: the weights (the previous row's new ones), loss, accuracy,
                one gradient column per weight, optimizer state and the new weights.
                Batch size 1: the passenger's forward and backward quantities are in the row too.
  Examples      (batch > 1) one row per (step, passenger): its step, Data row, the step's weights and
                the passenger's features (given INDEX lookups, lookups.py), then the forward and
                backward quantities, each reading its own row: z = SUMPRODUCT(weights, features).
                The step's mean loss is SUMIF over the rows of its step number / n; a weight's
                gradient SUMPRODUCT(∂loss/∂z over the batch's rows, feature over them)/n.
  Epochs        training loss and accuracy per epoch (mean over the epoch's passengers), validation
                loss and accuracy after each epoch; charts.
  Validation    (with a split) per epoch, the validation passengers evaluated with the epoch's weights.
  Data          raw columns as values, every feature a formula over them.
  Solver        the same training loss from one parameter row, Excel Solver pre-configured on it, beside
                SGD's final weights and the engine's best fit.
  _sheetsgd     hidden manifest for the checker.

Every formula cell caches the engine's value. Each column's formula is compiled once into a pattern
with row fields ({r} this row, {p} previous row, {sr} the step's Steps row, {dr} the passenger's Data
row, {lo}/{hi} a batch's rows, {dlo}/{dhi} its Data rows, {n} its size); rows only fill them in.

Modules
  layout              sheet names, fixed rows, hyperparameter notes, number formats
  plans               Plan, SheetPlan, Where and the plans of every sheet (PlansMixin)
  step_rows           the Steps, Examples and Validation rows (StepRowsMixin)
  lookups, row_plans  the row-local layout (version 2): lookup columns, batch means, their plans
  epochs_data_solver  the Epochs, Data and Solver sheets (EpochsDataSolverMixin)
  intro_manifest      the Introduction and the manifest (IntroManifestMixin)
  workbook            TitanicWorkbook, assembled from them, and build_titanic_workbook (this module)
"""
from __future__ import annotations

import os

from sheetsgd import __version__
from sheetsgd.runtime import progress
from sheetsgd.sheet.blocks import StudentPlan
from sheetsgd.sheet.book import Book, BuildReport, close_workbook
from sheetsgd.lessons.datasets import TITANIC_ATTRIBUTION
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.hidden_names import hide_defined_names
from sheetsgd.lessons.schedules import sheet_hyper
from .engine import TitanicTrace, first_non_finite, train
from .epochs_data_solver import EpochsDataSolverMixin
from .intro_manifest import IntroManifestMixin
from .layout import (DATA, DATA_FIRST_ROW, EPOCHS, EXAMPLES, FORMATS, HYPER_FIRST_ROW, HYPER_NOTES, INTRO, MANIFEST, SOLVER,
    SOLVER_BLOCK_HEADER, SOLVER_ROWS, STEPS, VALIDATION, col)
from .lesson import TitanicLesson
from .nets import example_columns
from .plans import Plan, PlansMixin, SheetPlan, Where, _data_key, _grad_note, _group_of
from .row_plans import RowPlansMixin
from .step_rows import StepRowsMixin

__all__ = [
    "TitanicWorkbook", "build_titanic_workbook", "Plan", "SheetPlan", "Where", "_data_key", "_grad_note",
    "_group_of", "_mark_names_hidden", "INTRO", "STEPS", "EXAMPLES", "EPOCHS", "VALIDATION", "DATA", "SOLVER",
    "MANIFEST", "HYPER_FIRST_ROW", "DATA_FIRST_ROW", "SOLVER_ROWS", "SOLVER_BLOCK_HEADER", "HYPER_NOTES",
    "FORMATS", "col",
]


class TitanicWorkbook(RowPlansMixin, PlansMixin, StepRowsMixin, EpochsDataSolverMixin, IntroManifestMixin):
    """Plans every sheet from the lesson's shape alone (so the size guard runs before any training), then writes."""

    def __init__(self, lesson: TitanicLesson):
        self.lesson = lesson
        self.net = lesson.net()
        self.loss = lesson.loss_cls()
        self.opt = lesson.optimizer_obj()
        self.data = lesson.data
        self.per_example = lesson.batch_size == 1
        self.row_local = lesson.layout_version >= 2  # every per-example row carries its lookups (lookups.py)
        self.shuffled_batches = lesson.shuffle and not self.per_example and not lesson.full_batch
        self.forward, self.backward = example_columns(self.net, self.loss)
        # Validation and Solver rows: a dropout net evaluates without its mask
        self.block_forward = self.net.eval_columns() if hasattr(self.net, "eval_columns") else self.forward
        self.params = self.net.params
        inputs = sheet_hyper(self.opt, lesson.hyper, lesson.schedule, lesson.n_steps)
        inputs += [("clip_eps", lesson.clip_eps)] if lesson.loss == "bce" else []
        inputs += [("dropout", lesson.dropout)] if lesson.dropout is not None else []
        self.hyper_names, self.hyper_values = [k for k, _ in inputs], dict(inputs)
        self.data_plan = self._plan_data()
        self.steps_plan = self._plan_steps()
        self.examples_plan = self._plan_examples() if not self.per_example else None
        self.validation_plan = self._plan_block(VALIDATION, "validation") if self.data.n_valid else None
        self.solver_plans = {k: self._plan_block(SOLVER, k) for k in SOLVER_ROWS}
        self._finish_steps_plan()

    # ------------------------------------------------------------------------------------- writing

    def write(self, path: str | None, trace: TitanicTrace | None = None,
              exercise: dict[str, set[str]] | None = None) -> BuildReport:
        """Write the workbook (path None: nothing, only the blocks); ``exercise`` {block: keys} blanks them."""
        size = self.size()
        size.check(self.lesson.source or None)
        trace = trace or train(self.lesson)
        diverged = first_non_finite(trace)
        if diverged:  # a cell cannot cache inf/NaN (Excel calls such a file corrupt)
            step, key = diverged
            raise SheetsgdError(f"training diverges: step {step} gives a non-finite {key}; lower lr "
                                f"(now {self.lesson.hyper['lr']:g}) and build again", self.lesson.source or None)
        self.trace = trace
        book = Book(path, exercise)
        self.book, self.wb, self.fmt, self.counts = book, book.wb, book.fmt, book.counts
        sheets = {name: book.sheet(name) for name in self._sheet_names()}
        if exercise and book.student is None:
            book.student = StudentPlan(self._block_shells(), exercise)
        self._write_steps(sheets[STEPS])
        if self.examples_plan:
            self._write_examples(sheets[EXAMPLES])
        if self.validation_plan:
            self._write_validation(sheets[VALIDATION])
        self._write_epochs(sheets[EPOCHS])
        self._write_data(sheets[DATA])
        self._write_solver(sheets[SOLVER])
        self._write_intro(sheets[INTRO])
        self._write_manifest(sheets[MANIFEST], exercise or {})
        sheets[MANIFEST].hide()
        if not book.null:  # a student version: cells outside blocks that read an answer show nothing yet
            from sheetsgd.sheet.presentation import hide_outside_blocks
            hide_outside_blocks(self.wb, self.fmt, book.student)
        if not book.null:
            from sheetsgd.sheet.chart_data import write_chart_data
            from sheetsgd.sheet.readable import set_up_workbook
            write_chart_data(book)
            set_up_workbook(self.wb, book.blocks)
        sheets[INTRO].activate()
        if exercise:  # a convenience against accidental edits, not security: no password
            for name, ws in sheets.items():
                if name != MANIFEST:
                    ws.protect("", {"format_columns": True, "format_rows": True})
        self.wb.set_properties({"title": self.lesson.title, "subject": "sheetsgd Titanic lesson",
                                "comments": f"sheetsgd {__version__}. {TITANIC_ATTRIBUTION}"})
        hidden_in_place = book.null or _mark_names_hidden(self.wb, "solver_")
        if not book.null:
            progress.stage("saving")
        close_workbook(self.wb, path)
        if not hidden_in_place:  # xlsxwriter's internals changed: patch workbook.xml instead
            hide_defined_names(path, "solver_")
        return book.report(trace.n_steps, size.longest_formula)

    def _sheet_names(self) -> list[str]:
        names = [INTRO, STEPS] + ([EXAMPLES] if self.examples_plan else []) + [EPOCHS]
        names += ([VALIDATION] if self.validation_plan else []) + [DATA, SOLVER, MANIFEST]
        return names


def _mark_names_hidden(wb, prefix: str) -> bool:
    """Flag defined names hidden through xlsxwriter's name list ([name, sheet, formula, hidden]).

    Returns False when that list does not look as expected; the caller then patches the file.
    """
    names = getattr(wb, "defined_names", None)
    if not isinstance(names, list) or not all(isinstance(n, list) and len(n) == 4 for n in names):
        return False
    found = False
    for entry in names:
        if isinstance(entry[0], str) and entry[0].startswith(prefix):
            entry[3] = True
            found = True
    return found


def build_titanic_workbook(lesson: TitanicLesson, path, trace: TitanicTrace | None = None,
                           exercise: dict[str, set[str]] | None = None) -> BuildReport:
    """Check the size, train, write the workbook to ``path`` (None: nothing); returns what was written."""
    return TitanicWorkbook(lesson).write(None if path is None else os.fspath(path), trace, exercise)
