"""Writes a Titanic lesson workbook: Data with feature formulas, SGD steps as formula rows, Solver beside it.

Sheets
  Introduction  what the lesson is, how to read it, the data's attribution, a legend of columns.
  Steps         named hyperparameters on top, a start row (initial weights, zero optimizer state),
                then one row per step: the weights (the previous row's new ones), loss, accuracy,
                one gradient column per weight, optimizer state and the new weights.
                Batch size 1: the passenger's forward and backward quantities are in the row too.
  Examples      (batch > 1) one row per (step, passenger): forward and backward quantities, reading
                the step's weights on Steps with SUMPRODUCT(weights, Data!feature row). The step's
                gradient is SUMPRODUCT(∂loss/∂z over the batch's rows, feature column over them)/n.
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
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from xlsxwriter.utility import xl_col_to_name

from .. import __version__, progress
from ..data import sheet_float
from ..datasets import TITANIC_ATTRIBUTION
from ..errors import SheetsgdError
from ..formula import Resolver, compile_template
from ..sizeguard import WorkbookSize
from ..blocks import Block, BlockColumn, StudentPlan, write_block
from ..book import MANIFEST_VERSION, Book, BuildReport, close_workbook, lesson_entries, write_manifest_entries
from ..student import block_task_lines
from ..xlsxnames import hide_defined_names
from .engine import TitanicTrace, best_fit, first_non_finite, train
from .features import RAW_COLUMNS
from .lesson import TitanicLesson
from .nets import evaluate, example_columns

INTRO, STEPS, EXAMPLES, EPOCHS, VALIDATION, DATA, SOLVER, MANIFEST = (
    "Introduction", "Steps", "Examples", "Epochs", "Validation", "Data", "Solver", "_sheetsgd")
HYPER_FIRST_ROW = 3  # 0-based row of the first named hyperparameter on Steps
DATA_FIRST_ROW = 2  # 0-based row of the first passenger on Data (row 1 headers, row 2 column maxima)
SOLVER_ROWS = {"solver": 4, "sgd": 5, "best": 6}  # 0-based rows of the three parameter rows
SOLVER_BLOCK_HEADER = 9

HYPER_NOTES = {
    "lr": "learning rate: the step size of every update",
    "momentum": "momentum μ", "dampening": "dampening", "alpha": "α: decay of the mean of squared gradients",
    "beta1": "β1: decay of the mean of gradients (m)", "beta2": "β2: decay of the mean of squared gradients (v)",
    "eps": "ε: keeps the division by √v finite", "weight_decay": "weight decay: pulls each weight towards 0",
    "clip_eps": "ε of the loss: ŷ is clipped to [ε, 1−ε] so LN never sees 0",
}
FORMATS = {"int": "0", "general": "General", "param": "0.000000", "forward": "0.0000", "loss": "0.000000",
           "gradient": "0.000000", "state": "0.000000E+00", "update": "0.000000"}


def col(i: int) -> str:
    return xl_col_to_name(i)


@dataclass
class Plan:
    """One sheet column: header, number format, and a formula pattern (None: values)."""

    col: int
    key: str
    header: str
    pattern: str | None
    group: str
    note: str = ""


@dataclass
class SheetPlan:
    name: str
    columns: list[Plan]
    rows: int  # data rows (without headers)
    extra_cells: int = 0  # cells outside the regular rows (headers, hyperparameters, start row…)

    @property
    def letters(self) -> dict[str, str]:
        return {c.key: col(c.col) for c in self.columns}


class Where:
    """Where a per-example formula finds things, for one layout (the ``c`` of the model's builders)."""

    def __init__(self, q: dict[str, str], group, param, features: str, target: str):
        self._q, self._group, self._param = q, group, param
        self._features, self._target = features, target

    def q(self, key):
        return f"{self._q[key]}{{r}}"

    def q_range(self, first, last):
        return f"{self._q[first]}{{r}}:{self._q[last]}{{r}}"

    def group(self, name):
        return self._group(name)

    def param(self, key):
        return self._param(key)

    def features(self):
        return self._features

    def target(self):
        return self._target

    @staticmethod
    def hp(name):
        return name


class TitanicWorkbook:
    """Plans every sheet from the lesson's shape alone (so the size guard runs before any training), then writes."""

    def __init__(self, lesson: TitanicLesson):
        self.lesson = lesson
        self.net = lesson.net()
        self.loss = lesson.loss_cls()
        self.opt = lesson.optimizer_obj()
        self.data = lesson.data
        self.per_example = lesson.batch_size == 1
        self.shuffled_batches = lesson.shuffle and not self.per_example and not lesson.full_batch
        self.forward, self.backward = example_columns(self.net, self.loss)
        self.params = self.net.params
        self.hyper_names = self.opt.sheet_hyper(lesson.hyper) + (["clip_eps"] if lesson.loss == "bce" else [])
        self.data_plan = self._plan_data()
        self.steps_plan = self._plan_steps()
        self.examples_plan = self._plan_examples() if not self.per_example else None
        self.validation_plan = self._plan_block(VALIDATION, "validation") if self.data.n_valid else None
        self.solver_plans = {k: self._plan_block(SOLVER, k) for k in SOLVER_ROWS}
        self._finish_steps_plan()

    # ------------------------------------------------------------------------------------- planning

    def _plan_data(self) -> SheetPlan:
        """Raw columns (values), the set column, derived features, and (from-scratch) the scaled features."""
        raw = [Plan(i, name, name, None, "general") for i, name in enumerate(RAW_COLUMNS)]
        raw.append(Plan(len(RAW_COLUMNS), "set", "set", None, "general", "train or valid"))
        raw_letter = {name: col(i) for i, name in enumerate(RAW_COLUMNS)}
        first = len(raw)
        derived = []
        for i, f in enumerate(self.data.features):
            pattern = f.formula
            for name, letter in raw_letter.items():
                pattern = pattern.replace("{" + name + "}", f"{letter}{{r}}")
            derived.append(Plan(first + i, f"raw_{f.key}" if self.data.scale_by_max else f.key, f.header,
                                pattern, "forward", f.note))
        columns = raw + derived
        if self.data.scale_by_max:  # feature = derived value / its column maximum (row 2)
            first_scaled = first + len(derived)
            for i, f in enumerate(self.data.features):
                d = col(first + i)
                columns.append(Plan(first_scaled + i, f.key, f"{f.key}/max", f"{d}{{r}}/{d}${DATA_FIRST_ROW}",
                                    "forward", f"{f.header} divided by its column maximum (row 2)"))
            self._feature_cols = list(range(first_scaled, first_scaled + len(derived)))
        else:
            self._feature_cols = list(range(first, first + len(derived)))
        extra = len(columns) + (2 * len(derived) + 1 if self.data.scale_by_max else 1)
        return SheetPlan(DATA, columns, len(self.data.y), extra)

    def _data_features_row(self) -> str:
        f0, f1 = col(self._feature_cols[0]), col(self._feature_cols[-1])
        return f"{DATA}!${f0}{{dr}}:${f1}{{dr}}"

    def _steps_keys(self) -> list[str]:
        keys = ["step", "epoch"] + (["passenger"] if self.per_example else ["first", "last"]) + list(self.params)
        if self.per_example:
            keys += [q.key for q in self.forward + self.backward]
        else:
            keys += ["loss", "correct"]
        return keys

    def _opt_columns(self) -> list[tuple[str, str, str, str]]:
        """(key, header, template, group) of the update columns, grouped by kind so each kind is contiguous."""
        hp = self.lesson.hyper
        out = []
        if self.opt.uses_l2(hp):
            out += [(f"gwd_{p}", f"∂L/∂{p} + wd·{p}", f"{{grad_{p}}}+{{hp:weight_decay}}*{{{p}}}", "gradient")
                    for p in self.params]
        per_param = {p: self.opt.formulas(hp, p) for p in self.params}
        for k in range(len(per_param[self.params[0]])):
            for p in self.params:
                key, header, template = per_param[p][k]
                out.append((key, header, template, "update" if key.startswith("new_") else "state"))
        return out

    def _plan_steps(self) -> SheetPlan:
        """Column positions first (formulas need them), patterns in _finish_steps_plan."""
        keys = self._steps_keys() + [f"grad_{p}" for p in self.params] + [k for k, *_ in self._opt_columns()]
        self._steps_col = {k: i for i, k in enumerate(keys)}
        return SheetPlan(STEPS, [], self.lesson.n_steps)

    def _steps_where(self) -> Where:
        """Per-example formulas inside a Steps row (batch size 1): everything in this row or the Data row."""
        L = {k: col(i) for k, i in self._steps_col.items()}
        return Where(L, group=lambda g: f"{L[self.net.groups[g][0]]}{{r}}:{L[self.net.groups[g][-1]]}{{r}}",
                     param=lambda p: f"{L[p]}{{r}}", features=self._data_features_row(), target=f"{DATA}!$B{{dr}}")

    def _finish_steps_plan(self):
        c = self._steps_col
        L = {k: col(i) for k, i in c.items()}
        plans = [Plan(c["step"], "step", "step", None, "int", "step number t, counted across epochs"),
                 Plan(c["epoch"], "epoch", "epoch", None, "int", "epoch this step belongs to")]
        if self.per_example:
            plans.append(Plan(c["passenger"], "passenger", "passenger", None, "int",
                              "PassengerId of the passenger this step learns from"))
        else:
            plans += [Plan(c["first"], "first", "first row", None, "int", f"first row of the batch on {EXAMPLES}"),
                      Plan(c["last"], "last", "last row", None, "int", f"last row of the batch on {EXAMPLES}")]
        for p in self.params:
            plans.append(Plan(c[p], p, p, f"{L['new_' + p]}{{p}}", "param", f"{p} for this step: the previous row's new {p}"))
        if self.per_example:
            where = self._steps_where()
            for q in self.forward + self.backward:
                plans.append(Plan(c[q.key], q.key, q.header, q.formula(where), _group_of(q.key), q.note))
            for p in self.params:
                factor, other = self.net.grad_terms()[p]
                text = f"{L[factor]}{{r}}"
                if other is not None:
                    text += "*" + (f"{DATA}!{col(self._feature_cols[other[1]])}{{dr}}" if other[0] == "x"
                                   else f"{L[other[1]]}{{r}}")
                plans.append(Plan(c[f"grad_{p}"], f"grad_{p}", f"∂L/∂{p}", text, "gradient",
                                  _grad_note(p, factor, other, self.net.features)))
        else:
            ex = self.examples_plan.letters
            plans.append(Plan(c["loss"], "loss", f"mean loss ({self.loss.title})",
                              f"AVERAGE({EXAMPLES}!${ex['loss']}${{lo}}:${ex['loss']}${{hi}})", "loss",
                              f"mean loss over the batch's rows on {EXAMPLES}"))
            plans.append(Plan(c["correct"], "correct", "accuracy",
                              f"AVERAGE({EXAMPLES}!${ex['correct']}${{lo}}:${ex['correct']}${{hi}})", "loss",
                              "share of the batch predicted right at 0.5"))
            for p in self.params:
                factor, other = self.net.grad_terms()[p]
                f_range = f"{EXAMPLES}!${ex[factor]}${{lo}}:${ex[factor]}${{hi}}"
                if other is None:
                    text = f"SUM({f_range})/{{n}}"
                elif other[0] == "q":
                    text = f"SUMPRODUCT({f_range},{EXAMPLES}!${ex[other[1]]}${{lo}}:${ex[other[1]]}${{hi}})/{{n}}"
                elif self.shuffled_batches:  # the batch's features are copied next to it on Examples
                    x = ex[f"x_{self.net.features[other[1]]}"]
                    text = f"SUMPRODUCT({f_range},{EXAMPLES}!${x}${{lo}}:${x}${{hi}})/{{n}}"
                else:
                    x = col(self._feature_cols[other[1]])
                    text = f"SUMPRODUCT({f_range},{DATA}!${x}${{dlo}}:${x}${{dhi}})/{{n}}"
                plans.append(Plan(c[f"grad_{p}"], f"grad_{p}", f"∂L/∂{p}", text, "gradient",
                                  "batch mean of " + _grad_note(p, factor, other, self.net.features)))

        resolver = Resolver(lambda key, which: f"{L[key]}{{{'r' if which == 'this' else 'p'}}}", hp=str, data=str)
        for key, header, template, group in self._opt_columns():
            note = (f"{key[4:]} after this step: the next row starts from it" if key.startswith("new_")
                    else f"optimizer quantity {key.split('_')[0]} for {key.split('_', 1)[1]}")
            plans.append(Plan(c[key], key, header, compile_template(template, resolver), group, note))
        plans.sort(key=lambda p: p.col)
        hyper = len(self.hyper_names)
        start_cells = 2 + sum(1 for p in plans if p.key.startswith("new_") or p.group == "state")
        self.steps_plan = SheetPlan(STEPS, plans, self.lesson.n_steps, 2 + 3 * hyper + len(plans) + start_cells)

    def _plan_examples(self) -> SheetPlan:
        """One row per (step, passenger) of a batch, reading the step's weights on Steps row {sr}."""
        keys = ["step", "passenger"]
        if self.shuffled_batches:
            keys += [f"x_{f}" for f in self.net.features]
        keys += [q.key for q in self.forward + self.backward]
        c = {k: i for i, k in enumerate(keys)}
        L = {k: col(i) for k, i in c.items()}
        S = {k: col(i) for k, i in self._steps_col.items()}
        features = (f"{L['x_' + self.net.features[0]]}{{r}}:{L['x_' + self.net.features[-1]]}{{r}}"
                    if self.shuffled_batches else self._data_features_row())
        where = Where(L, group=lambda g: f"{STEPS}!${S[self.net.groups[g][0]]}${{sr}}:${S[self.net.groups[g][-1]]}${{sr}}",
                      param=lambda p: f"{STEPS}!${S[p]}${{sr}}", features=features, target=f"{DATA}!$B{{dr}}")
        plans = [Plan(c["step"], "step", "step", None, "int", "the step whose batch this row belongs to"),
                 Plan(c["passenger"], "passenger", "passenger", None, "int", "PassengerId")]
        if self.shuffled_batches:
            for i, f in enumerate(self.net.features):
                plans.append(Plan(c[f"x_{f}"], f"x_{f}", f, f"{DATA}!{col(self._feature_cols[i])}{{dr}}", "forward",
                                  f"the passenger's {f}, copied so the shuffled batch is one block"))
        for q in self.forward + self.backward:
            plans.append(Plan(c[q.key], q.key, q.header, q.formula(where), _group_of(q.key), q.note))
        rows = self.lesson.epochs * self.data.n_train
        return SheetPlan(EXAMPLES, plans, rows, len(plans))

    def _plan_block(self, sheet: str, which: str) -> SheetPlan:
        """Forward columns only (y … correct) for passengers evaluated with one fixed set of weights.

        Validation: the weights are the new weights in Steps row {sr} (the epoch's last step).
        Solver: the weights are the parameter row ``which`` of the Solver sheet, side by side blocks.
        """
        if sheet == VALIDATION:
            S = {k: col(i) for k, i in self._steps_col.items()}
            first_col = 2

            def group(g):
                keys = self.net.groups[g]
                return f"{STEPS}!${S['new_' + keys[0]]}${{sr}}:${S['new_' + keys[-1]]}${{sr}}"

            def param(p):
                return f"{STEPS}!${S['new_' + p]}${{sr}}"

            rows = self.lesson.epochs * self.data.n_valid
        else:
            width = len(self.forward)
            first_col = 1 + list(SOLVER_ROWS).index(which) * (width + 1)
            row = SOLVER_ROWS[which] + 1
            P = {p: col(3 + i) for i, p in enumerate(self.params)}

            def group(g):
                keys = self.net.groups[g]
                return f"${P[keys[0]]}${row}:${P[keys[-1]]}${row}"

            def param(p):
                return f"${P[p]}${row}"

            rows = self.data.n_train
        c = {q.key: first_col + i for i, q in enumerate(self.forward)}
        L = {k: col(i) for k, i in c.items()}
        where = Where(L, group, param, self._data_features_row(), f"{DATA}!$B{{dr}}")
        plans = [Plan(c[q.key], q.key, q.header, q.formula(where), _group_of(q.key), q.note) for q in self.forward]
        if sheet == VALIDATION:
            plans = [Plan(0, "epoch", "epoch", None, "int"), Plan(1, "passenger", "passenger", None, "int")] + plans
        elif which == "solver":
            plans = [Plan(0, "passenger", "passenger", None, "int")] + plans
        return SheetPlan(sheet, plans, rows, len(plans))

    # ------------------------------------------------------------------------------------- size

    def size(self) -> WorkbookSize:
        sheets = [self.data_plan, self.steps_plan] + [p for p in (self.examples_plan, self.validation_plan) if p]
        sheets += list(self.solver_plans.values())
        cells = formulas = 0
        longest = 0
        max_rows = max_cols = 0
        big = {k: 10 ** 7 for k in ("r", "p", "sr", "dr", "lo", "hi", "dlo", "dhi", "n")}  # ≥ any row number
        for s in sheets:
            n_formula = sum(1 for c in s.columns if c.pattern)
            cells += s.rows * len(s.columns) + s.extra_cells
            formulas += s.rows * n_formula
            for c in s.columns:
                if c.pattern:
                    longest = max(longest, len(c.pattern.format(**big)))
            max_rows = max(max_rows, s.rows + 20)
            max_cols = max(max_cols, max(c.col for c in s.columns) + 1)
        epochs = self.lesson.epochs
        cells += 7 * (epochs + 1) + 3 * (len(self.params) + 4)  # Epochs sheet, Solver parameter rows
        return WorkbookSize(cells, formulas, longest, max_rows, max_cols)

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

    def _block_shells(self) -> list[Block]:
        """Every block's place and patterns before anything is written (a student version's plan needs them)."""
        def shell(plan, name, header_row, first_row):
            return Block(plan.name, name or plan.name, header_row, first_row,
                         [BlockColumn(_data_key(c) if plan is self.data_plan else c.key, c.header, c.col, c.pattern)
                          for c in plan.columns], plan.rows)
        header = HYPER_FIRST_ROW + len(self.hyper_names) + 1
        shells = [shell(self.steps_plan, None, header, header + 2)]
        if self.examples_plan:
            shells.append(shell(self.examples_plan, None, 0, 1))
        if self.validation_plan:
            shells.append(shell(self.validation_plan, None, 0, 1))
        shells.append(shell(self.data_plan, None, 0, DATA_FIRST_ROW))
        merged = [BlockColumn(f"{w}:{c.key}", c.header, c.col, c.pattern)
                  for w in SOLVER_ROWS for c in self.solver_plans[w].columns]
        shells.append(Block(SOLVER, SOLVER, SOLVER_BLOCK_HEADER, SOLVER_BLOCK_HEADER + 1, merged, self.data.n_train))
        return shells

    def _sheet_names(self) -> list[str]:
        names = [INTRO, STEPS] + ([EXAMPLES] if self.examples_plan else []) + [EPOCHS]
        names += ([VALIDATION] if self.validation_plan else []) + [DATA, SOLVER, MANIFEST]
        return names

    def _header(self, ws, row: int, plans: list[Plan]):
        ws.set_row(row, 45)
        for c in plans:
            ws.write(row, c.col, c.header, self.fmt.header)
            ws.set_column(c.col, c.col, max(9, min(14, len(c.header) + 2)))

    def _rows(self, ws, plans, first_row: int, fields: list[dict], values: dict[str, list], header_row: int = 0,
              step=None, name: str | None = None):
        """Write len(fields) rows from first_row as one block: each plan's pattern filled with that row's fields."""
        extra = {k: [f[k] for f in fields] for k in (fields[0] if fields else {}) if k not in ("r", "p")}
        block = Block(ws.get_name(), name or ws.get_name(), header_row, first_row,
                      [BlockColumn(c.key, c.header, c.col, c.pattern, FORMATS[c.group], c.note) for c in plans],
                      len(fields), fields=extra, values=values, step=step)
        write_block(ws, self.fmt, self.counts, block, self.book.student)

    def _data_row(self, index: int) -> int:
        """1-based Data-sheet row of the passenger at sheet-order index ``index``."""
        return DATA_FIRST_ROW + 1 + index

    def _write_steps(self, ws):
        lesson, trace, fmt = self.lesson, self.trace, self.fmt
        ws.write(0, 0, lesson.title, fmt.title)
        ws.write(1, 0, f"{self.net.title} · {self.loss.title} · {self.opt.title} · batch size "
                       f"{'full' if lesson.full_batch else lesson.batch_size} · {lesson.epochs} epoch(s). "
                       "Yellow cells are inputs: change one and every row recomputes.", fmt.note)
        values = {**lesson.hyper, "clip_eps": lesson.clip_eps}
        self.hyper_cells = {}
        for i, name in enumerate(self.hyper_names):
            row = HYPER_FIRST_ROW + i
            ws.write(row, 0, name, fmt.bold)
            ws.write_number(row, 1, values[name], fmt.hyper)
            ws.write(row, 2, HYPER_NOTES.get(name, ""), fmt.note)
            self.hyper_cells[name] = f"{STEPS}!$B${row + 1}"
            self.wb.define_name(name, f"={self.hyper_cells[name]}")
        self.counts["value"] += len(self.hyper_names)
        header_row = HYPER_FIRST_ROW + len(self.hyper_names) + 1
        self.steps_header_row, self.steps_start_row = header_row, header_row + 1
        plans = self.steps_plan.columns
        self._header(ws, header_row, plans)
        start = self.steps_start_row
        ws.write_number(start, self._steps_col["step"], 0, fmt.number("0", True))
        ws.write(start, self._steps_col["epoch"], "start", fmt.number("General", True))
        init = dict(zip(self.params, lesson.init.tolist()))
        start_state = self.opt.start_state(lesson.hyper)  # zeros, or classic RMSProp's v0 (an input then)
        for c in plans:
            if c.key.startswith("new_"):
                ws.write_number(start, c.col, init[c.key[4:]], fmt.hyper)
            elif c.group == "state":
                if c.key.split("_")[0] in self.opt.state:
                    value = start_state[c.key.split("_")[0]]
                    ws.write_number(start, c.col, value, fmt.hyper if lesson.hyper.get("classic") and value
                                    else fmt.number(FORMATS["state"], True))
        self.counts["value"] += 2 + len(self.params) + len(self.params) * len(self.opt.state)

        values = {k: v.tolist() for k, v in trace.steps.items()}
        first_row0 = start + 1
        self.steps_first_row = first_row0 + 1  # 1-based row of step 1
        fields = []
        if self.per_example:
            for s, batch in enumerate(trace.batches):
                r = first_row0 + s + 1
                fields.append({"r": r, "p": r - 1, "dr": self._data_row(int(batch[0]))})
        else:
            self.example_ranges = []
            lo = 2  # 1-based first Examples row
            for s, batch in enumerate(trace.batches):
                r = first_row0 + s + 1
                hi = lo + len(batch) - 1
                fields.append({"r": r, "p": r - 1, "lo": lo, "hi": hi, "n": len(batch),
                               "dlo": self._data_row(int(batch[0])), "dhi": self._data_row(int(batch[-1]))})
                self.example_ranges.append((lo, hi))
                lo = hi + 1
            values["first"] = [lo for lo, _ in self.example_ranges]
            values["last"] = [hi for _, hi in self.example_ranges]
        self._rows(ws, plans, first_row0, fields, values, header_row=header_row)
        self.steps_last_row = first_row0 + len(fields)  # 1-based row of the last step
        ws.freeze_panes(start, 3)

    def _write_examples(self, ws):
        plans = self.examples_plan.columns
        self._header(ws, 0, plans)
        trace = self.trace
        passengers = self.data.passengers["PassengerId"]
        fields, step_values, passenger_values, x_copies = [], [], [], []
        for s, batch in enumerate(trace.batches):
            sr = self.steps_first_row + s
            for i in batch:
                r = len(fields) + 2
                fields.append({"r": r, "sr": sr, "dr": self._data_row(int(i))})
                step_values.append(s + 1)
                passenger_values.append(float(passengers[i]))
                x_copies.append(int(i))
        values = {k: v.tolist() for k, v in trace.examples.items()}
        values.update(step=step_values, passenger=passenger_values)
        if self.shuffled_batches:
            X = self.data.X[x_copies]
            values.update({f"x_{f}": X[:, i].tolist() for i, f in enumerate(self.net.features)})
        self._rows(ws, plans, 1, fields, values, step=step_values)
        ws.freeze_panes(1, 2)

    def _epoch_last_steps(self) -> list[tuple[int, int]]:
        """(first, last) 1-based Steps rows of each epoch."""
        epochs = self.trace.steps["epoch"].astype(int)
        out = []
        for e in range(1, self.lesson.epochs + 1):
            idx = np.flatnonzero(epochs == e)
            out.append((self.steps_first_row + int(idx[0]), self.steps_first_row + int(idx[-1])))
        return out

    def _write_validation(self, ws):
        plans = self.validation_plan.columns
        self._header(ws, 0, plans)
        n_train, n_valid = self.data.n_train, self.data.n_valid
        passengers = self.data.passengers["PassengerId"][n_train:]
        fields, values, steps = [], {k: [] for k in [c.key for c in plans]}, []
        self.validation_ranges = []
        for e, ((_, last_row), q) in enumerate(zip(self._epoch_last_steps(), self.trace.validation), start=1):
            lo = len(fields) + 2
            for j in range(n_valid):
                fields.append({"r": len(fields) + 2, "sr": last_row, "dr": self._data_row(n_train + j)})
                steps.append(last_row - self.steps_first_row + 1)
            self.validation_ranges.append((lo, lo + n_valid - 1))
            values["epoch"] += [e] * n_valid
            values["passenger"] += passengers.tolist()
            for k in q:
                if k in values:
                    values[k] += q[k].tolist()
        self._rows(ws, plans, 1, fields, values, step=steps)
        ws.freeze_panes(1, 2)

    def _write_epochs(self, ws):
        fmt, lesson, ep = self.fmt, self.lesson, self.trace.epochs
        headers = ["epoch", "first step", "last step", "training loss (mean over the epoch's passengers)",
                   "training accuracy"]
        has_valid = bool(self.validation_plan)
        if has_valid:
            headers += ["validation loss (after the epoch)", "validation accuracy"]
        ws.set_row(0, 45)
        ws.write_row(0, 0, headers, fmt.header)
        ws.set_column(0, 2, 10)
        ws.set_column(3, 6, 16)
        if self.per_example:
            src_sheet, letters = STEPS, self.steps_plan.letters
        else:
            src_sheet, letters = EXAMPLES, self.examples_plan.letters
        step_ranges = self._epoch_last_steps()
        steps_per_epoch = [int(np.sum(self.trace.steps["epoch"] == e)) for e in range(1, lesson.epochs + 1)]
        number = fmt.number("0.000000")
        step_no = 0
        for e in range(1, lesson.epochs + 1):
            first_step_row, last_step_row = step_ranges[e - 1]
            if self.per_example:
                lo, hi = first_step_row, last_step_row
            else:
                lo = self.example_ranges[step_no][0]
                hi = self.example_ranges[step_no + steps_per_epoch[e - 1] - 1][1]
            ws.write_number(e, 0, e)
            ws.write_number(e, 1, step_no + 1)
            ws.write_number(e, 2, step_no + steps_per_epoch[e - 1])
            step_no += steps_per_epoch[e - 1]
            for j, key in ((3, "loss"), (4, "correct")):
                name = "train_loss" if key == "loss" else "train_accuracy"
                ws.write_formula(e, j, f"=AVERAGE({src_sheet}!${letters[key]}${lo}:${letters[key]}${hi})", number,
                                 float(ep[name][e - 1]))
            if has_valid:
                vlo, vhi = self.validation_ranges[e - 1]
                v = self.validation_plan.letters
                for j, key, name in ((5, "loss", "valid_loss"), (6, "correct", "valid_accuracy")):
                    ws.write_formula(e, j, f"=AVERAGE({VALIDATION}!${v[key]}${vlo}:${v[key]}${vhi})", number,
                                     float(ep[name][e - 1]))
        n_formula = 4 if has_valid else 2
        self.counts["formula"] += n_formula * lesson.epochs
        self.counts["value"] += 3 * lesson.epochs
        ws.freeze_panes(1, 0)

        E = lesson.epochs
        top = 1 if E <= 40 else E + 3  # beside a short table, below a long one
        for title, series, at in (("Loss per epoch", [(3, "training"), (5, "validation")], top),
                                  ("Accuracy per epoch", [(4, "training"), (6, "validation")], top + 17)):
            chart = self.wb.add_chart({"type": "line"})
            for column, name in series:
                if column <= 4 or has_valid:
                    chart.add_series({"name": name, "categories": [EPOCHS, 1, 0, E, 0],
                                      "values": [EPOCHS, 1, column, E, column], "marker": {"type": "circle"}})
            chart.set_title({"name": title})
            chart.set_x_axis({"name": "epoch"})
            chart.set_y_axis({"name": title.split()[0].lower()})
            chart.set_size({"width": 600, "height": 300})
            ws.insert_chart(at, 8, chart)
        by_step = self.wb.add_chart({"type": "line"})
        loss_col = self._steps_col["loss"]
        by_step.add_series({"name": "loss", "categories": [STEPS, self.steps_first_row - 1, 0, self.steps_last_row - 1, 0],
                            "values": [STEPS, self.steps_first_row - 1, loss_col, self.steps_last_row - 1, loss_col],
                            "line": {"width": 1}})
        by_step.set_title({"name": "Training loss by step"})
        by_step.set_x_axis({"name": "step"})
        by_step.set_y_axis({"name": "loss"})
        by_step.set_legend({"none": True})
        by_step.set_size({"width": 600, "height": 300})
        ws.insert_chart(top + 34, 8, by_step)

    def _write_data(self, ws):
        fmt, data = self.fmt, self.data
        plans = self.data_plan.columns
        self._header(ws, 0, plans)
        ws.write(1, len(RAW_COLUMNS), "column max →" if data.scale_by_max else "", fmt.note)
        n = len(data.y)
        last_row = DATA_FIRST_ROW + n  # 1-based
        number = fmt.number("General")
        if data.scale_by_max:
            for i, c in enumerate(p for p in plans if p.key.startswith("raw_")):
                ws.write_formula(1, c.col, f"=MAX({col(c.col)}${DATA_FIRST_ROW + 1}:{col(c.col)}${last_row})",
                                 fmt.number("0.0000"), float(data.column_max[i]))
            self.counts["formula"] += len(data.features)
        pas = data.passengers
        set_values = ["train"] * data.n_train + ["valid"] * data.n_valid
        feature_keys = [p.key for p in plans if p.pattern]
        derived = data.unscaled.tolist()
        scaled = data.X.tolist()
        block = Block(DATA, DATA, 0, DATA_FIRST_ROW,
                      [BlockColumn(_data_key(c), c.header, c.col, c.pattern, FORMATS[c.group], c.note,
                                   "" if c.pattern else "input") for c in plans], n,
                      values={}, step=np.zeros(n, dtype=np.int64))
        self.book.blocks.append(block)
        student = self.book.student
        compiled = [(c.col, c.pattern, fmt.number(FORMATS[c.group], blank=bool(student and student.is_blank(block, c.key))),
                     bool(student and student.is_blank(block, c.key)), student.dirty_from(block, c.key) if student else n)
                    for c in plans if c.pattern]
        raw = [(i, name, pas[name]) for i, name in enumerate(RAW_COLUMNS)]
        write_formula = getattr(ws, "write_formula_unchecked", ws.write_formula)  # the block decided its caching
        written = 0
        for i in progress.rows(range(n), DATA):
            row = DATA_FIRST_ROW + i
            for j, name, values in raw:
                v = values[i]
                if isinstance(v, str):
                    if v:
                        ws.write_string(row, j, v)
                        written += 1
                elif v == v:  # a missing number stays a blank cell, as in the CSV
                    ws.write_number(row, j, float(v), number)
                    written += 1
            ws.write_string(row, len(RAW_COLUMNS), set_values[i])
            f = {"r": row + 1}
            cached = derived[i] + (scaled[i] if data.scale_by_max else [])
            for (j, pattern, cell_format, blank, dirty), value in zip(compiled, cached):
                if blank:
                    ws.write_blank(row, j, None, cell_format)
                else:
                    write_formula(row, j, "=" + pattern.format_map(f), cell_format, "" if i >= dirty else value)
        self.counts["formula"] += n * len(feature_keys)
        self.counts["value"] += written + n  # raw values and the set column
        ws.freeze_panes(DATA_FIRST_ROW, 2)

    def _write_solver(self, ws):
        fmt, lesson, net, loss = self.fmt, self.lesson, self.net, self.loss
        data = self.data
        # a rebuild for the checker needs the blocks, not the best fit (a long full-batch run)
        if not self.book.null:
            progress.stage("Solver: best fit")
        best, how = (lesson.init, "not computed") if self.book.null else best_fit(lesson)
        best = np.array([sheet_float(v) for v in best])  # as the sheet stores them
        X, y = data.X[:data.n_train], data.y[:data.n_train]
        param_rows = {"solver": lesson.init, "sgd": self.trace.final, "best": best}
        ws.write(0, 0, "Solver beside SGD: the same training loss from one row of weights", fmt.title)
        ws.write(1, 0, "Excel: Data ▸ Solver is set up to minimise the yellow loss by changing the yellow weights "
                       "(GRG Nonlinear, unconstrained). Google Sheets and LibreOffice have no Excel Solver: "
                       "the Steps sheet is how they train.", fmt.note)
        ws.write(2, 0, f"Best fit: {how}. Training rows: {data.n_train}.", fmt.note)
        ws.write_row(3, 0, ["weights", "training loss", "accuracy"] + list(self.params), fmt.header)
        ws.set_column(0, 0, 26)
        labels = {"solver": "Solver (starts at the initial weights)", "sgd": "SGD after the last step",
                  "best": "best fit (engine)"}
        blocks = self.solver_plans
        first_data_row = SOLVER_BLOCK_HEADER + 2  # 1-based first passenger row
        last_data_row = first_data_row + data.n_train - 1
        evaluated = {k: evaluate(net, loss, param_rows[k], X, y, lesson.clip_eps, with_backward=False)
                     for k in SOLVER_ROWS}
        for which, row in SOLVER_ROWS.items():
            L = blocks[which].letters
            ws.write(row, 0, labels[which], fmt.bold)
            q = evaluated[which]
            ws.write_formula(row, 1, f"=AVERAGE({L['loss']}{first_data_row}:{L['loss']}{last_data_row})",
                             fmt.hyper if which == "solver" else fmt.number("0.000000"), float(np.mean(q["loss"])))
            ws.write_formula(row, 2, f"=AVERAGE({L['correct']}{first_data_row}:{L['correct']}{last_data_row})",
                             fmt.number("0.0000"), float(np.mean(q["correct"])))
            for i, p in enumerate(self.params):
                value = float(param_rows[which][i])
                if which == "sgd":
                    ref = f"={STEPS}!${col(self._steps_col['new_' + p])}${self.steps_last_row}"
                    ws.write_formula(row, 3 + i, ref, fmt.number("0.000000"), value)
                else:
                    ws.write_number(row, 3 + i, value, fmt.hyper if which == "solver" else fmt.number("0.000000"))
        self.counts["formula"] += 6 + len(self.params)
        self.counts["value"] += 2 * len(self.params)
        last_param = col(3 + len(self.params) - 1)
        solver_row = SOLVER_ROWS["solver"] + 1
        names = {"solver_opt": f"{SOLVER}!$B${solver_row}", "solver_adj": f"{SOLVER}!$D${solver_row}:${last_param}${solver_row}",
                 "solver_typ": "2", "solver_eng": "1", "solver_neg": "2", "solver_num": "0", "solver_ver": "3"}
        for name, ref in names.items():
            self.wb.define_name(f"{SOLVER}!{name}", f"={ref}")
        self.solver_names = names

        # the three evaluation blocks, side by side: one row per training passenger
        for which in SOLVER_ROWS:
            plans = blocks[which].columns
            first = min(p.col for p in plans if p.pattern)
            ws.write(SOLVER_BLOCK_HEADER - 1, first, f"{labels[which]}: each passenger", fmt.bold)
        merged, values = [], {}
        for which in SOLVER_ROWS:  # one sheet's rows go out in order (constant_memory): all blocks row by row
            for c in blocks[which].columns:
                merged.append(Plan(c.col, f"{which}:{c.key}", c.header, c.pattern, c.group))
                values[f"{which}:{c.key}"] = (data.passengers["PassengerId"][:data.n_train].tolist()
                                              if c.key == "passenger" else evaluated[which][c.key].tolist())
        self._header(ws, SOLVER_BLOCK_HEADER, merged)
        ws.set_column(0, 0, 26)
        fields = [{"r": first_data_row + i, "dr": self._data_row(i)} for i in range(data.n_train)]
        self._rows(ws, merged, first_data_row - 1, fields, values, header_row=SOLVER_BLOCK_HEADER,
                   step=[self.trace.n_steps] * len(fields))
        ws.freeze_panes(SOLVER_BLOCK_HEADER, 1)

    def _write_intro(self, ws):
        fmt, lesson, data = self.fmt, self.lesson, self.data
        ws.set_column(0, 0, 28)
        ws.set_column(1, 1, 70)
        ws.set_column(2, 2, 70)
        ws.write(0, 0, lesson.title, fmt.title)
        row = 2
        for para in [p.strip() for p in lesson.description.strip().split("\n\n") if p.strip()]:
            ws.merge_range(row, 0, row, 2, " ".join(para.split()), fmt.wrap)
            ws.set_row(row, 15 * (1 + len(para) // 150))
            row += 1
        row += 1
        split = (f"{data.n_train} training passengers, {data.n_valid} validation passengers (seeded random split)"
                 if data.n_valid else f"all {data.n_train} passengers train (no validation split)")
        facts = [
            ("data", f"preset {data.preset}: {len(data.y)} passengers on the Data sheet"
                     + (f" ({data.dropped} dropped for a missing Age or Embarked)" if data.dropped else "")
                     + f"; {split}."),
            ("features", ", ".join(f.header for f in data.features)
             + (" — each divided by its column maximum (Data row 2)." if data.scale_by_max else ".")),
            ("model", f"{self.net.title}: {self.net.__doc__.strip()}"),
            ("loss", self.loss.title + (" (ŷ clipped to [clip_eps, 1 − clip_eps])" if lesson.loss == "bce" else "")),
            ("training", f"{self.opt.title}, batch size {'full' if lesson.full_batch else lesson.batch_size}, "
                         f"{lesson.epochs} epoch(s), {self.trace.n_steps} steps"),
            ("source", TITANIC_ATTRIBUTION),
        ]
        for label, text in facts:
            ws.write(row, 0, label, fmt.bold)
            ws.write(row, 1, text)
            row += 1
        row += 1
        if self.book.exercise:  # a student version: what to do, in words (never the formulas)
            ws.write(row, 0, "Your task", fmt.title)
            row += 1
            for line in block_task_lines(self.book.blocks, self.book.exercise):
                ws.write(row, 0, "•")
                ws.write(row, 1, line)
                row += 1
            row += 1
        ws.write(row, 0, "How to read it", fmt.bold)
        row += 1
        how = [
            "Data: raw columns are values; every feature is a formula over them (click a cell to see it).",
            "Steps: the yellow cells on top are named inputs (lr, …); the grey start row holds the initial weights.",
            "Each Steps row is one step: weights (the previous row's new ones), loss, accuracy, one gradient per "
            "weight, the update and the new weights.",
            ("Each step's passengers are one block of rows on Examples: prediction, loss and the chain rule per "
             "passenger; Steps averages them." if not self.per_example else
             "With batch size 1, the passenger's prediction, loss and chain rule sit in the step's own row."),
            "Epochs: loss and accuracy per epoch (training and validation) with charts.",
            "Solver: the same loss from one row of weights, ready for Excel's Solver, beside SGD and the best fit.",
            "No macros: the workbook recalculates the same in Excel, Google Sheets and LibreOffice.",
        ]
        for line in how:
            ws.write(row, 0, "•")
            ws.write(row, 1, line)
            row += 1
        if lesson.tips:
            row += 1
            ws.write(row, 0, "Things to try", fmt.bold)
            row += 1
            for tip in lesson.tips:
                ws.write(row, 0, "•")
                ws.write(row, 1, tip)
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
                ws.write(row, 0, c.header, fmt.bold)
                ws.write(row, 1, c.note)
                blank = c.key in self.book.exercise.get(name, ())
                ws.write_string(row, 2, "(yours to write: see Your task)" if blank else
                                c.pattern.format_map(f) if c.pattern else "(a value)")
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


def _data_key(plan: Plan) -> str:
    """Data block keys: the CSV's raw columns are inputs named csv:…, the features keep their names."""
    return plan.key if plan.pattern else f"csv:{plan.key}"


def _group_of(key: str) -> str:
    if key in ("loss", "correct", "pc"):
        return "loss"
    if key.startswith("d"):
        return "gradient"
    return "forward"


def _grad_note(p, factor, other, features) -> str:
    if other is None:
        return f"∂L/∂{p} = {factor}"
    what = features[other[1]] if other[0] == "x" else other[1]
    return f"∂L/∂{p} = {factor} · {what}"


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
