"""Losses: the numpy value and derivative of one example's error, and the same as formula text, side by side.

``err`` is always prediction − target. A batch's loss is the mean of the per-example values; its
gradient is the mean of ``derivative(err) · ∂ŷ/∂p``.
"""
from __future__ import annotations

import re

import numpy as np

_SIMPLE = re.compile(r"^\{[\w:]+\}$|^[A-Za-z$]+\$?\d+$")


def paren(expr: str) -> str:
    """Wrap an expression in parentheses unless it is a single reference."""
    return expr if _SIMPLE.match(expr) else f"({expr})"


class MSE:
    name = "mse"
    title = "squared error"

    @staticmethod
    def value(err):  # e²
        return err * err  # what numpy computes for err**2 (np.square), also for Python floats

    @staticmethod
    def derivative(err):  # d(e²)/de = 2e
        return 2 * err

    @staticmethod
    def value_formula(err: str) -> str:
        return f"{paren(err)}^2"

    @staticmethod
    def derivative_formula(err: str) -> str:
        return f"2*{paren(err)}"


class MAE:
    name = "mae"
    title = "absolute error"

    @staticmethod
    def value(err):  # |e|
        return np.abs(err)

    @staticmethod
    def derivative(err):  # d|e|/de = sign(e), 0 at 0 (as torch)
        return np.sign(err)

    @staticmethod
    def value_formula(err: str) -> str:
        return f"ABS({err})"

    @staticmethod
    def derivative_formula(err: str) -> str:
        return f"SIGN({err})"


LOSSES = {cls.name: cls for cls in (MSE, MAE)}
