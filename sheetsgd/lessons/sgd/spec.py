"""The column spec: one list that ties a sheet's columns to the engine's quantities.

Each step column has a key (the name of the engine quantity it must equal, e.g. ``grad_a``), a
header, and either a formula template or nothing (a value column: step number, example, start
values). The writer renders the templates row by row and caches the engine's values; the checker
reads the same spec to know what each cell should hold.

Template placeholders (resolved by :mod:`sheetsgd.sheet.formula`):

``{key}``        this row's cell of column ``key``
``{prev:key}``   the previous row's cell (the start row above step 1 holds initial values)
``{hp:name}``    the named hyperparameter cell ``name`` (lr, beta1, …, fd_step)
``{data:col}``   data column ``col``: the whole column for INDEX, or this step's batch range
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .lesson import Lesson
from sheetsgd.lessons.schedules import Schedule

SPEC_VERSION = 1

# how a column is shown: number format per group
# General adapts its decimals to the column width (never ####) for quantities whose size varies widely
GROUP_FORMATS = {
    "step": "0", "data": "General", "param": "0.000000", "forward": "General", "loss": "General",
    "gradient": "General", "estimate": "General", "state": "General", "update": "0.000000",
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    formula: str | None  # template; None: a value column
    group: str
    note: str = ""
    start_value: str | None = None  # the start row holds this trace-free value: "init" or "zero"

    @property
    def number_format(self) -> str:
        return GROUP_FORMATS[self.group]


def _sub(template: str, mapping: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders found in mapping, leaving all others for later."""
    return re.sub(r"\{(\w+)\}", lambda m: mapping.get(m.group(1), m.group(0)), template)


def step_columns(lesson: Lesson) -> list[Column]:
    """The Steps sheet's columns, left to right, for this lesson's model, loss, optimizer and batch size."""
    model, loss, opt = lesson.model_cls(), lesson.loss_cls(), lesson.optimizer_obj()
    hp = lesson.hyper
    per_example = lesson.batch_size == 1
    x_name, y_name = "x", "y"
    cols = [Column("step", "step", None, "step", "step number t, counted across epochs"),
            Column("epoch", "epoch", None, "step", "epoch this step belongs to")]
    if per_example:
        cols += [
            Column("example", "example #", None, "step", "which data row this step learns from"),
            Column(x_name, lesson.data.x_name, f"INDEX({{data:{x_name}}},{{example}})", "data", "the example's input"),
            Column(y_name, lesson.data.y_name, f"INDEX({{data:{y_name}}},{{example}})", "data", "the example's target"),
        ]
        X, Y = f"{{{x_name}}}", f"{{{y_name}}}"
    else:
        cols += [Column("first", "from #", None, "step", "first example of the batch"),
                 Column("last", "to #", None, "step", "last example of the batch")]
        X, Y = f"{{data:{x_name}}}", f"{{data:{y_name}}}"

    params = model.params
    for p in params:
        cols.append(Column(p, model.param_titles[p], f"{{prev:new_{p}}}", "param",
                           f"{p} for this step: the previous row's new {p}"))
    predict = _sub(model.predict_formula, {"X": X})

    def shifted(p, sign="+"):  # the prediction with parameter p nudged by ±fd_step
        return _sub(model.predict_formula, {"X": X, p: f"({{{p}}}{sign}{{hp:fd_step}})"})

    def mean(expr):  # batch mean written as the spreadsheet sees it
        if row_local_batches(lesson):  # the step's examples picked out of all of them by position: one fill-down
            return (f"SUMPRODUCT(({{data:pos}}>={{first}})*({{data:pos}}<={{last}})*{_paren(expr)})"
                    "/({last}-{first}+1)")
        return f"SUMPRODUCT({expr})/COUNT({X})"

    if per_example:
        cols += [
            Column("pred", "prediction ŷ", predict, "forward", model.__doc__.strip()),
            Column("err", "error ŷ − y", f"{{pred}}-{Y}", "forward", "prediction minus target"),
            Column("loss", f"loss ({loss.title})", loss.value_formula("{err}"), "loss", "this example's loss"),
            Column("dloss", "∂loss/∂ŷ", loss.derivative_formula("{err}"), "gradient", "derivative of the loss w.r.t. the prediction"),
        ]
    else:
        cols.append(Column("loss", f"mean loss ({loss.title})", mean(loss.value_formula(f"{predict}-{Y}")), "loss",
                           "mean loss over the batch"))
    derived = getattr(model, "derived_columns", False)  # an own formula: ∂ŷ/∂p in a column of its own
    for p in params:
        feature = model.feature_formulas[p]
        if per_example and derived:
            cols.append(Column(f"dpred_{p}", f"∂ŷ/∂{p}", _sub(feature or "1", {"X": X}), "gradient",
                               f"derivative of the prediction w.r.t. {p}: {model.derivative_texts[p]}"))
            grad = f"{{dloss}}*{{dpred_{p}}}"
            nudged = [loss.value_formula(f"{shifted(p, sign)}-{Y}") for sign in "+-"]
        elif per_example:
            grad = "{dloss}" if feature is None else f"{{dloss}}*{_sub(feature, {'X': X})}"
            nudged = [loss.value_formula(f"{shifted(p, sign)}-{Y}") for sign in "+-"]
        else:
            d = loss.derivative_formula(f"{predict}-{Y}")
            grad = mean(d if feature is None else f"{d}*{_sub(feature, {'X': X})}")
            nudged = [mean(loss.value_formula(f"{shifted(p, sign)}-{Y}")) for sign in "+-"]
        cols.append(Column(f"grad_{p}", f"∂L/∂{p}", grad, "gradient", f"analytic gradient of the loss w.r.t. {p}"))
        if lesson.fd_scheme == "central":
            cols.append(Column(f"fd_{p}", f"≈ ∂L/∂{p} (central diff.)", f"({nudged[0]}-{nudged[1]})/(2*{{hp:fd_step}})",
                               "estimate", f"(loss with {p} + h − loss with {p} − h) / 2h, h = fd_step: "
                               + (FD_NONLINEAR if derived else FD_ADVICE.get(lesson.loss, "a numerical check of the gradient")).format(p=p)))
        else:  # workbooks of spec version < 3
            cols.append(Column(f"fd_{p}", f"≈ ∂L/∂{p} (finite diff.)", f"({nudged[0]}-{{loss}})/{{hp:fd_step}}",
                               "estimate", f"(loss with {p} + fd_step − loss) / fd_step: a numerical check of the gradient"))
    for p in params:
        if opt.uses_l2(hp):
            cols.append(Column(f"gwd_{p}", f"∂L/∂{p} + wd·{p}", f"{{grad_{p}}}+{{hp:weight_decay}}*{{{p}}}",
                               "gradient", "gradient plus L2 weight decay"))
        cols += [optimizer_column(opt, p, *formula) for formula in opt.formulas(hp, p)]
    return scheduled_columns(cols, lesson.schedule, lesson.optimizer)


