"""The numpy engine of an attention lesson: one self-attention head trained by mini-batch SGD.

Per sequence X (T tokens × 3 features): Q = X·W_Q, K = X·W_K, V = X·W_V (T × d); scores S = Q·Kᵀ/√d;
a row-wise softmax made stable by subtracting each row's max, A = exp(S − max)/Σ exp(S − max); O = A·V;
the read-out ŷ = mean over the tokens of O · w_o + b; loss (ŷ − y)². Backward, per sequence:
∂ŷ = 2(ŷ − y); ∂h = ∂ŷ·w_o; ∂A_ij = Σ_k ∂O_ik V_jk with ∂O_ik = ∂h_k/T; ∂V_jk = Σ_i A_ij ∂O_ik;
the softmax's Jacobian ∂S_ij = A_ij(∂A_ij − Σ_l A_il ∂A_il); ∂Q = ∂S·K/√d, ∂K = ∂Sᵀ·Q/√d; the weights'
gradients Xᵀ·∂Q, Xᵀ·∂K, Xᵀ·∂V, ∂ŷ·h and ∂ŷ. A step averages them over its batch and takes p − lr·g.
The workbook computes the same numbers with formulas, one row per sequence per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lesson import AttentionLesson

PARAMS = ("wq", "wk", "wv", "wo", "b")


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every forward quantity of a batch of sequences x (B, T, 3)."""
    d = p["wq"].shape[1]
    q, k, v = x @ p["wq"], x @ p["wk"], x @ p["wv"]
    s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    m = s.max(axis=2)
    e = np.exp(s - m[:, :, None])
    a = e / e.sum(axis=2, keepdims=True)
    o = a @ v
    h = o.mean(axis=1)
    pred = h @ p["wo"] + p["b"][0]
    return {"q": q, "k": k, "v": v, "s": s, "m": m, "e": e, "a": a, "o": o, "h": h, "pred": pred}


def backward(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, f: dict[str, np.ndarray]) -> dict:
    """Every backward quantity of each sequence's own loss (B rows; a step averages the weights' ones)."""
    T, d = x.shape[1], p["wq"].shape[1]
    dpred = 2 * (f["pred"] - y)
    dh = dpred[:, None] * p["wo"][None, :]
    do = np.repeat(dh[:, None, :] / T, T, axis=1)
    da = do @ f["v"].transpose(0, 2, 1)
    dv = f["a"].transpose(0, 2, 1) @ do
    a = f["a"]
    ds = a * (da - (a * da).sum(axis=2, keepdims=True))
    dq = ds @ f["k"] / np.sqrt(d)
    dk = ds.transpose(0, 2, 1) @ f["q"] / np.sqrt(d)
    xt = x.transpose(0, 2, 1)
    g = {"wq": xt @ dq, "wk": xt @ dk, "wv": xt @ dv, "wo": dpred[:, None] * f["h"], "b": dpred[:, None]}
    return {"dpred": dpred, "dh": dh, "da": da, "dv": dv, "ds": ds, "dq": dq, "dk": dk, "g": g}


def focus(a: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Per sequence: the attention the tokens pay to the key token, averaged over the queries."""
    return a[np.arange(len(key)), :, key].mean(axis=1)


@dataclass
class AttentionTrace:
    params: list[dict[str, np.ndarray]]  # per step: the weights the step starts from
    grads: list[dict[str, np.ndarray]]  # the batch means
    new: list[dict[str, np.ndarray]]
    rows: list[dict[str, np.ndarray]]  # per step: forward and backward quantities of each sequence of the batch
    loss: np.ndarray  # (steps,) the batch's mean loss
    focus: np.ndarray  # (steps,) the batch's mean attention on the key token
    lr: float = 0.0

    @property
    def n_steps(self) -> int:
        return len(self.loss)

    @property
    def final(self) -> dict[str, np.ndarray]:
        return self.new[-1]

    def evaluate(self, lesson: AttentionLesson, p: dict[str, np.ndarray] | None = None) -> dict:
        """On the test sequences: MSE, the share within 0.1 of the target, the share of sequences whose
        most-attended token (averaged over the queries) is the key token, and the mean attention it gets."""
        test = lesson.test
        f = forward(self.final if p is None else p, test.x)
        attended = f["a"].mean(axis=1).argmax(axis=1)
        return {"mse": float(((f["pred"] - test.y) ** 2).mean()),
                "within_0.1": float((np.abs(f["pred"] - test.y) < 0.1).mean()),
                "attends_key": float((attended == test.key).mean()),
                "focus": float(focus(f["a"], test.key).mean()),
                "baseline_mse": float(((test.y - test.y.mean()) ** 2).mean())}

    def summary(self, lesson) -> dict:
        start, end = self.evaluate(lesson, self.params[0]), self.evaluate(lesson)
        return {"steps": self.n_steps, "lr": lesson.lr, "batch_size": lesson.batch_size, "d": lesson.d,
                "final_loss": float(self.loss[-1]), "test_start": start, "test_end": end}

    @property
    def steps(self) -> dict[str, np.ndarray]:
        return {"step": np.arange(1, self.n_steps + 1, dtype=float), "loss": self.loss, "focus": self.focus}

    def table(self):
        return [{k: (i + 1 if k == "step" else float(v[i])) for k, v in self.steps.items()}
                for i in range(self.n_steps)]


def train_attention(lesson: AttentionLesson) -> AttentionTrace:
    data = lesson.data
    p = lesson.init()
    params, grads, new, rows, losses, focuses = [], [], [], [], [], []
    with np.errstate(all="ignore"):
        for step in range(1, lesson.steps + 1):
            idx = lesson.batch(step)
            x, y = data.x[idx], data.y[idx]
            f = forward(p, x)
            b = backward(p, x, y, f)
            g = {k: v.mean(axis=0).reshape(p[k].shape) for k, v in b["g"].items()}
            loss = (f["pred"] - y) ** 2
            fc = focus(f["a"], data.key[idx])
            rows.append({**f, **b, "loss": loss, "focus": fc, "idx": idx})
            params.append(p)
            grads.append(g)
            p = {k: p[k] - lesson.lr * g[k] for k in PARAMS}
            new.append(p)
            losses.append(loss.mean())
            focuses.append(fc.mean())
    return AttentionTrace(params, grads, new, rows, np.array(losses), np.array(focuses), lesson.lr)
