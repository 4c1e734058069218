"""A seeded fuzz over lesson templates (issue 10), next to the workbook fuzz of test_hostile.py: random
tables, keys, types and values drawn from the schema (sheetsgd/lessons/schema.py) and around it (misspelt keys,
wrong types, inf/nan, huge and negative numbers, long texts, nesting). Every case must end with exit 0,
or exit 2 and exactly one line `Error: …`; never a traceback. In-process (click's CliRunner), small
lessons, so 1,200 cases take seconds. SHEETSGD_TEMPLATE_FUZZ_SEED replays another seed;
SHEETSGD_TEMPLATE_FUZZ_CASES runs more cases."""
from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import time

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import schema
from sheetsgd.cli.commands import cli

SEED = int(os.environ.get("SHEETSGD_TEMPLATE_FUZZ_SEED", "20261201"))
CASES = int(os.environ.get("SHEETSGD_TEMPLATE_FUZZ_CASES", "1200"))

X = [14, 86, 28, 51, 28, 29, 72, 62]
Y = [58, 202, 86, 132, 86, 88, 174, 154]
BASES = {
    "sgd": {"lesson": {"title": "t", "exercise": ["err"]}, "data": {"x": X, "y": Y},
            "model": {"kind": "linear", "init": {"a": 1, "b": 1}},
            "optimizer": {"name": "sgd", "sgd": {"lr": 1e-4}, "adam": {"lr": 0.1}},
            "training": {"batch_size": 2, "epochs": 2}},
    "generated": {"data": {"columns": ["t", "s"], "generate": {"kind": "polynomial", "x": {"start": 0, "stop": 9, "num": 10},
                                                                  "coefficients": [1, 0, 0.75], "noise": 1, "seed": 1}},
                  "model": {"kind": "quadratic", "init": {"random": "normal", "seed": 3}},
                  "optimizer": {"name": "momentum", "momentum": {"lr": 1e-5, "dampening": 0.1}},
                  "training": {"batch_size": "full", "epochs": 3}},
    "function": {"lesson": {"kind": "function"}, "function": {"kind": "double-well", "target": 9, "steps": 8},
                 "runs": [{"label": "r1", "x0": 1, "lr": 0.01, "accumulate": True}, {"x0": 6, "lr": 0.1}]},
    "optimizers": {"lesson": {"kind": "optimizers"}, "data": {"x": X, "y": Y}, "model": {"init": {"a": 1, "b": 1}},
                   "optimizer": {"compare": ["sgd", "adam"], "classic": False, "sgd": {"lr": 1e-4}},
                   "training": {"epochs": 1}},
    "lr-finder": {"lesson": {"kind": "lr-finder"}, "data": {"x": X, "y": Y}, "model": {"init": {"a": 1, "b": 1}},
                  "training": {"batch_size": 4}, "finder": {"num_it": 12, "start_lr": 1e-7, "end_lr": 1}},
    "titanic": {"data": {"dataset": "titanic", "rows": 30, "valid_fraction": 0.2},
                "model": {"kind": "logistic", "init": {"random": "uniform", "seed": 1}},
                "optimizer": {"sgd": {"lr": 0.1}}, "training": {"batch_size": "full", "epochs": 2, "best_fit_steps": 5}},
}
WEIGHTS = {"sgd": 5, "generated": 3, "function": 3, "optimizers": 2, "lr-finder": 3, "titanic": 1}

AWKWARD = [None, True, False, 0, 1, -1, 2, 3, 0.5, -0.5, 1e-300, 1e308, math.inf, -math.inf, math.nan, 10**12,
           2**63 - 1, -(2**63), 1.5, "", "x", "full", "1", "nan", "sgd", "linear", "é" * 300, "v" * 40_000, [],
           [1], [1, 2], ["a"], ["a", "a"], [[1]], [True], {}, {"a": 1}, {"random": "normal"}, {"start": 0, "stop": 1},
           {"start": 0, "stop": 1, "num": 10**9}, [1.0] * 3]


def good_values(spec: schema.Value, rng: random.Random) -> list:
    """Values the schema accepts or just misses (range bounds, off by one)."""
    kind = spec.kind
    if kind in ("number", "int"):
        lo = spec.low if spec.low is not None else -10.0
        hi = spec.high if spec.high is not None and spec.high < 1e12 else lo + 20
        out = [lo, hi, (lo + hi) / 2, lo - 1, hi + 1]
        if kind == "int":
            out = [int(v) for v in out] + [int(lo) + 1, min(int(hi), int(lo) + 3)]
        return out
    if kind in ("bool",):
        return [True, False]
    if kind == "switch":
        return [0, 1, 2, 0.5]
    if kind == "choice":
        return list(spec.choices) + [spec.choices[0][:-1] + "x"]
    if kind in ("str",):
        return ["text", "a" * spec.max_len, "a" * (spec.max_len + 1)]
    if kind == "strlist":
        base = list(spec.choices[:2]) if spec.choices else ["a", "b"]
        return [base, base[:1], base * 2, [1, 2]]
    if kind in ("numlist", "intlist"):
        return [[1, 2, 3], [0], [-1, 5], list(range(spec.min_items + 1))]
    if kind == "batch":
        return [1, 2, 3, "full", 0, 9, 1000]
    if kind == "axis":
        return [[0, 1, 2], {"start": 0, "stop": 5, "num": 6}, {"start": 0, "stop": 5}, {"start": 1, "stop": 0, "num": 3}]
    if kind == "table":
        key = rng.choice(list(spec.keys)) if spec.keys else "k"
        return [{schema._key(key): v} for v in good_values(spec.keys[key], rng)[:2]] if spec.keys else [{}]
    return []


