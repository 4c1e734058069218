"""The convolution lesson: generated images of bars, PyTorch's F.conv2d + autograd take the same SGD steps
(float64, same data, same start), the sheet computes what the engine computes in every formula cell
(LibreOffice), the network learns (loss falls, accuracy rises, on images it never saw too), and the
size guard refuses a lesson too large for Google Sheets before training."""
from __future__ import annotations

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError
from conftest import assert_recalculated_equals_cached, close


def test_images_are_bars_as_documented():
    lesson = kinds.load("conv")
    data = lesson.data
    assert data.x.shape == (16, 6, 6) and list(data.y[:4]) == [0, 1, 0, 1]
    for img, y in zip(data.x, data.y):
        bright = img > 0.5  # the bar (intensity ≥ 0.7, noise σ 0.1): one row (horizontal) or one column
        rows, cols = np.nonzero(bright)
        assert (len(set(rows)) == 1) if y == 0 else (len(set(cols)) == 1), img
        assert bright.sum() >= 2
    np.testing.assert_array_equal(kinds.load("conv").data.x, data.x)  # seeded
    assert np.all(np.round(data.x, 2) == data.x)  # two decimals: what the sheet shows is what it uses


def _reference_loop(lesson):
    """The forward and backward pass written out as loops over windows (independent of the engine's einsum)."""
    data, p = lesson.data, {k: v.copy() for k, v in lesson.init().items()}
    m, out = lesson.map_size, []
    for img in lesson.order:
        x, y = data.x[img], data.y[img]
        z = np.zeros((lesson.filters, m, m))
        for k in range(lesson.filters):
            for i in range(m):
                for j in range(m):
                    z[k, i, j] = sum(x[i + u, j + v] * p["f"][k, u, v] for u in range(3) for v in range(3)) + p["c"][k]
        a = np.maximum(z, 0)
        prob = 1 / (1 + np.exp(-((p["w"] * a).sum() + p["b"][0])))
        dz = (prob - y) * p["w"] * (z > 0)
        gf = np.zeros_like(p["f"])
        for k in range(lesson.filters):
            for u in range(3):
                for v in range(3):
                    gf[k, u, v] = sum(dz[k, i, j] * x[i + u, j + v] for i in range(m) for j in range(m))
        g = {"f": gf, "c": dz.sum(axis=(1, 2)), "w": (prob - y) * a, "b": np.array([prob - y])}
        p = {k: p[k] - lesson.lr * g[k] for k in p}
        out.append(p)
    return out


def test_engine_equals_a_written_out_loop():
    lesson = kinds.load("conv", epochs=2)
    trace = kinds.kind_of(lesson).train(lesson)
    for s, ref in enumerate(_reference_loop(lesson)):
        for k in ref:
            np.testing.assert_allclose(trace.new[s][k], ref[k], rtol=1e-10, atol=1e-13)


