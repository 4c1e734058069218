"""The Titanic workbook's plans: every sheet's columns (header, number format, formula pattern) from the
lesson's shape alone, so the size guard runs before any training, and the blocks they make.

A column's formula is compiled once into a pattern with row fields ({r} this row, {p} previous row, {sr}
the step's Steps row, {dr} the passenger's Data row, {lo}/{hi} a batch's rows, {dlo}/{dhi} its Data rows,
{n} its size); the writers only fill them in.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sheetsgd.sheet.blocks import Block, BlockColumn
from sheetsgd.sheet.formula import Resolver, compile_template
from sheetsgd.lessons.sizeguard import WorkbookSize
from .dropout import SUFFIX
from .lookups import ROW_KEY, batch_mean, feature_key, lookup_columns
from .layout import (DATA, DATA_FIRST_ROW, EXAMPLES, HYPER_FIRST_ROW, SOLVER, SOLVER_BLOCK_HEADER, SOLVER_ROWS, STEPS, VALIDATION, col)


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

    def target(self, j=None):
        """The example's target on Data: y (one column) or the j-th (0-based) one-hot column."""
        return self._target if j is None else self._target[j]

    @staticmethod
    def hp(name):
        return name



class PlansMixin:
    """TitanicWorkbook's planning: the Data, Steps, Examples, Validation and Solver plans, the size, the shells."""

    def _plan_data(self) -> SheetPlan:
        """Raw columns (values), the set column, derived features, and (from-scratch) the scaled features."""
        names = self.data.raw_columns
        headers = self.data.raw_headers or names  # an author's CSV: its own column names above the cells
        raw = [Plan(i, name, header, None, "general") for i, (name, header) in enumerate(zip(names, headers))]
        raw.append(Plan(len(names), "set", "set", None, "general", "train or valid"))
        raw_letter = {name: col(i) for i, name in enumerate(names)}
        first = len(raw)
        derived = []
        for i, f in enumerate(self.data.features + self.data.targets):
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
            self._feature_cols = list(range(first, first + len(self.data.features)))
        n_features = len(self.data.features)
        self._target_letters = ([col(first + n_features + j) for j in range(len(self.data.targets))]
                                if self.data.targets else ["B"])
        self._target = ([f"{DATA}!${x}{{dr}}" for x in self._target_letters] if self.data.targets
                        else f"{DATA}!$B{{dr}}")
        extra = len(columns) + (2 * len(derived) + 1 if self.data.scale_by_max else 1)
        return SheetPlan(DATA, columns, len(self.data.y), extra)

    def _target_at(self, row_letter: str):
        """Row-local targets: y (or each one-hot column) looked up on Data by the row in ``row_letter``."""
        last = DATA_FIRST_ROW + len(self.data.y)
        found = [f"INDEX({DATA}!{x}$1:{x}${last},${row_letter}{{r}},1)" for x in self._target_letters]
        return found if self.data.targets else found[0]

    @property
    def step_rows(self) -> tuple[int, int]:
        """1-based Steps rows of step 1 and of the last step (known before writing: the plan fixes them)."""
        first = HYPER_FIRST_ROW + len(self.hyper_names) + 4
        return first, first + self.lesson.n_steps - 1

    def _data_features_row(self) -> str:
        f0, f1 = col(self._feature_cols[0]), col(self._feature_cols[-1])
        return f"{DATA}!${f0}{{dr}}:${f1}{{dr}}"

    def _steps_keys(self) -> list[str]:
        keys = ["step", "epoch"] + [k for k, *_ in self._schedule_columns()] + (["passenger"] if self.per_example else ["first", "last"])
        if self.row_local:  # the passenger's Data row (per example), the batch size (per batch)
            keys += [ROW_KEY] if self.per_example else ["n"]
        keys += list(self.params)
        if self.per_example:
            keys += [feature_key(f) for f in self.net.features] if self.row_local else []
            keys += [q.key for q in self.forward + self.backward]
        else:
            keys += [k + run for run in getattr(self.net, "runs", ("",)) for k in ("loss", "correct")]
        return keys

    def _opt_columns(self) -> list[tuple[str, str, str, str]]:
        """(key, header, template, group) of the update columns, grouped by kind so each kind is contiguous."""
        hp = self.lesson.hyper
        out = []
        if self.opt.uses_l2(hp):
            out += [(f"gwd_{p}", f"∂L/∂{p} + wd·{p}", f"{{grad_{p}}}+{{hp:weight_decay}}*{{{p}}}", "gradient")
                    for p in self.params]
        per_param = {p: self.opt.formulas(hp, p) for p in self.params}
        schedule = self.lesson.schedule
        for k in range(len(per_param[self.params[0]])):
            for p in self.params:
                key, header, template = per_param[p][k]
                template = schedule.rewrite(template, self.lesson.optimizer) if schedule else template
                out.append((key, header, template, "update" if key.startswith("new_") else "state"))
        return out

    def _schedule_columns(self) -> list[tuple[str, str, str, str]]:
        """(key, header, template, note) of the lr schedule's columns (none without a [schedule])."""
        schedule = self.lesson.schedule
        return schedule.formulas(self.lesson.optimizer) if schedule else []

    def _plan_steps(self) -> SheetPlan:
        """Column positions first (formulas need them), patterns in _finish_steps_plan."""
        keys = self._steps_keys() + [f"grad_{p}" for p in self.params] + [k for k, *_ in self._opt_columns()]
        self._steps_col = {k: i for i, k in enumerate(keys)}
        return SheetPlan(STEPS, [], self.lesson.n_steps)

    def _steps_where(self) -> Where:
        """Per-example formulas inside a Steps row (batch size 1): everything in this row or the Data row."""
        L = {k: col(i) for k, i in self._steps_col.items()}
        return self._row_where(L) if self.row_local else Where(
            L, group=lambda g: f"{L[self.net.groups[g][0]]}{{r}}:{L[self.net.groups[g][-1]]}{{r}}",
            param=lambda p: f"{L[p]}{{r}}", features=self._data_features_row(), target=self._target)

    def _row_where(self, L: dict[str, str], weights=lambda p: p) -> Where:
        """Row-local: the weights (keys ``weights(p)``), the features and the Data row are in this row."""
        groups, feats = self.net.groups, self.net.features
        return Where(L, group=lambda g: f"{L[weights(groups[g][0])]}{{r}}:{L[weights(groups[g][-1])]}{{r}}",
                     param=lambda p: f"{L[weights(p)]}{{r}}",
                     features=f"{L[feature_key(feats[0])]}{{r}}:{L[feature_key(feats[-1])]}{{r}}",
                     target=self._target_at(L[ROW_KEY]))

    def _finish_steps_plan(self):
        c = self._steps_col
        L = {k: col(i) for k, i in c.items()}
        plans = [Plan(c["step"], "step", "step", None, "int", "step number t, counted across epochs"),
                 Plan(c["epoch"], "epoch", "epoch", None, "int", "epoch this step belongs to")]
        if self.per_example:
            plans.append(Plan(c["passenger"], "passenger", self.data.noun, None, "int",
                              f"{self.data.id_column} of the {self.data.noun} this step learns from"))
        else:
            plans += [Plan(c["first"], "first", "first row", None, "int", f"first row of the batch on {EXAMPLES}"),
                      Plan(c["last"], "last", "last row", None, "int", f"last row of the batch on {EXAMPLES}")]
        if self.row_local and not self.per_example:
            plans.append(Plan(c["n"], "n", "batch size n", None, "int",
                              f"the step's {self.data.noun}s: its rows on {EXAMPLES} (those with its step number)"))
        elif self.row_local:
            last = DATA_FIRST_ROW + len(self.data.y)
            looked, _ = lookup_columns(Plan, c[ROW_KEY], None, {}, STEPS, self.step_rows, self.net.features,
                                       self._feature_cols, last, self.data.noun)
            plans += [Plan(c[p.key], p.key, p.header, p.pattern, p.group, p.note) for p in looked]
        for p in self.params:
            plans.append(Plan(c[p], p, p, f"{L['new_' + p]}{{p}}", "param", f"{p} for this step: the previous row's new {p}"))
        if self.per_example:
            where = self._steps_where()
            for q in self.forward + self.backward:
                plans.append(Plan(c[q.key], q.key, q.header, _pattern(q, where), _group_of(q.key, bool(self.data.targets)), q.note))
            for p in self.params:
                factor, other = self.net.grad_terms()[p]
                text = f"{L[factor]}{{r}}"
                if other is not None and other[0] == "x" and self.row_local:
                    text += f"*{L[feature_key(self.net.features[other[1]])]}{{r}}"
                elif other is not None:
                    text += "*" + (f"{DATA}!{col(self._feature_cols[other[1]])}{{dr}}" if other[0] == "x"
                                   else f"{L[other[1]]}{{r}}")
                plans.append(Plan(c[f"grad_{p}"], f"grad_{p}", f"∂L/∂{p}", text, "gradient",
                                  _grad_note(p, factor, other, self.net.features)))
        else:
            ex = self.examples_plan.letters
            if self.row_local:
                plans += self._batch_aggregates(c, ex)
            for run in getattr(self.net, "runs", ("",)) if not self.row_local else ():  # a dropout lesson: the twin without dropout too (_0)
                loss, correct, which = "loss" + run, "correct" + run, " · no dropout" if run else ""
                plans.append(Plan(c[loss], loss, f"mean loss ({self.loss.title}){which}",
                                  f"AVERAGE({EXAMPLES}!${ex[loss]}${{lo}}:${ex[loss]}${{hi}})", "loss",
                                  f"mean loss over the batch's rows on {EXAMPLES}"))
                plans.append(Plan(c[correct], correct, "accuracy" + which,
                                  f"AVERAGE({EXAMPLES}!${ex[correct]}${{lo}}:${ex[correct]}${{hi}})", "loss",
                                  "share of the batch predicted right" + ("" if self.data.targets else " at 0.5")))
            for p in self.params if not self.row_local else ():
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
        for key, header, template, note in self._schedule_columns():
            plans.append(Plan(c[key], key, header, compile_template(template, resolver), "state", note))
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
        if self.row_local:
            return self._plan_examples_rows()
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
                      param=lambda p: f"{STEPS}!${S[p]}${{sr}}", features=features, target=self._target)
        plans = [Plan(c["step"], "step", "step", None, "int", "the step whose batch this row belongs to"),
                 Plan(c["passenger"], "passenger", self.data.noun, None, "int", self.data.id_column)]
        if self.shuffled_batches:
            for i, f in enumerate(self.net.features):
                plans.append(Plan(c[f"x_{f}"], f"x_{f}", f, f"{DATA}!{col(self._feature_cols[i])}{{dr}}", "forward",
                                  f"the {self.data.noun}'s {f}, copied so the shuffled batch is one block"))
        for q in self.forward + self.backward:
            plans.append(Plan(c[q.key], q.key, q.header, _pattern(q, where), _group_of(q.key, bool(self.data.targets)), q.note))
        rows = self.lesson.epochs * self.data.n_train
        return SheetPlan(EXAMPLES, plans, rows, len(plans))

    def _plan_block(self, sheet: str, which: str) -> SheetPlan:
        """Forward columns only (y … correct) for passengers evaluated with one fixed set of weights.

        Validation: the weights are the new weights in Steps row {sr} (the epoch's last step).
        Solver: the weights are the parameter row ``which`` of the Solver sheet, side by side blocks.
        """
        if sheet == VALIDATION and self.row_local:
            return self._plan_validation_rows()
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
            width = len(self.block_forward)
            first_col = 1 + list(SOLVER_ROWS).index(which) * (width + 1)
            row = SOLVER_ROWS[which] + 1
            P = {p: col(3 + i) for i, p in enumerate(self.params)}

            def group(g):
                keys = self.net.groups[g]
                return f"${P[keys[0]]}${row}:${P[keys[-1]]}${row}"

            def param(p):
                return f"${P[p]}${row}"

            rows = self.data.n_train
        c = {q.key: first_col + i for i, q in enumerate(self.block_forward)}
        L = {k: col(i) for k, i in c.items()}
        where = Where(L, group, param, self._data_features_row(), self._target)
        plans = [Plan(c[q.key], q.key, q.header, _pattern(q, where), _group_of(q.key, bool(self.data.targets)), q.note) for q in self.block_forward]
        if sheet == VALIDATION:
            plans = [Plan(0, "epoch", "epoch", None, "int"), Plan(1, "passenger", self.data.noun, None, "int")] + plans
        elif which == "solver":
            plans = [Plan(0, "passenger", self.data.noun, None, "int")] + plans
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
        runs = len(getattr(self.net, "runs", ("",)))  # a dropout lesson's Epochs shows both nets
        cells += (3 + 4 * runs) * (epochs + 1) + 3 * (len(self.params) + 4)  # Epochs sheet, Solver parameter rows
        # formulas outside the rows: Epochs' averages, Solver's loss, accuracy and SGD row, Data's column maxima
        formulas += 4 * runs * epochs + 6 + len(self.params) + (len(self.data.features) if self.data.scale_by_max else 0)
        return WorkbookSize(cells, formulas, longest, max_rows, max_cols)

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


def _data_key(plan: Plan) -> str:
    """Data block keys: the CSV's raw columns are inputs named csv:…, the features keep their names."""
    return plan.key if plan.pattern else f"csv:{plan.key}"


def _pattern(q, where) -> str | None:
    """A quantity's formula pattern; None for a given one (a dropout mask)."""
    return q.formula(where) if q.formula else None


def _group_of(key: str, classes: bool = False) -> str:
    key = key.removesuffix(SUFFIX)  # the twin without dropout: as its dropout net's column
    if re.fullmatch(r"m\d+", key):
        return "int"  # a dropout mask: 0 or 1
    if classes and key in ("pred", "correct") or classes and key.startswith("y"):
        return "int"  # the predicted class, right or wrong, a one-hot target: whole numbers
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
