"""The numpy engine of a convolution lesson: one image per SGD step, every quantity the Steps row shows.

z_k[i, j] = Σ_u,v x[i + u, j + v]·F_k[u, v] + c_k (valid cross-correlation, as F.conv2d), a = max(0, z),
s = Σ w·a + b, p = σ(s), loss = −(y ln p + (1 − y) ln(1 − p)). Backward: ∂L/∂s = p − y, ∂L/∂w = (p − y)·a,
∂L/∂z = (p − y)·w where z > 0 (0 elsewhere), ∂L/∂F_k[u, v] = Σ_i,j ∂L/∂z_k[i, j]·x[i + u, j + v],
∂L/∂c_k = Σ ∂L/∂z_k; every parameter p ← p − lr·∂L/∂p.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lesson import ConvLesson

PARAMS = ("f", "c", "w", "b")


def correlate(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of an image (n, n) with filters (K, 3, 3): (K, n − 2, n − 2), bias not added."""
    m = x.shape[0] - 2
    return np.einsum("kuv,ijuv->kij", f, np.lib.stride_tricks.sliding_window_view(x, (3, 3))[:m, :m])


def max_pool(a: np.ndarray) -> np.ndarray:
    """2×2 max-pooling of each map (K, m, m) → (K, m/2, m/2)."""
    K, m, _ = a.shape
    return a.reshape(K, m // 2, 2, m // 2, 2).max(axis=(2, 4))


def unpool(v: np.ndarray) -> np.ndarray:
    """Each pooled cell's value on its 2×2 window: (K, q, q) → (K, 2q, 2q)."""
    return v.repeat(2, axis=1).repeat(2, axis=2)


def forward(p: dict[str, np.ndarray], x: np.ndarray, pool: bool = False):
    """(z, a, what the dense layer reads: a or a max-pooled, s, p)."""
    z = correlate(x, p["f"]) + p["c"][:, None, None]
    a = np.maximum(z, 0.0)
    dense = max_pool(a) if pool else a
    s = float((p["w"] * dense).sum() + p["b"][0])
    return z, a, dense, s, 1 / (1 + np.exp(-s))


@dataclass
class ConvTrace:
    params: list[dict[str, np.ndarray]]  # per step: the parameters the step starts from
    grads: list[dict[str, np.ndarray]]
    new: list[dict[str, np.ndarray]]
    z: np.ndarray  # (steps, K, m, m)
    a: np.ndarray
    dz: np.ndarray
    s: np.ndarray  # (steps,)
    p: np.ndarray
    loss: np.ndarray
    correct: np.ndarray  # (steps,) 1 where p > 0.5 is the image's class
    image: np.ndarray  # (steps,) the image trained on (0-based)
    test_accuracy_start: float
    test_accuracy: float  # of the final parameters on the test images
    pooled: np.ndarray | None = None  # (steps, K, m/2, m/2) with 2×2 max-pooling

    @property
    def n_steps(self) -> int:
        return len(self.loss)

    @property
    def final(self) -> dict[str, np.ndarray]:
        return self.new[-1]

    def epoch_means(self, per_epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean loss, training accuracy) of each epoch's steps."""
        return self.loss.reshape(-1, per_epoch).mean(axis=1), self.correct.reshape(-1, per_epoch).mean(axis=1)

    def summary(self, lesson) -> dict:
        loss, acc = self.epoch_means(lesson.train_images)
        return {"steps": self.n_steps, "lr": lesson.lr, "filters": lesson.filters,
                "first_epoch_loss": float(loss[0]), "last_epoch_loss": float(loss[-1]),
                "last_epoch_accuracy": float(acc[-1]), "test_accuracy_start": self.test_accuracy_start,
                "test_accuracy": self.test_accuracy}

    @property
    def steps(self) -> dict[str, np.ndarray]:
        """Per step: the Steps sheet's summary columns (``sheetsgd trace`` prints them)."""
        return {"step": np.arange(1, self.n_steps + 1, dtype=float), "image": self.image + 1.0, "p": self.p,
                "loss": self.loss, "correct": self.correct}

    def table(self):
        return [{k: (i + 1 if k == "step" else float(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def accuracy(p: dict[str, np.ndarray], images, pool: bool = False) -> float:
    with np.errstate(all="ignore"):
        right = [(forward(p, x, pool)[4] > 0.5) == (y == 1) for x, y in zip(images.x, images.y)]
    return float(np.mean(right))


def train_conv(lesson: ConvLesson) -> ConvTrace:
    data = lesson.data
    p = lesson.init()
    start = p
    out = {k: [] for k in ("params", "grads", "new", "z", "a", "dz", "s", "p", "loss", "correct", "pooled")}
    lr = lesson.lr
    with np.errstate(all="ignore"):
        for img in lesson.order:
            x, y = data.x[img], data.y[img]
            z, a, dense, s, prob = forward(p, x, lesson.pool)
            ds = prob - y
            if lesson.pool:  # the gradient goes to each window's maximum only
                dz = np.where((z > 0) & (a == unpool(dense)), ds * unpool(p["w"]), 0.0)
            else:
                dz = np.where(z > 0, ds * p["w"], 0.0)
            windows = np.lib.stride_tricks.sliding_window_view(x, (lesson.map_size, lesson.map_size))  # (3, 3, m, m)
            g = {"f": np.einsum("kij,uvij->kuv", dz, windows), "c": dz.sum(axis=(1, 2)), "w": ds * dense,
                 "b": np.array([ds])}
            new = {k: p[k] - lr * g[k] for k in PARAMS}
            loss = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
            for k, v in (("params", p), ("grads", g), ("new", new), ("z", z), ("a", a), ("dz", dz), ("s", s),
                         ("p", prob), ("loss", loss), ("correct", float((prob > 0.5) == (y == 1))), ("pooled", dense)):
                out[k].append(v)
            p = new
    arr = {k: np.array(out[k]) for k in ("z", "a", "dz", "s", "p", "loss", "correct")}
    return ConvTrace(out["params"], out["grads"], out["new"], arr["z"], arr["a"], arr["dz"], arr["s"], arr["p"],
                     arr["loss"], arr["correct"], np.array(lesson.order), accuracy(start, lesson.test, lesson.pool),
                     accuracy(p, lesson.test, lesson.pool), np.array(out["pooled"]) if lesson.pool else None)
