"""The Python API (sheetsgd.api): every bundled lesson loads, trains, gives its sheets as DataFrames
with the trace's numbers, builds and checks; progress on stderr only on a terminal and without --quiet."""
from __future__ import annotations

import io
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sheetsgd
from sheetsgd import api
from sheetsgd.lessons import kinds
from sheetsgd.runtime import progress
from sheetsgd.check.checker import Report
from sheetsgd.cli.commands import cli
from sheetsgd.errors import SheetsgdError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = {"lr-finder": 30, "lr-finder-titanic": 12}  # rows of a finder (its --epochs); every other lesson: 1 epoch


def small(name: str) -> api.Lesson:
    return api.load(name, epochs=SMALL.get(name, 1))


def same(df: pd.DataFrame, arrays: dict, keys=None):
    """Every column ``keys`` (default: all of ``arrays``) of ``df`` holds exactly the trace's numbers."""
    for key in keys or arrays:
        np.testing.assert_array_equal(df[key].to_numpy(dtype=float), np.asarray(arrays[key], dtype=float),
                                      err_msg=key)


def titanic_frames_match(lesson, trace, frames):
    same(frames["Steps"], trace.steps)
    same(frames["Epochs"], trace.epochs)
    if lesson.batch_size > 1:
        same(frames["Examples"], trace.examples)
        sizes = [len(b) for b in trace.batches]
        assert frames["Examples"]["step"].tolist() == np.repeat(np.arange(1, trace.n_steps + 1), sizes).tolist()
    else:
        assert "Examples" not in frames
    if trace.validation:
        same(frames["Validation"], {k: np.concatenate([v[k] for v in trace.validation]) for k in trace.validation[0]})
    solver = frames["Solver"].set_index("weights")
    params = lesson.net().params
    assert solver.loc["sgd", list(params)].tolist() == trace.final.tolist()
    assert solver.loc["solver", list(params)].tolist() == lesson.init.tolist()
    assert len(frames["Data"]) == len(lesson.data.y)


def frames_match(les: api.Lesson, run: api.Run):
    """Each kind's DataFrames against its own trace class."""
    spec, trace, frames = les.spec, run.trace, run.frames()
    assert list(frames) == run.sheets and all(isinstance(df, pd.DataFrame) for df in frames.values())
    if les.kind == "sgd":
        same(frames["Steps"], trace.steps)
        same(frames["Epochs"], trace.epochs)
        fitted = spec.model_cls().predict(trace.final, spec.data.x)
        same(frames["Data"], {"x": spec.data.x, "y": spec.data.y, "fitted": fitted})
    elif les.kind == "function":
        assert list(frames) == ["Runs"]
        same(frames["Runs"], trace.steps)
    elif les.kind == "optimizers":
        for name, t in trace.traces.items():
            same(frames[spec.sheet_names()[name]], t.steps)
            same(frames["Compare"], {f"{name}.loss": t.steps["loss"]})
            same(frames["Epochs"], {f"{name}.full_loss": t.epochs["full_loss"]})
    elif les.kind == "lr-finder":
        same(frames["Finder"], trace.steps)
        chart = frames["Chart"].iloc[0]
        assert chart["n_recorded"] == trace.n_recorded
        for key in ("lr_min", "lr_steep"):
            np.testing.assert_equal(chart[key.replace("lr_", "lr_suggest_")], trace.suggestions[key])
        if trace.examples:
            same(frames["Examples"], trace.examples)
    elif les.kind == "tabular":
        titanic_frames_match(spec, trace, frames)
    elif les.kind == "collab":
        same(frames["Loss"], trace.steps)
        users = frames["Users"]
        for s, p in enumerate(trace.params, start=1):
            at = users[users["step"] == s]
            np.testing.assert_array_equal(at[[f"f{j + 1}" for j in range(spec.factors)]].to_numpy(), p["users"])
            np.testing.assert_array_equal(at["bias"].to_numpy(), p["user_bias"])
        same(frames["Predictions"], {f"pred_m{j + 1}": trace.pred[:, :, j].reshape(-1) for j in range(spec.movies)})
    elif les.kind == "attention":
        same(frames["Steps"], {"loss": trace.loss, "focus": trace.focus})
        steps = frames["Steps"]
        for s, p in enumerate(trace.params):
            np.testing.assert_array_equal(steps.loc[s, [f"wq{f + 1}{k + 1}" for f in range(3) for k in range(spec.d)]]
                                          .to_numpy(dtype=float), p["wq"].reshape(-1))
        a = np.concatenate([r["a"] for r in trace.rows])
        same(frames["Examples"], {f"a{i + 1}_{j + 1}": a[:, i, j] for i in range(spec.length) for j in range(spec.length)})
    elif les.kind == "conv":
        steps = frames["Steps"]
        same(steps, {k: v for k, v in trace.steps.items() if k != "step"})
        for s, p in enumerate(trace.params):
            np.testing.assert_array_equal(steps.loc[s, [f"f1_{u}_{v}" for u in (1, 2, 3) for v in (1, 2, 3)]].to_numpy(
                dtype=float), p["f"][0].ravel())
        same(frames["Loss"], dict(zip(("mean_loss", "accuracy"), trace.epoch_means(spec.train_images))))
    else:  # pragma: no cover - a new kind needs its frames tested here
        raise AssertionError(f"untested kind {les.kind}")
    assert run.n_steps == trace.n_steps and api.finite(run.table()) == api.finite(trace.table())  # NaN ≠ NaN


