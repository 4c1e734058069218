"""The one spelling of an overflow in JSON output: null.

JSON has no NaN or infinity. Every kind of lesson's trace keeps its numbers as floats (inf/nan where
the engine overflowed, nan where a column has nothing to show); ``finite_or_null`` turns each
non-finite float into None (null) on the way out, for every kind alike.
"""
from __future__ import annotations

import math


def finite_or_null(value):
    """``value`` with every non-finite float (also inside dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):  # numpy's float64 is a float too
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
