"""Per-student variants: the same lesson with start values derived from a student's ID.

A variant is one more lesson option, ``variant``: :func:`apply` turns a template into that student's
template before it is parsed, so the manifest's origin (template + options) rebuilds the same variant
when the workbook is checked. The rule (version :data:`RULE`), from ``h = sha256("sheetsgd variant
1\\0" + lesson name + "\\0" + ID)``, reading 8-byte big-endian words ``w0, w1, …`` of ``h``:

* ``[model] init = { random = …, seed = … }`` (quadratic, Titanic): ``seed = w0 >> 1``;
* ``[model] init = { a = …, b = … }`` (explicit start values: linear, optimizers, lr-finder): each
  parameter, in the order the template lists them, gets ``+ OFFSETS[byte k of h mod 16]``
  (offsets −2 … 2 in steps of 0.25, never 0);
* ``[model] seed`` without an ``init`` (collab-filter's factors, attention's weights: the random start): ``seed = w0 >> 1``;
* ``[data.generate] seed`` (a generated data set, quadratic): ``seed = w1 >> 1`` (the noise);
* ``[data] split_seed`` (Titanic, when no ``valid_idx`` is given): ``split_seed = w2 >> 1``;
* a function lesson's ``[[runs]] x0`` (too-high): run k's ``x0 × FACTORS[byte 16 + k of h mod 8]``
  (0.9 … 1.1, never 1), rounded to 6 decimals; a label's "x0 = 1" reads "x0 ≈ 1" (every variant
  has the same headers, so a file is placed whichever variant it claims).

The learning rates are left alone: they are what some lessons are about (too-high's divergence).
Two IDs can give the same start values (linear: 1 in 256); :func:`collisions` names them for a roster.
"""
from __future__ import annotations

import copy
import hashlib
import re
import unicodedata

from sheetsgd.errors import SheetsgdError

RULE = 1
OFFSETS = [-2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
FACTORS = [0.9, 0.925, 0.95, 0.975, 1.025, 1.05, 1.075, 1.1]
MAX_ID = 100


def check_id(variant) -> str:
    """A variant ID: a text of 1 to 100 printable characters (it comes from a roster or a workbook)."""
    if not isinstance(variant, str) or not variant.strip():
        raise SheetsgdError(f"a variant ID must be a non-empty text, got {variant!r:.40}")
    if len(variant) > MAX_ID or any(unicodedata.category(ch).startswith("C") for ch in variant):
        raise SheetsgdError(f"a variant ID must be at most {MAX_ID} printable characters, got {variant!r:.40}")
    return variant


def digest(lesson_name: str, variant: str) -> bytes:
    return hashlib.sha256(f"sheetsgd variant {RULE}\0{lesson_name}\0{variant}".encode()).digest()


def _word(h: bytes, k: int) -> int:
    return int.from_bytes(h[8 * k:8 * k + 8], "big") >> 1  # a seed the schema takes (< 2**63)


def apply(raw: dict, lesson_name: str, variant: str) -> dict:
    """A copy of the parsed template ``raw`` with this variant's start values (the rule above)."""
    check_id(variant)
    h = digest(lesson_name, variant)
    out = copy.deepcopy(raw)
    changed = []
    model = out.get("model")
    init = model.get("init") if isinstance(model, dict) else None
    if isinstance(init, dict) and "random" in init:
        init["seed"] = _word(h, 0)
        changed.append("init.seed")
    elif isinstance(init, dict):
        for k, key in enumerate(init):
            if isinstance(init[key], (int, float)) and not isinstance(init[key], bool):
                init[key] = init[key] + OFFSETS[h[k % 32] % 16]
                changed.append(f"init.{key}")
            elif isinstance(init[key], list):  # a Titanic weight list: each weight offset by a tenth
                init[key] = [x + OFFSETS[h[(k + i) % 32] % 16] / 10 for i, x in enumerate(init[key])]
                changed.append(f"init.{key}")
    if isinstance(model, dict) and init is None and isinstance(model.get("seed"), int):  # collab-filter's factors
        model["seed"] = _word(h, 0)
        changed.append("model.seed")
    data = out.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("generate"), dict):
            data["generate"]["seed"] = _word(h, 1)
            changed.append("data.generate.seed")
        if (data.get("dataset") == "titanic" or "csv_text" in data) and "valid_idx" not in data:  # a tabular split
            data["split_seed"] = _word(h, 2)
            changed.append("data.split_seed")
    runs = out.get("runs")
    if isinstance(runs, list):
        for k, run in enumerate(runs):
            if isinstance(run, dict) and isinstance(run.get("x0"), (int, float)):
                x0 = round(run["x0"] * FACTORS[h[16 + k % 16] % 8], 6)
                if isinstance(run.get("label"), str):  # the same header in every variant: "x0 ≈ 1"
                    run["label"] = re.sub(r"x0 = ", "x0 ≈ ", run["label"])
                run["x0"] = x0
                changed.append(f"runs[{k}].x0")
    if not changed:
        raise SheetsgdError(f"lesson {lesson_name!r} has nothing a variant can change (no [model] init or seed, "
                            "generated data, Titanic split or function runs)")
    return out


def collisions(lesson_name: str, raw: dict, ids: list[str]) -> list[tuple[str, str]]:
    """Pairs of IDs whose variants have the same start values (they cannot be told apart)."""
    seen: dict[str, str] = {}
    out = []
    for id_ in ids:
        key = repr(apply(raw, lesson_name, id_))
        if key in seen:
            out.append((seen[key], id_))
        else:
            seen[key] = id_
    return out
