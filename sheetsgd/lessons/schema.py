"""The template schema: every table and key a lesson template may hold, checked before any parser runs.

One strict pass over the parsed TOML, for every kind of lesson: unknown tables and keys are errors (with a "did you
mean" suggestion), every value has the type its key needs (no strings or booleans where numbers belong, lists where
lists belong), every number is finite and in its range, texts fit a spreadsheet cell (and names a header), sizes are
bounded. A problem is one ``SheetsgdError`` naming the file, the table and the key. The kinds' parsers then only see
well-typed values. The same description (``tables_for``: per lesson kind, each table's keys and what they accept)
drives the seeded template fuzz (``tests/test_template_fuzz.py``).
"""
from __future__ import annotations

import math
from typing import Callable

from sheetsgd.errors import SheetsgdError

from .template_values import (  # noqa: F401 (the schema's vocabulary, read as schema.X by the kinds)
    CELL_MAX_CHARS, TEXT_MAX_CHARS, NAME_MAX_CHARS, TITLE_MAX_CHARS, MAX_EXAMPLES, MAX_LIST_ITEMS, MAX_SEED,
    MAX_STEPS, MAX_BEST_FIT_STEPS, suggest, _show, Value, number, integer, text, choice, numbers, texts, table,
    BOOL, SWITCH, SEED, NAME, FINITE, POSITIVE, NONNEGATIVE, UNIT_OPEN)


def _optimizer_hyper() -> dict[str, dict[str, Value]]:
    from .optimizers import OPTIMIZERS

    ranges = {"lr": POSITIVE, "momentum": UNIT_OPEN, "dampening": number(0, 1), "alpha": UNIT_OPEN,
              "beta1": UNIT_OPEN, "beta2": UNIT_OPEN, "eps": NONNEGATIVE, "weight_decay": NONNEGATIVE,
              "v0": POSITIVE, "nesterov": SWITCH, "classic": SWITCH, "bias_correction": SWITCH,
              "shrinkage": SWITCH}
    return {name: {k: ranges.get(k, FINITE) for k in opt.defaults} for name, opt in OPTIMIZERS.items()}


LESSON = table(name=NAME, title=text(TITLE_MAX_CHARS), description=text(), try_=texts(), exercise=texts(max_len=NAME_MAX_CHARS),
               kind=choice("sgd", "function", "optimizers", "lr-finder", "tabular", "collab", "attention", "conv", "titanic",
                           noun="lesson kind"))
GENERATE = table(kind=choice("polynomial", noun="generator"), x=Value("axis"), coefficients=numbers(1, 100), center=FINITE,
                 relative_noise=NONNEGATIVE, noise=NONNEGATIVE, seed=SEED, decimals=integer(0, 15))
DATA = table(x=numbers(), y=numbers(), columns=texts(2, 2, NAME_MAX_CHARS, distinct=True), generate=GENERATE,
             csv=text(4096), inputs=texts(1, 1, NAME_MAX_CHARS), target=NAME)  # csv: sheetsgd.lessons.sgd.own_data
TITANIC_DATA = table(dataset=choice("titanic", "penguins"), preset=choice("lesson3-sheet", "from-scratch", noun="preset"),
                     features=texts(1, 100, NAME_MAX_CHARS, distinct=True), rows=integer(2, MAX_EXAMPLES),
                     valid_fraction=UNIT_OPEN, split_seed=SEED, valid_idx=Value("intlist", low=0, max_items=MAX_EXAMPLES),
                     csv=text(NAME_MAX_CHARS), csv_text=text(2 * 2**20), target=NAME, id=NAME, noun=text(40), constant=BOOL,  # an author's CSV
                     numeric=texts(0, 200, NAME_MAX_CHARS, True), categorical=texts(0, 200, NAME_MAX_CHARS, True), missing=Value("missing"),
                     scale=choice("standardize", "max", "none", noun="scale"), classes=texts(2, 20, NAME_MAX_CHARS, True))
