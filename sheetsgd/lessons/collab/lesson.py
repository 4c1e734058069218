"""A collaborative-filtering lesson: seeded ratings from known tastes, the embedding model, its training.

The ratings are generated (MovieLens' licence does not suit an MIT package): every user and movie has
``true_factors`` latent tastes and a bias drawn from a seeded normal; a rating is
round(3 + tastes·features/√k + biases + noise), clipped to 1–5; each cell is rated with probability
``density``; ``valid_fraction`` of the ratings are held back (a seeded split), keeping at least two
training ratings per user and per movie. The true tastes go into the workbook (the Tastes sheet).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from sheetsgd.lessons.schedules import Schedule, parse_schedule
from sheetsgd.errors import SheetsgdError, refuse_options
from sheetsgd.sheet.layouts import LAYOUT_VERSION

KIND = "collab"


@dataclass(frozen=True)
class Ratings:
    train: np.ndarray  # (users, movies) ratings 1–5, NaN where not a training rating
    held: np.ndarray  # (users, movies) held-back ratings, NaN elsewhere
    true_users: np.ndarray  # (users, true_factors)
    true_movies: np.ndarray  # (movies, true_factors)
    true_user_bias: np.ndarray
    true_movie_bias: np.ndarray
    clean: np.ndarray  # the noise-free rating model 3 + tastes·features/√k + biases

    @property
    def train_cells(self) -> list[tuple[int, int]]:
        """(user, movie) of every training rating, by user then movie (0-based)."""
        return [tuple(x) for x in np.argwhere(np.isfinite(self.train))]

    @property
    def held_cells(self) -> list[tuple[int, int]]:
        return [tuple(x) for x in np.argwhere(np.isfinite(self.held))]


def generate(users: int, movies: int, density: float, true_factors: int, noise: float, seed: int,
             valid_fraction: float, split_seed: int) -> Ratings:
    rng = np.random.default_rng(seed)
    tu = rng.normal(size=(users, true_factors))
    tm = rng.normal(size=(movies, true_factors))
    bu = rng.normal(0, 0.5, users)
    bm = rng.normal(0, 0.5, movies)
    clean = 3 + tu @ tm.T / np.sqrt(true_factors) + bu[:, None] + bm[None, :]
    ratings = np.clip(np.round(clean + noise * rng.normal(size=clean.shape)), 1, 5)
    rated = rng.random((users, movies)) < density
    for u in range(users):  # at least three ratings per user and per movie
        while rated[u].sum() < 3:
            rated[u, rng.integers(movies)] = True
    for m in range(movies):
        while rated[:, m].sum() < 3:
            rated[rng.integers(users), m] = True
    train = rated.copy()
    split = np.random.default_rng(split_seed)
    cells = np.argwhere(rated)
    want = int(round(valid_fraction * len(cells)))
    held = np.zeros_like(rated)
    for u, m in cells[split.permutation(len(cells))]:
        if held.sum() >= want:
            break
        if train[u].sum() > 2 and train[:, m].sum() > 2:
            train[u, m], held[u, m] = False, True
    return Ratings(np.where(train, ratings, np.nan), np.where(held, ratings, np.nan), tu, tm, bu, bm, clean)


@dataclass(frozen=True)
class CollabLesson:
    name: str
    title: str
    description: str
    tips: list[str]
    users: int = 15
    movies: int = 15
    density: float = 0.5
    true_factors: int = 3
    noise: float = 0.3
    data_seed: int = 42
    valid_fraction: float = 0.2
    split_seed: int = 7
    factors: int = 5
    y_range: tuple[float, float] | None = (0.5, 5.5)
    init_std: float = 0.3
    init_seed: int = 1
    lr: float = 1.0
    wd: float = 0.0
    steps: int = 40
    source: str = ""
    exercise: list[str] = field(default_factory=list)
    kind: str = KIND
    schedule: Schedule | None = None  # [schedule]: the lr of each step on the Loss sheet (sheetsgd.lessons.schedules)
    layout_version: int = LAYOUT_VERSION  # sheetsgd.sheet.layouts: 1 sums each step's own Train rows, INDEX(row, n)

    def step_lrs(self) -> list[float]:
        """The lr of each step: lr, scheduled."""
        return self.schedule.values(self.lr, self.steps, "sgd")["lr"].tolist() if self.schedule else [self.lr] * self.steps

    @cached_property
    def ratings(self) -> Ratings:
        return generate(self.users, self.movies, self.density, self.true_factors, self.noise, self.data_seed,
                        self.valid_fraction, self.split_seed)

    @property
    def n_steps(self) -> int:
        return self.steps

    optimizer = property(lambda self: "sgd", doc="full-batch SGD (torch.optim.SGD with weight_decay)")
    loss = property(lambda self: "mse", doc="mean squared error over the training ratings")

    def init(self) -> dict[str, np.ndarray]:
        """Initial factors (normal, std ``init_std``, seeded) and zero biases."""
        rng = np.random.default_rng(self.init_seed)
        return {"users": rng.normal(0, self.init_std, (self.users, self.factors)),
                "movies": rng.normal(0, self.init_std, (self.movies, self.factors)),
                "user_bias": np.zeros(self.users), "movie_bias": np.zeros(self.movies)}


def parse_collab_lesson(raw: dict, name: str, source: str) -> CollabLesson:
    """A lesson from a template already checked by :mod:`sheetsgd.lessons.schema` (types and ranges)."""
    meta, ratings, model, training = (raw.get(k, {}) for k in ("lesson", "ratings", "model", "training"))
    y_range = model.get("y_range", [0.5, 5.5])
    if len(y_range) not in (0, 2) or (len(y_range) == 2 and not y_range[0] < y_range[1]):
        raise SheetsgdError("y_range must be [] (no squashing) or [low, high] with low < high",
                            f"{source} [model]")
    get = lambda table, key: {} if key not in table else {key: table[key]}  # noqa: E731
    keys = {}
    for table, names in ((ratings, ("users", "movies", "density", "true_factors", "noise", "valid_fraction",
                                    "split_seed")), (model, ("factors", "init_std")), (training, ("lr", "wd", "steps"))):
        for key in names:
            keys.update(get(table, key))
    if "seed" in ratings:
        keys["data_seed"] = ratings["seed"]
    if "seed" in model:
        keys["init_seed"] = model["seed"]
    lesson = CollabLesson(name=meta.get("name", name), title=meta.get("title", name),
                          description=meta.get("description", ""), tips=list(meta.get("try", [])),
                          y_range=tuple(float(x) for x in y_range) or None, source=source,
                          exercise=list(meta.get("exercise", [])), schedule=parse_schedule(raw, source), **keys)
    return validate(lesson)


def validate(lesson: CollabLesson) -> CollabLesson:
    rated = lesson.density * lesson.users * lesson.movies
    if rated < 3 * max(lesson.users, lesson.movies):
        raise SheetsgdError(f"density {lesson.density:g} leaves too few ratings for {lesson.users} users × "
                            f"{lesson.movies} movies: raise density", lesson.source)
    return lesson


def override_collab(lesson: CollabLesson, *, lr=None, epochs=None, **others) -> CollabLesson:
    """--lr sets the learning rate, --epochs the number of full-batch steps; other options do not apply."""
    refuse_options(others, "a collab-filter lesson (full-batch SGD on its ratings)", lesson.source)
    if lr is not None:
        lesson = replace(lesson, lr=float(lr))
    if epochs is not None:
        lesson = replace(lesson, steps=int(epochs))
    return validate(lesson)
