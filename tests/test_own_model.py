"""An author's own model (``[model] formula``): the sheet computes what the engine computes (LibreOffice,
every formula cell, rel ≤ 1e-9), and every derived ∂ŷ/∂p and gradient equals PyTorch autograd on the same
model written out in torch, at every step."""
from __future__ import annotations

import numpy as np
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.spec import step_columns

from conftest import assert_recalculated_equals_cached, build_and_recalc, cell_values, close, read_manifest


def _numbers(values) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def _generated(kind: str):
    """Author data made here (seeded): exponential decay, a sine, a power law, each with noise."""
    rng = np.random.default_rng(7)
    if kind == "decay":
        t = np.linspace(0, 6, 13)
        y = 3.0 * np.exp(-0.6 * t) + 0.5 + 0.05 * rng.standard_normal(t.size)
    elif kind == "sine":
        t = np.linspace(0, 6, 13)
        y = 1.5 * np.sin(1.3 * t + 0.4) + 0.05 * rng.standard_normal(t.size)
    else:
        t = np.linspace(0.5, 5, 10)
        y = 2.0 * t ** 1.5 + 0.1 * rng.standard_normal(t.size)
    return np.round(t, 4), np.round(y, 4)


MODELS = {  # formula, init, and the same model in torch
    "decay": ("a*EXP(-b*t)+c", {"a": 1.0, "b": 0.1, "c": 0.0}, lambda p, t: p["a"] * (-p["b"] * t).exp() + p["c"]),
    "sine": ("a*SIN(b*t+c)", {"a": 1.0, "b": 1.0, "c": 0.0}, lambda p, t: p["a"] * (p["b"] * t + p["c"]).sin()),
    "power": ("a*POWER(t,b)", {"a": 1.0, "b": 1.0}, lambda p, t: p["a"] * t ** p["b"]),
}
CASES = {  # lesson key: (model, optimizer, batch size, loss)
    "decay-sgd-1": ("decay", "sgd", 1, "mse"),
    "decay-adam-4": ("decay", "adam", 4, "mse"),
    "sine-momentum-1": ("sine", "momentum", 1, "mse"),
    "sine-sgd-full-mae": ("sine", "sgd", "full", "mae"),
    "power-sgd-1": ("power", "sgd", 1, "mse"),
    "power-rmsprop-3-mae": ("power", "rmsprop", 3, "mae"),
}
LR = {"decay": 0.05, "sine": 0.02, "power": 0.002}


def template(model: str, optimizer: str, batch, loss: str) -> str:
    formula, init, _ = MODELS[model]
    t, y = _generated(model)
    inits = ", ".join(f"{k} = {v!r}" for k, v in init.items())
    batch_text = '"full"' if batch == "full" else batch
    return f"""
[lesson]
title = "{model}"
[data]
columns = ["t", "y"]
x = {_numbers(t)}
y = {_numbers(y)}
[model]
formula = "{formula}"
init = {{ {inits} }}
loss = "{loss}"
[optimizer]
name = "{optimizer}"
{optimizer} = {{ lr = {LR[model]} }}
[training]
epochs = 2
batch_size = {batch_text}
"""


def make(tmp_path, key):
    model, optimizer, batch, loss = CASES[key]
    path = tmp_path / f"{key}.toml"
    path.write_text(template(model, optimizer, batch, loss))
    return kinds.load(str(path))


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    folder = tmp_path_factory.mktemp("own-model")
    lessons = {key: make(folder, key) for key in CASES}
    return {k: (lessons[k], *paths) for k, paths in build_and_recalc(recalc, folder, lessons).items()}


@pytest.mark.parametrize("key", list(CASES))
def test_libreoffice_equals_engine(built, key):
    lesson, path, recalculated = built[key]
    manifest = read_manifest(path)
    values = cell_values(recalculated)["Steps"]
    trace = train(lesson)  # an engine run made here
    checked = 0
    for column in step_columns(lesson):
        if column.formula is None or column.key in ("first", "last"):
            continue
        letter = manifest["columns"][column.key]["column"]
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{manifest['first_step_row'] + i}")
            assert isinstance(found, (int, float)), (column.key, i + 1, found)
            assert close(expected, found), (column.key, i + 1, expected, found)
            checked += 1
    assert checked >= lesson.n_steps * 5
    assert assert_recalculated_equals_cached(path, recalculated) > checked


