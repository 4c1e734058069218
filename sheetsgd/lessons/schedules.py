"""Learning-rate schedules: each schedule's numpy value and its formula template side by side.

A ``[schedule]`` table puts an ``lr`` column on the step rows, computed from the step number t
(1-based) and named inputs; the optimizer's update formulas then read ``{lr}`` instead of the lr cell
(``{hp:lr}``), and the engine's loop (engine.run_steps) uses the row's lr. A schedule multiplies the
run's own lr (lr_max = the optimizer's lr), so ``--lr`` and several runs with their own lrs still work.
N = ``total_steps`` is the run's number of steps (a named cell).

  constant:   lr
  step:       lr·gamma^floor((t − 1)/step_size)                          (torch StepLR)
  cosine:     eta_min + (lr − eta_min)·(1 + cos(π(t − 1)/N))/2            (torch CosineAnnealingLR)
  one-cycle:  fastai's fit_one_cycle: pos = (t − 1)/N before the step,
              combined_cos(pct_start, lr/div, lr, lr/div_final), and the momentum (SGD-momentum's
              momentum, Adam's β1) combined_cos(pct_start, *moms) in a ``mom``/``beta1`` column
              where sched_cos(start, end, p) = start + (1 + cos(π(1 − p)))·(end − start)/2.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sheetsgd.errors import SheetsgdError

KINDS = ("constant", "step", "cosine", "one-cycle")
DEFAULTS = {"constant": {}, "step": {"step_size": 10, "gamma": 0.1}, "cosine": {"eta_min": 0.0},
            "one-cycle": {"div": 25.0, "div_final": 1e5, "pct_start": 0.25, "moms": [0.95, 0.85, 0.95]}}
TITLES = {"constant": "constant lr", "step": "step decay", "cosine": "cosine annealing", "one-cycle": "one-cycle"}
NOTES = {
    "total_steps": "N: the run's number of steps (the schedule's length)",
    "step_size": "the lr is multiplied by gamma every step_size steps",
    "gamma": "the factor the lr is multiplied by every step_size steps",
    "eta_min": "the lr the cosine anneals to at step N + 1",
    "div": "one-cycle starts at lr/div",
    "div_final": "one-cycle ends at lr/div_final",
    "pct_start": "the fraction of the steps spent warming up (lr rising to lr_max = lr)",
    "mom_start": "momentum (or β1) at the start of one-cycle",
    "mom_mid": "momentum (or β1) at the peak of the lr",
    "mom_end": "momentum (or β1) at the end",
}
SCHEDULE_KEYS = ("lr", "mom", "beta1")  # the columns a schedule adds to the step rows
# the optimizer hyperparameter one-cycle cycles, and its column
CYCLED = {"momentum": ("momentum", "mom"), "adam": ("beta1", "beta1"), "adamw": ("beta1", "beta1")}


def read_row_lr(template: str) -> str:
    """An update formula reading this row's lr column instead of the lr cell (a schedule's, the lr finder's)."""
    return template.replace("{hp:lr}", "{lr}")


def sched_cos(start, end, p):
    """fastai's sched_cos: cosine from start (p = 0) to end (p = 1)."""
    return start + (1 + np.cos(np.pi * (1 - p))) * (end - start) / 2


def combined_cos(pos, pct, start, middle, end):
    """fastai's combined_cos(pct, start, middle, end) at positions pos in [0, 1)."""
    pos = np.asarray(pos, dtype=float)
    return np.where(pos < pct, sched_cos(start, middle, pos / pct), sched_cos(middle, end, (pos - pct) / (1 - pct)))


def _cos_formula(start: str, end: str, p: str) -> str:
    return f"{start}+(1+COS(PI()*(1-{p})))*({end}-{start})/2"


def _combined_formula(pct: str, start: str, middle: str, end: str) -> str:
    pos = "({step}-1)/{hp:total_steps}"
    return (f"IF({pos}<{pct},{_cos_formula(start, middle, f'{pos}/{pct}')},"
            f"{_cos_formula(middle, end, f'(({pos})-{pct})/(1-{pct})')})")