def test_pytorch_conv2d_and_autograd_take_the_same_steps():
    """F.conv2d (cross-correlation, valid), ReLU, a linear layer, sigmoid, binary cross-entropy, autograd,
    p ← p − lr·grad: from the same start on the same images, the same loss, gradients and parameters at
    every step (float64)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    lesson = kinds.load("conv")
    trace = kinds.kind_of(lesson).train(lesson)
    init = lesson.init()
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
    data = lesson.data
    for step, img in enumerate(lesson.order):
        for k in params:
            np.testing.assert_allclose(params[k].detach().numpy(), trace.params[step][k], rtol=1e-9, atol=1e-12)
        x = torch.tensor(data.x[img], dtype=torch.float64)[None, None]
        z = F.conv2d(x, params["f"][:, None], params["c"])[0]
        a = torch.relu(z)
        s = (params["w"] * a).sum() + params["b"][0]
        p = torch.sigmoid(s)
        loss = F.binary_cross_entropy(p, torch.tensor(float(data.y[img]), dtype=torch.float64))
        assert close(trace.loss[step], loss.item()) and close(trace.p[step], p.item())
        np.testing.assert_allclose(z.detach().numpy(), trace.z[step], rtol=1e-9, atol=1e-12)
        for t in params.values():
            t.grad = None
        loss.backward()
        with torch.no_grad():
            for k, t in params.items():
                np.testing.assert_allclose(t.grad.numpy(), trace.grads[step][k], rtol=1e-9, atol=1e-12)
                t -= lesson.lr * t.grad
    for k, t in params.items():
        np.testing.assert_allclose(t.detach().numpy(), trace.final[k], rtol=1e-9, atol=1e-12)


def test_the_network_learns_and_generalises():
    lesson = kinds.load("conv")
    trace = kinds.kind_of(lesson).train(lesson)
    loss, acc = trace.epoch_means(lesson.train_images)
    assert loss[-1] < 0.3 * loss[0], loss
    assert acc[-1] == 1.0 and acc[0] <= 0.75, acc
    assert trace.test_accuracy >= 0.75 > trace.test_accuracy_start, (trace.test_accuracy, trace.test_accuracy_start)
    print(f"mean loss per epoch {np.round(loss, 3)}; accuracy {np.round(acc, 2)}; "
          f"test {trace.test_accuracy_start:.3f} → {trace.test_accuracy:.3f}")


def test_size_guard_refuses_before_training(monkeypatch):
    from sheetsgd.lessons.conv import engine

    monkeypatch.setattr(engine, "train_conv", lambda lesson: pytest.fail("trained before the guard"))
    lesson = kinds.load("conv", epochs=4000)  # 64,000 rows × 300 columns: past Google Sheets' 10 M cells
    with pytest.raises(SheetsgdError, match="10,000,000|cells"):
        kinds.kind_of(lesson).build(lesson, None)
    result = CliRunner().invoke(cli, ["build", "conv", "--epochs", "4000", "-o", "/dev/null/x.xlsx"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "epochs" in result.output


def test_size_estimate_matches_the_workbook(tmp_path):
    from sheetsgd.lessons.runbounds import estimate

    lesson = kinds.load("conv", epochs=2)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "c.xlsx")
    size = estimate(lesson)
    assert report.cells <= size.cells <= 1.2 * report.cells + 500, (report.cells, size.cells)


def test_the_introduction_explains_every_group_of_steps_columns(tmp_path):
    """One legend line per group of Steps columns (x[1,1] … x[6,6], z1[1,1] … z2[4,4] …): each header of
    the sheet is in a group whose first and last headers start a line of the Introduction."""
    lesson = kinds.load("conv", epochs=1)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "c.xlsx")
    lines = [str(c.value) for row in openpyxl.load_workbook(tmp_path / "c.xlsx", read_only=True)["Introduction"].iter_rows()
             for c in row if c.value]
    steps = next(b for b in report.blocks if b.name == "Steps")
    legend = [line for line in lines if ": " in line]
    for c in steps.columns:
        assert any(line.startswith(c.header + ":") or line.startswith(c.header + " … ") or
                   (" … " in line and _within(c.header, line.split(": ")[0])) for line in legend), c.header


def _within(header: str, span: str) -> bool:
    """Whether a header such as z1[2,3] lies in a span such as "z1[1,1] … z2[4,4]" (same name, by position)."""
    import re

    first, last = span.split(" … ")
    name = lambda h: re.sub(r"[0-9,\[\]]", "", h)  # noqa: E731
    return name(header) == name(first) == name(last)


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory, recalc):
    root = tmp_path_factory.mktemp("conv")
    paths = []
    for name, options in (("bundled", {}), ("one-filter", {"epochs": 2})):
        lesson = kinds.load("conv", **options)
        if name == "one-filter":
            from dataclasses import replace
            lesson = replace(lesson, filters=1, size=7)
        kinds.kind_of(lesson).build(lesson, root / f"{name}.xlsx")
        paths.append(root / f"{name}.xlsx")
    return dict(zip(("bundled", "one-filter"), zip(paths, recalc(paths))))


@pytest.mark.libreoffice
@pytest.mark.parametrize("which", ["bundled", "one-filter"])
def test_libreoffice_computes_every_formula_cell_as_the_engine(recalculated, which):
    built, saved = recalculated[which]
    checked = assert_recalculated_equals_cached(built, saved)  # every formula cell, every sheet
    assert checked > (50_000 if which == "bundled" else 3_000)


def pooled(tmp_path) -> str:
    """The bundled template with 2×2 max-pooling, as a file."""
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    text = bundled_lessons()["conv"].read_text(encoding="utf-8").replace("pool = false", "pool = true")
    path = tmp_path / "conv-pooled.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_pytorch_max_pool2d_takes_the_same_steps_as_the_pooled_engine(tmp_path):
    """With [model] pool = true: F.conv2d, ReLU, F.max_pool2d(2) (its gradient routed to each window's
    maximum), the dense layer on the pooled maps; the same loss and parameters at every step (float64)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    lesson = kinds.load(pooled(tmp_path))
    assert lesson.pool and lesson.dense_size == 2
    trace = kinds.kind_of(lesson).train(lesson)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in lesson.init().items()}
    for step, img in enumerate(lesson.order):
        x = torch.tensor(lesson.data.x[img], dtype=torch.float64)[None, None]
        a = torch.relu(F.conv2d(x, params["f"][:, None], params["c"]))
        m = F.max_pool2d(a, 2)[0]
        p = torch.sigmoid((params["w"] * m).sum() + params["b"][0])
        loss = F.binary_cross_entropy(p, torch.tensor(float(lesson.data.y[img]), dtype=torch.float64))
        assert close(trace.loss[step], loss.item())
        np.testing.assert_allclose(m.detach().numpy(), trace.pooled[step], rtol=1e-9, atol=1e-12)
        for t in params.values():
            t.grad = None
        loss.backward()
        with torch.no_grad():
            for k, t in params.items():
                np.testing.assert_allclose(t.grad.numpy(), trace.grads[step][k], rtol=1e-9, atol=1e-12)
                t -= lesson.lr * t.grad
    for k, t in params.items():
        np.testing.assert_allclose(t.detach().numpy(), trace.final[k], rtol=1e-9, atol=1e-12)