def test_per_example_sheet_has_derivative_columns(tmp_path):
    lesson = make(tmp_path, "decay-sgd-1")
    columns = {c.key: c.formula for c in step_columns(lesson)}
    assert columns["dpred_a"] == "EXP(-{b}*{x})"
    assert columns["dpred_c"] == "1"
    assert columns["grad_b"] == "{dloss}*{dpred_b}"
    keys = list(columns)
    assert keys.index("dpred_b") + 1 == keys.index("grad_b") and keys.index("grad_b") + 1 == keys.index("fd_b")


@pytest.mark.parametrize("key", list(CASES))
def test_gradients_equal_torch_autograd(tmp_path, key):
    torch = pytest.importorskip("torch")
    lesson = make(tmp_path, key)
    model, _, _, loss_name = CASES[key]
    forward = MODELS[model][2]
    trace = train(lesson)
    t_all = torch.tensor(lesson.data.x, dtype=torch.float64)
    y_all = torch.tensor(lesson.data.y, dtype=torch.float64)
    for step, idx in enumerate(trace.batches):
        p = {q: torch.tensor(trace.steps[q][step], dtype=torch.float64, requires_grad=True)
             for q in lesson.own_model.params}
        t, y = t_all[idx], y_all[idx]
        pred = forward(p, t)
        err = pred - y
        loss = (err * err if loss_name == "mse" else err.abs()).mean()
        grads = torch.autograd.grad(loss, list(p.values()), retain_graph=True)
        for q, g in zip(p, grads):
            assert close(g.item(), trace.steps[f"grad_{q}"][step]), (q, step + 1, g.item())
        if lesson.batch_size == 1:  # ∂ŷ/∂p, the derived column of its own
            dpred = torch.autograd.grad(pred.sum(), list(p.values()), allow_unused=True)
            for q, g in zip(p, dpred):
                expected = 0.0 if g is None else g.item()
                assert close(expected, trace.steps[f"dpred_{q}"][step]), (q, step + 1)


# --- the derivatives as formula text: the same numbers as sympy's own evaluation ------------------------------

RENDERED = ["a*EXP(-b*t)+c", "a*SIN(b*t+c)", "a*POWER(t,b)", "-a*t^2+b", "a/(1+EXP(-(b*t+c)))", "a*LN(b+t)",
            "a*SQRT(t+b)", "(a*t)^-1+b", "a*t^b^2", "a*ABS(t-b)+c", "a*COS(b*t)/(1+c*t)", "a*LOG10(t)+b*PI()",
            "-(a-b)^2*t+c", "a*t^(1/3)+b", "2^-a*t+b", "a*EXP(-b*t)*SIN(c*t)"]


@pytest.mark.parametrize("formula", RENDERED)
def test_each_derivative_text_evaluates_to_sympys_derivative(formula):
    """The rendered ∂ŷ/∂p (spreadsheet precedence: -x^2 = (-x)^2, a^b^c = (a^b)^c) parsed and evaluated by
    the checker's evaluator equals sympy's derivative of the formula read the same way, evaluated by mpmath."""
    sympy = pytest.importorskip("sympy")
    from sheetsgd.sheet import a1
    from sheetsgd.lessons.sgd.own_model import parse_formula_model

    names = sorted(a1.names(a1.parse(formula)) - {"t"})
    model, _ = parse_formula_model({"formula": formula, "init": {n: 1.0 for n in names}}, "t", "[model]")
    rng = np.random.default_rng(1)
    point = {"t": rng.uniform(1.1, 2.5, 8), **{n: rng.uniform(0.3, 1.7, 8) for n in names}}
    reference = _sympy_of(formula, sympy)  # an independent reading of the author's text
    for p in names:
        expected = sympy.lambdify([sympy.Symbol(k, real=True) for k in sorted(point)],
                                   sympy.diff(reference, sympy.Symbol(p, real=True)), "mpmath")
        found = model.features(point["t"], {n: point[n] for n in names})[p]
        for i in range(8):
            want = float(expected(*(point[k][i] for k in sorted(point))))
            assert close(want, float(np.broadcast_to(found, (8,))[i])), (formula, p, model.derivative_texts[p])


def _sympy_of(formula: str, sympy):
    """The formula read by sympy from text: ^ → ** (made left-associative by parenthesising), unary minus
    before ^ as spreadsheets read it, spreadsheet functions as sympy's."""
    text = formula
    for old, new in (("EXP", "exp"), ("SIN", "sin"), ("COS", "cos"), ("LN", "log"), ("SQRT", "sqrt"), ("ABS", "Abs"),
                     ("PI()", "pi"), ("POWER", "Pow")):
        text = text.replace(old, new)
    text = text.replace("LOG10(t)", "(log(t)/log(10))")
    spelled = {"-a*t^2+b": "(-a)*t**2+b", "(a*t)^-1+b": "(a*t)**(-1)+b", "a*t^b^2": "a*(t**b)**2",
               "-(a-b)^2*t+c": "(-(a-b))**2*t+c", "a*t^(1/3)+b": "a*t**(Rational(1,3))+b", "2^-a*t+b": "2**(-a)*t+b"}
    text = spelled.get(formula, text.replace("^", "**"))
    return sympy.sympify(text, locals={n: sympy.Symbol(n, real=True) for n in ("a", "b", "c", "t")})


