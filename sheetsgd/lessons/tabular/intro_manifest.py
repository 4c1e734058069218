"""The Titanic workbook's Introduction (the lesson, how to read it, the data's attribution, a legend of the
columns) and its hidden manifest for the checker."""
from __future__ import annotations

import os

from sheetsgd import __version__
from sheetsgd.sheet import presentation, readable
from sheetsgd.sheet.book import MANIFEST_VERSION, lesson_entries, write_manifest_entries
from sheetsgd.lessons.datasets import PENGUINS_ATTRIBUTION, TITANIC_ATTRIBUTION
from sheetsgd.lessons.sgd.student import block_task_lines
from .layout import DATA, DATA_FIRST_ROW, STEPS, col


class IntroManifestMixin:
    """TitanicWorkbook's Introduction and manifest sheets."""

    def _write_intro(self, ws):
        fmt, lesson, data = self.fmt, self.lesson, self.data
        fit = presentation.widths(ws)
        fit.fit(0, 20)
        fit.fit_text(0, *(c.header for p in (self.steps_plan, self.examples_plan) if p for c in p.columns), bold=True)
        fit.fit(1, 60)
        fit.fit(2, 60)
        ws.write(0, 0, lesson.title, fmt.title)
        row = 2
        for para in [p.strip() for p in lesson.description.strip().split("\n\n") if p.strip()]:
            readable.write_paragraph(ws, row, " ".join(para.split()), fmt.wrap)
            row += 1
        row += 1
        noun = data.noun + "s"
        split = (f"{data.n_train} training {noun}, {data.n_valid} validation {noun} (seeded random split)"
                 if data.n_valid else f"all {data.n_train} {noun} train (no validation split)")
        penguins = data.preset == "penguins"
        facts = [
            ("data", data.about + f"; {split}." if data.about else
                     (f"Palmer penguins: {len(data.y)} {noun} on the Data sheet" if penguins else
                      f"preset {data.preset}: {len(data.y)} {noun} on the Data sheet")
                     + (f" ({data.dropped} dropped for missing measurements)" if penguins else
                        f" ({data.dropped} dropped for a missing Age or Embarked)" if data.dropped else "")
                     + f"; {split}."),
            ("features", ", ".join(f.header for f in data.features)
             + (data.features_note + (("; targets one-hot: " + ", ".join(t.header for t in data.targets))
                                      if data.targets else "") + "." if data.about else
                " — each divided by its column maximum (Data row 2)." if data.scale_by_max else
                " — each standardised by its training rows' AVERAGE and STDEVP; targets one-hot: "
                + ", ".join(t.header for t in data.targets) + "." if penguins else ".")),
            ("model", f"{self.net.title}: {self.net.__doc__.strip()}"),
            ("loss", self.loss.title + (" (ŷ clipped to [clip_eps, 1 − clip_eps])" if lesson.loss == "bce" else "")),
            ("training", f"{self.opt.title}, batch size {'full' if lesson.full_batch else lesson.batch_size}, "
                         f"{lesson.epochs} epoch(s), {self.trace.n_steps} steps"),
            ("source", "the lesson author's CSV file, as the template names it" if data.about else
                       PENGUINS_ATTRIBUTION if penguins else TITANIC_ATTRIBUTION),
        ]
        for label, text in facts:  # the text across "what it is" and "formula" columns, as tall as it wraps
            ws.write(row, 0, label, fmt.bold_wrap)
            readable.write_paragraph(ws, row, text, fmt.wrap, 1, 2)
            row += 1
        row += 1
        if self.book.exercise:  # a student version: what to do, in words (never the formulas)
            ws.write(row, 0, "Your task", fmt.title)
            row += 1
            for line in block_task_lines(self.book.blocks, self.book.exercise):
                readable.write_paragraph(ws, row, "• " + line, fmt.wrap)
                row += 1
            row += 1
        ws.write(row, 0, "How to read it", fmt.bold)
        row += 1
        how = [
            "Data: raw columns are values; every feature is a formula over them (click a cell to see it).",
            "Steps: the yellow cells on top are named inputs (lr, …); the grey start row holds the initial weights.",
            "Each Steps row is one step: weights (the previous row's new ones), loss, accuracy, one gradient per "
            "weight, the update and the new weights.",
            (f"Each step's {noun} are one block of rows on Examples: prediction, loss and the chain rule per "
             f"{data.noun}; Steps averages them." if not self.per_example else
             f"With batch size 1, the {data.noun}'s prediction, loss and chain rule sit in the step's own row."),
            *([f"Each {data.noun}'s row carries its step, its row on Data, the step's weights and the {data.noun}'s "
               "features (INDEX lookups): every formula reads its own row, so a column is its first formula "
               "filled down."] if self.row_local else []),
            "Epochs: loss and accuracy per epoch (training and validation) with charts.",
            "Solver: the same loss from one row of weights, ready for Excel's Solver, beside SGD and the best fit.",
            "No macros: the workbook recalculates the same in Excel, Google Sheets and LibreOffice.",
        ]
        for line in how:
            readable.write_paragraph(ws, row, "• " + line, fmt.wrap)
            row += 1
        if lesson.tips:
            row += 1
            ws.write(row, 0, "Things to try", fmt.bold)
            row += 1
            for tip in lesson.tips:
                readable.write_paragraph(ws, row, "• " + tip, fmt.wrap)
                row += 1
        row += 1
        ws.write_row(row, 0, ["Steps column", "what it is", "formula in step 1"], fmt.header)
        row += 1
        first = self.steps_first_row
        f = {"r": first, "p": first - 1, "sr": first, "dr": DATA_FIRST_ROW + 1, "lo": 2, "hi": 1 + len(self.trace.batches[0]),
             "dlo": DATA_FIRST_ROW + 1, "dhi": DATA_FIRST_ROW + len(self.trace.batches[0]), "n": len(self.trace.batches[0])}
        sheets = [("Steps", self.steps_plan)] + ([("Examples", self.examples_plan)] if self.examples_plan else [])
        for name, plan in sheets:
            if name == "Examples":
                row += 1
                ws.write_row(row, 0, ["Examples column", "what it is", "formula in its first row"], fmt.header)
                row += 1
                f = {**f, "r": 2}
            for c in plan.columns:
                if self._repeats_first_weight(c.key):
                    continue
                blank = c.key in self.book.exercise.get(name, ())
                formula = ("(yours to write: see Your task)" if blank else
                           c.pattern.format_map(f) if c.pattern else "(a value)")
                readable.write_wrapped_row(ws, row, [(0, c.header, fmt.bold_wrap, True), (1, c.note, fmt.wrap, False),
                                                     (2, formula, fmt.wrap, False)])
                row += 1

    def _repeats_first_weight(self, key: str) -> bool:
        """The legend shows the columns of the first weight only: the others follow the same pattern."""
        others = set(self.params[1:])
        return key in others or ("_" in key and key.split("_", 1)[1] in others)

    def _write_manifest(self, ws, exercise):
        lesson = self.lesson
        entries = {
            "generator": f"sheetsgd {__version__}",
            "spec_version": MANIFEST_VERSION,
            "layout_version": lesson.layout_version,  # absent before row-local layouts: version 1
            "kind": "titanic",
            "lesson": lesson.name,
            "template": os.path.basename(lesson.source),
            "preset": self.data.preset,
            "features": self.data.feature_keys,
            "model": lesson.model,
            "hidden": lesson.hidden,
            "loss": lesson.loss,
            "optimizer": lesson.optimizer,
            "batch_size": lesson.batch_size,
            "epochs": lesson.epochs,
            "shuffle": lesson.shuffle,
            "seed": lesson.seed,
            "steps_sheet": STEPS,
            "header_row": self.steps_header_row + 1,
            "first_step_row": self.steps_first_row,
            "columns": {c.key: {"column": col(c.col), "header": c.header} for c in self.steps_plan.columns},
            "examples_columns": ({c.key: col(c.col) for c in self.examples_plan.columns} if self.examples_plan else {}),
            "validation_columns": ({c.key: col(c.col) for c in self.validation_plan.columns}
                                   if self.validation_plan else {}),
            "hyperparameters": self.hyper_cells,
            "data_sheet": DATA,
            "data_rows": [DATA_FIRST_ROW + 1, DATA_FIRST_ROW + len(self.data.y)],
            "n_train": self.data.n_train,
            "feature_columns": [col(i) for i in self._feature_cols],
            "solver": self.solver_names,
        }
        entries["exercise"] = sorted({k for keys in exercise.values() for k in keys})
        write_manifest_entries(ws, {**entries, **lesson_entries(self.book, lesson, exercise)})
