"""A Titanic lesson: a template's [data] (preset, split), [model] (kind, hidden, loss, init) and training.

It shares the optimizer handling (``with_optimizer``, ``validate``) of :mod:`sheetsgd.lessons.sgd.lesson`; its
``data`` has ``len()`` = the number of training rows, so batch sizes work the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sheetsgd.lessons.sgd.data import sheet_float
from sheetsgd.errors import SheetsgdError
from sheetsgd.lessons.sgd.lesson import option_changes, parse_optimizer_table, validate, with_optimizer
from sheetsgd.lessons.optimizers import OPTIMIZERS
from sheetsgd.lessons.schedules import Schedule, parse_schedule
from sheetsgd.lessons.schema import tabular_data
from . import template_keys  # noqa: F401  (the template schema's checks of init and missing)
from .features import TitanicData, prepare
from .layout import DATA_FIRST_ROW
from .lookups import LAYOUT_VERSION
from .nets import LOSSES as _LOSSES, MODELS as _MODELS
from .dropout import DropoutMLP, draw_mask
from .author_csv import inline_csv
from .author_data import prepare_csv
from .penguins import prepare_penguins
from .softmax import CrossEntropy, Softmax

MODELS = {**_MODELS, Softmax.name: Softmax}
LOSSES = {**_LOSSES, CrossEntropy.name: CrossEntropy}

KIND = "titanic"  # the kind's name inside (manifests say it); templates call it "tabular" (or "titanic")
CSV_KEYS = {"csv", "csv_text", "target", "numeric", "categorical", "id", "missing", "scale", "constant", "classes",
            "noun"}


@dataclass
class TitanicLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    data: TitanicData
    model: str
    hidden: int
    loss: str
    init: np.ndarray  # parameter vector in the model's sheet order
    optimizer: str
    hyper: dict[str, float]
    batch_size: int
    epochs: int
    shuffle: bool = False
    seed: int = 0
    clip_eps: float = 1e-7
    best_fit_steps: int = 3000  # full-batch Adam steps of the Solver sheet's best fit (no closed form)
    fd_step: float = 1e-6  # only for the general validator; the Titanic sheet shows no finite differences
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    optimizer_tables: dict[str, dict] = field(default_factory=dict, repr=False)
    kind: str = KIND
    schedule: Schedule | None = None  # [schedule]: an lr column on the Steps rows (sheetsgd.lessons.schedules)
    dropout: float | None = None  # inverted dropout's p on the hidden units (mlp only); None: no dropout twin
    dropout_seed: int = 0  # seeds the given mask
    layout_version: int = LAYOUT_VERSION  # a workbook's rebuild lays it out as it was built (lookups.py)

    def dropout_mask(self) -> np.ndarray:
        """The given 0/1 mask: one row per Examples row of the whole run (step order), one column per unit."""
        return draw_mask(self.dropout_seed, self.epochs * self.data.n_train, self.hidden, self.dropout)

    @property
    def full_batch(self) -> bool:
        return self.batch_size >= self.data.n_train

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.data.n_train // self.batch_size)

    @property
    def n_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def net(self):
        if self.dropout is not None:
            net = DropoutMLP(self.data.feature_keys, self.hidden, self.dropout, self.loss_cls(), self.clip_eps)
            _describe(net.plain, self.data)
            return net
        return make_net(self.model, self.data, self.hidden)

    def loss_cls(self):
        return LOSSES[self.loss]

    def optimizer_obj(self):
        return OPTIMIZERS[self.optimizer]()

    def override(self, *, optimizer=None, **options) -> "TitanicLesson":
        lesson = with_optimizer(self, optimizer) if optimizer is not None and optimizer != self.optimizer else self
        if options.get("loss") is not None:
            _check_loss(self.model, options["loss"], "--loss")
        return validate(replace(lesson, **option_changes(lesson, lesson.data.n_train, LOSSES, **options)))


def _check_loss(model: str, loss: str, where: str) -> None:
    """The softmax model owns its cross-entropy; no other model can use it."""
    if (model == "softmax") != (loss == "ce"):
        raise SheetsgdError(f"loss {loss!r} does not fit model {model!r}: the softmax model's loss is 'ce' "
                            f"(cross-entropy), which no other model uses", where)


def make_net(model: str, data: TitanicData, hidden: int):
    """The model on the data's features (a softmax over an author's classes: one output per class)."""
    if model == Softmax.name and data.classes:
        return Softmax(data.feature_keys, hidden, classes=data.classes, noun=data.noun)
    return _describe(MODELS[model](data.feature_keys, hidden), data)


def _describe(net, data: TitanicData):
    """An author's 0/1 target in the sheets' words: its column's name, not the Titanic's Survived."""
    if data.about and not data.targets:
        target = data.raw_headers[1]  # the target is the second raw column (B), after the id
        net.target_header, net.target_note = f"{target} y", f"the {data.noun}'s {target} (0 or 1)"
        net.outcome = f"the probability that {target} is 1"
    return net


def is_titanic_template(raw: dict) -> bool:
    """A tabular lesson's template: a bundled dataset or an author's CSV (``[data] csv`` or ``csv_text``)."""
    return tabular_data(raw.get("data"))


def _init(spec, model, where: str) -> np.ndarray:
    """Seeded uniform draws in [−scale/2, scale/2) (notebook 05's rand − 0.5), or explicit values per group."""
    if not isinstance(spec, dict):
        raise SheetsgdError("[model].init must be a table", where)
    if "random" in spec:
        if spec["random"] != "uniform":
            raise SheetsgdError(f"init.random must be 'uniform', got {spec['random']!r}", where)
        scale = spec.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise SheetsgdError(f"init.scale must be a number, got {scale!r}", where)
        draws = np.random.default_rng(int(spec.get("seed", 0))).uniform(-0.5, 0.5, len(model.params)) * scale
        return np.array([sheet_float(round(float(v), 6)) for v in draws])
    extra = [g for g in spec if g not in model.groups]
    if extra:
        raise SheetsgdError(f"init gives {', '.join(map(str, extra))}, which this model does not have "
                            f"(its parameter groups are {', '.join(model.groups)})", where)
    values = []
    for group, keys in model.groups.items():
        if group not in spec:
            raise SheetsgdError(f"init lacks {group!r}: give random = \"uniform\" or a list per group "
                                f"({', '.join(model.groups)})", where)
        given = spec[group]
        given = [given] if isinstance(given, (int, float)) and not isinstance(given, bool) else given
        if (not isinstance(given, list) or len(given) != len(keys)
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in given)):
            raise SheetsgdError(f"init.{group} must be {len(keys)} number(s) ({', '.join(keys)})", where)
        values += [sheet_float(v) for v in given]
    return np.array(values, dtype=float)


