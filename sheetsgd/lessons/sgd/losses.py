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


class BCE:
    """Binary cross-entropy for 0/1 targets, written in the error e = ŷ − y: with y = 1, 1 − |e| = ŷ; with
    y = 0, 1 − |e| = 1 − ŷ. So −LN(1 − |e|) is −LN(ŷ) or −LN(1 − ŷ): torch's BCELoss on a 0/1 target."""

    name = "bce"
    title = "cross-entropy"

    @staticmethod
    def value(err):  # −ln(1 − |e|)
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.log(1 - np.abs(err))

    @staticmethod
    def derivative(err):  # d/dŷ: −1/ŷ for y = 1 (e < 0), 1/(1 − ŷ) for y = 0 (e > 0): sign(e)/(1 − |e|)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sign(err) / (1 - np.abs(err))

    @staticmethod
    def value_formula(err: str) -> str:
        return f"-LN(1-ABS({err}))"

    @staticmethod
    def derivative_formula(err: str) -> str:
        return f"SIGN({err})/(1-ABS({err}))"


LOSSES = {cls.name: cls for cls in (MSE, MAE, BCE)}