MODEL = table(kind=choice("linear", "quadratic", noun="model"), loss=choice("mse", "mae", "bce", noun="loss"),
              init=Value("init"), formula=text(1_000))  # formula: sheetsgd.lessons.sgd.own_model
TITANIC_MODEL = table(kind=choice("linear", "logistic", "relu2", "mlp", "softmax", noun="model"), hidden=integer(1, 64),
                      loss=choice("mse", "mae", "bce", "ce", noun="loss"), clip_eps=number(0, 0.5, low_open=True, high_open=True),
                      init=Value("titanic_init"), dropout=UNIT_OPEN, dropout_seed=SEED)
TRAINING = table(batch_size=Value("batch"), epochs=integer(1, MAX_STEPS), shuffle=BOOL, seed=SEED, fd_step=POSITIVE,
                 fd_scheme=choice("central", "forward", noun="finite-difference scheme"))
TITANIC_TRAINING = table(**TRAINING.keys, best_fit_steps=integer(1, MAX_BEST_FIT_STEPS))
FINDER = table(start_lr=POSITIVE, end_lr=POSITIVE, num_it=integer(2, MAX_STEPS), smooth_beta=UNIT_OPEN,
               stop_factor=number(1, low_open=True), skip_start=integer(0, MAX_STEPS), skip_end=integer(0, MAX_STEPS))
SCHEDULES = ("constant", "step", "cosine", "one-cycle")
SCHEDULE = table(kind=choice(*SCHEDULES, noun="schedule kind"), step_size=integer(1, MAX_STEPS), gamma=POSITIVE,
                 eta_min=NONNEGATIVE, div=POSITIVE, div_final=POSITIVE, pct_start=number(0, 1, low_open=True, high_open=True),
                 moms=numbers(3, 3), compare=Value("strlist", min_items=2, max_items=4, distinct=True, choices=SCHEDULES))
FUNCTION = table(kind=choice("double-well", noun="function"), target=FINITE, steps=integer(1, MAX_STEPS))
RUN = table(label=NAME, x0=FINITE, lr=POSITIVE, accumulate=BOOL)
COLLAB = {"ratings": table(users=integer(2, 200), movies=integer(2, 200), density=number(0, 1, low_open=True),
                           true_factors=integer(1, 50), noise=NONNEGATIVE, seed=SEED, valid_fraction=number(0, 0.9),
                           split_seed=SEED), "training": table(lr=POSITIVE, wd=NONNEGATIVE, steps=integer(1, MAX_STEPS)),
          "model": table(factors=integer(1, 50), y_range=numbers(0, 2), init_std=NONNEGATIVE, seed=SEED)}
ATTENTION = {"sequences": table(examples=integer(1, MAX_EXAMPLES), length=integer(2, 8), seed=SEED), "model": table(d=integer(1, 8),
             init_std=NONNEGATIVE, seed=SEED), "training": table(lr=POSITIVE, batch_size=integer(1, 10**6), epochs=integer(1, MAX_STEPS))}

# {kind: tables} of kinds whose tables live here or in their own package (sheetsgd.lessons.kinds adds those)
KIND_TABLES: dict[str, dict[str, Value]] = {"attention": ATTENTION}
KIND_CHECKS: dict[str, Callable] = {}  # Value kind -> check(checker, value, where, what), filled by the kinds' modules


def tabular_data(data) -> bool:
    """A tabular lesson's [data]: a bundled dataset, or an author's CSV with its feature columns."""
    return isinstance(data, dict) and (data.get("dataset") in ("titanic", "penguins") or bool(
        {"csv", "csv_text"} & set(data) and {"numeric", "categorical"} & set(data)))


