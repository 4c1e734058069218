"""The attention lesson: seeded sequences whose target is found by content, PyTorch autograd takes the same
steps (float64), the sheet computes what the engine computes (LibreOffice), the head learns to attend to the
key token."""
from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from conftest import assert_recalculated_equals_cached, close


def test_sequences_are_generated_as_the_template_says():
    lesson = kinds.load("attention")
    data = lesson.data
    n, T = lesson.examples, lesson.length
    assert data.x.shape == (n, T, 3)
    assert (data.x[:, :, 0] == 1).all() and (data.x[:, :, 1].sum(axis=1) == 1).all()  # one marked token each
    for i in range(n):  # the target is the value the marked token carries, wherever it stands
        (j,) = np.flatnonzero(data.x[i, :, 1])
        assert data.y[i] == data.x[i, j, 2] and data.key[i] == j
    assert len(set(data.key.tolist())) > 1  # the marked position varies: position alone cannot answer
    again = kinds.load("attention").data  # seeded
    np.testing.assert_array_equal(again.x, data.x)


def test_pytorch_autograd_takes_the_same_steps():
    """Attention written with torch ops (float64), autograd for the gradients, torch.optim.SGD: from the same
    start and on the same batches, the same weights, loss and gradients at every step."""
    torch = pytest.importorskip("torch")
    lesson = kinds.load("attention", epochs=10)
    trace = kinds.kind_of(lesson).train(lesson)
    init = lesson.init()
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
    opt = torch.optim.SGD(list(w.values()), lr=lesson.lr)
    data = lesson.data
    d = lesson.d
    for step in range(1, lesson.steps + 1):
        for k in w:
            np.testing.assert_allclose(w[k].detach().numpy(), trace.params[step - 1][k], rtol=1e-9, atol=1e-12)
        idx = lesson.batch(step)
        x = torch.tensor(data.x[idx], dtype=torch.float64)
        y = torch.tensor(data.y[idx], dtype=torch.float64)
        q, k, v = x @ w["wq"], x @ w["wk"], x @ w["wv"]
        scores = q @ k.transpose(1, 2) / math.sqrt(d)
        a = torch.softmax(scores, dim=-1)  # over the keys: each query's row sums to 1
        pred = (a @ v).mean(dim=1) @ w["wo"] + w["b"]
        loss = ((pred - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        assert close(trace.loss[step - 1], loss.item())
        np.testing.assert_allclose(a.detach().numpy(), trace.rows[step - 1]["a"], rtol=1e-9, atol=1e-12)
        for name in w:
            np.testing.assert_allclose(w[name].grad.numpy(), trace.grads[step - 1][name], rtol=1e-9, atol=1e-12)
        opt.step()
    for k in w:
        np.testing.assert_allclose(w[k].detach().numpy(), trace.final[k], rtol=1e-9, atol=1e-12)


def _written_out(p, x):
    """ŷ and the attention matrix of one sequence, loop by loop (no matrix code shared with the engine)."""
    T, d = len(x), p["wq"].shape[1]
    proj = {w: [[sum(x[t][f] * p[w][f][k] for f in range(3)) for k in range(d)] for t in range(T)]
            for w in ("wq", "wk", "wv")}
    att = []
    for i in range(T):
        scores = [sum(proj["wq"][i][k] * proj["wk"][j][k] for k in range(d)) / math.sqrt(d) for j in range(T)]
        exps = [math.exp(s - max(scores)) for s in scores]
        att.append([e / sum(exps) for e in exps])
    h = [sum(att[i][j] * proj["wv"][j][k] for i in range(T) for j in range(T)) / T for k in range(d)]
    return sum(h[k] * p["wo"][k] for k in range(d)) + p["b"][0], att


def test_the_head_learns_to_attend_to_the_key_token():
    lesson = kinds.load("attention")
    trace = kinds.kind_of(lesson).train(lesson)
    test = lesson.test
    measured = {}
    for when, p in (("start", lesson.init()), ("end", trace.final)):
        preds, focus = [], []
        for x, key in zip(test.x, test.key):
            pred, att = _written_out(p, x)
            preds.append(pred)
            focus.append(sum(row[key] for row in att) / len(att))
        err = np.array(preds) - test.y
        measured[when] = {"mse": float((err ** 2).mean()), "within": float((np.abs(err) < 0.1).mean()),
                          "focus": float(np.mean(focus))}
        engine = trace.evaluate(lesson, p)
        assert close(engine["mse"], measured[when]["mse"]) and close(engine["focus"], measured[when]["focus"])
        assert engine["within_0.1"] == measured[when]["within"]
    start, end = measured["start"], measured["end"]
    baseline = float(((test.y - test.y.mean()) ** 2).mean())
    assert trace.loss[-4:].mean() < 0.01 * trace.loss[:4].mean()
    assert end["mse"] < 0.05 * baseline and end["within"] > 0.8
    assert start["focus"] < 0.35 and end["focus"] > 0.8  # from about 1/T to most of the attention
    print(f"batch loss {trace.loss[:4].mean():.4f} (first epoch) -> {trace.loss[-4:].mean():.4f} (last); test MSE "
          f"{start['mse']:.4f} -> {end['mse']:.4f} (the mean: {baseline:.4f}); within 0.1: {start['within']:.3f} -> "
          f"{end['within']:.3f}; attention on the key token {start['focus']:.3f} -> {end['focus']:.3f}")


def three_tokens_d3(tmp_path):
    """A variant of the bundled template: sequences of 5 tokens, a head of size 3, batches of 2."""
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    text = bundled_lessons()["attention"].read_text(encoding="utf-8")
    text = text.replace("length = 4", "length = 5").replace("d = 2 ", "d = 3 ").replace("batch_size = 4", "batch_size = 2")
    path = tmp_path / "attention-5x3.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory, recalc):
    """The bundled lesson and a 5-token, d = 3 variant, built and recalculated by LibreOffice."""
    root = tmp_path_factory.mktemp("attention")
    paths = []
    for name, source, options in (("bundled", "attention", {}), ("wider", three_tokens_d3(root), {"epochs": 3})):
        lesson = kinds.load(source, **options)
        kinds.kind_of(lesson).build(lesson, root / f"{name}.xlsx")
        paths.append(root / f"{name}.xlsx")
    return dict(zip(("bundled", "wider"), zip(paths, recalc(paths))))


@pytest.mark.libreoffice
@pytest.mark.parametrize("which", ["bundled", "wider"])
def test_libreoffice_computes_every_formula_cell_as_the_engine(recalculated, which):
    built, saved = recalculated[which]
    checked = assert_recalculated_equals_cached(built, saved)  # every formula cell, every sheet
    assert checked > (160_000 if which == "bundled" else 5_000), checked


def test_lessons_lists_attention_and_the_size_guard_refuses_before_training(tmp_path, monkeypatch):
    runner = CliRunner()
    listed = runner.invoke(cli, ["lessons"])
    assert listed.exit_code == 0 and "attention" in [line.split()[0] for line in listed.output.splitlines() if line]
    # the estimate is the workbook's cells
    from sheetsgd.lessons.runbounds import estimate
    lesson = kinds.load("attention", epochs=3)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "small.xlsx")
    assert abs(estimate(lesson).cells - report.cells) < 0.02 * report.cells, (estimate(lesson).cells, report.cells)
    # past Google Sheets' 10 M cells: refused in one line, exit 2, nothing trained or written
    import dataclasses
    from sheetsgd.lessons.attention import workbook

    def fail(*args, **kwargs):
        pytest.fail("trained before the size guard")
    monkeypatch.setattr(workbook, "train_attention", fail)
    monkeypatch.setitem(kinds.KINDS, "attention", dataclasses.replace(kinds.KINDS["attention"], train=fail))
    out = tmp_path / "huge.xlsx"
    result = runner.invoke(cli, ["build", "attention", "--epochs", "20000", "-o", str(out)])
    assert result.exit_code == 2 and "use fewer epochs" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_options_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["build", "attention", "--batch-size", "3", "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and "batch_size 3 must divide the 16 examples" in result.output, result.output
    text = kinds.read_template("attention")[0]
    assert text["sequences"]["length"] == 4
    bad = tmp_path / "bad.toml"
    bad.write_text('[lesson]\nkind = "attention"\n[model]\nd = 0\n', encoding="utf-8")
    result = runner.invoke(cli, ["build", str(bad), "-o", str(tmp_path / "y.xlsx")])
    assert result.exit_code == 2 and "[model]" in result.output and "Traceback" not in result.output, result.output