# --- bad formulas: one line naming the key, exit 2 -------------------------------------------------------------

@pytest.mark.parametrize("formula,init,needles", [
    ("a*FOO(b*t)+c", "a = 1.0, b = 0.1, c = 0.0", ["[model]", "formula", "unknown function FOO()"]),
    ("a*IF(t>1,b,c)", "a = 1.0, b = 0.1, c = 0.0", ["[model]", "IF() has no derivative"]),
    ("a*EXP(-b*t)+k", "a = 1.0, b = 0.1", ["[model]", "unknown name 'k'"]),
    ("a*EXP(-b*t)+c", "a = 1.0, b = 0.1", ["[model]", "unknown name 'c'", "init"]),
    ("a*EXP(-b*t)", "a = 1.0, b = 0.1, c = 0.0", ["[model]", "init gives c"]),
    ("a*EXP(-b*t)+B2", "a = 1.0, b = 0.1", ["[model]", "B2 reads as a cell reference"]),
    ("a*EXP(-b*t", "a = 1.0, b = 0.1", ["[model]", "cannot read it"]),
    ("x*t+b", "x = 1.0, b = 0.1", ["[model]", "'x' cannot name a parameter"]),
    ("+".join(f"a*EXP(-b*t*{i})" for i in range(1, 40)), "a = 1.0, b = 0.1", ["[model]", "characters in a cell"]),
    ("a*SQRT(t-b)+c", "a = 1.0, b = 0.0, c = 0.0", ["[model]", "∂ŷ/∂b", "is not a number at t = 0", "b = 0"]),
    ("a*ABS(t-b)+c", "a = 1.0, b = 0.0, c = 0.0", ["[model]", "ABS(t-b) has no derivative", "t = 0,"]),
    ("a*POWER(t,b)", "a = 1.0, b = 0.5", ["[model]", "∂ŷ/∂b", "at t = 0"]),
], ids=["unknown-function", "not-differentiable-function", "unknown-name", "no-start-value", "unused-start-value",
        "cell-reference", "unreadable", "reserved-name", "too-long", "sqrt-at-0", "abs-at-0", "power-law-at-0"])
def test_a_bad_formula_is_one_line_exit_2(tmp_path, formula, init, needles):
    from click.testing import CliRunner
    from sheetsgd.cli.commands import cli
    from test_bad_input import assert_one_line_error

    path = tmp_path / "bad.toml"
    path.write_text(f'[data]\ncolumns = ["t", "y"]\nx = [0, 0.5, 1, 1.5]\ny = [1, 2, 3, 4]\n'
                    f'[model]\nformula = "{formula}"\ninit = {{ {init} }}\n')
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")])
    line = assert_one_line_error(result, *needles)
    assert "bad.toml" in line
    assert not (tmp_path / "o.xlsx").exists()


@pytest.mark.parametrize("formula", RENDERED)
def test_the_per_example_path_equals_the_evaluator(formula):
    """The engine's compiled per-example functions (Python floats) give the evaluator's numbers, NaN where it
    gives NaN (a domain error, a division by 0, an overflow), for ŷ and every ∂ŷ/∂p."""
    from sheetsgd.sheet import a1
    from sheetsgd.lessons.sgd.own_model import parse_formula_model

    names = sorted(a1.names(a1.parse(formula)) - {"t"})
    model, _ = parse_formula_model({"formula": formula, "init": {n: 1.0 for n in names}}, "t", "[model]")
    rng = np.random.default_rng(5)
    points = [{"t": float(t), **{n: float(v) for n, v in zip(names, rng.uniform(-3, 3, len(names)))}}
              for t in [*rng.uniform(-4, 4, 30), 0.0, 1.0, -1.0, 800.0, -800.0]]
    for key in ["pred", *names]:
        for point in points:
            params = {n: point[n] for n in names}
            found = model._scalar(key, params, point["t"])
            expected = float(np.ravel(model._eval(model.trees[key], params, np.float64(point["t"])))[0])
            if np.isfinite(expected):
                assert close(expected, found, rel=1e-12), (formula, key, point, expected, found)
            else:
                assert not np.isfinite(found), (formula, key, point, expected, found)
