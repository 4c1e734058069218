"""The row-local plans (layout version 2, see :mod:`sheetsgd.lessons.tabular.lookups`) of the Examples and Validation
sheets and of the Steps sheet's batch aggregates: every formula a student writes is one fill-down."""
from __future__ import annotations

from .layout import DATA_FIRST_ROW, EXAMPLES, STEPS, VALIDATION, col
from .lookups import ROW_KEY, batch_mean, feature_key, lookup_columns
from .plans import Plan, SheetPlan, _grad_note, _group_of, _pattern


class RowPlansMixin:
    """TitanicWorkbook's row-local plans."""

    def _lookups(self, start: int, step_letter: str, weights: dict[str, str], note_step: str, sheet: str = STEPS,
                 step_rows: tuple[int, int] | None = None):
        return lookup_columns(Plan, start, step_letter, weights, sheet, step_rows or self.step_rows, self.net.features,
                              self._feature_cols, DATA_FIRST_ROW + len(self.data.y), self.data.noun, note_step)

    def _plan_examples_rows(self, sheet: str = STEPS, steps_col: dict[str, int] | None = None,
                            step_rows: tuple[int, int] | None = None, rows: int | None = None) -> SheetPlan:
        """One row per (step, passenger) of a batch: its step, passenger, Data row, the step's weights and the
        passenger's features (given lookups), then the forward and backward quantities, row-local. ``sheet``,
        ``steps_col`` and ``step_rows``: where the steps are (an lr finder's Finder sheet; default Steps)."""
        S = {k: col(i) for k, i in (steps_col or self._steps_col).items()}
        plans = [Plan(0, "step", "step", None, "int", f"the {sheet} step whose batch this row belongs to"),
                 Plan(1, "passenger", self.data.noun, None, "int", self.data.id_column)]
        looked, at = self._lookups(2, "A", {p: S[p] for p in self.params}, "this row's step", sheet, step_rows)
        plans += looked
        return self._row_quantities(EXAMPLES, plans, at, self.forward + self.backward,
                                    self.lesson.epochs * self.data.n_train if rows is None else rows)

    def _plan_validation_rows(self) -> SheetPlan:
        """Per epoch, the validation passengers with the epoch's last step's new weights (looked up by that step)."""
        S = {k: col(i) for k, i in self._steps_col.items()}
        plans = [Plan(0, "epoch", "epoch", None, "int"), Plan(1, "passenger", self.data.noun, None, "int"),
                 Plan(2, "step", "step", None, "int", "the epoch's last step: its new weights are evaluated")]
        looked, at = self._lookups(3, "C", {p: S["new_" + p] for p in self.params},
                                   "the epoch's last step (its new weights)")
        plans += looked
        return self._row_quantities(VALIDATION, plans, at, self.block_forward,
                                    self.lesson.epochs * self.data.n_valid)

    def _row_quantities(self, sheet, plans, at, quantities, rows) -> SheetPlan:
        start = max(p.col for p in plans) + 1
        c = {**at, **{q.key: start + i for i, q in enumerate(quantities)}}
        where = self._row_where({k: col(i) for k, i in c.items()})
        classes = bool(self.data.targets)
        plans += [Plan(c[q.key], q.key, q.header, _pattern(q, where), _group_of(q.key, classes), q.note)
                  for q in quantities]
        return SheetPlan(sheet, plans, rows, len(plans))

    def _batch_aggregates(self, c: dict[str, int], ex: dict[str, str]) -> list[Plan]:
        """A batch's mean loss, accuracy and gradients: over the Examples rows with this step's number."""
        rows = (2, 1 + self.examples_plan.rows)

        def mean(*keys):
            return batch_mean(EXAMPLES, ex["step"], rows, col(c["step"]), col(c["n"]), *(ex[k] for k in keys))

        plans = []
        for run in getattr(self.net, "runs", ("",)):  # a dropout lesson: the twin without dropout too (_0)
            loss, correct, which = "loss" + run, "correct" + run, " · no dropout" if run else ""
            plans.append(Plan(c[loss], loss, f"mean loss ({self.loss.title}){which}", mean(loss), "loss",
                              f"mean loss over the step's rows on {EXAMPLES}"))
            plans.append(Plan(c[correct], correct, "accuracy" + which, mean(correct), "loss",
                              "share of the batch predicted right" + ("" if self.data.targets else " at 0.5")))
        for p in self.params:
            factor, other = self.net.grad_terms()[p]
            keys = [factor] if other is None else [factor, other[1] if other[0] == "q"
                                                   else feature_key(self.net.features[other[1]])]
            plans.append(Plan(c[f"grad_{p}"], f"grad_{p}", f"∂L/∂{p}", mean(*keys), "gradient",
                              "batch mean of " + _grad_note(p, factor, other, self.net.features)))
        return plans


__all__ = ["RowPlansMixin", "ROW_KEY"]
