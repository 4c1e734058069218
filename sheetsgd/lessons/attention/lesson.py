"""An attention lesson: seeded toy sequences whose target is chosen by content, and the one-head model.

Each sequence has ``length`` tokens; a token is (1, marker, value): a constant 1 (so a query can exist without
content), a marker that is 1 on exactly one token (the "key" token, at a uniformly drawn position) and 0
elsewhere, and a value drawn uniformly from [−1, 1] (rounded to two decimals). The target is the value the
marked token carries, wherever it stands: a model must find the token by its content (attention), since no
position holds the answer. Generated with numpy's default_rng(``seed``); a test set from ``seed + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from sheetsgd.errors import SheetsgdError, refuse_options

KIND = "attention"
FEATURES = ("one", "key", "value")  # a token's embedding (d_in = 3)


@dataclass(frozen=True)
class Sequences:
    x: np.ndarray  # (n, T, 3) tokens
    y: np.ndarray  # (n,) the value of the marked token
    key: np.ndarray  # (n,) 0-based position of the marked token

    def __len__(self) -> int:
        return len(self.y)


def generate(n: int, length: int, seed: int) -> Sequences:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, length, n)
    values = np.round(rng.uniform(-1, 1, (n, length)), 2)
    x = np.zeros((n, length, len(FEATURES)))
    x[:, :, 0] = 1.0
    x[np.arange(n), key, 1] = 1.0
    x[:, :, 2] = values
    return Sequences(x, values[np.arange(n), key], key)


@dataclass(frozen=True)
class AttentionLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    examples: int = 16
    length: int = 4  # T: tokens per sequence
    data_seed: int = 3
    d: int = 2  # the head's size (Q, K, V columns)
    init_std: float = 0.5
    init_seed: int = 1
    lr: float = 0.5
    batch_size: int = 4
    epochs: int = 25
    test_examples: int = 500  # the test set the Introduction and the README measure on (not a template key)
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    kind: str = KIND
    layout_version: int = 2  # row-local from the first (sheetsgd.sheet.layouts)

    @cached_property
    def data(self) -> Sequences:
        return generate(self.examples, self.length, self.data_seed)

    @cached_property
    def test(self) -> Sequences:
        return generate(self.test_examples, self.length, self.data_seed + 1)

    @property
    def steps(self) -> int:
        return self.epochs * (self.examples // self.batch_size)

    n_steps = steps

    def batch(self, step: int) -> np.ndarray:
        """The examples (0-based) of a step (1-based): the data in order, batch after batch, epoch after epoch."""
        per_epoch = self.examples // self.batch_size
        first = ((step - 1) % per_epoch) * self.batch_size
        return np.arange(first, first + self.batch_size)

    optimizer = property(lambda self: "sgd", doc="mini-batch SGD (torch.optim.SGD)")
    loss = property(lambda self: "mse", doc="mean squared error of the read-out")

    def init(self) -> dict[str, np.ndarray]:
        """W_Q, W_K, W_V (3 × d) and the read-out w_o (d) normal(0, init_std), seeded; the bias b starts at 0."""
        rng = np.random.default_rng(self.init_seed)
        f, d = len(FEATURES), self.d
        return {"wq": rng.normal(0, self.init_std, (f, d)), "wk": rng.normal(0, self.init_std, (f, d)),
                "wv": rng.normal(0, self.init_std, (f, d)), "wo": rng.normal(0, self.init_std, d),
                "b": np.zeros(1)}


def parse_attention_lesson(raw: dict, name: str, source: str) -> AttentionLesson:
    """A lesson from a template already checked by :mod:`sheetsgd.lessons.schema` (types and ranges)."""
    meta, seqs, model, training = (raw.get(k, {}) for k in ("lesson", "sequences", "model", "training"))
    keys = {}
    for table, names in ((seqs, ("examples", "length")), (model, ("d", "init_std")),
                         (training, ("lr", "batch_size", "epochs"))):
        keys.update({k: table[k] for k in names if k in table})
    if "seed" in seqs:
        keys["data_seed"] = seqs["seed"]
    if "seed" in model:
        keys["init_seed"] = model["seed"]
    lesson = AttentionLesson(name=meta.get("name", name), title=meta.get("title", name),
                             description=meta.get("description", ""), tips=list(meta.get("try", [])), source=source,
                             exercise=list(meta.get("exercise", [])), **keys)
    return validate(lesson)


def validate(lesson: AttentionLesson) -> AttentionLesson:
    if not isinstance(lesson.batch_size, int) or isinstance(lesson.batch_size, bool):
        raise SheetsgdError(f"batch_size must be a whole number of sequences, got {lesson.batch_size!r:.40}",
                            f"{lesson.source} [training]")
    if lesson.examples % lesson.batch_size:
        raise SheetsgdError(f"batch_size {lesson.batch_size} must divide the {lesson.examples} examples "
                            "(every step a whole batch)", f"{lesson.source} [training]")
    return lesson


def override_attention(lesson: AttentionLesson, *, lr=None, epochs=None, batch_size=None,
                       **others) -> AttentionLesson:
    """--lr, --epochs and --batch-size; other options do not apply."""
    refuse_options(others, "an attention lesson (mini-batch SGD on its sequences)", lesson.source)
    if lr is not None:
        lesson = replace(lesson, lr=float(lr))
    if epochs is not None:
        lesson = replace(lesson, epochs=int(epochs))
    if batch_size is not None:
        if batch_size == "full":
            batch_size = lesson.examples
        lesson = replace(lesson, batch_size=batch_size)
    return validate(lesson)