def tables_for(kind: str, titanic: bool) -> dict[str, Value]:
    """The tables a template of this kind may hold, each with its keys."""
    if kind == "function":
        return {"lesson": LESSON, "function": FUNCTION, "runs": Value("runs", min_items=1, max_items=1_000),
                "schedule": SCHEDULE}
    if kind in ("collab", *KIND_TABLES):  # generated data, a model of its own (collab: embeddings, full-batch)
        return {"lesson": LESSON, **COLLAB, "schedule": SCHEDULE} if kind == "collab" else {"lesson": LESSON, **KIND_TABLES[kind]}
    opt_keys = {"name": choice(*_optimizer_hyper(), noun="optimizer")}
    if kind == "optimizers":
        opt_keys.update(compare=Value("strlist", min_items=1, max_items=10, choices=tuple(_optimizer_hyper())),
                        classic=BOOL)
    out = {"lesson": LESSON, "data": TITANIC_DATA if titanic else DATA, "model": TITANIC_MODEL if titanic else MODEL,
           "optimizer": Value("optimizer", keys=opt_keys), "training": TITANIC_TRAINING if titanic else TRAINING}
    if kind == "lr-finder":
        out["finder"] = FINDER
    else:  # the kinds whose step rows take a schedule (sheetsgd.lessons.schedules)
        out["schedule"] = SCHEDULE
    return out


def _key(k: str) -> str:
    return "try" if k == "try_" else k


