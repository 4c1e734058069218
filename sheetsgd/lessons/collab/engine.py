"""The numpy engine of a collab-filter lesson: full-batch gradient descent on user and movie embeddings.

prediction z = U[u]·V[m] + b_u + b_m, squashed as fastai's ``y_range`` does when asked
(ŷ = lo + (hi − lo)·σ(z)); loss = mean over the training ratings of (ŷ − r)²; the gradient of every
parameter p is ∂loss/∂p + wd·p (torch.optim.SGD's weight_decay), the step p ← p − lr·g. The workbook
computes the same numbers with formulas, one block of rows per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lesson import CollabLesson

PARAMS = ("users", "user_bias", "movies", "movie_bias")


@dataclass
class CollabTrace:
    params: list[dict[str, np.ndarray]]  # per step: the parameters the step starts from
    grads: list[dict[str, np.ndarray]]
    new: list[dict[str, np.ndarray]]
    pred: np.ndarray  # (steps, users, movies)
    err: np.ndarray  # (steps, users, movies): ŷ − r on training ratings, 0 elsewhere
    dz: np.ndarray  # (steps, users, movies): ∂(squared error)/∂z / 2 (err·σ′ with y_range)
    loss: np.ndarray  # (steps,) training MSE
    held_loss: np.ndarray  # (steps,) held-back MSE
    objective: np.ndarray  # (steps,) loss + wd/2·Σp²
    baseline: float  # held-back MSE of predicting the mean training rating
    lr: np.ndarray | None = None  # (steps,) the scheduled lr ([schedule]; None: the lr cell)

    @property
    def n_steps(self) -> int:
        return len(self.loss)

    @property
    def final(self) -> dict[str, np.ndarray]:
        return self.new[-1]

    def summary(self, lesson) -> dict:
        return {"steps": self.n_steps, "lr": lesson.lr, "wd": lesson.wd, "factors": lesson.factors,
                "y_range": list(lesson.y_range) if lesson.y_range else None,
                "final_loss": float(self.loss[-1]), "final_held_back_mse": float(self.held_loss[-1]),
                "all_means_baseline_mse": self.baseline}

    @property
    def steps(self) -> dict[str, np.ndarray]:
        """Per step: the Loss sheet's columns (``sheetsgd trace`` prints them)."""
        out = {"step": np.arange(1, self.n_steps + 1, dtype=float), "loss": self.loss,
               "held_back_mse": self.held_loss, "objective": self.objective}
        return out if self.lr is None else {**out, "lr": self.lr}

    def table(self):
        return [{k: (i + 1 if k == "step" else float(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def forward(lesson: CollabLesson, p: dict[str, np.ndarray]):
    """(ŷ, z) for every cell of the ratings matrix."""
    z = p["users"] @ p["movies"].T + p["user_bias"][:, None] + p["movie_bias"][None, :]
    if lesson.y_range is None:
        return z, z
    lo, hi = lesson.y_range
    return lo + (hi - lo) / (1 + np.exp(-z)), z


def objective(lesson: CollabLesson, p: dict[str, np.ndarray]) -> float:
    """The training MSE plus wd/2·Σp² (what the Solver sheet minimises)."""
    pred, _ = forward(lesson, p)
    ratings = lesson.ratings.train
    mask = np.isfinite(ratings)
    err = np.where(mask, pred - np.nan_to_num(ratings), 0.0)
    return float((err**2).sum() / mask.sum() + lesson.wd / 2 * sum((v**2).sum() for v in p.values()))


def train_collab(lesson: CollabLesson) -> CollabTrace:
    data = lesson.ratings
    mask = np.isfinite(data.train)
    ratings = np.nan_to_num(data.train)
    held = np.isfinite(data.held)
    n = mask.sum()
    p = lesson.init()
    out = {k: [] for k in ("params", "grads", "new", "pred", "err", "dz", "loss", "held", "objective")}
    lrs = lesson.step_lrs()
    with np.errstate(all="ignore"):
        for s in range(lesson.steps):
            pred, _ = forward(lesson, p)
            err = np.where(mask, pred - ratings, 0.0)
            if lesson.y_range is None:
                dz = err
            else:
                lo, hi = lesson.y_range
                dz = err * (pred - lo) * (hi - pred) / (hi - lo)
            g = {"users": 2 * dz @ p["movies"] / n + lesson.wd * p["users"],
                 "user_bias": 2 * dz.sum(axis=1) / n + lesson.wd * p["user_bias"],
                 "movies": 2 * dz.T @ p["users"] / n + lesson.wd * p["movies"],
                 "movie_bias": 2 * dz.sum(axis=0) / n + lesson.wd * p["movie_bias"]}
            new = {k: p[k] - lrs[s] * g[k] for k in PARAMS}
            loss = (err**2).sum() / n
            for k, v in (("params", p), ("grads", g), ("new", new), ("pred", pred), ("err", err), ("dz", dz),
                         ("loss", loss), ("held", ((pred - np.nan_to_num(data.held))[held] ** 2).mean()),
                         ("objective", loss + lesson.wd / 2 * sum((v**2).sum() for v in p.values()))):
                out[k].append(v)
            p = new
    mean = ratings[mask].mean()
    baseline = float(((data.held[held] - mean) ** 2).mean())
    return CollabTrace(out["params"], out["grads"], out["new"], np.array(out["pred"]), np.array(out["err"]),
                       np.array(out["dz"]), np.array(out["loss"]), np.array(out["held"]),
                       np.array(out["objective"]), baseline, np.array(lrs) if lesson.schedule else None)