def test_pooling_needs_an_even_feature_map(tmp_path):
    path = pooled(tmp_path)
    text = open(path, encoding="utf-8").read().replace("size = 6 ", "size = 7 ")
    odd = tmp_path / "odd.toml"
    odd.write_text(text, encoding="utf-8")
    with pytest.raises(SheetsgdError, match="even"):
        kinds.load(str(odd))


@pytest.mark.libreoffice
def test_pooled_sheet_equals_the_engine_and_a_spread_pooling_gradient_is_named(tmp_path, recalc):
    """The pooled lesson: LibreOffice computes every formula cell as the engine; its student version filled
    in checks clean, and with ∂L/∂z given to the whole 2×2 window the check names pooling_gradient_spread
    at that column, step 1."""
    from sheetsgd.check.checker import check
    from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
    from sheetsgd.write.lesson_file import build_student

    lesson = kinds.load(pooled(tmp_path), epochs=1)
    kind = kinds.kind_of(lesson)
    (tmp_path / "in").mkdir()
    kind.build(lesson, tmp_path / "in" / "full.xlsx")
    student = tmp_path / "student.xlsx"
    build_student(kind, lesson, student, "")
    fill_xml_sheets(str(student), str(tmp_path / "in" / "right.xlsx"), fill_sheets(str(student)))
    fill_xml_sheets(str(student), str(tmp_path / "in" / "spread.xlsx"),
                    fill_sheets(str(student), Flaw("pooling_gradient_spread", "dz1_1_1")))
    full, right, spread = recalc(recalc([tmp_path / "in" / n for n in ("full.xlsx", "right.xlsx", "spread.xlsx")]))
    formulas = openpyxl.load_workbook(tmp_path / "in" / "full.xlsx", read_only=True)
    cached = openpyxl.load_workbook(tmp_path / "in" / "full.xlsx", read_only=True, data_only=True)
    again = openpyxl.load_workbook(full, read_only=True, data_only=True)
    checked = 0
    for ws in formulas.worksheets:
        if ws.title == "_sheetsgd":
            continue
        mine = {c.coordinate: c.value for row in cached[ws.title].iter_rows() for c in row if c.value is not None}
        theirs = {c.coordinate: c.value for row in again[ws.title].iter_rows() for c in row if c.value is not None}
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    assert close(float(mine[c.coordinate]), float(theirs[c.coordinate])), (ws.title, c.coordinate)
                    checked += 1
    assert checked > 3_000
    assert check(str(full)).status == "correct"
    report = check(str(right))
    assert report.status == "correct" and report.exit_code == 0, report.to_text()[:2000]
    report = check(str(spread))
    assert report.exit_code == 1
    assert [(m["column"], m["mistake"], m["step"]) for m in report.mistakes] == [("dz1_1_1", "pooling_gradient_spread", 1)]