def mutate(template: dict, kind: str, titanic: bool, rng: random.Random) -> str:
    """One random edit; returns a short description for the failure message."""
    def pick(pool):  # a fresh copy: a value shared between tables could end up inside itself
        return copy.deepcopy(rng.choice(pool))

    tables = schema.tables_for(kind, titanic)
    roll = rng.random()
    if roll < 0.08:  # an unknown or misspelt table
        name = rng.choice([t[:-1] + "x" for t in tables] + ["traning", "x", "data.generate"])
        template[name] = {"k": 1}
        return f"table [{name}]"
    if roll < 0.14 and template:  # a table removed or replaced by a non-table
        name = rng.choice(list(template))
        if rng.random() < 0.5:
            del template[name]
            return f"del [{name}]"
        template[name] = pick(AWKWARD)
        return f"[{name}] = …"
    name = rng.choice(list(tables))
    spec = tables[name]
    table = template.setdefault(name, {})
    if not isinstance(table, dict):
        return "noop"
    if name == "optimizer":
        from sheetsgd.lessons.optimizers import OPTIMIZERS

        opt = rng.choice(list(OPTIMIZERS))
        sub = table.setdefault(opt, {}) if rng.random() < 0.7 else table
        if isinstance(sub, dict):
            keys = list(OPTIMIZERS[opt].defaults) + ["name", "compare", "classic", "lr_"]
            key = rng.choice(keys)
            sub[key] = pick(AWKWARD + good_values(schema.POSITIVE, rng) + [0.9, 0.999, 1e-8])
            return f"[optimizer] {opt}.{key}"
        return "noop"
    if name == "runs":
        runs = template["runs"] if isinstance(template.get("runs"), list) else []
        template["runs"] = runs
        if runs and isinstance(runs[0], dict) and rng.random() < 0.8:
            key = rng.choice(list(schema.RUN.keys) + ["lbl"])
            runs[0][key] = pick(AWKWARD + good_values(schema.RUN.keys.get(key, schema.FINITE), rng))
            return f"runs.{key}"
        template["runs"] = pick([[], [{}], [{"x0": 1, "lr": 0.1}] * 3, [1], "x"])
        return "runs"
    keys = list(spec.keys) if spec.kind == "table" else []
    if not keys:
        return "noop"
    key = rng.choice(keys)
    real = schema._key(key)
    if rng.random() < 0.1:
        real = real[:-1] if len(real) > 2 else real + "z"  # misspelt: "did you mean"
    value_spec = spec.keys[key]
    pool = good_values(value_spec, rng) if rng.random() < 0.6 else AWKWARD
    value = pick(pool) if pool else pick(AWKWARD)
    if value is None:
        table.pop(real, None)
        return f"del [{name}] {real}"
    if value_spec.kind == "table" and isinstance(value, dict) and isinstance(table.get(real), dict) and rng.random() < 0.5:
        table[real] = {**table[real], **value}
    else:
        table[real] = value
    return f"[{name}] {real} = {str(value)[:40]}"


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def clean(v):
    """TOML has no null: a None drops its key (or list item)."""
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [clean(x) for x in v if x is not None]
    return v


def dump(template: dict) -> str:
    template = clean(template)
    lines = []
    for name, value in template.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"[[{toml_key(name)}]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items()]
        elif isinstance(value, dict):
            lines.append(f"[{toml_key(name)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{toml_key(name)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def kind_of(base: str) -> tuple[str, bool]:
    return {"sgd": ("sgd", False), "generated": ("sgd", False), "function": ("function", False),
            "optimizers": ("optimizers", False), "lr-finder": ("lr-finder", False), "titanic": ("titanic", True)}[base]


def test_template_fuzz_every_case_is_exit_0_or_one_line_exit_2(tmp_path):
    rng = random.Random(SEED)
    runner = CliRunner()
    path = tmp_path / "fuzz.toml"
    counts = {0: 0, 2: 0}
    start = time.monotonic()
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    for case in range(CASES):
        base = rng.choices(names, weights)[0]
        template = json.loads(json.dumps(BASES[base]))
        kind, titanic = kind_of(base)
        edits = [mutate(template, kind, titanic, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        path.write_text(dump(template), encoding="utf-8")
        result = runner.invoke(cli, ["trace", str(path), "--format", "json"])
        where = f"case {case} (seed {SEED}, {base}: {'; '.join(edits)})"
        assert result.exit_code in (0, 2), (where, result.exit_code, result.exception, result.output[-500:])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError((where, result.exception))
        if result.exit_code == 2:
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (where, result.output[-500:])
            assert "internal error" not in lines[0] and "Traceback" not in lines[0], where
        else:
            json.loads(result.output)
        counts[result.exit_code] += 1
    elapsed = time.monotonic() - start
    assert counts[0] > CASES // 20 and counts[2] > CASES // 4, counts  # the fuzz exercises both outcomes
    assert elapsed < 60, elapsed
