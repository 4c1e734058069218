"""Inverted dropout on an MLP's hidden units, trained side by side with the same net without dropout.

One model holds two nets with the same initial weights: the dropout net (h, v, c) and its twin without
dropout (h…_0, v…_0, c_0, "p = 0"). Their losses are separate columns and their parameters disjoint, so
one gradient step on the pair is one step of each net on its own (every optimizer here is per parameter).

Training rows: the mask mⱼ (0 or 1 per example and hidden unit) is a given value, drawn once from numpy's
``default_rng(dropout_seed)`` for every Examples row in step order (the sheet has no RAND, and a fixed
mask makes it checkable); the kept activation is rⱼ = aⱼ·mⱼ/(1 − p) (inverted dropout: the mean of rⱼ
is aⱼ), the output reads r, and backward ∂loss/∂zⱼ = ∂loss/∂o · vⱼ · mⱼ/(1 − p) · [zⱼ > 0]: a dropped
unit gets no gradient. Validation and the Solver sheet run without dropout: o = v·a + c.
"""
from __future__ import annotations

import numpy as np

from .nets import MLP, Model, Quantity, relu, relu_slope, sigmoid

SUFFIX = "_0"  # the twin without dropout: every key of the plain net carries it


def draw_mask(seed: int, rows: int, hidden: int, p: float) -> np.ndarray:
    """0/1 keep mask, one row per Examples row (step order), one column per hidden unit; P(keep) = 1 − p."""
    return (np.random.default_rng(seed).random((rows, hidden)) >= p).astype(float)


class _Plain:
    """A formula context for the twin: every quantity, group and parameter key gets the suffix (y is shared)."""

    def __init__(self, c):
        self.c = c

    def _k(self, key):
        return key if key == "y" else key + SUFFIX

    def q(self, key):
        return self.c.q(self._k(key))

    def q_range(self, first, last):
        return self.c.q_range(self._k(first), self._k(last))

    def group(self, name):
        return self.c.group(name + SUFFIX)

    def param(self, key):
        return self.c.param(key + SUFFIX)

    def features(self):
        return self.c.features()

    def target(self, j=None):
        return self.c.target(j)

    def hp(self, name):
        return self.c.hp(name)


def _plain_columns(columns: list[Quantity]) -> list[Quantity]:
    return [Quantity(q.key + SUFFIX, f"{q.header} · no dropout", lambda c, q=q: q.formula(_Plain(c)),
                     f"the same net without dropout: {q.note}") for q in columns]


