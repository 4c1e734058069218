"""Optimizers: each update in numpy and as formula text, side by side, following torch.optim.

Every optimizer works one parameter at a time. ``update`` gets the parameter's value ``p``, its
effective gradient ``g`` (L2 weight decay already added where the optimizer uses it), the
previous step's state, the step number ``t`` (1-based, counted across epochs) and the
hyperparameters; it returns this step's state and the new value as named quantities. ``formulas``
returns the same quantities as (name, header, template) for the sheet, in column order.

Placeholders: ``{hp:lr}`` a named hyperparameter cell, ``{x_p}`` this row's cell of quantity x for
parameter p, ``{prev:x_p}`` the previous row's, ``{step}`` the step number.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    name = ""
    title = ""
    defaults: dict[str, float] = {}
    state: tuple[str, ...] = ()
    decoupled = False  # AdamW: weight decay scales the parameter, not the gradient

    optional: tuple[str, ...] = ("weight_decay",)
    switches: tuple[str, ...] = ()  # on/off options that change the formulas, not cells on the sheet
    views: tuple[str, ...] = ()  # switches that only add columns to look at (left out of hyper when off)

    def sheet_hyper(self, hp: dict) -> list[str]:
        """Hyperparameters the sheet shows (and its formulas use): zero-valued extras are left out."""
        return [k for k in self.defaults
                if k not in self.switches and (k not in self.optional or hp.get(k)) and k not in self.hidden(hp)]

    def hidden(self, hp: dict) -> set[str]:
        """Hyperparameters a variant does not use (the classic sheet has no ε)."""
        return set()

    def start_state(self, hp: dict) -> dict[str, float]:
        """The state in the start row: zeros (torch), unless a variant says otherwise."""
        return {s: 0.0 for s in self.state}

    def uses_l2(self, hp: dict) -> bool:
        return bool(hp.get("weight_decay")) and not self.decoupled

    def update(self, hp, p, g, prev, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def formulas(self, hp, p):  # pragma: no cover - abstract
        raise NotImplementedError


def _g(hp, opt, p):
    """The gradient an update reads: the L2 column when weight decay is on, else the raw gradient."""
    return f"{{gwd_{p}}}" if opt.uses_l2(hp) else f"{{grad_{p}}}"


class SGD(Optimizer):
    """Plain SGD (torch.optim.SGD, momentum 0).

    p ← p − lr·g,   with g = ∂L/∂p + weight_decay·p
    """

    name = "sgd"
    title = "SGD"
    defaults = {"lr": 1e-3, "weight_decay": 0.0}

    def update(self, hp, p, g, prev, t):
        return {"new": p - hp["lr"] * g}

    def formulas(self, hp, p):
        return [(f"new_{p}", f"new {p}", f"{{{p}}}-{{hp:lr}}*{_g(hp, self, p)}")]


class Momentum(Optimizer):
    """SGD with momentum (torch.optim.SGD, momentum > 0).

    buf ← g                                at step 1 (torch starts the buffer at the first gradient)
    buf ← μ·buf + (1 − dampening)·g        from step 2 on
    p   ← p − lr·buf                        (nesterov: p ← p − lr·(g + μ·buf))

    The start row's buf is 0, so one formula does both: μ·buf + (1 − dampening·(t > 1))·g.
    classic (fast.ai's graddesc sheet): the moving average buf ← μ·buf + (1 − μ)·g from buf = 0
    (every step damped, step 1 included), p ← p − lr·buf.
    """

    name = "momentum"
    title = "SGD with momentum"
    defaults = {"lr": 1e-3, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": 0.0,
                "classic": 0.0}
    optional = ("dampening", "weight_decay")
    switches = ("nesterov", "classic")
    state = ("buf",)

    def update(self, hp, p, g, prev, t):
        mu, d = hp["momentum"], hp.get("dampening", 0.0)
        if hp.get("classic"):
            buf = mu * prev["buf"] + (1 - mu) * g
            return {"buf": buf, "new": p - hp["lr"] * buf}
        buf = mu * prev["buf"] + ((1 - d * (t > 1)) * g if d else g)  # torch: no dampening on step 1
        step = g + mu * buf if hp.get("nesterov") else buf
        return {"buf": buf, "new": p - hp["lr"] * step}

    def formulas(self, hp, p):
        g = _g(hp, self, p)
        if hp.get("classic"):
            return [
                (f"buf_{p}", f"momentum m({p})", f"{{hp:momentum}}*{{prev:buf_{p}}}+(1-{{hp:momentum}})*{g}"),
                (f"new_{p}", f"new {p}", f"{{{p}}}-{{hp:lr}}*{{buf_{p}}}"),
            ]
        damp = f"(1-{{hp:dampening}}*({{step}}>1))*{g}" if hp.get("dampening") else g
        step = f"({g}+{{hp:momentum}}*{{buf_{p}}})" if hp.get("nesterov") else f"{{buf_{p}}}"
        return [
            (f"buf_{p}", f"momentum buf({p})", f"{{hp:momentum}}*{{prev:buf_{p}}}+{damp}"),
            (f"new_{p}", f"new {p}", f"{{{p}}}-{{hp:lr}}*{step}"),
        ]


class RMSProp(Optimizer):
    """RMSProp (torch.optim.RMSprop, not centered, no momentum).

    v ← α·v + (1 − α)·g²
    p ← p − lr·g / (√v + ε)

    classic (fast.ai's graddesc sheet): p ← p − lr·g / √v_prev, the previous row's v and no ε; the
    start row's v is then an input, v0 (default 1), since the first step divides by it.
    """

    name = "rmsprop"
    title = "RMSProp"
    defaults = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "classic": 0.0, "v0": 1.0}
    switches = ("classic", "v0")
    state = ("v",)

    def hidden(self, hp):
        return {"eps"} if hp.get("classic") else set()

    def start_state(self, hp):
        return {"v": hp.get("v0", 1.0) if hp.get("classic") else 0.0}

    def update(self, hp, p, g, prev, t):
        v = hp["alpha"] * prev["v"] + (1 - hp["alpha"]) * g**2
        if hp.get("classic"):
            return {"v": v, "new": p - hp["lr"] * g / np.sqrt(prev["v"])}
        return {"v": v, "new": p - hp["lr"] * g / (np.sqrt(v) + hp["eps"])}

    def formulas(self, hp, p):
        g = _g(hp, self, p)
        divide = f"SQRT({{prev:v_{p}}})" if hp.get("classic") else f"(SQRT({{v_{p}}})+{{hp:eps}})"
        return [
            (f"v_{p}", f"mean square v({p})", f"{{hp:alpha}}*{{prev:v_{p}}}+(1-{{hp:alpha}})*{g}^2"),
            (f"new_{p}", f"new {p}", f"{{{p}}}-{{hp:lr}}*{g}/{divide}"),
        ]


class Adam(Optimizer):
    """Adam (torch.optim.Adam); AdamW with decoupled weight decay.

    m ← β1·m + (1 − β1)·g
    v ← β2·v + (1 − β2)·g²
    m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)        (bias correction; off: m̂ = m, v̂ = v)
    p ← p − lr·m̂ / (√v̂ + ε)                           (AdamW: p ← p·(1 − lr·wd) − lr·m̂ / (√v̂ + ε))

    classic (fast.ai's graddesc sheet): no bias correction and no ε: p ← p − lr·m / √v.

    shrinkage = 1 adds a column (before new p) of the fraction of p that weight decay takes away per
    step: AdamW's is lr·wd, every step alike; L2's decay term wd·p goes through m and v like the
    gradient, so once m has caught up it shrinks p by lr·wd/(√v̂ + ε) per step: weak where the
    gradient's mean square v̂ is large (the course's "high gradient variance weakens L2 under Adam").
    """

    name = "adam"
    title = "Adam"
    defaults = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
                "bias_correction": 1.0, "classic": 0.0, "shrinkage": 0.0}
    optional = ("weight_decay",)
    switches = ("bias_correction", "classic", "shrinkage")
    views = ("shrinkage",)
    state = ("m", "v")

    def hidden(self, hp):
        return {"eps"} if hp.get("classic") else set()

    def _corrected(self, hp):
        return hp.get("bias_correction", 1.0) and not hp.get("classic")

    def _shows_shrinkage(self, hp):
        return bool(hp.get("shrinkage")) and bool(hp.get("weight_decay"))

    def update(self, hp, p, g, prev, t):
        b1, b2 = hp["beta1"], hp["beta2"]
        m = b1 * prev["m"] + (1 - b1) * g
        v = b2 * prev["v"] + (1 - b2) * g**2
        out = {"m": m, "v": v}
        if self._corrected(hp):
            m = out["mhat"] = m / (1 - b1**t)
            v = out["vhat"] = v / (1 - b2**t)
        shrunk = p * (1 - hp["lr"] * hp["weight_decay"]) if self.decoupled and hp.get("weight_decay") else p
        denominator = np.sqrt(v) if hp.get("classic") else np.sqrt(v) + hp["eps"]
        if self._shows_shrinkage(hp):
            out["shrink"] = hp["lr"] * hp["weight_decay"] / (1.0 if self.decoupled else denominator)
        out["new"] = shrunk - hp["lr"] * m / denominator
        return out

    def formulas(self, hp, p):
        g = _g(hp, self, p)
        cols = [
            (f"m_{p}", f"m({p})", f"{{hp:beta1}}*{{prev:m_{p}}}+(1-{{hp:beta1}})*{g}"),
            (f"v_{p}", f"v({p})", f"{{hp:beta2}}*{{prev:v_{p}}}+(1-{{hp:beta2}})*{g}^2"),
        ]
        m, v = f"{{m_{p}}}", f"{{v_{p}}}"
        if self._corrected(hp):
            cols += [
                (f"mhat_{p}", f"m̂({p})", f"{{m_{p}}}/(1-{{hp:beta1}}^{{step}})"),
                (f"vhat_{p}", f"v̂({p})", f"{{v_{p}}}/(1-{{hp:beta2}}^{{step}})"),
            ]
            m, v = f"{{mhat_{p}}}", f"{{vhat_{p}}}"
        shrunk = f"{{{p}}}*(1-{{hp:lr}}*{{hp:weight_decay}})" if self.decoupled and hp.get("weight_decay") else f"{{{p}}}"
        denominator = f"SQRT({v})" if hp.get("classic") else f"(SQRT({v})+{{hp:eps}})"
        if self._shows_shrinkage(hp):
            decay = "{hp:lr}*{hp:weight_decay}"
            cols.append((f"shrink_{p}", f"shrinkage of {p} per step",
                         decay if self.decoupled else f"{decay}/{denominator}"))
        cols.append((f"new_{p}", f"new {p}", f"{shrunk}-{{hp:lr}}*{m}/{denominator}"))
        return cols


class AdamW(Adam):
    __doc__ = Adam.__doc__
    name = "adamw"
    title = "AdamW"
    defaults = {**Adam.defaults, "weight_decay": 1e-2}
    decoupled = True


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, RMSProp, Adam, AdamW)}
