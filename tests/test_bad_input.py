"""Bad input never crashes and no run is unbounded (issue 10): one line `Error: …`, exit 2, no traceback,
fast and in little memory, for every class of bad template value and option, and every lesson kind."""
from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *needles):
    """Exit 2, exactly one line starting with 'Error: ', no traceback; the line names what is wrong."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def edited(tmp_path, lesson: str, old: str, new: str, name: str = "t.toml") -> Path:
    """A bundled template with one edit; old = "try" replaces the whole (multi-line) try list."""
    text = (TEMPLATES / f"{lesson}.toml").read_text(encoding="utf-8")
    if old == "try":
        text, n = re.subn(r"(?ms)^try = \[.*?^\]$", lambda m: new, text, count=1)
        assert n == 1
    else:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fast(func):
    """The case runs in under a second and allocates under 200 MB (Python allocations, traced)."""
    def wrapper(*args, **kwargs):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            out = func(*args, **kwargs)
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert elapsed < 1.0, elapsed
        assert peak < 200e6, peak
        return out
    return wrapper


LINEAR_CASES = [
    # inf / nan anywhere a number is read
    ("sgd = { lr = 1e-4 }", "sgd = { lr = inf }", ["[optimizer.sgd]", "lr must be a finite number"]),
    ("sgd = { lr = 1e-4 }", "sgd = { lr = nan }", ["lr must be a finite number"]),
    ("init = { a = 1, b = 1 }", "init = { a = nan, b = 1 }", ["[model]", "init.a must be a finite number"]),
    ("init = { a = 1, b = 1 }", "init = { a = 1, b = -inf }", ["init.b must be a finite number"]),
    ("sgd = { lr = 1e-4 }", "sgd = { lr = 1e-4, weight_decay = nan }", ["weight_decay must be a finite number"]),
    ("fd_step = 0.01", "fd_step = inf", ["[training]", "fd_step must be a finite number"]),
    ("adam = { lr = 0.5 }", "adam = { lr = 0.5, eps = inf }", ["[optimizer.adam]", "eps must be a finite"]),
    ("x = [14,", "x = [inf,", ["x[0] must be a finite number"]),
    # negative seeds
    ("shuffle = false", "shuffle = false\nseed = -1", ["[training]", "seed must be a whole number ≥ 0"]),
    ("init = { a = 1, b = 1 }", 'init = { random = "normal", seed = -1 }', ["init.seed must be a whole number ≥ 0"]),
    # wrong types
    ("init = { a = 1, b = 1 }", 'init = { random = "uniform", seed = "x" }', ["init.seed must be a whole number"]),
    ("[data]", "[data]\ncolumns = [1, 2]", ["[data]", "columns[0] must be a text"]),
    ("[data]", '[data]\ncolumns = "xy"', ["columns must be a list of texts"]),
    ("try", "try = 5", ["[lesson]", "try must be a list of texts"]),
    ("try", 'try = "raise lr"', ["try must be a list of texts"]),
    ('description = """', 'description = ["a"]\n_d = """', ["description must be a text"]),
    ("x = [14,", 'x = ["14",', ["x[0] must be a number, got '14'"]),
    ("x = [14,", "x = [true,", ["x[0] must be a number, got True"]),
    ("shuffle = false", 'shuffle = "no"', ["shuffle must be true or false"]),
    ("epochs = 3", "epochs = 2.5", ["epochs must be a whole number from 1 to 1,000,000,000, got 2.5"]),
    ("epochs = 3", 'epochs = "3"', ["epochs must be a whole number"]),
    ("batch_size = 1", "batch_size = 0", ["batch_size must be a whole number"]),
    ("batch_size = 1", "batch_size = 1000", ["batch_size 1,000 is larger than the data (29 examples)"]),
    ("[model]", "[model]\nhidden = 3", ["unknown key 'hidden'"]),
    ('sgd = { lr = 1e-4 }', 'sgd = { lr = 1e-4, nesterov = 1 }', ["[optimizer.sgd]", "sgd has no hyperparameter nesterov"]),
    ('momentum = { lr = 1e-5, momentum = 0.9 }', 'momentum = { lr = 1e-5, momentum = 0.9, nesterov = 2 }',
     ["nesterov must be 0 (off) or 1 (on)"]),
    ('momentum = { lr = 1e-5, momentum = 0.9 }', 'momentum = { lr = 1e-5, momentum = 0.9, nesterov = 1, dampening = 0.1 }',
     ["nesterov momentum needs dampening = 0"]),
    ('momentum = { lr = 1e-5, momentum = 0.9 }', 'momentum = { lr = 1e-5, momentum = 1.5 }', ["momentum must be in [0, 1)"]),
    ('name = "sgd"', 'name = 3', ["name must be one of"]),
    ('kind = "linear"', 'kind = "cubic"', ["unknown model 'cubic'; known: linear, quadratic"]),
    ('name = "sgd"', 'name = "adma"', ["(did you mean adam?)"]),
    # unknown keys and tables, with a suggestion
    ("epochs = 3", "epochz = 3", ["[training]", "unknown key 'epochz' (did you mean epochs?)"]),
    ("epochs = 3", "epoch = 3", ["unknown key 'epoch' (did you mean epochs?)"]),
    ("[training]", "[traning]", ["unknown table [traning] (did you mean training?)"]),
    ("sgd = { lr = 1e-4 }", "sdg = { lr = 1e-4 }", ["unknown key 'sdg' (did you mean sgd?)"]),
    # an initial value for a parameter the model lacks
    ("init = { a = 1, b = 1 }", "init = { a = 1, b = 1, c = 2 }", ["init gives c, which the linear model does not have"]),
    # what cannot round-trip
    ("[data]", '[data]\ncolumns = ["v", "v"]', ["columns must be different names"]),
    ("[data]", '[data]\ncolumns = ["' + "v" * 40_000 + '", "w"]', ["columns[0] is 40,000 characters long"]),
    ("title = ", 'name = "' + "n" * 300 + '"\ntitle = ', ["name is 300 characters long; at most 255"]),
    ('description = """', 'description = "' + "d" * 40_000 + '"\n_d = """', ["description is 40,000 characters long"]),
    # deep nesting
    ("[data]", "[data]\nq = " + "{a = " * 500 + "1" + "}" * 500, ["malformed TOML: nested too deeply"]),
    ("[data]", "[data]\nq = " + "[" * 20_000 + "]" * 20_000, ["malformed TOML: nested too deeply"]),
]


@pytest.mark.parametrize("old,new,needles", LINEAR_CASES, ids=[f"{i}" for i in range(len(LINEAR_CASES))])
def test_bad_template_value_is_one_line_exit_2(tmp_path, old, new, needles):
    path = edited(tmp_path, "linear", old, new)
    result = fast(run)("trace", path)
    assert_one_line_error(result, path.name, *needles)


QUADRATIC_CASES = [
    ("[data.generate]", "[data]\ngenerate = 3\n[nothing]", ["unknown table [nothing]"]),
    ("coefficients = [1, 0, 0.75]", 'coefficients = ["a"]', ["[data.generate]", "coefficients[0] must be a number"]),
    ("num = 20", "num = -5", ["num must be a whole number from 1 to 1,000,000, got -5"]),
    ("num = 20", "num = 1e12", ["num must be a whole number"]),
    ("num = 20", "num = 1000000000000", ["num must be a whole number from 1 to 1,000,000, got 1,000,000,000,000"]),
    ("noise = 3", "noise = nan", ["noise must be a finite number"]),
    ("seed = 42", "seed = -1", ["seed must be a whole number ≥ 0"]),
    ("decimals = 4", "decimals = 400", ["decimals must be a whole number from 0 to 15"]),
    ("center = 9.5", "centre = 9.5", ["unknown key 'centre' (did you mean center?)"]),
]


@pytest.mark.parametrize("old,new,needles", QUADRATIC_CASES, ids=[f"{i}" for i in range(len(QUADRATIC_CASES))])
def test_bad_generator_value_is_one_line_exit_2(tmp_path, old, new, needles):
    if new.startswith("[data]\ngenerate = 3"):
        path = tmp_path / "t.toml"
        path.write_text('[data]\ngenerate = 3\n[model]\nkind = "quadratic"\n', encoding="utf-8")
        assert_one_line_error(fast(run)("trace", path), "generate must be a table")
        return
    path = edited(tmp_path, "quadratic", old, new)
    assert_one_line_error(fast(run)("trace", path), path.name, *needles)


OTHER_KINDS = [
    ("too-high", "lr = 0.01\naccumulate = true", "lr = inf\naccumulate = true", ["[runs] 1", "lr must be a finite"]),
    ("too-high", "x0 = 6\nlr = 0.1", 'x0 = "6"\nlr = 0.1', ["x0 must be a number"]),
    ("too-high", "accumulate = true", 'accumulate = "yes"', ["accumulate must be true or false"]),
    ("too-high", "steps = 40", "stepz = 40", ["unknown key 'stepz' (did you mean steps?)"]),
    ("too-high", "target = 9", "target = nan", ["target must be a finite number"]),
    ("optimizers", "classic = false", 'classic = "no"', ["classic must be true or false"]),
    ("optimizers", 'compare = ["sgd"', 'compare = ["sdg"', ["compare[0] must be one of", "(did you mean sgd?)"]),
    ("optimizers", "adam = { lr = 0.2 }", "adam = { lr = 0.2, beta1 = inf }", ["beta1 must be a finite number"]),
    ("lr-finder", "end_lr = 10", "end_lr = inf", ["[finder]", "end_lr must be a finite number"]),
    ("lr-finder", "num_it = 100", "num_it = 1e9", ["num_it must be a whole number"]),
    ("lr-finder", "stop_factor = 4", "stop_factr = 4", ["(did you mean stop_factor?)"]),
    ("lr-finder", "[finder]", "[findr]", ["unknown table [findr] (did you mean finder?)"]),
    ("titanic-linear", "valid_fraction = 0.2", "valid_fraction = nan", ["valid_fraction must be a finite number"]),
    ("titanic-linear", "split_seed = 42", "split_seed = -1", ["split_seed must be a whole number ≥ 0"]),
    ("titanic-linear", 'init = { random = "uniform", seed = 42 }', 'init = { random = "uniform", seed = "x" }',
     ["init.seed must be a whole number"]),
    ("titanic-linear", 'init = { random = "uniform", seed = 42 }', "init = { w = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], v = 1 }",
     ["init gives v, which this model does not have"]),
    ("titanic-linear", "sgd = { lr = 0.01 }", "sgd = { lr = 0.01, weight_decay = inf }", ["weight_decay must be a finite"]),
    ("titanic-linear", 'preset = "lesson3-sheet"', 'preset = "lesson3"', ["unknown preset 'lesson3' (did you mean lesson3-sheet?)"]),
    ("titanic-linear", "epochs = 3", "best_fit_steps = 1e12\nepochs = 3", ["best_fit_steps must be a whole number"]),
    ("titanic-linear", "batch_size = 1", "batch_size = 100000", ["larger than the data (570 examples)"]),
    ("titanic-mlp", "[model]", "[model]\nhiden = 3", ["unknown key 'hiden' (did you mean hidden?)"]),
    ("conv", "size = 6 ", "size = 60 ", ["[images]", "size must be"]),
    ("conv", "filters = 2 ", "filters = 0 ", ["filters must be"]),
    ("conv", "pool = false", 'pool = "no"', ["pool must be true or false"]),
    ("conv", "[images]", "[image]", ["unknown table [image] (did you mean images?)"]),
    ("conv", "bar_min = 3 ", "bar_min = 9 ", ["bar_min 9 is longer than the image"]),
]


@pytest.mark.parametrize("lesson,old,new,needles", OTHER_KINDS, ids=[f"{c[0]}-{i}" for i, c in enumerate(OTHER_KINDS)])
def test_bad_value_in_every_kind_is_one_line_exit_2(tmp_path, lesson, old, new, needles):
    path = edited(tmp_path, lesson, old, new)
    assert_one_line_error(fast(run)("trace", path), path.name, *needles)


OPTIONS = [
    (["build", "linear", "--lr", "inf", "-o", "{out}"], ["--lr must be > 0 and finite, got inf"]),
    (["build", "linear", "--lr", "nan", "-o", "{out}"], ["--lr must be > 0 and finite, got nan"]),
    (["build", "too-high", "--lr", "inf", "-o", "{out}"], ["--lr must be > 0 and finite"]),
    (["trace", "linear", "--seed", "-1"], ["--seed", "-1 is not in the range"]),
    (["trace", "linear", "--batch-size", "1000"], ["--batch-size 1,000 is larger than the data (29 examples)"]),
    (["trace", "titanic-linear", "--batch-size", "5000"], ["--batch-size 5,000 is larger than the data (570 examples)"]),
    (["check", "{xlsx}", "--max-part-mb", "inf"], ["--max-part-mb", "finite"]),
    (["check", "{xlsx}", "--max-part-mb", "nan"], ["--max-part-mb", "finite"]),
    (["check", "{xlsx}", "--max-file-mb", "nan"], ["--max-file-mb", "finite"]),
    (["check", "{xlsx}", "--timeout", "nan"], ["--timeout", "finite"]),
    (["grade", "{xlsx}", "-o", "{csv}", "--max-file-mb", "inf"], ["--max-file-mb", "finite"]),
    (["grade", "{xlsx}", "-o", "{csv}", "--timeout", "inf"], ["--timeout", "finite"]),
]


@pytest.mark.parametrize("args,needles", OPTIONS, ids=[" ".join(a[:4]) for a, _ in OPTIONS])
def test_bad_option_is_one_line_exit_2(tmp_path, args, needles):
    xlsx = tmp_path / "a.xlsx"
    xlsx.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # never read: the option is refused first
    filled = [a.format(out=tmp_path / "o.xlsx", xlsx=xlsx, csv=tmp_path / "g.csv") for a in args]
    assert_one_line_error(fast(run)(*filled), *needles)
    assert not (tmp_path / "o.xlsx").exists() and not (tmp_path / "g.csv").exists()


HUGE = [
    (["trace", "linear", "--epochs", "1000000000"], ["run too large to trace", "cells"]),
    (["trace", "linear", "--epochs", "10000000", "--batch-size", "full"], ["run too large to trace"]),
    (["build", "linear", "--epochs", "1000000", "-o", "{out}"], ["workbook too large"]),
    (["build", "lr-finder", "--epochs", "1000000", "-o", "{out}"], ["workbook too large", "num_it"]),
    (["trace", "lr-finder", "--epochs", "1000000"], ["run too large to trace"]),
    (["build", "too-high", "--epochs", "100000000", "-o", "{out}"], ["workbook too large", "fewer steps"]),
    (["trace", "too-high", "--epochs", "100000000"], ["run too large to trace"]),
    (["build", "optimizers", "--epochs", "100000", "-o", "{out}"], ["workbook too large"]),
    (["trace", "optimizers", "--epochs", "100000"], ["run too large to trace"]),
    (["build", "titanic-mlp", "--epochs", "100000", "-o", "{out}"], ["workbook too large"]),
    (["trace", "titanic-mlp", "--epochs", "100000"], ["run too large to trace"]),
    (["build", "lr-finder-titanic", "--epochs", "1000000", "-o", "{out}"], ["workbook too large"]),
    (["trace", "lr-finder-titanic", "--epochs", "1000000"], ["run too large to trace"]),
]


@pytest.mark.parametrize("args,needles", HUGE, ids=[" ".join(a[:4]) for a, _ in HUGE])
def test_huge_runs_are_refused_before_computing(tmp_path, args, needles):
    out = tmp_path / "o.xlsx"
    assert_one_line_error(fast(run)(*[a.format(out=out) for a in args]), *needles)
    assert not out.exists()


def test_huge_generated_data_is_refused_before_allocating(tmp_path):
    path = edited(tmp_path, "quadratic", "num = 20", "num = 1000000000000")
    assert_one_line_error(fast(run)("build", path, "-o", tmp_path / "o.xlsx"), "num must be a whole number")


def test_every_bundled_template_passes_the_schema():
    for path in sorted(TEMPLATES.glob("*.toml")):
        result = run("trace", path.stem, "--epochs", "2") if "titanic" not in path.stem else None
        if result is not None:
            assert result.exit_code == 0, (path.stem, result.output)
    from sheetsgd.lessons import schema
    from sheetsgd.lessons.sgd.lesson import read_template, template_kind

    for path in sorted(TEMPLATES.glob("*.toml")):
        raw, _, source = read_template(str(path))
        schema.check_template(raw, template_kind(raw), source)


@pytest.fixture(scope="module")
def full_workbook(tmp_path_factory):
    from sheetsgd.lessons.sgd.lesson import load_lesson, override
    from sheetsgd.lessons.sgd.workbook import build_workbook

    path = tmp_path_factory.mktemp("timeout") / "full.xlsx"
    build_workbook(override(load_lesson("linear"), epochs=20), path)
    return path


def test_check_timeout_is_one_line_exit_2(full_workbook):
    result = run("check", full_workbook, "--timeout", "0.001")
    line = assert_one_line_error(result, "cannot check", "no answer within 0.001 s (--timeout)")
    assert str(full_workbook) in line
    as_json = run("check", full_workbook, "--timeout", "0.001", "--json")
    assert as_json.exit_code == 2
    import json
    report = json.loads(as_json.output)
    assert report["status"] == "error" and "--timeout" in report["message"]


def test_check_within_its_timeout_is_unaffected(full_workbook):
    result = run("check", full_workbook, "--timeout", "60")
    assert result.exit_code == 0, result.output


def test_time_limit_never_leaves_its_watchdog_armed():
    """An alarm that fires at any moment (even before the body starts) must not leave the hard stop
    (os._exit) running: with a grace of 50 ms, 300 tiny limits, then a pause the process survives."""
    from sheetsgd.runtime.deadline import OutOfTime, time_limit

    fired = 0
    for i in range(300):
        try:
            with time_limit(1e-6 * (1 + i % 7), "test", grace=0.05):
                sum(range(2000))
        except OutOfTime:
            fired += 1
    time.sleep(0.3)
    assert fired > 0  # the alarms did fire, and we are still here
