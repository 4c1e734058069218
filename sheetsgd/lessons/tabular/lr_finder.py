"""The Titanic model as the row part of the lr finder (sheetsgd.lessons.lr_finder.finder owns the schedule, stop and suggestions;
it does not import this module's callers, so the finder picks this row part without an import circle).

A Finder row holds the step's weights, the batch's mean loss and accuracy, one gradient per weight and
the optimizer update, as a Titanic Steps row does. The batch's passengers are one block of rows on the
Examples sheet (forward and backward quantities from ``nets.example_columns``), reading the step's
weights on the Finder sheet; the features stay formulas on the Data sheet (the Titanic workbook's own).

In a Finder template, ``{data:ex_key}`` is the batch's block of Examples column ``key`` and
``{data:x_feature}`` the batch's Data rows of a feature column (the row fields {lo}/{hi} and {dlo}/{dhi}).
Layout version 2 (titanic.lookups): ``{data:ex_key}`` is the whole Examples column (a mean by step number,
SUMIF), ``{data:batch_ex_key}`` the batch's rows of it, and the features are Examples' own lookups.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from sheetsgd.lessons.datasets import TITANIC_ATTRIBUTION
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.sgd.spec import Column, optimizer_column
from .lesson import TitanicLesson
from .nets import evaluate, example_columns
from .lookups import ROW_KEY, feature_key
from .workbook import DATA, EXAMPLES, HYPER_NOTES, Plan, TitanicWorkbook, Where, _group_of, col

SIGMOID_SCORE = {"logistic": "z", "mlp": "out"}  # the score each sigmoid model feeds to EXP
EXP_LIMIT = 709.78  # ln of the largest double: EXP of more overflows in every spreadsheet


class TitanicRows:
    sheet_names = (EXAMPLES, DATA)
    hyper_notes = {"clip_eps": HYPER_NOTES["clip_eps"]}
    how = ["Each row's passengers are one block of rows on Examples: prediction, loss and the chain rule per "
           "passenger, with the row's weights; the row averages them.",
           "Data: raw columns are values; every feature is a formula over them. Source: " + TITANIC_ATTRIBUTION]

    def __init__(self, base: TitanicLesson):
        self.base = base
        if base.data.about:  # an author's CSV: its own words, not the Titanic's source
            noun = base.data.noun
            self.how = [f"Each row's {noun}s are one block of rows on Examples: prediction, loss and the chain rule "
                        f"per {noun}, with the row's weights; the row averages them.",
                        "Data: raw columns are values; every feature is a formula over them. Source: " + base.data.about]
        self.net, self.loss = base.net(), base.loss_cls()
        self.params = list(self.net.params)
        self.init = dict(zip(self.params, base.init.tolist()))
        self.forward_q, self.backward_q = example_columns(self.net, self.loss)
        self.row_local = base.layout_version >= 2  # Examples rows carry their lookups (titanic.lookups)
        keys = ["step", "passenger"]
        if self.row_local:
            keys += [ROW_KEY] + self.params + [feature_key(f) for f in self.net.features]
        keys += [q.key for q in self.forward_q + self.backward_q]
        self.examples_col = {k: i for i, k in enumerate(keys)}

    def override(self, **options) -> TitanicLesson:
        return self.base.override(**options)

    # ------------------------------------------------------------------------------------- engine

    def forward(self, params: dict, idx) -> tuple[dict, dict]:
        """The row (weights, mean loss and accuracy, gradients) and the batch's per-passenger quantities."""
        data, theta = self.base.data, np.array([params[p] for p in self.params])
        x, y = data.X[idx], data.y[idx]
        q = evaluate(self.net, self.loss, theta, x, y, self.base.clip_eps)
        row = dict(params)
        row["loss"] = float(np.sum(q["loss"]) / len(idx))
        row["correct"] = float(np.sum(q["correct"]) / len(idx))
        grads = self.net.gradients(theta, q, q, x)
        row.update({f"grad_{p}": float(g) for p, g in zip(self.params, grads)})
        return row, q

    def check(self, lesson, trace):
        """Refuse a run the sheet cannot show: σ is 1/(1+EXP(−score)), and EXP overflows past e^709.78
        (the sheet shows #NUM! where numpy quietly says 0). A lower end_lr keeps the scores small."""
        score = SIGMOID_SCORE.get(self.base.model)
        if score is None:
            return
        over = np.flatnonzero(-trace.examples[score] > EXP_LIMIT)
        if len(over):
            step = int(np.searchsorted(np.cumsum([len(b) for _, b in lesson.batches()]), over[0], side="right")) + 1
            raise SheetsgdError(f"row {step}: a passenger's score {score} = {trace.examples[score][over[0]]:.4g} "
                                f"overflows EXP(−{score}) on the sheet; lower end_lr (now {lesson.finder['end_lr']:g})",
                                lesson.source or None)

    # ------------------------------------------------------------------------------------- columns

    def columns(self) -> list[Column]:
        cols = [Column("step", "step", None, "step", "step number t"),
                Column("epoch", "epoch", None, "step", "epoch this step belongs to"),
                Column("first", "first row", None, "step", f"first row of the batch on {EXAMPLES}"),
                Column("last", "last row", None, "step", f"last row of the batch on {EXAMPLES}")]
        if self.row_local:
            cols.append(Column("n", "batch size n", None, "step",
                               f"the step's passengers: its rows on {EXAMPLES} (those with its step number)"))
        cols += [Column(p, p, f"{{prev:new_{p}}}", "param", f"{p} for this step: the previous row's new {p}")
                 for p in self.params]
        if self.row_local:
            return cols + self._row_local_means() + self._optimizer_columns()
        cols += [Column("loss", f"mean loss ({self.loss.title})", "AVERAGE({data:ex_loss})", "loss",
                        f"mean loss over the batch's rows on {EXAMPLES}"),
                 Column("correct", "accuracy", "AVERAGE({data:ex_correct})", "loss",
                        "share of the batch predicted right at 0.5")]
        for p in self.params:
            factor, other = self.net.grad_terms()[p]
            if other is None:
                text, what = f"SUM({{data:ex_{factor}}})", factor
            elif other[0] == "q":
                text, what = f"SUMPRODUCT({{data:ex_{factor}}},{{data:ex_{other[1]}}})", f"{factor} · {other[1]}"
            else:
                feature = self.net.features[other[1]]
                text, what = f"SUMPRODUCT({{data:ex_{factor}}},{{data:x_{feature}}})", f"{factor} · {feature}"
            cols.append(Column(f"grad_{p}", f"∂L/∂{p}", f"{text}/ROWS({{data:ex_{factor}}})", "gradient",
                               f"batch mean of ∂L/∂{p} = {what}"))
        cols += self._optimizer_columns()
        return cols

    def _row_local_means(self) -> list[Column]:
        """The batch's mean loss, accuracy and gradients over the Examples rows with this row's step number."""
        def mean(*names):  # one column: by step number (one fill-down); a product: the batch's rows (batch_mean)
            if len(names) == 1:
                return f"SUMIF({{data:ex_step}},{{step}},{{data:{names[0]}}})/{{n}}"
            return f"SUMPRODUCT({','.join(f'{{data:batch_{n}}}' for n in names)})/{{n}}"

        cols = [Column("loss", f"mean loss ({self.loss.title})", mean("ex_loss"), "loss",
                       f"mean loss over the step's rows on {EXAMPLES}"),
                Column("correct", "accuracy", mean("ex_correct"), "loss", "share of the batch predicted right at 0.5")]
        for p in self.params:
            factor, other = self.net.grad_terms()[p]
            names = [f"ex_{factor}"] + ([] if other is None else [f"ex_{other[1]}" if other[0] == "q" else
                                                                   f"ex_{feature_key(self.net.features[other[1]])}"])
            what = " · ".join([factor] + ([] if other is None else [other[1] if other[0] == "q"
                                                                     else self.net.features[other[1]]]))
            cols.append(Column(f"grad_{p}", f"∂L/∂{p}", mean(*names), "gradient", f"batch mean of ∂L/∂{p} = {what}"))
        return cols

    def _optimizer_columns(self) -> list[Column]:
        """Update columns grouped by kind (all new weights side by side), as on the Titanic Steps sheet."""
        hp, opt = self.base.hyper, self.base.optimizer_obj()
        out = []
        if opt.uses_l2(hp):
            out += [Column(f"gwd_{p}", f"∂L/∂{p} + wd·{p}", f"{{grad_{p}}}+{{hp:weight_decay}}*{{{p}}}", "gradient",
                           "gradient plus L2 weight decay") for p in self.params]
        per_param = {p: opt.formulas(hp, p) for p in self.params}
        for k in range(len(per_param[self.params[0]])):
            out += [optimizer_column(opt, p, *per_param[p][k]) for p in self.params]
        return out

    # ------------------------------------------------------------------------------------- workbook

    def sheet_hyper(self) -> list[tuple[str, float]]:
        hp = self.base.hyper
        out = [(k, hp[k]) for k in self.base.optimizer_obj().sheet_hyper(hp) if k != "lr"]
        return out + ([("clip_eps", self.base.clip_eps)] if self.base.loss == "bce" else [])

    def subtitle(self) -> str:
        return f"{self.net.title} · batch size {self.base.batch_size} of the {self.base.data.n_train} training passengers"

    def _examples_ranges(self, batches) -> list[tuple[int, int]]:
        out, lo = [], 2  # 1-based first Examples row
        for _, b in batches:
            out.append((lo, lo + len(b) - 1))
            lo += len(b)
        return out

    @cached_property
    def _workbook(self) -> TitanicWorkbook:
        """The Titanic workbook's plan of the Data sheet (feature columns, rows) and its row writers."""
        return TitanicWorkbook(self.base)

    def _feature_letters(self) -> dict[str, str]:
        return {f: col(c) for f, c in zip(self.net.features, self._workbook._feature_cols)}

    def step_refs(self, batches) -> dict:
        E = {k: col(i) for k, i in self.examples_col.items()}
        X = self._feature_letters()
        if self.row_local:  # whole columns of Examples: a step's rows are those with its number
            last = 1 + sum(len(b) for _, b in batches)
            def data(name):  # ex_key: the whole column; batch_ex_key: the step's rows
                if name.startswith("batch_"):
                    return f"{EXAMPLES}!${E[name[9:]]}${{lo}}:${E[name[9:]]}${{hi}}"
                return f"{EXAMPLES}!${E[name[3:]]}$2:${E[name[3:]]}${last}"
            return {"data": data, "ranges": self._examples_ranges(batches)}

        def data(name):
            if name.startswith("ex_"):
                letter = E[name[3:]]
                return f"{EXAMPLES}!${letter}${{lo}}:${letter}${{hi}}"
            letter = X[name[2:]]
            return f"{DATA}!${letter}${{dlo}}:${letter}${{dhi}}"

        first_data_row = self._workbook._data_row
        return {"data": data, "ranges": self._examples_ranges(batches),
                "row_fields": [{"dlo": first_data_row(int(b[0])), "dhi": first_data_row(int(b[-1]))}
                               for _, b in batches]}

    def value_columns(self, batches) -> dict[str, list]:
        ranges = self._examples_ranges(batches)
        out = {"first": [lo for lo, _ in ranges], "last": [hi for _, hi in ranges]}
        return {**out, "n": [hi - lo + 1 for lo, hi in ranges]} if self.row_local else out

    @property
    def data_columns(self) -> dict[str, str]:
        """What the Introduction's legend shows for each {data:…} range."""
        X = self._feature_letters()
        out = {f"ex_{k}": f"{EXAMPLES}!{col(i)}…" for k, i in self.examples_col.items()}
        if self.row_local:  # a product's batch rows (the legend shows where they are)
            out.update({f"batch_ex_{k}": f"{EXAMPLES}!{col(i)} (the step's rows)" for k, i in self.examples_col.items()})
        else:
            out.update({f"x_{f}": f"{DATA}!{letter}…" for f, letter in X.items()})
        return out

    def write_sheets(self, book, sheets, trace, layout, batches, finder_sheet: str) -> dict:
        """Examples (one row per passenger of each step, reading its step's weights on ``finder_sheet``) and
        Data, with the Titanic workbook's own writers."""
        tw = self._workbook
        tw.book, tw.wb, tw.fmt, tw.counts = book, book.wb, book.fmt, book.counts
        if self.row_local:
            return self._write_row_local(tw, sheets, trace, layout, batches, finder_sheet)
        S = {k: col(i) for k, i in layout.columns.items()}
        groups = self.net.groups
        where = Where({k: col(i) for k, i in self.examples_col.items()},
                      group=lambda g: f"{finder_sheet}!${S[groups[g][0]]}${{sr}}:${S[groups[g][-1]]}${{sr}}",
                      param=lambda p: f"{finder_sheet}!${S[p]}${{sr}}", features=tw._data_features_row(),
                      target=f"{DATA}!$B{{dr}}")
        c = self.examples_col
        plans = [Plan(c["step"], "step", "step", None, "int", "the Finder row whose batch this row belongs to"),
                 Plan(c["passenger"], "passenger", "passenger", None, "int", "PassengerId")]
        plans += [Plan(c[q.key], q.key, q.header, q.formula(where), _group_of(q.key), q.note)
                  for q in self.forward_q + self.backward_q]
        ws = sheets[EXAMPLES]
        tw._header(ws, 0, plans)
        passengers = self.base.data.ids
        fields, steps, ids = [], [], []
        for s, (_, b) in enumerate(batches):
            sr = layout.first_step_row + 1 + s  # 1-based Finder row of step s + 1
            for i in b:
                fields.append({"r": len(fields) + 2, "sr": sr, "dr": tw._data_row(int(i))})
                steps.append(s + 1)
                ids.append(float(passengers[i]))
        values = {k: v.tolist() for k, v in trace.examples.items()}
        values.update(step=steps, passenger=ids)
        tw._rows(ws, plans, 1, fields, values, step=steps)
        ws.freeze_panes(1, 2)
        tw._write_data(sheets[DATA])
        return {"examples_sheet": EXAMPLES, "examples_columns": {k: col(i) for k, i in c.items()},
                "data_sheet": DATA, "data_rows": [tw._data_row(0), tw._data_row(len(self.base.data.y) - 1)],
                "n_train": self.base.data.n_train, "feature_columns": [col(i) for i in tw._feature_cols]}

    def _write_row_local(self, tw, sheets, trace, layout, batches, finder_sheet: str) -> dict:
        """Examples rows that carry their step's weights and passenger's features (layout version 2)."""
        n_steps = len(batches)
        first = layout.first_step_row + 1  # 1-based Finder row of step 1
        plan = tw._plan_examples_rows(finder_sheet, layout.columns, (first, first + n_steps - 1),
                                      sum(len(b) for _, b in batches))
        assert {p.key: p.col for p in plan.columns} == self.examples_col  # the Finder's ranges read these
        ws = sheets[EXAMPLES]
        tw._header(ws, 0, plan.columns)
        passengers = self.base.data.ids
        order = [int(i) for _, b in batches for i in b]
        steps = [s + 1 for s, (_, b) in enumerate(batches) for _ in b]
        values = {k: v.tolist() for k, v in trace.examples.items()}
        values.update(step=steps, passenger=[float(passengers[i]) for i in order])
        at = np.asarray(steps) - 1
        values.update(tw._lookup_values(order, {p: np.asarray(trace.steps[p], dtype=float)[at] for p in self.params}))
        tw._rows(ws, plan.columns, 1, [{"r": i + 2} for i in range(len(order))], values, step=steps)
        ws.freeze_panes(1, 2)
        tw._write_data(sheets[DATA])
        return {"examples_sheet": EXAMPLES, "examples_columns": {k: col(i) for k, i in self.examples_col.items()},
                "data_sheet": DATA, "data_rows": [tw._data_row(0), tw._data_row(len(self.base.data.y) - 1)],
                "n_train": self.base.data.n_train, "feature_columns": [col(i) for i in tw._feature_cols],
                "layout_version": self.base.layout_version}
