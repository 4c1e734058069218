"""The optimizers lessons: every optimizer sheet and the Compare sheet, recalculated in LibreOffice."""
from __future__ import annotations

import json
import math

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.lessons.compare import SHEET_NAMES, train_compare
from sheetsgd.lessons.sgd.engine import make_batches
from sheetsgd.errors import SheetsgdError

from conftest import assert_compare_sheets_equal_engine, assert_recalculated_equals_cached, cell_values, read_manifest




@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    out = tmp_path_factory.mktemp("compare")
    lessons = {"optimizers": kinds.load("optimizers", epochs=2),
               "optimizers-classic": kinds.load("optimizers-classic", epochs=2),
               "optimizers-b5-shuffled": kinds.load("optimizers", epochs=2, batch_size=5, shuffle=True)}
    paths = {}
    for key, lesson in lessons.items():
        paths[key] = out / f"{key}.xlsx"
        kinds.kind_of(lesson).build(lesson, paths[key])
    return {k: (lessons[k], paths[k], r) for k, r in zip(paths, recalc(list(paths.values())))}


@pytest.mark.parametrize("key", ["optimizers", "optimizers-classic", "optimizers-b5-shuffled"])
def test_every_optimizer_sheet_equals_its_engine_run(built, key):
    lesson, path, recalculated = built[key]
    m = read_manifest(path)
    values = cell_values(recalculated)
    trace = train_compare(lesson)  # independent engine runs (for the Compare sheet below)
    assert set(m["sheets"]) == {"sgd", "momentum", "rmsprop", "adam"}
    assert_compare_sheets_equal_engine(lesson, recalculated, m)
    # Compare sheet and every other formula cell: LibreOffice's value equals the cached engine value
    assert_recalculated_equals_cached(path, recalculated)
    compare = values["Compare"]
    for j, name in enumerate(lesson.lessons()):
        col = "CDEF"[j]
        assert [compare[f"{col}{i + 2}"] for i in range(trace.n_steps)] == pytest.approx(
            trace.traces[name].steps["loss"].tolist(), rel=1e-9)


def test_classic_formulas_are_the_graddesc_ones(built):
    lesson, path, _ = built["optimizers-classic"]
    m = read_manifest(path)
    ws = openpyxl.load_workbook(path)
    first = {n: m["sheets"][n]["first_step_row"] + 1 for n in m["sheets"]}
    col = {n: m["sheets"][n]["columns"] for n in m["sheets"]}
    rms = ws[SHEET_NAMES["rmsprop"]][f"{col['rmsprop']['new_a']['column']}{first['rmsprop']}"].value
    assert f"SQRT({col['rmsprop']['v_a']['column']}{first['rmsprop'] - 1})" in rms and "eps" not in rms
    adam = ws[SHEET_NAMES["adam"]][f"{col['adam']['new_a']['column']}{first['adam']}"].value
    assert "eps" not in adam and "mhat_a" not in col["adam"]
    mom = ws[SHEET_NAMES["momentum"]][f"{col['momentum']['buf_a']['column']}{first['momentum']}"].value
    assert "(1-momentum_momentum)" in mom


def test_classic_updates_by_hand():
    """The classic rules written out: m = β·m + (1−β)·g; RMSProp ÷ √(previous v); Adam m/√v."""
    lesson = kinds.load("optimizers-classic", epochs=1)
    trace = train_compare(lesson)
    les = lesson.lessons()
    data = les["sgd"].data
    for name in ("momentum", "rmsprop", "adam"):
        hp = les[name].hyper
        a, b = les[name].init["a"], les[name].init["b"]
        m = {"a": 0.0, "b": 0.0}
        v = {"a": hp.get("v0", 0.0) if name == "rmsprop" else 0.0, "b": hp.get("v0", 0.0) if name == "rmsprop" else 0.0}
        for i, (_, idx) in enumerate(make_batches(les[name])):
            x, y = data.x[idx[0]], data.y[idx[0]]
            g = {"a": 2 * (a * x + b - y) * x, "b": 2 * (a * x + b - y)}
            new = {}
            for p, val in (("a", a), ("b", b)):
                if name == "momentum":
                    m[p] = hp["momentum"] * m[p] + (1 - hp["momentum"]) * g[p]
                    new[p] = val - hp["lr"] * m[p]
                elif name == "rmsprop":
                    prev_v = v[p]
                    v[p] = hp["alpha"] * v[p] + (1 - hp["alpha"]) * g[p] ** 2
                    new[p] = val - hp["lr"] * g[p] / math.sqrt(prev_v)
                else:
                    m[p] = hp["beta1"] * m[p] + (1 - hp["beta1"]) * g[p]
                    v[p] = hp["beta2"] * v[p] + (1 - hp["beta2"]) * g[p] ** 2
                    new[p] = val - hp["lr"] * m[p] / math.sqrt(v[p])
            a, b = new["a"], new["b"]
            assert trace.traces[name].steps["new_a"][i] == pytest.approx(a, rel=1e-12), (name, i)
            assert trace.traces[name].steps["new_b"][i] == pytest.approx(b, rel=1e-12), (name, i)


def test_cli_on_comparison_lessons(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["trace", "optimizers", "--epochs", "1", "--format", "json"])
    data = json.loads(result.output)
    assert len(data["steps"]) == 29 and "adam.new_a" in data["steps"][0]
    assert set(data["optimizers"]) == {"sgd", "momentum", "rmsprop", "adam"}
    bad = runner.invoke(cli, ["build", "optimizers", "--lr", "0.1", "-o", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2 and "does not apply to a comparison lesson" in bad.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_classic_rmsprop_needs_a_positive_start(tmp_path):
    _, _, source = kinds.read_template("optimizers-classic")
    text = open(source, encoding="utf-8").read().replace("v0 = 10000", "v0 = 0")
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(SheetsgdError, match="v0 must be > 0"):
        kinds.load(str(path))
