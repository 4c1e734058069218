"""dropout: inverted dropout on an MLP's hidden units with a given mask, beside the same net without dropout.

The engine equals PyTorch float64 at every step (the same fixed mask, h = relu(xW) · mask / (1 − p), and a
second nn net without dropout), per example, in mini-batches and full batch; LibreOffice's forced
recalculation equals the engine in every formula cell; the mask is drawn here independently
(numpy default_rng(seed), one row per Examples row in step order)."""
from __future__ import annotations

import functools
import re
import tomllib

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError
from sheetsgd.sheet.formula import check_portable
from sheetsgd.lessons.tabular.engine import train

from conftest import assert_recalculated_equals_cached, assert_steps_equal_engine, build_and_recalc, close
from conftest import formula_cells as read_formulas

CASES = {"b1": ({"batch_size": 1, "epochs": 1}, "sgd"), "b16": ({"batch_size": 16, "epochs": 3}, "momentum"),
         "full": ({"batch_size": "full", "epochs": 6}, "adam")}


@functools.lru_cache(maxsize=None)
def lesson_of(case):
    options, optimizer = CASES[case]
    return kinds.load("dropout", optimizer=optimizer, **options)


def independent_mask(lesson):
    """The mask as the lesson promises it: default_rng(dropout_seed).random((rows, hidden)) ≥ p, kept as 0/1."""
    rows = lesson.epochs * lesson.data.n_train
    return (np.random.default_rng(lesson.dropout_seed).random((rows, lesson.hidden)) >= lesson.dropout) * 1.0


