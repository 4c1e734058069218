"""`sheetsgd trace --format json` writes an overflow one way, null, for every kind of lesson (a diverging run each)."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.runtime.jsonsafe import finite_or_null

def bundled_text(name: str) -> str:
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    return bundled_lessons()[name].read_text(encoding="utf-8")


def finder_without_a_stop(tmp_path, name, end_lr, model=None):
    """An lr finder that never stops (stop_factor 1e300), so its rows run past the blow-up into overflow."""
    text = bundled_text(name)
    text = re.sub(r"(?m)^end_lr = .*$", f"end_lr = {end_lr}", text)
    text = re.sub(r"(?m)^stop_factor = .*$", "stop_factor = 1e300", text)
    if model:  # a linear Titanic model: no sigmoid to saturate, so the weights overflow
        text = text.replace('kind = "logistic"\nloss = "bce"', f'kind = "{model}"\nloss = "mse"')
    path = tmp_path / f"{name}-no-stop.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def optimizers_with_huge_lrs(tmp_path):
    text = re.sub(r"lr = [0-9.e-]+", "lr = 1e6", bundled_text("optimizers"))
    path = tmp_path / "optimizers-huge.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def collab_unsquashed(tmp_path):
    """The collab-filter lesson without y_range (nothing saturates) and a huge lr: the factors overflow."""
    text = bundled_text("collab-filter").replace("y_range = [0.5, 5.5]", "y_range = []")
    path = tmp_path / "collab-unsquashed.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# kind -> (lesson, options): a run that overflows for every kind of lesson
DIVERGING = {
    "function": lambda tmp: ("too-high", []),  # run 3 overflows at step 6
    "sgd": lambda tmp: ("linear", ["--lr", "1", "--epochs", "3"]),
    "optimizers": lambda tmp: (optimizers_with_huge_lrs(tmp), ["--epochs", "2"]),
    "lr-finder": lambda tmp: (finder_without_a_stop(tmp, "lr-finder", 1e6), []),
    "lr-finder-titanic": lambda tmp: (finder_without_a_stop(tmp, "lr-finder-titanic", 1e12, model="linear"), []),
    "titanic": lambda tmp: ("titanic-linear", ["--lr", "1e6", "--epochs", "1"]),
    "collab": lambda tmp: (collab_unsquashed(tmp), ["--lr", "1e6", "--epochs", "10"]),
    "attention": lambda tmp: ("attention", ["--lr", "5", "--epochs", "3"]),
    "conv": lambda tmp: ("conv", ["--lr", "1e6", "--epochs", "1"]),
}


def numbers(document):
    """Every leaf of a JSON document."""
    if isinstance(document, dict):
        for v in document.values():
            yield from numbers(v)
    elif isinstance(document, list):
        for v in document:
            yield from numbers(v)
    else:
        yield document


def test_the_bundled_kinds_are_all_covered():
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    kinds_seen = {kinds.load(str(p)).kind for p in bundled_lessons().values()}
    assert kinds_seen == {k for k in DIVERGING if k != "lr-finder-titanic"} | {"lr-finder"}


@pytest.mark.parametrize("case", list(DIVERGING))
def test_trace_json_writes_an_overflow_as_null(case, tmp_path):
    lesson_name, options = DIVERGING[case](tmp_path)
    result = CliRunner().invoke(cli, ["trace", lesson_name, "--format", "json", *options])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    leaves = list(numbers(document["steps"]))
    assert None in leaves, "the run was meant to overflow"
    spelled = {v for v in leaves if isinstance(v, str)}
    assert not spelled & {"#NUM!", "#N/A", "nan", "inf", "NaN", "Infinity", ""}, spelled

    # exactly the engine's non-finite numbers are null, in every step and column
    lesson = kinds.load(lesson_name, **_options(options))
    trace = kinds.kind_of(lesson).train(lesson)
    traces = trace.traces if hasattr(trace, "traces") else {None: trace}  # a comparison: one trace per optimizer
    rows = document["steps"]
    overflowed = 0
    for name, tr in traces.items():
        for key, values in tr.steps.items():
            column = key if name is None or key == "step" else f"{name}.{key}"  # the Compare table's columns
            for i, v in enumerate(values):
                if math.isfinite(v):
                    assert rows[i][column] == v, (name, key, i)
                else:
                    assert rows[i][column] is None, (name, key, i, rows[i][column])
                    overflowed += 1
    assert overflowed


def _options(args):
    out = {}
    for flag, value in zip(args[::2], args[1::2]):
        key = flag.lstrip("-").replace("-", "_")
        out[key] = float(value) if key == "lr" else int(value)
    return out


def test_finite_or_null():
    assert finite_or_null({"a": [1.0, float("nan"), np.float64("inf"), "x", 3], "b": (float("-inf"),)}) == \
        {"a": [1.0, None, None, "x", 3], "b": [None]}
