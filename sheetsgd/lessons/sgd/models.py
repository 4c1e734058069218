"""Models: prediction and ∂ŷ/∂parameter in numpy, and the same as formula text, side by side.

Formula text uses placeholders the writer resolves: ``{a}`` is this row's cell of parameter ``a``,
``{X}`` the example's input (one cell for one example, a data range for a batch).
"""
from __future__ import annotations


class Linear:
    """ŷ = a·x + b"""

    name = "linear"
    params = ("a", "b")
    param_titles = {"a": "slope a", "b": "intercept b"}
    predict_formula = "{a}*{X}+{b}"
    # ∂ŷ/∂p as formula text; None means the constant 1 (the factor is left out)
    feature_formulas = {"a": "{X}", "b": None}

    @staticmethod
    def predict(p, x):
        return p["a"] * x + p["b"]

    @staticmethod
    def features(x, p=None):  # ∂ŷ/∂p does not depend on the parameters
        return {"a": x, "b": 1.0}


class Quadratic:
    """ŷ = a·t² + b·t + c"""

    name = "quadratic"
    params = ("a", "b", "c")
    param_titles = {"a": "a (t²)", "b": "b (t)", "c": "c (constant)"}
    predict_formula = "{a}*{X}^2+{b}*{X}+{c}"
    feature_formulas = {"a": "{X}^2", "b": "{X}", "c": None}

    @staticmethod
    def predict(p, x):
        return p["a"] * (x * x) + p["b"] * x + p["c"]  # x * x: what numpy computes for x**2, in floats too

    @staticmethod
    def features(x, p=None):
        return {"a": x * x, "b": x, "c": 1.0}


MODELS = {cls.name: cls for cls in (Linear, Quadratic)}