@pytest.mark.parametrize("name", api.lessons())
def test_every_bundled_lesson_loads_trains_gives_frames_builds_and_checks(name, tmp_path):
    les = small(name)
    assert les.name and les.kind == kinds.shown_kind(kinds.load(name))
    run = les.train()
    frames_match(les, run)
    # the same numbers as training through the kinds registry directly
    direct = kinds.kind_of(les.spec).train(les.spec)
    assert json.dumps(api.finite(direct.table())) == json.dumps(api.finite(run.table()))

    report = les.build(tmp_path / f"{name}.xlsx", progress=False)
    sheets = len(run.trace.traces) if les.kind == "optimizers" else 1  # a step table per optimizer
    assert Path(report.path).stat().st_size == report.bytes > 0 and report.steps == run.n_steps * sheets
    checked = api.check(report.path)
    assert isinstance(checked, Report)
    assert (checked.status, checked.exit_code, checked.mistakes) == ("correct", 0, [])
    assert checked.to_dict()["status"] == "correct"


def test_steps_frame_equals_a_written_out_sgd_loop():
    """linear, plain SGD: the update rule written out here, independently of the engine."""
    les = api.load("linear", optimizer="sgd", lr=1e-4, epochs=2, batch_size=4)
    steps = les.train().frame("Steps")
    x, y = les.spec.data.x, les.spec.data.y
    a, b = les.spec.init["a"], les.spec.init["b"]
    lr, rows = 1e-4, []
    for epoch in (1, 2):
        for start in range(0, len(x), 4):
            xb, yb = x[start:start + 4], y[start:start + 4]
            err = a * xb + b - yb
            loss = float(np.mean(err**2))
            ga, gb = float(np.mean(2 * err * xb)), float(np.mean(2 * err))
            new_a, new_b = a - lr * ga, b - lr * gb
            rows.append((epoch, start + 1, min(start + 4, len(x)), a, b, loss, ga, gb, new_a, new_b))
            a, b = new_a, new_b
    expected = pd.DataFrame(rows, columns=["epoch", "first", "last", "a", "b", "loss", "grad_a", "grad_b",
                                           "new_a", "new_b"])
    assert len(steps) == len(expected) == 16
    assert steps["step"].tolist() == list(range(1, 17))
    pd.testing.assert_frame_equal(steps[expected.columns].reset_index(drop=True), expected,
                                  check_dtype=False, rtol=1e-12, atol=1e-12)


def test_options_apply_as_on_the_command_line(tmp_path):
    les = api.load("quadratic", optimizer="adam", lr=0.05, epochs=4, batch_size=5, shuffle=True, seed=3)
    spec = les.spec
    assert (spec.optimizer, spec.hyper["lr"], spec.epochs, spec.batch_size, spec.shuffle, spec.seed) == (
        "adam", 0.05, 4, 5, True, 3)
    run = les.train()
    assert run.n_steps == 16 and "Batches" in run.frames()
    batches = run.frame("Batches")
    assert sorted(batches[batches["step"] <= 4]["example"]) == list(range(1, 21))  # an epoch visits all
    assert les.with_options(epochs=1).train().n_steps == 4
    full = api.load("quadratic", batch_size="full", epochs=2)
    assert full.spec.batch_size == len(full.spec.data)
    # the template file path works like the name
    assert api.load(full.spec.source, batch_size="full", epochs=2).train().table() == full.train().table()
    assert api.load("titanic-logistic", loss="mse", epochs=1).spec.loss == "mse"