@dataclass(frozen=True)
class Schedule:
    kind: str
    params: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def cycled(self, optimizer: str) -> tuple[str, str] | None:
        """(hyperparameter, column key) that one-cycle cycles for this optimizer; None if none."""
        return CYCLED.get(optimizer) if self.kind == "one-cycle" else None

    def cells(self, optimizer: str, n_steps: int) -> list[tuple[str, float]]:
        """The named input cells the schedule's formulas read (beside the optimizer's)."""
        p = self.params
        if self.kind == "step":
            return [("step_size", float(p["step_size"])), ("gamma", float(p["gamma"]))]
        if self.kind == "cosine":
            return [("eta_min", float(p["eta_min"])), ("total_steps", float(n_steps))]
        if self.kind == "one-cycle":
            out = [("div", float(p["div"])), ("div_final", float(p["div_final"])),
                   ("pct_start", float(p["pct_start"])), ("total_steps", float(n_steps))]
            if self.cycled(optimizer):
                out += list(zip(("mom_start", "mom_mid", "mom_end"), map(float, p["moms"])))
            return out
        return []

    def replaced(self, optimizer: str) -> set[str]:
        """Optimizer hyperparameters the schedule's columns take over (left off the sheet's inputs)."""
        cycled = self.cycled(optimizer)
        return {cycled[0]} if cycled else set()

    def values(self, lr: float, n_steps: int, optimizer: str) -> dict[str, np.ndarray]:
        """Each step's scheduled quantities: lr (and the cycled momentum/β1), steps 1..N."""
        t = np.arange(1, n_steps + 1, dtype=float)
        p = self.params
        if self.kind == "constant":
            out = {"lr": np.full(n_steps, float(lr))}
        elif self.kind == "step":
            out = {"lr": lr * float(p["gamma"]) ** np.floor((t - 1) / float(p["step_size"]))}
        elif self.kind == "cosine":
            eta = float(p["eta_min"])
            out = {"lr": eta + (lr - eta) * (1 + np.cos(np.pi * (t - 1) / n_steps)) / 2}
        else:
            pos, pct = (t - 1) / n_steps, float(p["pct_start"])
            out = {"lr": combined_cos(pos, pct, lr / float(p["div"]), lr, lr / float(p["div_final"]))}
            cycled = self.cycled(optimizer)
            if cycled:
                out[cycled[1]] = combined_cos(pos, pct, *map(float, p["moms"]))
        return out

    def formulas(self, optimizer: str) -> list[tuple[str, str, str, str]]:
        """(key, header, template, note) of the schedule's columns."""
        lr = {"constant": "{hp:lr}",
              "step": "{hp:lr}*{hp:gamma}^INT(({step}-1)/{hp:step_size})",
              "cosine": "{hp:eta_min}+({hp:lr}-{hp:eta_min})*(1+COS(PI()*({step}-1)/{hp:total_steps}))/2",
              "one-cycle": _combined_formula("{hp:pct_start}", "{hp:lr}/{hp:div}", "{hp:lr}",
                                             "{hp:lr}/{hp:div_final}")}[self.kind]
        notes = {"constant": "the lr of every step", "step": "lr·gamma^floor((t − 1)/step_size) (torch StepLR)",
                 "cosine": "eta_min + (lr − eta_min)(1 + cos(π(t − 1)/N))/2 (torch CosineAnnealingLR)",
                 "one-cycle": "one-cycle (fastai): cosine up from lr/div to lr, then down to lr/div_final"}
        out = [("lr", "lr this step", lr, notes[self.kind])]
        cycled = self.cycled(optimizer)
        if cycled:
            out.append((cycled[1], f"{'β1' if cycled[0] == 'beta1' else 'momentum'} this step",
                        _combined_formula("{hp:pct_start}", "{hp:mom_start}", "{hp:mom_mid}", "{hp:mom_end}"),
                        "one-cycle: against the lr, mom_start → mom_mid → mom_end"))
        return out

    def rewrite(self, template: str, optimizer: str) -> str:
        """An optimizer formula reading this row's scheduled lr (and momentum/β1) instead of the named cells."""
        out = read_row_lr(template)
        cycled = self.cycled(optimizer)
        if cycled:
            out = out.replace(f"{{hp:{cycled[0]}}}", f"{{{cycled[1]}}}")
        return out

    def hyper_of(self, hp: dict, optimizer: str):
        """engine.run_steps' hyper_of: this row's hyperparameters (the row holds the schedule's values)."""
        cycled = self.cycled(optimizer)
        if cycled:
            name, key = cycled
            return lambda t, row: {**hp, "lr": row["lr"], name: row[key]}
        return lambda t, row: {**hp, "lr": row["lr"]}