class DropoutMLP(Model):
    """ŷ = σ(Σⱼ vⱼ·mⱼ·ReLU(hⱼ·x)/(1 − p) + c) while training (mask m given), σ(v·a + c) when evaluating;
    beside it the same net trained without dropout (keys …_0)"""

    name, title, sigmoid_output = "mlp", "one hidden ReLU layer with inverted dropout, beside the same net without", True
    uses_mask = True
    runs = ("", SUFFIX)  # the Steps and Epochs sheets show loss and accuracy of each

    def __init__(self, features, hidden, dropout: float, loss, eps: float):
        self.plain = MLP(features, hidden)
        self.p, self.loss, self.eps = float(dropout), loss, eps
        super().__init__(features, hidden)

    def _groups(self):
        groups = dict(self.plain.groups)
        groups.update({g + SUFFIX: [k + SUFFIX for k in keys] for g, keys in self.plain.groups.items()})
        return groups

    def _halves(self, theta):
        n = len(self.plain.params)
        return theta[:n], theta[n:]

    # ------------------------------------------------------------------------------------------ numpy

    def _loss(self, q, y, with_backward, suffix=""):
        pred = q["pred" + suffix]
        q.update({k + suffix: v for k, v in self.loss.forward(pred, y, self.eps).items()})
        q["correct" + suffix] = np.where(pred > 0.5, y, 1 - y)
        if with_backward:
            q["dloss" + suffix] = self.loss.dloss(pred, y, self.eps)
            q["dout" + suffix] = q["dloss" + suffix] * pred * (1 - pred)

    def evaluate(self, theta, X, y, with_backward: bool = True, mask=None) -> dict[str, np.ndarray]:
        """Every quantity of both nets; ``mask`` None: evaluation (no dropout, r = a, no m columns)."""
        mine, plain = self._halves(theta)
        g = self.plain.unpack(mine)
        n = self.hidden
        q = {"y": y}
        q.update({f"z{j}": X @ g[f"h{j}"] for j in range(1, n + 1)})
        q.update({f"a{j}": relu(q[f"z{j}"]) for j in range(1, n + 1)})
        keep = np.ones((len(X), n)) if mask is None else mask
        scale = 1.0 if mask is None else 1 - self.p
        if mask is not None:
            q.update({f"m{j}": mask[:, j - 1] for j in range(1, n + 1)})
            q.update({f"r{j}": q[f"a{j}"] * mask[:, j - 1] / scale for j in range(1, n + 1)})
        else:
            q.update({f"r{j}": q[f"a{j}"] for j in range(1, n + 1)})
        R = np.column_stack([q[f"r{j}"] for j in range(1, n + 1)])
        q["out"] = R @ g["v"] + g["c"][0]
        q["pred"] = sigmoid(q["out"])
        self._loss(q, y, with_backward)
        fw = self.plain.forward(plain, X)
        q.update({k + SUFFIX: v for k, v in fw.items()})
        self._loss(q, y, with_backward, SUFFIX)
        if with_backward:
            for j in range(1, n + 1):
                q[f"dz{j}"] = q["dout"] * g["v"][j - 1] * keep[:, j - 1] / scale * relu_slope(q[f"z{j}"])
            v0 = self.plain.unpack(plain)["v"]
            for j in range(1, n + 1):
                q[f"dz{j}{SUFFIX}"] = q[f"dout{SUFFIX}"] * v0[j - 1] * relu_slope(q[f"z{j}{SUFFIX}"])
        return q

    def mask_columns(self, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {f"m{j}": mask[:, j - 1] for j in range(1, self.hidden + 1)}

    # ------------------------------------------------------------------------------------------ formulas

    def _head(self, c_out: str, dropped: bool) -> list[Quantity]:
        n = self.hidden
        cols = [Quantity("y", self.plain.target_header, lambda c: c.target(), self.plain.target_note)]
        cols += self.plain.forward_columns()[:2 * n]  # z1…zn, a1…an
        if dropped:
            cols += [Quantity(f"m{j}", f"mask m{j}", None, f"given: 1 keeps hidden unit {j} for this row, 0 drops "
                              "it (drawn from dropout_seed)") for j in range(1, n + 1)]
            cols += [Quantity(f"r{j}", f"r{j} = a{j}·m{j}/(1−p)",
                              lambda c, j=j: f"{c.q(f'a{j}')}*{c.q(f'm{j}')}/(1-{c.hp('dropout')})",
                              "inverted dropout: a kept unit is scaled by 1/(1 − p), a dropped one is 0")
                     for j in range(1, n + 1)]
        cols += [
            Quantity("out", "o = v·" + ("r" if dropped else "a") + " + c",
                     lambda c: f"SUMPRODUCT({c.group('v')},{c.q_range(c_out + '1', f'{c_out}{n}')})+{c.param('c')}",
                     "the output unit's score" + (" from the kept units" if dropped else ", no dropout")),
            Quantity("pred", "ŷ = σ(o)", lambda c: f"1/(1+EXP(-{c.q('out')}))", "sigmoid: " + self.plain.outcome),
        ]
        cols += self.loss.columns()
        cols.append(Quantity("correct", "correct (ŷ>0.5)", lambda c: f"IF({c.q('pred')}>0.5,{c.q('y')},1-{c.q('y')})",
                             "1 when the prediction at threshold 0.5 matches y"))
        return cols

    def _plain_forward(self) -> list[Quantity]:
        tail = self.plain.forward_columns() + self.loss.columns()
        tail.append(Quantity("correct", "correct (ŷ>0.5)", lambda c: f"IF({c.q('pred')}>0.5,{c.q('y')},1-{c.q('y')})",
                             "1 when the prediction at threshold 0.5 matches y"))
        return _plain_columns(tail)

    def example_columns(self) -> tuple[list[Quantity], list[Quantity]]:
        """Training rows: the dropout net (with its given mask), then the twin; backward likewise."""
        n = self.hidden
        back = [Quantity("dloss", "∂loss/∂ŷ", self.loss.dloss_formula, "derivative of the loss w.r.t. the prediction"),
                self.plain.backward_columns()[0]]
        back += [Quantity(f"dz{j}", f"∂loss/∂z{j}",
                          lambda c, j=j: f"{c.q('dout')}*{c.param(f'v{j}')}*{c.q(f'm{j}')}/(1-{c.hp('dropout')})"
                                         f"*IF({c.q(f'z{j}')}>0,1,0)",
                          f"∂loss/∂o · v{j} · m{j}/(1−p), only where z{j} > 0: a dropped unit gets no gradient")
                 for j in range(1, n + 1)]
        plain_back = [Quantity("dloss", "∂loss/∂ŷ", self.loss.dloss_formula, "derivative of the loss w.r.t. the prediction")]
        plain_back += self.plain.backward_columns()
        return self._head("r", True) + self._plain_forward(), back + _plain_columns(plain_back)

    def eval_columns(self) -> list[Quantity]:
        """Validation and Solver rows: both nets without dropout."""
        return self._head("a", False) + self._plain_forward()

    def grad_terms(self):
        n = self.hidden
        terms = {f"h{j}_{f}": (f"dz{j}", ("x", i)) for j in range(1, n + 1) for i, f in enumerate(self.features)}
        terms.update({f"v{j}": ("dout", ("q", f"r{j}")) for j in range(1, n + 1)})
        terms["c"] = ("dout", None)
        for p, (factor, other) in self.plain.grad_terms().items():
            terms[p + SUFFIX] = (factor + SUFFIX, other if other is None or other[0] == "x"
                                 else ("q", other[1] + SUFFIX))
        return terms