def row_local_batches(lesson) -> bool:
    """Whether mini-batch rows read every example and pick theirs by position (layout version 2: each column
    one fill-down), rather than their own rows of Data or Batches (version 1). A full batch reads all anyway."""
    return 1 < lesson.batch_size < len(lesson.data) and getattr(lesson, "layout_version", 1) >= 2


def _paren(expr: str) -> str:
    """expr as one factor of a product: parenthesised unless it is one already."""
    depth = 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch in "+-<>=&," and i > 0:  # looser than *: it needs parentheses
            return f"({expr})"
    return expr


# What a student may expect of the estimate (tests/test_finite_differences.py holds every bundled lesson to it)
FD_TOLERANCE = 1e-6
FD_ADVICE = {
    "mse": "it agrees with ∂L/∂{p} to 6 significant digits or more (the squared error is a parabola in {p}, "
           "and a central difference is exact on a parabola but for rounding)",
    "mae": "it agrees with ∂L/∂{p} to 6 significant digits or more, except at a step where an error changes sign "
           "within ±h (the absolute error has a corner there)",
    "bce": "close to ∂L/∂{p} while ŷ stays inside (0, 1), where the log-loss is smooth (a central difference is off "
           "by about h²/6 times the third derivative)",
}
FD_NONLINEAR = ("close to ∂L/∂{p}: the model is not a polynomial in {p}, so a central difference is off by about "
                "h²/6 times the third derivative of the loss")


def optimizer_column(opt, p: str, key: str, header: str, template: str) -> Column:
    """A column of the optimizer's update for parameter p: its state (starting from the start row) or new p."""
    if key.startswith("new_"):
        return Column(key, header, template, "update", f"{p} after this step: the next row starts from it",
                      start_value="init")
    state = key.split("_")[0]
    if state == "shrink":  # Adam's shrinkage switch: not state, a view of what weight decay does
        return Column(key, header, template, "state",
                      f"fraction of {p} that weight decay takes away per step" + (
                          " (lr·wd: decoupled)" if opt.decoupled else " (lr·wd/(√v̂ + ε): L2 through Adam's v)"))
    return Column(key, header, template, "state", f"optimizer state {state} for {p}",
                  start_value="zero" if state in opt.state else None)


def scheduled_columns(columns: list, schedule: Schedule | None, optimizer: str, after: str = "epoch") -> list:
    """Step columns with the schedule's columns after ``after`` and the optimizer's formulas reading them."""
    if schedule is None:
        return columns
    out = []
    for c in columns:
        if c.formula:
            c = replace(c, formula=schedule.rewrite(c.formula, optimizer))
        out.append(c)
        if c.key == after:
            out += [Column(key, header, template, "state", note)
                    for key, header, template, note in schedule.formulas(optimizer)]
    return out


def exercise_columns(lesson: Lesson) -> list[str]:
    """The template's default exercise columns that exist in this layout."""
    keys = {c.key for c in step_columns(lesson)}
    return [k for k in lesson.exercise if k in keys]