class Checker:
    def __init__(self, source: str, depth_limit: int = 64):
        self.source = source
        self.depth_limit = depth_limit

    def fail(self, message: str, where: str):
        raise SheetsgdError(message, f"{self.source} [{where}]" if where else self.source)

    def table(self, value, spec: Value, where: str, label: str, prefix: str = ""):
        if not isinstance(value, dict):
            self.fail(f"{label} must be a table, got {_show(value)}", where)
        known = {_key(k): v for k, v in spec.keys.items()}
        for key, item in value.items():
            if key not in known:
                self.fail(f"unknown key {key!r}{suggest(key, known)}; known: {', '.join(known)}", where)
            self.value(item, known[key], where, prefix + key)

    def value(self, value, spec: Value, where: str, what: str):
        kind = spec.kind
        if kind == "number":
            self.number(value, spec, where, what)
        elif kind == "int":
            self.integer(value, spec, where, what)
        elif kind == "bool":
            if not isinstance(value, bool):
                self.fail(f"{what} must be true or false, got {_show(value)}", where)
        elif kind == "switch":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (0, 1):
                self.fail(f"{what} must be 0 (off) or 1 (on), got {_show(value)}", where)
        elif kind == "str":
            self.string(value, spec, where, what)
        elif kind == "choice":
            if not isinstance(value, str) or value not in spec.choices:
                hint = suggest(value, spec.choices) if isinstance(value, str) else ""
                noun = spec.keys.get("noun")
                if noun and isinstance(value, str):
                    self.fail(f"unknown {noun} {_show(value)}{hint}; known: {', '.join(spec.choices)}", where)
                self.fail(f"{what} must be one of {', '.join(map(repr, spec.choices))}, got {_show(value)}{hint}", where)
        elif kind == "numlist":
            self.list_of(value, spec, where, what, lambda i, v: self.number(v, FINITE, where, f"{what}[{i}]"), "numbers")
        elif kind == "intlist":
            self.list_of(value, spec, where, what, lambda i, v: self.integer(v, integer(spec.low), where, f"{what}[{i}]"),
                         "whole numbers")
            if len(set(value)) != len(value):
                self.fail(f"{what} lists a row twice", where)
        elif kind == "strlist":
            def item(i, v):
                self.string(v, Value("str", max_len=spec.max_len), where, f"{what}[{i}]")
                if spec.choices and v not in spec.choices:
                    self.fail(f"{what}[{i}] must be one of {', '.join(spec.choices)}, got {_show(v)}{suggest(v, spec.choices)}",
                              where)
            self.list_of(value, spec, where, what, item, "texts")
            if spec.distinct and len(set(value)) != len(value):
                self.fail(f"{what} must be different names, got {_show(value)} (a workbook's headers must be unique "
                          "for it to be checked)", where)
        elif kind == "table":
            self.table(value, spec, f"{where}.{what}" if where else what, what)
        elif kind == "batch":
            if value != "full":
                self.integer(value, integer(1, MAX_EXAMPLES), where, what, extra=' or "full"')
        elif kind == "axis":
            if isinstance(value, list):
                self.value(value, numbers(), where, what)
            else:
                self.table(value, table(start=FINITE, stop=FINITE, num=integer(1, MAX_EXAMPLES)), f"{where}.{what}",
                           f"{what} (a list or {{start, stop, num}})")
                missing = [k for k in ("start", "stop", "num") if k not in value]
                if missing:
                    self.fail(f"{what} needs {', '.join(missing)} (or give a list)", where)
        elif kind == "init":
            self.init(value, where)
        elif kind in KIND_CHECKS:  # a lesson kind's own keys (the tabular kind's init and missing)
            KIND_CHECKS[kind](self, value, where, what)
        elif kind == "runs":
            if not isinstance(value, list) or not value:
                self.fail("needs at least one [[runs]] table with x0 and lr", "")
            if len(value) > spec.max_items:
                self.fail(f"at most {spec.max_items:,} runs, got {len(value):,}", "[runs]")
            for i, run in enumerate(value, start=1):
                self.table(run, RUN, f"[runs] {i}", f"run {i}")
                if "x0" not in run or "lr" not in run:
                    self.fail(f"run {i} needs numbers x0 and lr", "[runs]")
        elif kind == "optimizer":
            self.optimizer(value, spec, where)
        else:  # pragma: no cover - a schema bug
            raise AssertionError(kind)

    def number(self, value, spec: Value, where: str, what: str):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{what} must be a number, got {_show(value)}", where)
        if not math.isfinite(value):
            self.fail(f"{what} must be a finite number, got {value}", where)
        if not spec.in_range(value):
            self.fail(f"{what} must be{spec.range_text()}, got {value:g}", where)

    def integer(self, value, spec: Value, where: str, what: str, extra: str = ""):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{what} must be a whole number{spec.range_text()}{extra}, got {_show(value)}", where)
        if not spec.in_range(value):
            self.fail(f"{what} must be a whole number{spec.range_text()}{extra}, got {value:,}", where)

    def string(self, value, spec: Value, where: str, what: str):
        if not isinstance(value, str):
            self.fail(f"{what} must be a text, got {_show(value)}", where)
        if len(value) > spec.max_len:
            self.fail(f"{what} is {len(value):,} characters long; at most {spec.max_len:,} fit (a spreadsheet cell "
                      f"holds {CELL_MAX_CHARS:,})", where)

    def list_of(self, value, spec: Value, where: str, what: str, each: Callable, noun: str):
        if not isinstance(value, list):
            self.fail(f"{what} must be a list of {noun}, got {_show(value)}", where)
        if not spec.min_items <= len(value) <= spec.max_items:
            count = (f"exactly {spec.min_items}" if spec.min_items == spec.max_items
                     else f"{spec.min_items:,} to {spec.max_items:,}")
            self.fail(f"{what} must hold {count} item(s), got {len(value):,}", where)
        for i, v in enumerate(value):
            each(i, v)

    def init(self, value, where: str):
        if not isinstance(value, dict):
            self.fail(f"init must be a table, got {_show(value)}", where)
        if "random" in value:
            self.table(value, table(random=choice("normal", "uniform"), seed=SEED, scale=FINITE), where, "init", "init.")
            return
        for key, item in value.items():
            self.number(item, FINITE, where, f"init.{key}")

    def optimizer(self, value, spec: Value, where: str):
        if not isinstance(value, dict):
            self.fail(f"[optimizer] must be a table, got {_show(value)}", "")
        hyper = _optimizer_hyper()
        for key, item in value.items():
            if key in spec.keys:
                self.value(item, spec.keys[key], where, key)
            elif key in hyper:
                if not isinstance(item, dict):
                    self.fail(f"{key} must be a table of hyperparameters, got {_show(item)}", where)
                for name in item:
                    if name not in hyper[key]:
                        self.fail(f"{key} has no hyperparameter {name}{suggest(name, hyper[key])}; it has "
                                  f"{', '.join(hyper[key])}", f"optimizer.{key}")
                self.table(item, table(**hyper[key]), f"optimizer.{key}", key)
                if item.get("nesterov") and item.get("dampening"):
                    self.fail("nesterov momentum needs dampening = 0 (as torch.optim.SGD requires)", f"optimizer.{key}")
            else:
                known = list(spec.keys) + list(hyper)
                self.fail(f"unknown key {key!r}{suggest(key, known)}; known: {', '.join(known)} "
                          "(a table per optimizer)", where)


