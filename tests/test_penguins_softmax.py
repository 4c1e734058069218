"""penguins-softmax: the sheet (LibreOffice's forced recalculation) equals the engine in every formula cell,
and the engine equals PyTorch (nn.CrossEntropyLoss + torch.optim) at every step, per example, in
mini-batches and full batch. The data is read and standardised here independently (csv + numpy)."""
from __future__ import annotations

import csv
import functools
import hashlib
import re

import numpy as np
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.lessons.datasets import PENGUINS_CSV, PENGUINS_MD5
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.formula import check_portable
from sheetsgd.lessons.tabular.engine import train

from conftest import assert_recalculated_equals_cached, assert_steps_equal_engine, build_and_recalc, close
from conftest import formula_cells as read_formulas

CASES = {"b1": ({"batch_size": 1, "epochs": 2}, "sgd"), "b16": ({"batch_size": 16, "epochs": 2}, "momentum"),
         "full": ({"batch_size": "full", "epochs": 12}, "adam")}


@functools.lru_cache(maxsize=None)
def lesson_of(case):
    options, optimizer = CASES[case]
    return kinds.load("penguins-softmax", optimizer=optimizer, **options)


def independent_data(seed=42, fraction=0.2):
    """The CSV read with the csv module: rows with measurements, the seeded split, training-row z-scores."""
    with open(PENGUINS_CSV, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["bill_length_mm"] != "NA"]
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    raw = np.array([[float(r[c]) for c in cols] for r in rows])
    species = np.array([("Adelie", "Chinstrap", "Gentoo").index(r["species"]) for r in rows])
    n = len(rows)
    valid = np.sort(np.random.default_rng(seed).permutation(n)[:int(n * fraction)])
    order = np.concatenate([np.setdiff1d(np.arange(n), valid), valid])
    raw, species = raw[order], species[order]
    n_train = n - len(valid)
    mean = raw[:n_train].sum(axis=0) / n_train
    sd = np.sqrt(((raw[:n_train] - mean) ** 2).sum(axis=0) / n_train)
    return (raw - mean) / sd, species, n_train


def test_shipped_data_is_the_shared_file_and_na_rows_are_dropped():
    assert hashlib.md5(PENGUINS_CSV.read_bytes()).hexdigest() == PENGUINS_MD5
    lesson = lesson_of("b16")
    X, species, n_train = independent_data()
    assert len(lesson.data.y) == 342 and lesson.data.n_train == n_train == 274
    np.testing.assert_allclose(lesson.data.X, X, rtol=1e-12, atol=1e-12)
    assert (lesson.data.y.argmax(axis=1) == species).all() and (lesson.data.y.sum(axis=1) == 1).all()


def torch_run(lesson, trace):
    """The same steps in PyTorch float64: nn.Linear(4, 3), CrossEntropyLoss (mean), torch.optim."""
    torch = pytest.importorskip("torch")
    X, species, _ = independent_data()
    net = torch.nn.Linear(4, 3).double()
    theta = lesson.init
    with torch.no_grad():
        net.weight.copy_(torch.tensor(theta[:12].reshape(3, 4)))
        net.bias.copy_(torch.tensor(theta[12:]))
    hp = lesson.hyper
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=hp["lr"]),
           "momentum": lambda p: torch.optim.SGD(p, lr=hp["lr"], momentum=hp["momentum"]),
           "adam": lambda p: torch.optim.Adam(p, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
           }[lesson.optimizer](net.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.tensor(X), torch.tensor(species)
    out = []
    for idx in trace.batches:
        idx = torch.tensor(np.asarray(idx))
        opt.zero_grad()
        loss = loss_fn(net(Xt[idx]), yt[idx])
        loss.backward()
        out.append((loss.item(), torch.cat([net.weight.grad.flatten(), net.bias.grad]).numpy().copy()))
        opt.step()
        out[-1] += (torch.cat([net.weight.detach().flatten(), net.bias.detach()]).numpy().copy(),)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_engine_equals_pytorch_at_every_step(case):
    lesson = lesson_of(case)
    trace = train(lesson)
    names = lesson.net().params
    assert names[:4] == ["w1_bill_length", "w1_bill_depth", "w1_flipper_length", "w1_body_mass"] and names[12] == "b1"
    steps = torch_run(lesson, trace)
    assert len(steps) == lesson.n_steps
    for t, (loss, grad, new) in enumerate(steps):
        assert close(loss, trace.steps["loss"][t], rel=1e-9), (t, loss, trace.steps["loss"][t])
        for i, p in enumerate(names):
            assert close(grad[i], trace.steps[f"grad_{p}"][t], rel=1e-9, abs_tol=1e-12), (t, p)
            assert close(new[i], trace.steps[f"new_{p}"][t], rel=1e-9), (t, p, new[i], trace.steps[f"new_{p}"][t])
    assert trace.epochs["valid_accuracy"][-1] > 0.9  # it learns: the three species are well separated


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    return build_and_recalc(recalc, tmp_path_factory.mktemp("penguins"), {case: lesson_of(case) for case in CASES})


@pytest.mark.parametrize("case", list(CASES))
def test_libreoffice_recalculation_equals_the_engine_in_every_formula_cell(built, case):
    path, recalculated = built[case]
    assert assert_recalculated_equals_cached(path, recalculated) > 30000
    # the cached numbers are the engine's: the Steps columns of an engine run, read back by the manifest
    assert_steps_equal_engine(path, recalculated, train(lesson_of(case)), ("new_w2_bill_depth", "new_b3", "loss", "correct"))


def test_formulas_are_portable_and_show_the_stable_softmax(built):
    path, _ = built["b16"]
    shapes = {}
    for (sheet, ref), formula in read_formulas(path).items():
        shapes.setdefault(re.sub(r"\d+", "0", formula), (sheet, formula))
    for shape, (sheet, formula) in shapes.items():
        assert check_portable(formula) == [], (sheet, formula)
    text = " ".join(f for _, f in shapes.values())
    for piece in ("STDEVP(", "MAX(", "EXP(", "-LN(SUMPRODUCT(", "MATCH(MAX(", 'IF(B3="Adelie",1,0)'):
        assert piece in text, piece


def test_a_loss_that_does_not_fit_the_model_is_one_line_error():
    with pytest.raises(SheetsgdError, match="softmax"):
        kinds.load("penguins-softmax", loss="mse")
    with pytest.raises(SheetsgdError, match="ce"):
        kinds.load("titanic-logistic", loss="ce")
