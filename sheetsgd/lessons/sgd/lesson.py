"""A lesson: what a template (TOML) says, validated, with command-line overrides applied."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import Dataset, load_dataset, sheet_float
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.layouts import LAYOUT_VERSION
from .losses import LOSSES
from .models import MODELS
from sheetsgd.lessons.optimizers import OPTIMIZERS
from sheetsgd.lessons.schedules import Schedule, parse_schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_PACKAGE = Path(__file__).resolve().parents[2]  # sheetsgd/
TEMPLATES_DIR = _PACKAGE.parent / "templates"
_PACKAGED_TEMPLATES = _PACKAGE / "templates"


def templates_dir() -> Path:
    """Bundled templates: the copy inside an installed wheel, else ``templates/`` of the checkout."""
    return _PACKAGED_TEMPLATES if _PACKAGED_TEMPLATES.is_dir() else TEMPLATES_DIR


@dataclass
class Lesson:
    name: str
    title: str
    description: str
    tips: list[str]
    data: Dataset
    model: str
    loss: str
    init: dict[str, float]
    optimizer: str
    hyper: dict[str, float]
    batch_size: int  # examples per step; len(data) = full batch
    epochs: int
    shuffle: bool = False
    seed: int = 0
    fd_step: float = 0.01
    fd_scheme: str = "central"  # the finite-difference estimates: central, or forward (spec version < 3)
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    # the template's per-optimizer hyperparameter tables, so --optimizer picks up the author's lr
    optimizer_tables: dict[str, dict] = field(default_factory=dict, repr=False)
    kind: str = "sgd"
    schedule: Schedule | None = None  # [schedule]: an lr column on the step rows (None: the lr cell)
    layout_version: int = LAYOUT_VERSION  # sheetsgd.sheet.layouts: 1 reads each mini-batch through its own rows
    own_model: object = field(default=None, repr=False)  # [model] formula: sheetsgd.lessons.sgd.own_model.FormulaModel

    @property
    def full_batch(self) -> bool:
        return self.batch_size >= len(self.data)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.data) // self.batch_size)

    @property
    def n_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def model_cls(self):
        return self.own_model if self.own_model is not None else MODELS[self.model]

    def loss_cls(self):
        return LOSSES[self.loss]

    def optimizer_obj(self):
        return OPTIMIZERS[self.optimizer]()


def bundled_lessons() -> dict[str, Path]:
    return {p.stem: p for p in sorted(templates_dir().glob("*.toml"))}


def _read_toml(path: Path) -> dict:
    from sheetsgd.runtime.inputfile import MAX_TEMPLATE_BYTES, read_regular

    data = read_regular(path, "template", MAX_TEMPLATE_BYTES)  # a FIFO or a device is refused, unread
    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SheetsgdError(f"malformed TOML: {exc}", str(path)) from None
    except RecursionError:
        raise SheetsgdError("malformed TOML: nested too deeply", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetsgdError(f"cannot read: {exc}", str(path)) from None


def _number(value, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SheetsgdError(f"{what} must be a number, got {value!r}", where)
    return float(value)


def _init_params(spec, params, where: str) -> dict[str, float]:
    if not isinstance(spec, dict):
        raise SheetsgdError("[model].init must be a table", where)
    if "random" in spec:  # e.g. fastbook's torch.randn(3): seeded, written into the sheet as values
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        scale = _number(spec.get("scale", 1.0), "init.scale", where)
        kind = spec["random"]
        if kind == "normal":
            draws = rng.standard_normal(len(params)) * scale
        elif kind == "uniform":
            draws = rng.uniform(-0.5, 0.5, len(params)) * scale
        else:
            raise SheetsgdError(f"init.random must be 'normal' or 'uniform', got {kind!r}", where)
        return {p: sheet_float(round(float(v), 6)) for p, v in zip(params, draws)}
    missing = [p for p in params if p not in spec]
    if missing:
        raise SheetsgdError(f"init lacks {', '.join(missing)} (the model's parameters are {', '.join(params)})", where)
    return {p: sheet_float(_number(spec[p], f"init.{p}", where)) for p in params}


def parse_optimizer_table(opt: dict, where: str) -> tuple[str, dict[str, dict]]:
    """``[optimizer]``: the chosen optimizer's name and the per-optimizer hyperparameter tables."""
    name = opt.get("name", "sgd")
    if name not in OPTIMIZERS:
        raise SheetsgdError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}", where)
    tables = {k: v for k, v in opt.items() if isinstance(v, dict)}
    unknown = set(tables) - set(OPTIMIZERS)
    if unknown:
        raise SheetsgdError(f"unknown optimizer table(s) {', '.join(sorted(unknown))}", where)
    return name, tables


