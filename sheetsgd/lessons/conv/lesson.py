"""A convolution lesson: seeded grayscale images of bars, a small CNN, its SGD steps.

The images are generated (no download, nothing to license): an ``size`` × ``size`` image of class 0
holds one horizontal bar, of class 1 one vertical bar; each bar is one pixel thick, ``bar_min``
pixels or longer, at a random row (column) and offset, of intensity uniform in [0.7, 1]; every pixel
gets normal noise of standard deviation ``noise``; pixels are rounded to 2 decimals (what the sheet
shows is what it computes with). ``train_images`` images are trained on, class by class alternately;
``test_images`` more, from the same seed, only measure the accuracy.

The network: ``filters`` 3×3 filters, each a valid cross-correlation (what PyTorch's ``F.conv2d``
computes) plus a bias, ReLU, one dense layer over every feature map cell to a score s, p = σ(s),
binary cross-entropy. SGD with batch size 1: step t trains on one image, in a seeded order per epoch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from sheetsgd.errors import SheetsgdError, refuse_options
from sheetsgd.sheet.layouts import LAYOUT_VERSION

KIND = "conv"
CLASSES = ("horizontal", "vertical")


@dataclass(frozen=True)
class Images:
    x: np.ndarray  # (n, size, size)
    y: np.ndarray  # (n,) 0 horizontal, 1 vertical

    def __len__(self) -> int:
        return len(self.y)


def generate(count: int, size: int, noise: float, bar_min: int, rng: np.random.Generator) -> Images:
    xs, ys = [], []
    for i in range(count):
        label = i % 2
        img = np.zeros((size, size))
        line = rng.integers(0, size)
        length = rng.integers(bar_min, size + 1)
        start = rng.integers(0, size - length + 1)
        level = rng.uniform(0.7, 1.0)
        if label == 0:
            img[line, start:start + length] = level
        else:
            img[start:start + length, line] = level
        img = np.round(img + rng.normal(0, noise, img.shape), 2) + 0.0  # + 0.0: no −0
        xs.append(img)
        ys.append(label)
    return Images(np.array(xs), np.array(ys, dtype=float))


@dataclass(frozen=True)
class ConvLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    size: int = 6
    train_images: int = 16
    test_images: int = 40
    noise: float = 0.1
    bar_min: int = 3
    data_seed: int = 3
    filters: int = 2
    pool: bool = False  # 2×2 max-pooling of each feature map before the dense layer
    init_std: float = 0.5
    init_seed: int = 1
    lr: float = 0.3
    epochs: int = 8
    order_seed: int = 5
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    kind: str = KIND
    layout_version: int = LAYOUT_VERSION  # every row reads its own row, the row above and fixed ranges

    optimizer = property(lambda self: "sgd", doc="SGD with batch size 1")
    loss = property(lambda self: "bce", doc="binary cross-entropy of σ(s)")

    @property
    def map_size(self) -> int:
        return self.size - 2

    @property
    def dense_size(self) -> int:
        """The side of each grid the dense layer reads: the feature map, or the pooled map (half as wide)."""
        return self.map_size // 2 if self.pool else self.map_size

    @property
    def steps(self) -> int:
        return self.epochs * self.train_images

    n_steps = steps

    @cached_property
    def data(self) -> Images:
        return generate(self.train_images, self.size, self.noise, self.bar_min, np.random.default_rng(self.data_seed))

    @cached_property
    def test(self) -> Images:
        rng = np.random.default_rng([self.data_seed, 1])
        return generate(self.test_images, self.size, self.noise, self.bar_min, rng)

    @cached_property
    def order(self) -> np.ndarray:
        """The image (0-based) each step trains on: a seeded permutation per epoch."""
        rng = np.random.default_rng(self.order_seed)
        return np.concatenate([rng.permutation(self.train_images) for _ in range(self.epochs)])

    def init(self) -> dict[str, np.ndarray]:
        """Filters and dense weights normal (std ``init_std``, the dense ones scaled by 1/√inputs), biases 0."""
        rng = np.random.default_rng(self.init_seed)
        m = self.dense_size
        return {"f": np.round(rng.normal(0, self.init_std, (self.filters, 3, 3)), 3),
                "c": np.zeros(self.filters),
                "w": np.round(rng.normal(0, 1 / np.sqrt(self.filters * m * m), (self.filters, m, m)), 3),
                "b": np.zeros(1)}


def parse_conv_lesson(raw: dict, name: str, source: str) -> ConvLesson:
    """A lesson from a template already checked by :mod:`sheetsgd.lessons.schema` (types and ranges)."""
    meta, images, model, training = (raw.get(k, {}) for k in ("lesson", "images", "model", "training"))
    keys = {}
    for table, names in ((images, ("size", "train_images", "test_images", "noise", "bar_min")),
                         (model, ("filters", "init_std", "pool")), (training, ("lr", "epochs"))):
        keys.update({k: table[k] for k in names if k in table})
    for table, key, to in ((images, "seed", "data_seed"), (model, "seed", "init_seed"), (training, "seed", "order_seed")):
        if key in table:
            keys[to] = table[key]
    lesson = ConvLesson(name=meta.get("name", name), title=meta.get("title", name),
                        description=meta.get("description", ""), tips=list(meta.get("try", [])), source=source,
                        exercise=list(meta.get("exercise", [])), **keys)
    return validate(lesson)


def validate(lesson: ConvLesson) -> ConvLesson:
    if lesson.bar_min > lesson.size:
        raise SheetsgdError(f"bar_min {lesson.bar_min} is longer than the image ({lesson.size} pixels)",
                            f"{lesson.source} [images]")
    if lesson.pool and lesson.map_size % 2:
        raise SheetsgdError(f"2×2 pooling needs an even feature map: size {lesson.size} gives {lesson.map_size}×"
                            f"{lesson.map_size}; use an even size", f"{lesson.source} [images]")
    if lesson.train_images < 2:
        raise SheetsgdError("train_images must be at least 2 (one of each class)", f"{lesson.source} [images]")
    return lesson


def override_conv(lesson: ConvLesson, *, lr=None, epochs=None, **others) -> ConvLesson:
    """--lr sets the learning rate, --epochs the passes over the training images; other options do not apply."""
    refuse_options(others, "a convolution lesson (SGD on one image per step)", lesson.source)
    if lr is not None:
        lesson = replace(lesson, lr=float(lr))
    if epochs is not None:
        lesson = replace(lesson, epochs=int(epochs))
    return validate(lesson)
