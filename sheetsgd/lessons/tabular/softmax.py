"""Softmax regression over K classes: numpy forward/backward and the same as per-example formula text.

zₖ = wₖ·x + bₖ, then the numerically stable softmax: m = MAX(z), eₖ = EXP(zₖ − m), pₖ = eₖ / Σe; the
cross-entropy loss −LN(Σₖ yₖ·pₖ) (the probability given to the true class, y one-hot), the predicted class
MATCH(MAX(p), p, 0) and the chain rule's one line ∂loss/∂zₖ = pₖ − yₖ. The model owns its loss (``ce``).
"""
from __future__ import annotations

import numpy as np

from .nets import Model, Quantity


class Softmax(Model):
    """p = softmax(W·x + b): one linear layer, one output per class"""

    name, title = "softmax", "softmax regression (linear layer, softmax, cross-entropy)"
    classes: tuple = ("Adelie", "Chinstrap", "Gentoo")
    noun = "penguin"

    def __init__(self, features, hidden: int = 2, classes: tuple | None = None, noun: str | None = None):
        if classes is not None:  # an author's classes (before the parameter groups are made from them)
            self.classes = tuple(classes)
        if noun is not None:
            self.noun = noun
        super().__init__(features, hidden)

    @property
    def k(self) -> int:
        return len(self.classes)

    def _groups(self):
        groups = {f"w{j}": [f"w{j}_{f}" for f in self.features] for j in range(1, self.k + 1)}
        groups["b"] = [f"b{j}" for j in range(1, self.k + 1)]
        return groups

    def forward(self, theta, X):
        g = self.unpack(theta)
        Z = np.column_stack([X @ g[f"w{j}"] + g["b"][j - 1] for j in range(1, self.k + 1)])
        m = Z.max(axis=1)
        E = np.exp(Z - m[:, None])
        s = np.zeros(len(X))
        for j in range(self.k):  # summed left to right, as SUM(e1:eK)
            s = s + E[:, j]
        P = E / s[:, None]
        out = {f"z{j + 1}": Z[:, j] for j in range(self.k)}
        out["m"] = m
        out.update({f"e{j + 1}": E[:, j] for j in range(self.k)})
        out.update({f"p{j + 1}": P[:, j] for j in range(self.k)})
        return out

    def evaluate(self, theta, X, Y, with_backward: bool = True) -> dict[str, np.ndarray]:
        Y = np.asarray(Y, dtype=float).reshape(len(X), self.k)
        q = {f"y{j + 1}": Y[:, j] for j in range(self.k)}
        q.update(self.forward(theta, X))
        P = np.column_stack([q[f"p{j}"] for j in range(1, self.k + 1)])
        true_p = np.zeros(len(X))
        for j in range(self.k):
            true_p = true_p + Y[:, j] * P[:, j]
        q["loss"] = -np.log(true_p)
        q["pred"] = (np.argmax(P, axis=1) + 1).astype(float)
        q["correct"] = (q["pred"] == np.argmax(Y, axis=1) + 1).astype(float)
        if with_backward:
            q.update({f"dz{j + 1}": P[:, j] - Y[:, j] for j in range(self.k)})
        return q

    def example_columns(self) -> tuple[list[Quantity], list[Quantity]]:
        k = self.k
        fw = [Quantity(f"y{j}", f"y {self.classes[j - 1]}", lambda c, j=j: c.target(j - 1),
                       f"1 when the {self.noun} is {self.classes[j - 1]} (the one-hot target, from Data)")
              for j in range(1, k + 1)]
        fw += [Quantity(f"z{j}", f"z{j} = w{j}·x + b{j}",
                        lambda c, j=j: f"SUMPRODUCT({c.group(f'w{j}')},{c.features()})+{c.param(f'b{j}')}",
                        f"class {j}'s score ({self.classes[j - 1]})") for j in range(1, k + 1)]
        fw.append(Quantity("m", "m = max z", lambda c: f"MAX({c.q_range('z1', f'z{k}')})",
                           "the largest score: subtracted before EXP so no EXP overflows"))
        fw += [Quantity(f"e{j}", f"e{j} = exp(z{j} − m)", lambda c, j=j: f"EXP({c.q(f'z{j}')}-{c.q('m')})",
                        "EXP of the score minus the row's MAX (at most 1)") for j in range(1, k + 1)]
        fw += [Quantity(f"p{j}", f"p{j} = e{j}/Σe", lambda c, j=j: f"{c.q(f'e{j}')}/SUM({c.q_range('e1', f'e{k}')})",
                        f"softmax: the probability of {self.classes[j - 1]}") for j in range(1, k + 1)]
        fw += [
            Quantity("loss", "loss −ln(p of y)", lambda c: f"-LN(SUMPRODUCT({c.q_range('y1', f'y{k}')},"
                     f"{c.q_range('p1', f'p{k}')}))", "cross-entropy: minus the natural log of the true class's p"),
            Quantity("pred", "predicted class", lambda c: f"MATCH(MAX({c.q_range('p1', f'p{k}')}),"
                     f"{c.q_range('p1', f'p{k}')},0)", "argmax: the position of the largest p ("
                     + ", ".join(map(str, range(1, k))) + f" or {k})"),
            Quantity("correct", "correct", lambda c: f"IF({c.q('pred')}=MATCH(1,{c.q_range('y1', f'y{k}')},0),1,0)",
                     "1 when the predicted class is the true one"),
        ]
        back = [Quantity(f"dz{j}", f"∂loss/∂z{j} = p{j} − y{j}", lambda c, j=j: f"{c.q(f'p{j}')}-{c.q(f'y{j}')}",
                         "softmax with cross-entropy: the probability minus the target") for j in range(1, k + 1)]
        return fw, back

    def grad_terms(self):
        terms = {f"w{j}_{f}": (f"dz{j}", ("x", i)) for j in range(1, self.k + 1) for i, f in enumerate(self.features)}
        terms.update({f"b{j}": (f"dz{j}", None) for j in range(1, self.k + 1)})
        return terms


class CrossEntropy:
    """The softmax model's loss: it computes it itself (−LN of the true class's probability)."""

    name, title = "ce", "cross-entropy"