def parse_lesson(raw: dict, name: str, source: str) -> Lesson:
    """Validate a template's tables; every problem is a SheetsgdError naming the file and table."""
    where = source
    meta, model, train, opt = (raw.get(k, {}) for k in ("lesson", "model", "training", "optimizer"))
    for key, table in (("lesson", meta), ("model", model), ("training", train), ("optimizer", opt)):
        if not isinstance(table, dict):
            raise SheetsgdError(f"[{key}] must be a table", where)
    if "data" not in raw or not isinstance(raw["data"], dict):
        raise SheetsgdError("missing [data] table", where)
    if "csv" in raw["data"]:  # a template read without kinds.from_raw (which records the data itself)
        from .own_data import inline_csv

        raw = inline_csv(raw, source)
    data = load_dataset(raw["data"], f"{where} [data]")

    model_name = model.get("kind", "linear")
    own_model = None
    if "formula" in model:  # the author's own model (sympy derives its gradients: imported only here)
        from .own_model import parse_formula_model

        own_model, given = parse_formula_model(model, data.x_name, f"{where} [model]")
        model_name = own_model.name
        init = {p: sheet_float(_number(v, f"init.{p}", f"{where} [model]")) for p, v in given.items()}
    elif model_name not in MODELS:
        raise SheetsgdError(f"unknown model {model_name!r}; known: {', '.join(MODELS)}", f"{where} [model]")
    loss = model.get("loss", "mse")
    if loss not in LOSSES:
        raise SheetsgdError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}", f"{where} [model]")
    if own_model is None:
        init = _init_params(model.get("init", {}), MODELS[model_name].params, f"{where} [model]")

    opt_name, per_optimizer = parse_optimizer_table(opt, f"{where} [optimizer]")

    batch = train.get("batch_size", 1)
    batch_size = len(data) if batch == "full" else batch
    lesson = Lesson(
        name=meta.get("name", name), title=meta.get("title", name), description=meta.get("description", ""),
        tips=list(meta.get("try", [])), data=data, model=model_name, loss=loss, init=init,
        optimizer=opt_name, hyper={}, batch_size=batch_size, epochs=train.get("epochs", 1),
        shuffle=bool(train.get("shuffle", False)), seed=train.get("seed", 0),
        fd_step=train.get("fd_step", 0.01), fd_scheme=train.get("fd_scheme", "central"), source=source, exercise=list(meta.get("exercise", [])),
        optimizer_tables=per_optimizer, schedule=parse_schedule(raw, source), own_model=own_model,
    )
    return validate(with_optimizer(lesson, opt_name))


def with_optimizer(lesson: Lesson, name: str, **hyper) -> Lesson:
    """The lesson trained with optimizer ``name``: its torch defaults, then the template's table for it."""
    if name not in OPTIMIZERS:
        raise SheetsgdError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    values = {**OPTIMIZERS[name].defaults, **lesson.optimizer_tables.get(name, {}), **hyper}
    unknown = set(values) - set(OPTIMIZERS[name].defaults)
    if unknown:
        raise SheetsgdError(f"{name} has no hyperparameter {', '.join(sorted(unknown))}; "
                            f"it has {', '.join(OPTIMIZERS[name].defaults)}", f"{lesson.source} [optimizer.{name}]")
    for key in OPTIMIZERS[name].views:  # a view switch left off is not a hyperparameter of the run
        if not values.get(key):
            values.pop(key, None)
    return replace(lesson, optimizer=name, hyper={k: _number(v, k, f"{lesson.source} [optimizer.{name}]")
                                                   for k, v in values.items()})


def option_changes(lesson, full_batch: int, losses, *, lr=None, epochs=None, batch_size=None, seed=None,
                   shuffle=None, loss=None) -> dict:
    """The dataclass fields that command-line options change (None = keep); shared by every data lesson."""
    changes = {}
    if lr is not None:
        changes["hyper"] = {**lesson.hyper, "lr": float(lr)}
    if epochs is not None:
        changes["epochs"] = epochs
    if batch_size is not None:
        changes["batch_size"] = full_batch if batch_size == "full" else batch_size
    if seed is not None:
        changes["seed"] = seed
    if shuffle is not None:
        changes["shuffle"] = shuffle
    if loss is not None:
        if loss not in losses:
            raise SheetsgdError(f"unknown loss {loss!r} for this lesson; known: {', '.join(losses)}")
        changes["loss"] = loss
    return changes


