"""The lr finder's row part for a scalar-input lesson (linear, quadratic): what one finder row trains and shows.

A row part gives the finder (sheetsgd.lessons.lr_finder.finder) the base lesson's parameters and step columns, one
step's forward pass and gradients, and how the workbook shows the data; the finder adds the lr
schedule, the smoothed loss, the stop and the suggestions around it. The Titanic models' row part is
sheetsgd.lessons.tabular.lr_finder.
"""
from __future__ import annotations

from sheetsgd.lessons.sgd.engine import measure
from sheetsgd.lessons.sgd.lesson import Lesson, override
from sheetsgd.lessons.sgd.spec import Column, step_columns


class ScalarRows:
    """The row part of a scalar-input lesson (linear, quadratic): what one finder row trains and shows.

    A row part gives the finder the base lesson's step columns (``columns``), one step's forward pass
    and gradients (``forward``), and how the workbook shows the data (``step_refs``, ``write_sheets``).
    The finder adds the lr schedule, the smoothed loss, the stop and the suggestions around it.
    """

    sheet_names = ("Data",)  # sheets after Chart, in tab order

    def __init__(self, base: Lesson):
        self.base = base
        self.model, self.loss = base.model_cls(), base.loss_cls()
        self.params = list(self.model.params)
        self.init = dict(base.init)

    def override(self, **options) -> Lesson:
        return override(self.base, **options)

    def columns(self) -> list[Column]:
        """The base lesson's step columns without finite differences (the finder's rows are about the lr)."""
        return [c for c in step_columns(self.base) if not c.key.startswith("fd_")]

    def forward(self, params: dict, idx) -> tuple[dict, dict | None]:
        """(the row's quantities before the update, per-example quantities for another sheet or None)."""
        X, Y = self.base.data.x, self.base.data.y
        return measure(self.model, self.loss, params, X[idx], Y[idx], idx, None), None

    def check(self, lesson, trace):
        """Refuse a run the sheet cannot show (nothing to refuse here: overflow shows as #NUM! on both sides)."""

    def sheet_hyper(self) -> list[tuple[str, float]]:
        """The base lesson's named inputs other than lr (each row has its own)."""
        hp = self.base.hyper
        return [(k, hp[k]) for k in self.base.optimizer_obj().sheet_hyper(hp) if k != "lr"]

    def subtitle(self) -> str:
        return f"batch size {self.base.batch_size}"

    def step_refs(self, batches) -> dict:
        """How the step rows find their batch: keyword arguments of writer.write_steps_sheet."""
        from sheetsgd.lessons.sgd.workbook import _data_resolver

        return {"data": _data_resolver(self.base, {"x": 1, "y": 2}, False),
                "ranges": [(int(b[0]) + 2, int(b[-1]) + 2) for _, b in batches]}  # unshuffled: Data rows

    def value_columns(self, batches) -> dict[str, list]:
        """Value columns the engine does not record: the batch's first and last example."""
        return {"first": [int(b[0]) + 1 for _, b in batches], "last": [int(b[-1]) + 1 for _, b in batches]}

    @property
    def data_columns(self) -> dict[str, int]:
        return {"x": 1, "y": 2}

    def write_sheets(self, book, sheets, trace, layout, batches, finder_sheet: str) -> dict:
        """Write the sheets of ``sheet_names`` (``finder_sheet``: the rows' sheet); returns manifest entries."""
        from sheetsgd.lessons.sgd.workbook import _write_data

        _write_data(sheets["Data"], book.wb, book.fmt, self.base, book.counts, [])
        return {}
