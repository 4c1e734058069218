"""One optimizer loop for every kind: Titanic lessons honour an optimizer's start state (classic RMSProp's v0)."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd.engine import make_batches
from sheetsgd.lessons.tabular.engine import train
from sheetsgd.lessons.tabular.lesson import parse_titanic_lesson
from sheetsgd.lessons.tabular.nets import evaluate
from sheetsgd.lessons.tabular.workbook import build_titanic_workbook

from conftest import cell_values, close, read_manifest

PACKAGE = Path(__file__).resolve().parents[1] / "sheetsgd"
V0, ALPHA, LR = 10.0, 0.9, 0.05


def classic_rmsprop_lesson(batch=32, epochs=2):
    raw = {
        "data": {"dataset": "titanic", "preset": "from-scratch", "rows": 80, "valid_fraction": 0.25, "split_seed": 42},
        "model": {"kind": "logistic", "loss": "bce", "init": {"random": "uniform", "seed": 5}},
        "optimizer": {"name": "rmsprop", "rmsprop": {"lr": LR, "alpha": ALPHA, "classic": 1, "v0": V0}},
        "training": {"batch_size": batch, "epochs": epochs, "best_fit_steps": 50},
    }
    return parse_titanic_lesson(raw, "titanic-classic-rmsprop", "test.toml")


def written_out(lesson):
    """fast.ai's graddesc RMSProp, one plain loop: v starts at v0, p ← p − lr·g/√v_prev, v ← α·v + (1 − α)·g²."""
    net, loss = lesson.net(), lesson.loss_cls()
    theta = lesson.init.copy()
    v = np.full(len(theta), V0)
    out = []
    for _, idx in make_batches(lesson):
        x, y = lesson.data.X[idx], lesson.data.y[idx]
        q = evaluate(net, loss, theta, x, y, lesson.clip_eps)
        g = net.gradients(theta, q, q, x)
        theta = theta - LR * g / np.sqrt(v)
        v = ALPHA * v + (1 - ALPHA) * g * g
        out.append(theta.copy())
    return np.array(out)


@pytest.mark.parametrize("batch", [1, 32])
def test_titanic_classic_rmsprop_trains_as_a_written_out_loop(batch):
    lesson = classic_rmsprop_lesson(batch)
    trace = train(lesson)
    expected = written_out(lesson)
    for i, p in enumerate(lesson.net().params):
        new = trace.steps[f"new_{p}"]
        assert np.all(np.isfinite(new)), p
        np.testing.assert_allclose(new, expected[:, i], rtol=1e-12, atol=1e-15)
    # the first step divides by √v0, not by √0
    v_first = trace.steps[f"v_{lesson.net().params[0]}"][0]
    assert math.isfinite(v_first) and v_first >= ALPHA * V0


def test_titanic_classic_rmsprop_builds_with_v0_in_the_start_row(tmp_path):
    lesson = classic_rmsprop_lesson(32)
    path = tmp_path / "classic.xlsx"
    report = build_titanic_workbook(lesson, path)
    assert report.steps == lesson.n_steps
    m = read_manifest(path)
    start = m["first_step_row"] - 1  # 1-based row of the start row
    wb = openpyxl.load_workbook(path)
    ws = wb["Steps"]
    for p in lesson.net().params:
        column = m["columns"][f"v_{p}"]["column"]
        assert ws[f"{column}{start}"].value == V0
        assert ws[f"{column}{start}"].fill.fgColor.rgb.endswith("FFF2CC")  # a yellow input, as on data lessons


@pytest.mark.libreoffice
def test_titanic_classic_rmsprop_sheet_recalculates_to_the_engine(tmp_path, recalc):
    lesson = classic_rmsprop_lesson(32)
    path = tmp_path / "classic.xlsx"
    build_titanic_workbook(lesson, path)
    (fresh,) = recalc([path])
    values, cached = cell_values(fresh), cell_values(path)
    m = read_manifest(path)
    trace = train(lesson)
    first = m["first_step_row"]
    for key in [f"new_{p}" for p in lesson.net().params] + [f"v_{p}" for p in lesson.net().params]:
        column = m["columns"][key]["column"]
        for i, expected in enumerate(trace.steps[key]):
            found = values["Steps"][f"{column}{first + i}"]
            assert isinstance(found, float) and close(expected, found), (key, i, expected, found)
            assert close(cached["Steps"][f"{column}{first + i}"], found)


def test_classic_rmsprop_on_the_bundled_titanic_lesson_builds(tmp_path):
    lesson = kinds.load("titanic-logistic", optimizer="rmsprop", epochs=1)
    from sheetsgd.lessons.sgd.lesson import with_optimizer

    lesson = with_optimizer(lesson, "rmsprop", lr=0.02, alpha=0.9, classic=1.0, v0=1.0)
    trace = kinds.kind_of(lesson).train(lesson)
    assert all(np.all(np.isfinite(v)) for v in trace.steps.values())
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "t.xlsx")
    assert report.steps == lesson.n_steps


def test_only_the_shared_loop_applies_an_optimizer():
    """opt.update is called in sheetsgd/lessons/sgd/engine.py only: Titanic and the lr finders use engine.run_steps."""
    callers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "opt"):
                callers.append(path.relative_to(PACKAGE).as_posix())
    assert set(callers) == {"lessons/sgd/engine.py"}