def parse_schedule(raw: dict, source: str) -> Schedule | None:
    """``[schedule]`` of a template (the schema has checked its keys and types): None when absent."""
    table = raw.get("schedule")
    if table is None:
        return None
    where = f"{source} [schedule]"
    if not isinstance(table, dict):
        raise SheetsgdError("[schedule] must be a table", source)
    kind = table.get("kind", "constant")
    if "compare" in table:
        meta = raw.get("lesson") if isinstance(raw.get("lesson"), dict) else {}
        if meta.get("kind") != "optimizers":
            raise SheetsgdError("compare needs an optimizers lesson ([lesson] kind = \"optimizers\": a sheet per "
                                "schedule); here give one kind", where)
        if "kind" in table:
            raise SheetsgdError("give kind (one schedule) or compare (a sheet per schedule), not both", where)
    if kind not in KINDS:
        raise SheetsgdError(f"unknown schedule kind {kind!r}; known: {', '.join(KINDS)}", where)
    used = list(table.get("compare") or [kind])  # a comparison's runs take the parameters of their kinds
    takes = {k: v for u in used for k, v in DEFAULTS[u].items()}
    extra = sorted(set(table) - set(takes) - {"kind", "compare"})
    if extra:
        raise SheetsgdError(f"{', '.join(extra)} do(es) not apply to {' or '.join(used)} schedules; they take "
                            f"{', '.join(takes) or 'no parameters'}", where)
    params = {**takes, **{k: v for k, v in table.items() if k in takes}}
    if "one-cycle" in used:
        if not 0 < params["pct_start"] < 1:
            raise SheetsgdError(f"pct_start must be in (0, 1), got {params['pct_start']:g}", where)
        if len(params["moms"]) != 3 or not all(0 <= m < 1 for m in params["moms"]):
            raise SheetsgdError("moms must be three numbers in [0, 1) (start, middle, end)", where)
    return Schedule(kind, params)


def with_kind(schedule: Schedule | None, kind: str) -> Schedule:
    """The same schedule parameters under another kind (a schedule comparison's runs)."""
    base = schedule.params if schedule else {}
    return Schedule(kind, {**DEFAULTS[kind], **{k: v for k, v in base.items() if k in DEFAULTS[kind]}})


def sheet_hyper(opt, hp: dict, schedule: Schedule | None, n_steps: int) -> list[tuple[str, float]]:
    """The named inputs of a step table: the optimizer's (less those the schedule takes over), then the
    schedule's."""
    if schedule is None:
        return [(k, hp[k]) for k in opt.sheet_hyper(hp)]
    gone = schedule.replaced(opt.name)
    return [(k, hp[k]) for k in opt.sheet_hyper(hp) if k not in gone] + schedule.cells(opt.name, n_steps)


def scheduled_forward(forward, schedule: Schedule | None, hp: dict, optimizer: str, n_steps: int, dry=False):
    """(forward, hyper_of) for engine.run_steps: each row also holds the schedule's values, and the update
    uses them (None: ``forward`` unchanged, the constant hyperparameters)."""
    if schedule is None:
        return forward, None
    values = {k: v.tolist() for k, v in schedule.values(hp["lr"], n_steps, optimizer).items()}

    def with_schedule(t, epoch, idx, params):
        row = forward(t, epoch, idx, params)
        if not (dry and t > 1):  # a dry run's later rows hold only their given quantities
            for k, v in values.items():
                row[k] = v[t - 1]
        return row
    return with_schedule, schedule.hyper_of(hp, optimizer)