def check_template(raw: dict, kind: str, source: str) -> None:
    """Raise a one-line SheetsgdError for the first problem in a parsed template of this kind."""
    checker = Checker(source)
    if not isinstance(raw, dict):
        checker.fail("a template must be a TOML document of tables", "")
    data = raw.get("data")
    titanic = kind in ("tabular", "titanic") or tabular_data(data)
    tables = tables_for(kind, titanic)
    if kind == "lr-finder" and "schedule" in raw:
        checker.fail("an lr finder's lr is its schedule (start_lr to end_lr, set in [finder]): "
                     "remove the [schedule] table", "schedule")
    for name, value in raw.items():
        if name not in tables:
            checker.fail(f"unknown table [{name}]{suggest(name, tables)}; a {kind!r} lesson has "
                         f"{', '.join(f'[{t}]' for t in tables)}", "")
        spec = tables[name]
        if spec.kind == "table":
            checker.table(value, spec, name, f"[{name}]")
        else:
            checker.value(value, spec, name, f"[{name}]")
    if kind not in ("function", "collab", "attention", "conv") and "data" not in raw:
        checker.fail("missing [data] table", "")
    if isinstance(data, dict) and not titanic:
        if "generate" in data and ({"x", "y"} & set(data)):
            checker.fail("give either x and y lists or a [data.generate] table, not both", "data")
        if "x" in data and "y" in data and len(data["x"]) != len(data["y"]):
            checker.fail(f"x and y must be equally long (got {len(data['x']):,} and {len(data['y']):,})", "data")
    model = raw.get("model", {})
    init = model.get("init") if isinstance(model, dict) else None
    if not titanic and kind not in ("function", "collab", "conv") and isinstance(init, dict) and not {"random", "formula"} & {*init, *model}:
        from sheetsgd.lessons.sgd.models import MODELS
        params = MODELS.get(model.get("kind", "linear"), MODELS["linear"]).params
        extra = [k for k in init if k not in params]
        if extra:
            checker.fail(f"init gives {', '.join(extra)}, which the {model.get('kind', 'linear')} model does not have "
                         f"(its parameters are {', '.join(params)})", "model")
    if titanic and "valid_idx" in data and data.get("valid_fraction"):
        checker.fail("give valid_idx or valid_fraction, not both", "data")


def check_hyper(hyper: dict, where: str) -> None:
    """Every hyperparameter finite and in range (templates and command-line options alike)."""
    ranges = {}
    for table_ in _optimizer_hyper().values():
        ranges.update(table_)
    for key, value in hyper.items():
        spec = ranges.get(key, FINITE)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SheetsgdError(f"{key} must be a number, got {_show(value)}", where)
        if not math.isfinite(value):
            raise SheetsgdError(f"{key} must be a finite number, got {value}", where)
        if spec.kind == "switch":
            if value not in (0, 1):
                raise SheetsgdError(f"{key} must be 0 (off) or 1 (on), got {value:g}", where)
        elif not spec.in_range(value):
            raise SheetsgdError(f"{key} must be{spec.range_text()}, got {value:g}", where)