def override(lesson: Lesson, *, optimizer=None, **options) -> Lesson:
    """Apply command-line options on top of a template (None = keep the template's value)."""
    if optimizer is not None and optimizer != lesson.optimizer:
        lesson = with_optimizer(lesson, optimizer)
    return validate(replace(lesson, **option_changes(lesson, len(lesson.data), LOSSES, **options)))


def validate(lesson: Lesson) -> Lesson:
    from sheetsgd.lessons.schema import check_hyper

    where = lesson.source
    hp = lesson.hyper
    check_hyper(hp, where)
    if not hp["lr"] > 0:
        raise SheetsgdError(f"learning rate must be > 0, got {hp['lr']:g}", where)
    for key in ("momentum", "alpha", "beta1", "beta2"):
        if key in hp and not 0 <= hp[key] < 1:
            raise SheetsgdError(f"{key} must be in [0, 1), got {hp[key]:g}", where)
    if "eps" in hp and not hp["eps"] >= 0:
        raise SheetsgdError(f"eps must be ≥ 0, got {hp['eps']:g}", where)
    if hp.get("classic") and "v0" in hp and not hp["v0"] > 0:
        raise SheetsgdError(f"v0 must be > 0 for classic RMSProp (its first step divides by √v0), got {hp['v0']:g}", where)
    if hp.get("weight_decay", 0) < 0:
        raise SheetsgdError(f"weight_decay must be ≥ 0, got {hp['weight_decay']:g}", where)
    if isinstance(lesson.epochs, bool) or not isinstance(lesson.epochs, int) or lesson.epochs < 1:
        raise SheetsgdError(f"epochs must be an integer ≥ 1, got {lesson.epochs!r}", where)
    if isinstance(lesson.batch_size, bool) or not isinstance(lesson.batch_size, int) or lesson.batch_size < 1:
        raise SheetsgdError(f"batch_size must be an integer ≥ 1 or \"full\", got {lesson.batch_size!r}", where)
    if not isinstance(lesson.seed, int) or isinstance(lesson.seed, bool):
        raise SheetsgdError(f"seed must be an integer, got {lesson.seed!r}", where)
    if not isinstance(lesson.fd_step, (int, float)) or not lesson.fd_step > 0:
        raise SheetsgdError(f"fd_step must be a number > 0, got {lesson.fd_step!r}", where)
    if isinstance(lesson, Lesson):  # a data lesson's (validate serves the Titanic lessons too)
        check_bce(lesson, where)
    return replace(lesson, batch_size=min(lesson.batch_size, len(lesson.data)))


def check_bce(lesson: Lesson, where: str) -> None:
    """bce needs a prediction in (0, 1) (an own formula) and 0/1 targets."""
    if lesson.loss == "bce" and lesson.own_model is None:
        raise SheetsgdError(f"loss \"bce\" needs a prediction in (0, 1), which the {lesson.model} model does not give: "
                            "use [model] formula, e.g. \"1/(1+EXP(-(a*x+b)))\"", where)
    if lesson.loss == "bce" and not np.isin(lesson.data.y, (0.0, 1.0)).all():
        raise SheetsgdError(f"loss \"bce\" needs 0/1 targets; {lesson.data.y_name} holds "
                            f"{lesson.data.y[~np.isin(lesson.data.y, (0.0, 1.0))][0]:g}", where)


def read_template(name_or_path: str) -> tuple[dict, str, str]:
    """(parsed TOML, lesson name, source path) of a bundled lesson name or a template file."""
    bundled = bundled_lessons()
    if name_or_path in bundled:
        path = bundled[name_or_path]
    elif name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        path = Path(name_or_path)
    else:
        raise SheetsgdError(f"unknown lesson {name_or_path!r}; bundled: {', '.join(bundled)} (or give a .toml file)")
    return _read_toml(path), path.stem, str(path)


def template_kind(raw: dict) -> str:
    """The lesson kind a template asks for: ``[lesson] kind``; Titanic templates say ``[data] dataset``
    (a Titanic template may still name another kind, e.g. ``lr-finder``)."""
    meta = raw.get("lesson", {})
    kind = meta.get("kind", "sgd") if isinstance(meta, dict) else "sgd"
    data = raw.get("data")
    if kind == "sgd" and isinstance(data, dict) and data.get("dataset") in ("titanic", "penguins"):
        return "titanic"
    return kind


def load_lesson(name_or_path: str) -> Lesson:
    """A bundled lesson by name, or a template file by path (an SGD-on-data lesson)."""
    raw, name, source = read_template(name_or_path)
    if template_kind(raw) != "sgd":
        raise SheetsgdError(f"is a {template_kind(raw)!r} lesson, not an SGD-on-data lesson", source)
    return parse_lesson(raw, name, source)