def torch_run(lesson, trace):
    """Both nets in PyTorch float64: W (hidden × features, no bias, as the sheet's SUMPRODUCT rows), v, c;
    the dropout net's hidden layer times the fixed mask / (1 − p), the twin's without; BCE on a clamped ŷ."""
    torch = pytest.importorskip("torch")
    n, f, p, eps = lesson.hidden, len(lesson.data.feature_keys), lesson.dropout, lesson.clip_eps
    half = n * f + n + 1
    mask = torch.tensor(independent_mask(lesson))
    nets = []
    for k in (0, 1):  # the dropout net, then the twin: both from the lesson's first half of the init
        theta = lesson.init[k * half:(k + 1) * half]
        W = torch.tensor(theta[:n * f].reshape(n, f), requires_grad=True)
        v = torch.tensor(theta[n * f:n * f + n], requires_grad=True)
        c = torch.tensor(theta[-1:], requires_grad=True)
        nets.append([W, v, c])
    assert np.array_equal(lesson.init[:half], lesson.init[half:])  # the same start
    hp = lesson.hyper
    make = {"sgd": lambda ps: torch.optim.SGD(ps, lr=hp["lr"]),
            "momentum": lambda ps: torch.optim.SGD(ps, lr=hp["lr"], momentum=hp["momentum"]),
            "adam": lambda ps: torch.optim.Adam(ps, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])}
    opts = [make[lesson.optimizer](ps) for ps in nets]
    X, y = torch.tensor(lesson.data.X), torch.tensor(lesson.data.y)
    row, out = 0, []
    for idx in trace.batches:
        idx = torch.tensor(np.asarray(idx))
        m = mask[row:row + len(idx)]
        row += len(idx)
        news = []
        for k, ((W, v, c), opt) in enumerate(zip(nets, opts)):
            opt.zero_grad()
            h = torch.relu(X[idx] @ W.T)
            if k == 0:
                h = h * m / (1 - p)
            pred = torch.sigmoid(h @ v + c)
            pc = torch.clamp(pred, eps, 1 - eps)
            loss = -(y[idx] * torch.log(pc) + (1 - y[idx]) * torch.log(1 - pc)).mean()
            loss.backward()
            opt.step()
            news.append(torch.cat([W.detach().flatten(), v.detach(), c.detach()]).numpy().copy())
        out.append(np.concatenate(news))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_engine_equals_pytorch_with_the_same_fixed_mask_at_every_step(case):
    lesson = lesson_of(case)
    trace = train(lesson)
    names = lesson.net().params
    n, f = lesson.hidden, len(lesson.data.feature_keys)
    assert names[0] == f"h1_{lesson.data.feature_keys[0]}" and names[n * f] == "v1" and names[n * f + n] == "c"
    assert names[n * f + n + 1] == names[0] + "_0" and names[-1] == "c_0"
    steps = torch_run(lesson, trace)
    assert len(steps) == lesson.n_steps
    for t, new in enumerate(steps):
        for i, p in enumerate(names):
            assert close(new[i], trace.steps[f"new_{p}"][t], rel=1e-9, abs_tol=1e-12), (t, p, new[i])
    # the dropout changes the run: after the first step the two nets differ
    assert not np.allclose(trace.final[:len(names) // 2], trace.final[len(names) // 2:])


def test_mask_is_reproducible_zero_one_and_keeps_about_one_minus_p():
    lesson = lesson_of("full")
    mask = lesson.dropout_mask()
    assert np.array_equal(mask, independent_mask(lesson)) and np.array_equal(mask, lesson_of("full").dropout_mask())
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert mask.shape == (lesson.epochs * lesson.data.n_train, lesson.hidden)
    assert abs(mask.mean() - (1 - lesson.dropout)) < 0.03
    trace = train(lesson)  # the engine's given m columns are that mask, row by row
    for j in range(1, lesson.hidden + 1):
        assert np.array_equal(trace.examples[f"m{j}"], mask[:, j - 1])
    # a dropped unit passes nothing forward and gets no gradient
    dropped = mask[:, 0] == 0
    assert (trace.examples["r1"][dropped] == 0).all() and (trace.examples["dz1"][dropped] == 0).all()
    other = kinds.from_raw(_raw(dropout_seed=lesson.dropout_seed + 1), "dropout", "x", {"batch_size": "full", "epochs": 6})
    assert not np.array_equal(other.dropout_mask(), mask)


def _raw(**model):
    with open("templates/dropout.toml", "rb") as fh:
        raw = tomllib.load(fh)
    raw["model"].update(model)
    return raw


@pytest.mark.parametrize("batch", [1, 16, "full"])
def test_p_zero_equals_the_net_without_dropout_exactly(batch):
    lesson = kinds.from_raw(_raw(dropout=0), "dropout", "x", {"batch_size": batch, "epochs": 2})
    assert (lesson.dropout_mask() == 1).all()
    trace = train(lesson)
    for p in lesson.net().plain.params:
        assert np.array_equal(trace.steps[f"new_{p}"], trace.steps[f"new_{p}_0"]), p
    raw = _raw()
    del raw["model"]["dropout"], raw["model"]["dropout_seed"]
    plain = kinds.from_raw(raw, "mlp", "x", {"batch_size": batch, "epochs": 2})
    ref = train(plain)
    for p in plain.net().params:
        assert np.array_equal(ref.steps[f"new_{p}"], trace.steps[f"new_{p}"]), p


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    return build_and_recalc(recalc, tmp_path_factory.mktemp("dropout"), {case: lesson_of(case) for case in CASES})


@pytest.mark.parametrize("case", list(CASES))
def test_libreoffice_recalculation_equals_the_engine_in_every_formula_cell(built, case):
    path, recalculated = built[case]
    assert assert_recalculated_equals_cached(path, recalculated) > 10000
    # the Steps columns of both nets equal an independent engine run's
    assert_steps_equal_engine(path, recalculated, train(lesson_of(case)),
                              ("new_h2_Age_0", "new_h2_Age", "new_v1", "new_c_0", "loss", "loss_0"))


def test_formulas_are_portable_and_show_the_mask_and_its_scaling(built):
    path, _ = built["b16"]
    shapes = {}
    for (sheet, ref), formula in read_formulas(path).items():
        shapes.setdefault((sheet, re.sub(r"\d+", "0", formula)), formula)
    for (sheet, _), formula in shapes.items():
        assert check_portable(formula) == [], (sheet, formula)
    examples = " ".join(f for (s, _), f in shapes.items() if s == "Examples")
    validation = " ".join(f for (s, _), f in shapes.items() if s == "Validation")
    assert "/(1-dropout)" in examples and "/(1-dropout)" not in validation
    assert "dropout" not in validation  # validation runs without dropout


def test_bad_dropout_is_one_line_exit_2(tmp_path):
    for model, needle in (({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout"),
                          ({"dropout": 0.5, "kind": "logistic"}, "hidden layer"),
                          ({"dropout": "half"}, "dropout")):
        raw = _raw(**model)
        text = open("templates/dropout.toml").read()
        for key, value in model.items():
            text = re.sub(rf"^{key} = .*$", f"{key} = {value!r}".replace("'", '"'), text, flags=re.M)
        path = tmp_path / "bad.toml"
        path.write_text(text)
        result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "x.xlsx")])
        assert result.exit_code == 2, (model, result.output)
        assert needle in result.output and len(result.output.strip().splitlines()) == 1, result.output
        with pytest.raises(SheetsgdError):
            kinds.from_raw(raw, "bad", "x", {})


@pytest.mark.parametrize("options", [{"batch_size": "full", "epochs": 3}, {"batch_size": 1, "epochs": 1},
                                     {"batch_size": 16, "epochs": 2}])
def test_size_guard_counts_the_mask_twin_and_epoch_columns(tmp_path, options):
    from sheetsgd.lessons.runbounds import estimate

    lesson = kinds.load("dropout", **options)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "d.xlsx")
    size = estimate(lesson)
    assert report.cells <= size.cells <= 1.1 * report.cells
    assert report.formula_cells <= size.formula_cells <= 1.1 * report.formula_cells
    raw = _raw()
    del raw["model"]["dropout"], raw["model"]["dropout_seed"]
    plain = kinds.from_raw(raw, "mlp", "x", options)
    # beyond the net without dropout: at least the mask and kept-activation columns of every training row
    rows = lesson.epochs * lesson.data.n_train
    assert estimate(lesson).cells - estimate(plain).cells >= 2 * lesson.hidden * rows


