"""The catalogue of common mistakes, each with a hint, and how to recognise them.

Most mistakes are recognised by value: each is a small edit of a column's reference template (the
same template the writer renders), evaluated on the student's own values; when the student's cells
equal the edited template's values, that mistake is named. This is independent of how the student
spelled the formula (``K9*D9`` or ``2*I9*D9``). A few are recognised from the formula text instead
(typed constants, drifting references, references to the wrong row): see :mod:`sheetsgd.check`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .lesson import Lesson
from .spec import Column, _sub


@dataclass(frozen=True)
class Mistake:
    name: str
    title: str
    hint: str


CATALOGUE = {m.name: m for m in [
    Mistake("update_sign_flipped", "sign of the update flipped",
            "Gradient descent steps against the gradient: new p = p − lr·∂L/∂p, not p + lr·∂L/∂p."),
    Mistake("lr_missing", "learning rate missing from the update",
            "The step is the gradient times the learning rate: new p = p − lr·∂L/∂p."),
    Mistake("lr_relative", "learning rate referenced relatively: it drifts when filled down",
            "Refer to the learning rate by its name (lr) or anchor it ($B$4); a plain B4 becomes B5, B6, … "
            "in the rows below."),
    Mistake("mse_factor_2_missing", "factor 2 missing in the MSE gradient",
            "d(e²)/de = 2e: the gradient of the squared error carries a factor 2 (use the ∂loss/∂ŷ column)."),
    Mistake("feature_missing", "input missing from the gradient (∂ŷ/∂p left out)",
            "Chain rule: ∂L/∂p = ∂loss/∂ŷ · ∂ŷ/∂p, and ∂ŷ/∂a is the input x (x² for the t² term)."),
    Mistake("wrong_feature", "wrong factor ∂ŷ/∂p in the gradient",
            "∂ŷ/∂p is what multiplies p in ŷ: x for the slope, 1 for the intercept (t², t, 1 for a parabola)."),
    Mistake("error_reversed", "error written as target − prediction",
            "The sheet's error is prediction − target (ŷ − y); y − ŷ flips the sign of every gradient."),
    Mistake("gradient_negated", "gradient with the wrong sign",
            "∂L/∂p is positive when increasing p increases the loss: check the order of ŷ − y."),
    Mistake("sum_instead_of_mean", "sum instead of mean over the batch",
            "The loss and its gradient are means over the batch: divide the SUMPRODUCT by COUNT(…)."),
    Mistake("stale_parameter", "parameters of the previous step used",
            "This step's parameters are on this row (the previous row's new values); the row above holds "
            "the step before."),
    Mistake("own_row_update", "the row's own updated parameters used instead of the previous row's",
            "A step computes its gradient at its starting parameters (this row's a, b: the previous row's new "
            "values), never at the new values it is computing (a circular reference)."),
    Mistake("bias_correction_omitted", "Adam's bias correction omitted",
            "Adam divides m and v by 1 − β^t (m̂, v̂) before the update; without it the first steps are far too small."),
    Mistake("beta_swapped", "β and 1 − β swapped",
            "The running average keeps β of the old value and adds (1 − β) of the new: m = β·m_prev + (1 − β)·g."),
    Mistake("not_squared", "gradient not squared in the running mean of squares",
            "v averages squared gradients: v = β·v_prev + (1 − β)·g²."),
    Mistake("sqrt_missing", "square root missing in the denominator",
            "The update divides by √v + ε, not by v + ε."),
    Mistake("wrong_row", "a reference points at the wrong row",
            "Each formula reads this row's cells, and the previous row only for the state it carries over."),
    Mistake("constant_typed", "a number typed where a formula belongs",
            "Write a formula that computes the value from other cells; a typed or pasted number does not follow "
            "when the inputs change."),
    Mistake("hard_coded", "right only for these inputs (found by --strict)",
            "With another lr or other initial values this cell did not follow: a number typed inside the formula "
            "(e.g. 0.0001 instead of lr) or a pasted value only works for the inputs it was made with."),
    Mistake("blank", "cells left empty", "Fill the formula down to the last step."),
    Mistake("given_changed", "a given cell was changed",
            "Only the exercise columns and the yellow inputs are meant to be edited: rebuild the given cells."),
    Mistake("error_value", "the cell shows an error value",
            "An error (#VALUE!, #REF!, #NAME?, …) usually means a reference to text, a deleted cell or a typo."),
    Mistake("unrecognised", "wrong value",
            "Compare your formula with the column's description on the Introduction sheet."),
]}


def _feature_text(lesson: Lesson, p: str) -> str | None:
    feature = lesson.model_cls().feature_formulas[p]
    if feature is None:
        return None
    return _sub(feature, {"X": "{x}" if lesson.batch_size == 1 else "{data:x}"})


def _rreplace(text: str, old: str, new: str) -> str | None:
    i = text.rfind(old)
    return None if i < 0 else text[:i] + new + text[i + len(old):]


def variants(lesson: Lesson, column: Column) -> list[tuple[str, str]]:
    """(mistake name, edited template) for every catalogued mistake that can happen in this column."""
    t, key = column.formula, column.key
    if not t:
        return []
    params = lesson.model_cls().params
    out: list[tuple[str, str | None]] = []
    if key.startswith("new_"):
        out.append(("update_sign_flipped", t.replace("-{hp:lr}*", "+{hp:lr}*", 1) if "-{hp:lr}*" in t else None))
        out.append(("lr_missing", t.replace("{hp:lr}*", "", 1) if "{hp:lr}*" in t else None))
        p = key[4:]
        out.append(("bias_correction_omitted", t.replace(f"{{mhat_{p}}}", f"{{m_{p}}}").replace(f"{{vhat_{p}}}", f"{{v_{p}}}")
                    if "{mhat_" in t else None))
        out.append(("sqrt_missing", re.sub(r"SQRT\((\{[\w:]+\})\)", r"\1", t) if "SQRT(" in t else None))
    if key.startswith(("mhat_", "vhat_")):
        out.append(("bias_correction_omitted", t.split("/", 1)[0]))
    m = re.fullmatch(r"\{hp:(\w+)\}\*(\{prev:\w+\})\+\(1-\{hp:\1\}\)\*(.+)", t)
    if m:  # a running average: β·old + (1 − β)·new
        beta, old, new = m.groups()
        out.append(("beta_swapped", f"(1-{{hp:{beta}}})*{old}+{{hp:{beta}}}*{new}"))
        if new.endswith("^2"):
            out.append(("not_squared", f"{{hp:{beta}}}*{old}+(1-{{hp:{beta}}})*{new[:-2]}"))
    if key.startswith("grad_"):
        p = key[5:]
        feature = _feature_text(lesson, p)
        if lesson.loss == "mse":
            if "{dloss}" in t:
                out.append(("mse_factor_2_missing", t.replace("{dloss}", "{err}")))
            elif "SUMPRODUCT(2*" in t:
                out.append(("mse_factor_2_missing", t.replace("SUMPRODUCT(2*", "SUMPRODUCT(", 1)))
        if feature:
            out.append(("feature_missing", _rreplace(t, "*" + feature, "")))
        for q in params:
            other = _feature_text(lesson, q)
            if q == p or other == feature or other is None:
                continue
            out.append(("wrong_feature", _rreplace(t, "*" + feature, "*" + other) if feature else
                        _rreplace(t, ")/COUNT", f"*{other})/COUNT") if "/COUNT" in t else f"{t}*{other}"))
        out.append(("gradient_negated", f"-({t})"))
    if key == "dloss" and lesson.loss == "mse":
        out.append(("mse_factor_2_missing", "{err}"))
    if key == "err":
        out.append(("error_reversed", "{y}-{pred}"))
    if "/COUNT(" in t:
        out.append(("sum_instead_of_mean", re.sub(r"/COUNT\([^)]*\)", "", t)))
    if key not in params:  # this step's a, b, … read one row too high
        out.append(("stale_parameter", re.sub(r"\{(" + "|".join(params) + r")\}", r"{prev:\1}", t)))
    return [(name, text) for name, text in out if text and text != t]