@pytest.mark.parametrize("call, message", [
    (lambda: api.load("no-such-lesson"), "unknown lesson"),
    (lambda: api.load("linear", lr=0), "--lr must be > 0"),
    (lambda: api.load("linear", epochs=0), "--epochs"),
    (lambda: api.load("linear", optimizer="lbfgs"), "unknown optimizer"),
    (lambda: api.load("too-high", batch_size=3), "does not apply"),
    (lambda: api.load("linear").train().frame("Nope"), "no sheet 'Nope'"),
    (lambda: api.load("linear").with_options(colour="red"), "unknown option"),
    (lambda: api.load("linear").build("out.csv"), "must end in .xlsx"),
    (lambda: api.check("x.xlsx", recalc="excel"), "recalc"),
])
def test_library_errors_are_sheetsgd_errors(call, message):
    with pytest.raises(SheetsgdError, match=message):
        call()


def test_check_returns_the_report_object(tmp_path):
    les = api.load("linear", epochs=1)
    student = les.build(tmp_path / "student.xlsx", exercise="grad_a,new_a", progress=False)
    report = api.check(student.path, strict=False)
    assert report.status == "mistakes" and report.exit_code == 1
    correct, total = report.score
    assert correct == 0 and total == 2 * les.spec.n_steps
    assert report.mistakes and report.to_dict()["score"]["total"] == total
    missing = api.check(tmp_path / "missing.xlsx")
    assert missing.status == "error" and missing.exit_code == 2


def test_the_api_is_one_import_away():
    assert sheetsgd.__version__ and api.load and api.check and api.Run


def test_trace_command_prints_the_api_document():
    result = CliRunner().invoke(cli, ["trace", "titanic-logistic", "--epochs", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    expected = api.load("titanic-logistic", epochs=1).train().document()
    assert json.loads(result.output) == json.loads(json.dumps(expected))
    csv_out = CliRunner().invoke(cli, ["trace", "too-high", "--epochs", "3", "--quiet"])
    stream = io.StringIO()
    api.load("too-high", epochs=3).train().write_csv(stream)
    assert csv_out.exit_code == 0 and csv_out.stdout == stream.getvalue()


def test_the_example_script_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["notebook_api.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "notebook_api.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "sheets: Steps, Epochs, Data" in out and "correct score" in out
    assert (tmp_path / "linear-momentum.xlsx").exists() and (tmp_path / "linear-student.xlsx").exists()


# ------------------------------------------------------------------------------------------- progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_a_reporter_on_a_terminal_shows_stage_rows_and_elapsed():
    stream = FakeTTY()
    reporter = progress.Reporter(stream, "sheetsgd x.xlsx", delay=0, interval=0)
    with progress.reporting(reporter):
        progress.stage("training")
        for _ in progress.rows(range(100), "Examples"):
            pass
    out = stream.getvalue()
    assert "sheetsgd x.xlsx: training" in out and "Examples 100/100 rows" in out and " s" in out
    assert out.endswith("\r") and "\n" not in out  # redrawn in place, blanked at the end
    with progress.reporting(reporter):  # a reporter serves one build after another
        progress.stage("saving")
    assert stream.getvalue()[len(out):].startswith("\rsheetsgd x.xlsx: saving")


def test_quiet_reporting_costs_nothing():
    items = range(10)
    assert progress.current() is progress.QUIET
    assert progress.rows(items, "Steps") is items  # no wrapper when nothing is shown
    with progress.reporting(False):
        assert progress.rows(items, "Steps") is items
    assert progress.reporter_for(None, FakeTTY()).enabled and not progress.reporter_for(None, io.StringIO()).enabled


def test_build_shows_progress_only_on_a_terminal_and_not_with_quiet(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setattr(progress, "DELAY", 0.0)
    plain = runner.invoke(cli, ["build", "linear", "-o", str(tmp_path / "a.xlsx")])  # CliRunner's stderr: no terminal
    assert plain.exit_code == 0 and plain.stderr == ""
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    args = ["build", "titanic-logistic", "--epochs", "1", "-o"]
    shown = runner.invoke(cli, args + [str(tmp_path / "b.xlsx")])
    assert shown.exit_code == 0, shown.output
    for what in ("training", "Steps", "Examples", "rows", "Solver", "saving"):
        assert what in shown.stderr, what
    assert shown.stdout.startswith("wrote ")
    quiet = runner.invoke(cli, ["build", "linear", "-o", str(tmp_path / "c.xlsx"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    traced = runner.invoke(cli, ["trace", "linear", "--epochs", "1", "-q"])
    assert traced.exit_code == 0 and traced.stderr == ""


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "mistakes" in out and (tmp_path / "linear.xlsx").exists() and (tmp_path / "student.xlsx").exists()
    # the feedback faces of the API: the annotated copy (a new file beside the input) and the HTML page
    assert (tmp_path / "student-marked.xlsx").stat().st_size > 0
    assert "<html" in namespace["page"].lower() and "new a" in namespace["page"]