def test_too_large_a_dropout_run_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["build", "dropout", "--epochs", "5000", "-o", str(tmp_path / "big.xlsx")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "big.xlsx").exists(), result.output


def test_the_lr_finder_refuses_dropout_in_one_line(tmp_path):
    text = open("templates/lr-finder-titanic.toml").read().replace("[model]\n", "[model]\ndropout = 0.5\n", 1)
    text = text.replace('kind = "logistic"', 'kind = "mlp"')  # a net with hidden units: the finder's own refusal
    path = tmp_path / "finder.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "f.xlsx")])
    assert result.exit_code == 2 and "lr finder does not train with dropout" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("batch", [1, 16])
def test_student_version_per_example_and_mini_batch_names_each_mistake_at_its_step(tmp_path, batch):
    """The checker's own evaluation (test_every_lesson_checks does full batch through LibreOffice): a correct
    fill is clean; each catalogued dropout mistake is the one root cause, at the first step it shows."""
    from sheetsgd.check.checker import check
    from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
    from sheetsgd.write.lesson_file import build_student

    lesson = kinds.load("dropout", batch_size=batch, epochs=1)
    student = tmp_path / "student.xlsx"
    build_student(kinds.kind_of(lesson), lesson, student, "")
    trace = train(lesson)
    rows = trace.steps if batch == 1 else trace.examples
    step_of = (np.arange(1, lesson.n_steps + 1) if batch == 1
               else np.repeat(np.arange(1, lesson.n_steps + 1), [len(b) for b in trace.batches]))
    # a dropped unit with a positive score: where a gradient without the mask differs
    dz2_step = int(step_of[np.flatnonzero((rows["m2"] == 0) & (rows["z2"] > 0))[0]])
    r1_step = int(step_of[np.flatnonzero(rows["r1"] != 0)[0]])  # a kept unit with a positive activation
    where = "Steps" if batch == 1 else "Examples"
    expected = {None: None, ("dropout_mask_missing_backward", "dz2"): (where, dz2_step),
                ("dropout_scale_missing", "r1"): (where, r1_step),
                ("dropout_in_validation", "Validation:out"): ("Validation", lesson.n_steps)}
    for flaw, at in expected.items():
        out = tmp_path / f"{flaw[0] if flaw else 'correct'}.xlsx"
        fill_xml_sheets(str(student), str(out), fill_sheets(str(student), Flaw(*flaw) if flaw else None))
        report = check(str(out))
        if flaw is None:
            assert report.exit_code == 0 and report.status == "correct", report.to_text()[:2000]
            continue
        assert report.exit_code == 1, report.to_text()[:2000]
        found = [(m["block"], m["column"], m["mistake"], m["step"]) for m in report.mistakes]
        assert found == [(at[0], flaw[1].rpartition(":")[2], flaw[0], at[1])], found