def _dropout(model: dict, kind: str, where: str) -> tuple[float | None, int]:
    """[model] dropout (p in [0, 1), the mlp's hidden units only) and dropout_seed."""
    if "dropout" not in model:
        if "dropout_seed" in model:
            raise SheetsgdError("dropout_seed is given without dropout", where)
        return None, 0
    p, seed = model["dropout"], model.get("dropout_seed", 0)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise SheetsgdError(f"dropout must be a number in [0, 1), got {p!r}", where)
    if kind != "mlp":
        raise SheetsgdError(f"dropout needs a hidden layer: model kind 'mlp', not {kind!r}", where)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SheetsgdError(f"dropout_seed must be an integer ≥ 0, got {seed!r}", where)
    return float(p), seed


def parse_titanic_lesson(raw: dict, name: str, source: str) -> TitanicLesson:
    meta, model, train, opt, data = (raw.get(k, {}) for k in ("lesson", "model", "training", "optimizer", "data"))
    for key, table in (("lesson", meta), ("model", model), ("training", train), ("optimizer", opt)):
        if not isinstance(table, dict):
            raise SheetsgdError(f"[{key}] must be a table", source)
    known = {"dataset", "preset", "features", "rows", "valid_fraction", "split_seed", "valid_idx"}
    unknown = set(data) - known - (CSV_KEYS if "dataset" not in data else set())
    if unknown:
        raise SheetsgdError(f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
                            f"{source} [data]")
    if "dataset" not in data:  # an author's CSV (sheetsgd.lessons.tabular.author_data)
        if "csv_text" not in data and "csv" in data:
            data = inline_csv(raw, source)["data"]
        if "csv_text" not in data:
            raise SheetsgdError("give dataset = \"titanic\" or \"penguins\", or csv = \"your.csv\"", f"{source} [data]")
        titanic = prepare_csv(data, model.get("kind") == "softmax", f"{source} [data]", DATA_FIRST_ROW + 1)
    elif data.get("dataset") == "penguins":
        titanic = prepare_penguins(data.get("features"), data.get("rows"), data.get("valid_fraction", 0.0),
                                   data.get("split_seed", 0), f"{source} [data]", DATA_FIRST_ROW + 1)
    else:
        titanic = prepare(data.get("preset", "lesson3-sheet"), data.get("features"), data.get("rows"),
                      data.get("valid_fraction", 0.0), data.get("split_seed", 0), f"{source} [data]",
                          valid_idx=data.get("valid_idx"))

    kind = model.get("kind", "logistic")
    if kind not in MODELS:
        raise SheetsgdError(f"unknown model {kind!r}; known: {', '.join(MODELS)}", f"{source} [model]")
    hidden = model.get("hidden", 2)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= 64:
        raise SheetsgdError(f"hidden must be an integer from 1 to 64, got {hidden!r}", f"{source} [model]")
    loss = model.get("loss", "ce" if kind == "softmax" else "bce" if MODELS[kind].sigmoid_output else "mse")
    if loss not in LOSSES:
        raise SheetsgdError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}", f"{source} [model]")
    _check_loss(kind, loss, f"{source} [model]")
    clip_eps = model.get("clip_eps", 1e-7)
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, (int, float)) or not 0 < clip_eps < 0.5:
        raise SheetsgdError(f"clip_eps must be a number in (0, 0.5), got {clip_eps!r}", f"{source} [model]")
    if kind != "softmax" and titanic.targets:
        raise SheetsgdError(f"model {kind!r} predicts one 0/1 output; the data has {len(titanic.targets)} classes: "
                            "use model kind \"softmax\"", f"{source} [model]")
    net = make_net(kind, titanic, hidden)
    init = _init(model.get("init", {"random": "uniform", "seed": 0}), net, f"{source} [model]")
    dropout, dropout_seed = _dropout(model, kind, f"{source} [model]")
    if dropout is not None:  # the twin without dropout starts from the same weights
        init = np.concatenate([init, init])

    opt_name, per_optimizer = parse_optimizer_table(opt, f"{source} [optimizer]")
    batch = train.get("batch_size", 1)
    best_fit_steps = train.get("best_fit_steps", 3000)
    if isinstance(best_fit_steps, bool) or not isinstance(best_fit_steps, int) or best_fit_steps < 1:
        raise SheetsgdError(f"best_fit_steps must be an integer ≥ 1, got {best_fit_steps!r}", f"{source} [training]")
    lesson = TitanicLesson(
        name=meta.get("name", name), title=meta.get("title", name), description=meta.get("description", ""),
        tips=list(meta.get("try", [])), data=titanic, model=kind, hidden=hidden, loss=loss, init=init,
        optimizer=opt_name, hyper={}, batch_size=titanic.n_train if batch == "full" else batch,
        epochs=train.get("epochs", 1), shuffle=bool(train.get("shuffle", False)), seed=train.get("seed", 0),
        clip_eps=float(clip_eps), best_fit_steps=best_fit_steps, source=source, exercise=list(meta.get("exercise", [])),
        optimizer_tables=per_optimizer, schedule=parse_schedule(raw, source), dropout=dropout,
        dropout_seed=dropout_seed,
    )
    return validate(with_optimizer(lesson, opt_name))
