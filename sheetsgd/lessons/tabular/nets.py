"""Titanic models and losses: numpy forward/backward and the same as per-example formula text, side by side.

A model turns one passenger's feature row into a prediction through named per-example quantities
(z, a1, out, pred, …), each one sheet column. Backward, the chain rule is spelled out the same way:
∂loss/∂ŷ, then ∂loss/∂z for each unit; each parameter's gradient is one named factor times one
input (a feature, a hidden activation, or 1), averaged over the batch.

Formula builders get a context ``c`` that knows where things are in the current layout:
``c.q(key)`` this example's cell of quantity key, ``c.q_range(first, last)`` a run of them,
``c.group(name)`` the cells of a contiguous parameter group, ``c.param(key)`` one parameter,
``c.features()`` the example's feature row on the Data sheet, ``c.hp(name)`` a named hyperparameter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Builder = Callable[[object], str]


@dataclass(frozen=True)
class Quantity:
    """A per-example sheet column: key (the engine's name for it), header, formula builder (None: a given
    value, as a dropout mask), note."""

    key: str
    header: str
    formula: "Builder | None"
    note: str = ""


def sigmoid(z):
    return 1 / (1 + np.exp(-z))  # written the same way on the sheet: 1/(1+EXP(-z))


def relu(z):
    return np.where(z < 0, 0.0, z)  # the lesson's IF(z<0,0,z)


def relu_slope(z):
    return (z > 0).astype(float)  # 0 at the kink, as torch


# ---------------------------------------------------------------------------------------------- models


class Model:
    """Parameters in sheet order, grouped into contiguous runs that a SUMPRODUCT reads."""

    name = ""
    title = ""
    sigmoid_output = False
    # the 0/1 target's words on the sheets (an author's CSV names its own: lesson.make_net)
    target_header, target_note, outcome = "survived y", "the passenger's Survived (0 or 1)", "the survival probability"

    def __init__(self, features: list[str], hidden: int = 2):
        self.features = list(features)
        self.hidden = hidden
        self.groups: dict[str, list[str]] = self._groups()
        self.params = [p for keys in self.groups.values() for p in keys]
        self.index = {p: i for i, p in enumerate(self.params)}

    def _groups(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        out, i = {}, 0
        for g, keys in self.groups.items():
            out[g] = theta[i:i + len(keys)]
            i += len(keys)
        return out

    # forward(theta, X) -> {key: per-example array}, ending in "pred"
    # backward(fw, dloss, X) -> {key: per-example array} of the chain-rule factors
    # grad_terms() -> {param: (factor key, ("x", i) | ("q", key) | None)}
    # forward_columns() / backward_columns() -> [Quantity]

    def gradients(self, theta, fw, back, X) -> np.ndarray:
        """Batch-mean gradient of every parameter: mean of factor · input.

        The weights on features share one factor per unit, so they come out of one product
        factor @ X (the sheet sums the same products with SUMPRODUCT, in another order: the
        results agree to rounding).
        """
        n = len(X)
        grads = np.empty(len(self.params))
        for factor, (rows, columns) in self._feature_terms().items():
            f = back[factor] if factor in back else fw[factor]
            grads[rows] = (f @ X[:, columns]) / n
        for p, (factor, other) in self.grad_terms().items():
            if other is not None and other[0] == "x":
                continue
            f = back[factor] if factor in back else fw[factor]
            grads[self.index[p]] = np.sum(f if other is None else f * fw[other[1]]) / n
        return grads

    def _feature_terms(self) -> dict[str, tuple[list[int], list[int]]]:
        """factor -> (parameter positions, feature columns) of the weights that multiply a feature."""
        if not hasattr(self, "_feature_terms_cache"):
            out: dict[str, tuple[list[int], list[int]]] = {}
            for p, (factor, other) in self.grad_terms().items():
                if other is not None and other[0] == "x":
                    rows, columns = out.setdefault(factor, ([], []))
                    rows.append(self.index[p])
                    columns.append(other[1])
            self._feature_terms_cache = out
        return self._feature_terms_cache


class Linear(Model):
    """ŷ = Σ wᵢ·xᵢ (the lesson's SUMPRODUCT of features and weights, no sigmoid)"""

    name, title = "linear", "linear regression"

    def _groups(self):
        return {"w": [f"w_{f}" for f in self.features]}

    def forward(self, theta, X):
        return {"pred": X @ self.unpack(theta)["w"]}

    def forward_columns(self):
        return [Quantity("pred", "ŷ = w·x", lambda c: f"SUMPRODUCT({c.group('w')},{c.features()})",
                         "prediction: SUMPRODUCT of the weights and this passenger's features")]

    def backward(self, theta, fw, dloss, X):
        return {}

    def backward_columns(self):
        return []

    def grad_terms(self):
        return {f"w_{f}": ("dloss", ("x", i)) for i, f in enumerate(self.features)}


class Logistic(Model):
    """ŷ = σ(w·x) = 1/(1+e^(−w·x))"""

    name, title, sigmoid_output = "logistic", "logistic regression", True

    def _groups(self):
        return {"w": [f"w_{f}" for f in self.features]}

    def forward(self, theta, X):
        z = X @ self.unpack(theta)["w"]
        return {"z": z, "pred": sigmoid(z)}

    def forward_columns(self):
        return [
            Quantity("z", "z = w·x", lambda c: f"SUMPRODUCT({c.group('w')},{c.features()})", "the linear score"),
            Quantity("pred", "ŷ = σ(z)", lambda c: f"1/(1+EXP(-{c.q('z')}))", "sigmoid: " + self.outcome),
        ]

    def backward(self, theta, fw, dloss, X):
        p = fw["pred"]
        return {"dz": dloss * p * (1 - p)}

    def backward_columns(self):
        return [Quantity("dz", "∂loss/∂z", lambda c: f"{c.q('dloss')}*{c.q('pred')}*(1-{c.q('pred')})",
                         "chain rule: ∂loss/∂ŷ · σ'(z), with σ'(z) = ŷ(1 − ŷ)")]

    def grad_terms(self):
        return {f"w_{f}": ("dz", ("x", i)) for i, f in enumerate(self.features)}


class ReLU2(Model):
    """ŷ = ReLU(u1·x) + ReLU(u2·x): the lesson sheet's net of two ReLU units, summed"""

    name, title = "relu2", "two ReLU units summed"

    def _groups(self):
        return {"u1": [f"u1_{f}" for f in self.features], "u2": [f"u2_{f}" for f in self.features]}

    def forward(self, theta, X):
        g = self.unpack(theta)
        z1, z2 = X @ g["u1"], X @ g["u2"]
        a1, a2 = relu(z1), relu(z2)
        return {"z1": z1, "z2": z2, "a1": a1, "a2": a2, "pred": a1 + a2}

    def forward_columns(self):
        cols = [Quantity(f"z{j}", f"z{j} = u{j}·x", lambda c, j=j: f"SUMPRODUCT({c.group(f'u{j}')},{c.features()})",
                         f"unit {j}'s linear score") for j in (1, 2)]
        cols += [Quantity(f"a{j}", f"ReLU{j}", lambda c, j=j: f"IF({c.q(f'z{j}')}<0,0,{c.q(f'z{j}')})",
                          f"unit {j}: ReLU(z{j}) = IF(z{j}<0, 0, z{j})") for j in (1, 2)]
        cols.append(Quantity("pred", "ŷ = ReLU1 + ReLU2", lambda c: f"{c.q('a1')}+{c.q('a2')}", "the prediction"))
        return cols

    def backward(self, theta, fw, dloss, X):
        return {f"dz{j}": dloss * relu_slope(fw[f"z{j}"]) for j in (1, 2)}

    def backward_columns(self):
        return [Quantity(f"dz{j}", f"∂loss/∂z{j}", lambda c, j=j: f"{c.q('dloss')}*IF({c.q(f'z{j}')}>0,1,0)",
                         f"∂loss/∂ŷ passes through unit {j} only where z{j} > 0") for j in (1, 2)]

    def grad_terms(self):
        return {f"u{j}_{f}": (f"dz{j}", ("x", i)) for j in (1, 2) for i, f in enumerate(self.features)}


class MLP(Model):
    """ŷ = σ(Σⱼ vⱼ·ReLU(hⱼ·x) + c): one hidden layer of n ReLU units and a sigmoid output"""

    name, title, sigmoid_output = "mlp", "one hidden ReLU layer, sigmoid output", True

    def _groups(self):
        groups = {f"h{j}": [f"h{j}_{f}" for f in self.features] for j in range(1, self.hidden + 1)}
        groups["v"] = [f"v{j}" for j in range(1, self.hidden + 1)]
        groups["c"] = ["c"]
        return groups

    def forward(self, theta, X):
        g = self.unpack(theta)
        n = self.hidden
        out = {f"z{j}": X @ g[f"h{j}"] for j in range(1, n + 1)}
        out.update({f"a{j}": relu(out[f"z{j}"]) for j in range(1, n + 1)})
        A = np.column_stack([out[f"a{j}"] for j in range(1, n + 1)])
        out["out"] = A @ g["v"] + g["c"][0]
        out["pred"] = sigmoid(out["out"])
        return out

    def forward_columns(self):
        n = self.hidden
        cols = [Quantity(f"z{j}", f"z{j} = h{j}·x", lambda c, j=j: f"SUMPRODUCT({c.group(f'h{j}')},{c.features()})",
                         f"hidden unit {j}'s linear score") for j in range(1, n + 1)]
        cols += [Quantity(f"a{j}", f"a{j} = ReLU(z{j})", lambda c, j=j: f"IF({c.q(f'z{j}')}<0,0,{c.q(f'z{j}')})",
                          f"hidden unit {j}'s activation") for j in range(1, n + 1)]
        cols += [
            Quantity("out", "o = v·a + c", lambda c: f"SUMPRODUCT({c.group('v')},{c.q_range('a1', f'a{n}')})+{c.param('c')}",
                     "the output unit's score"),
            Quantity("pred", "ŷ = σ(o)", lambda c: f"1/(1+EXP(-{c.q('out')}))", "sigmoid: " + self.outcome),
        ]
        return cols

    def backward(self, theta, fw, dloss, X):
        v = self.unpack(theta)["v"]
        p = fw["pred"]
        back = {"dout": dloss * p * (1 - p)}
        for j in range(1, self.hidden + 1):
            back[f"dz{j}"] = back["dout"] * v[j - 1] * relu_slope(fw[f"z{j}"])
        return back

    def backward_columns(self):
        cols = [Quantity("dout", "∂loss/∂o", lambda c: f"{c.q('dloss')}*{c.q('pred')}*(1-{c.q('pred')})",
                         "chain rule through the sigmoid: ∂loss/∂ŷ · ŷ(1 − ŷ)")]
        cols += [Quantity(f"dz{j}", f"∂loss/∂z{j}",
                          lambda c, j=j: f"{c.q('dout')}*{c.param(f'v{j}')}*IF({c.q(f'z{j}')}>0,1,0)",
                          f"∂loss/∂o · v{j}, only where z{j} > 0") for j in range(1, self.hidden + 1)]
        return cols

    def grad_terms(self):
        terms = {f"h{j}_{f}": (f"dz{j}", ("x", i)) for j in range(1, self.hidden + 1)
                 for i, f in enumerate(self.features)}
        terms.update({f"v{j}": ("dout", ("q", f"a{j}")) for j in range(1, self.hidden + 1)})
        terms["c"] = ("dout", None)
        return terms


MODELS = {cls.name: cls for cls in (Linear, Logistic, ReLU2, MLP)}


# ---------------------------------------------------------------------------------------------- losses


class MSE:
    name, title = "mse", "squared error"

    @staticmethod
    def forward(pred, y, eps):
        return {"loss": (pred - y) ** 2}

    @staticmethod
    def dloss(pred, y, eps):
        return 2 * (pred - y)

    @staticmethod
    def columns():
        return [Quantity("loss", "loss (ŷ − y)²", lambda c: f"({c.q('pred')}-{c.q('y')})^2", "squared error")]

    @staticmethod
    def dloss_formula(c):
        return f"2*({c.q('pred')}-{c.q('y')})"


class MAE:
    name, title = "mae", "absolute error"

    @staticmethod
    def forward(pred, y, eps):
        return {"loss": np.abs(pred - y)}

    @staticmethod
    def dloss(pred, y, eps):
        return np.sign(pred - y)  # 0 at 0, as torch

    @staticmethod
    def columns():
        return [Quantity("loss", "loss |ŷ − y|", lambda c: f"ABS({c.q('pred')}-{c.q('y')})", "absolute error")]

    @staticmethod
    def dloss_formula(c):
        return f"SIGN({c.q('pred')}-{c.q('y')})"


class BCE:
    """Binary cross-entropy on ŷ clipped to [ε, 1 − ε], so LN never sees 0 (torch.clamp's gradient: 0 outside)."""

    name, title = "bce", "binary cross-entropy"

    @staticmethod
    def forward(pred, y, eps):
        pc = np.minimum(np.maximum(pred, eps), 1 - eps)
        return {"pc": pc, "loss": -(y * np.log(pc) + (1 - y) * np.log(1 - pc))}

    @staticmethod
    def dloss(pred, y, eps):
        pc = np.minimum(np.maximum(pred, eps), 1 - eps)
        clipped = (pred < eps) | (pred > 1 - eps)
        return np.where(clipped, 0.0, (pc - y) / (pc * (1 - pc)))

    @staticmethod
    def columns():
        return [
            Quantity("pc", "ŷ clipped to [ε, 1−ε]",
                     lambda c: f"MIN(MAX({c.q('pred')},{c.hp('clip_eps')}),1-{c.hp('clip_eps')})",
                     "keeps LN finite: ε is the named cell clip_eps"),
            Quantity("loss", "loss −(y·ln ŷ + (1−y)·ln(1−ŷ))",
                     lambda c: f"-({c.q('y')}*LN({c.q('pc')})+(1-{c.q('y')})*LN(1-{c.q('pc')}))",
                     "binary cross-entropy"),
        ]

    @staticmethod
    def dloss_formula(c):
        pred, pc, y, eps = c.q("pred"), c.q("pc"), c.q("y"), c.hp("clip_eps")
        return f"IF(OR({pred}<{eps},{pred}>1-{eps}),0,({pc}-{y})/({pc}*(1-{pc})))"


LOSSES = {cls.name: cls for cls in (MSE, MAE, BCE)}


# ---------------------------------------------------------------------------------------------- one example


def example_columns(model: Model, loss) -> tuple[list[Quantity], list[Quantity]]:
    """(forward, backward) per-example columns, left to right: y, model, loss, correct | ∂loss/∂ŷ, chain.
    A model that owns its loss (softmax) lists its own."""
    if hasattr(model, "example_columns"):
        return model.example_columns()
    forward = [Quantity("y", model.target_header, lambda c: c.target(), model.target_note)]
    forward += model.forward_columns() + loss.columns()
    forward.append(Quantity("correct", "correct (ŷ>0.5)", lambda c: f"IF({c.q('pred')}>0.5,{c.q('y')},1-{c.q('y')})",
                            "1 when the prediction at threshold 0.5 matches y"))
    backward = [Quantity("dloss", "∂loss/∂ŷ", loss.dloss_formula, "derivative of the loss w.r.t. the prediction")]
    backward += model.backward_columns()
    return forward, backward


def evaluate(model: Model, loss, theta, X, y, eps: float, with_backward: bool = True,
             mask=None) -> dict[str, np.ndarray]:
    """Every per-example quantity of the columns above, for the examples X, y; ``mask`` the given dropout
    mask of these rows (a dropout model's training rows), None evaluates without dropout."""
    if getattr(model, "uses_mask", False):
        return model.evaluate(theta, X, y, with_backward, mask=mask)
    if hasattr(model, "evaluate"):
        return model.evaluate(theta, X, y, with_backward)
    fw = {"y": y, **model.forward(theta, X)}
    fw.update(loss.forward(fw["pred"], y, eps))
    fw["correct"] = np.where(fw["pred"] > 0.5, y, 1 - y)
    if with_backward:
        fw["dloss"] = loss.dloss(fw["pred"], y, eps)
        fw.update(model.backward(theta, fw, fw["dloss"], X))
    return fw


def batch_loss(model: Model, loss, theta, X, y, eps: float) -> float:
    return float(np.mean(evaluate(model, loss, theta, X, y, eps, with_backward=False)["loss"]))


def batch_gradient(model: Model, loss, theta, X, y, eps: float) -> np.ndarray:
    q = evaluate(model, loss, theta, X, y, eps)
    return model.gradients(theta, q, q, X)
