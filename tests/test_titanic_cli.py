"""The CLI on Titanic lessons: listed, traced, built; bad input gives one line and exit 2."""
from __future__ import annotations

import json

from click.testing import CliRunner

from sheetsgd.cli.commands import cli

TITANIC = ["titanic-linear", "titanic-logistic", "titanic-mlp", "titanic-relu2"]


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_lessons_lists_the_titanic_templates():
    code, out = run("lessons", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(TITANIC) <= set(rows)
    assert (rows["titanic-mlp"]["model"], rows["titanic-mlp"]["loss"]) == ("mlp", "bce")
    assert rows["titanic-logistic"]["batch_size"] == 32


def test_trace_and_build_work_on_a_titanic_template(tmp_path):
    code, out = run("trace", "titanic-logistic", "--epochs", "1", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert len(data["steps"]) == 23  # 713 training passengers in batches of 32
    assert {"loss", "correct", "grad_w_Age", "new_w_Age"} <= set(data["steps"][0])
    assert {"train_loss", "valid_loss", "valid_accuracy"} <= set(data["epochs"][0])

    path = tmp_path / "logistic.xlsx"
    code, out = run("build", "titanic-logistic", "--epochs", "1", "--loss", "mse", "-o", str(path), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["steps"] == 23 and report["cells"] > report["formula_cells"] > 20_000 and report["bytes"] > 0


def test_titanic_size_guard_is_one_line_with_advice(tmp_path):
    path = tmp_path / "big.xlsx"
    code, out = run("build", "titanic-linear", "--epochs", "2000", "-o", str(path))
    assert code == 2
    assert out.count("\n") == 1 and "too large" in out and "fewer epochs" in out
    assert not path.exists()


def test_bad_titanic_template_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndataset = "titanic"\npreset = "lesson9"\n', encoding="utf-8")
    code, out = run("trace", str(bad))
    assert code == 2 and out.count("\n") == 1 and "bad.toml [data]" in out and "lesson9" in out
    bad.write_text('[data]\ndataset = "titanic"\nfeatures = ["Age", "Height"]\n', encoding="utf-8")
    code, out = run("trace", str(bad))
    assert code == 2 and "Height" in out
    text = '[data]\ndataset = "titanic"\n[model]\nkind = "mlp"\ninit = { v = [1] }\n'
    bad.write_text(text, encoding="utf-8")
    code, out = run("trace", str(bad))
    assert code == 2 and "init lacks" in out
    assert bad.read_text(encoding="utf-8") == text  # input never modified


def test_bce_is_refused_on_a_scalar_lesson():
    code, out = run("trace", "linear", "--loss", "bce")
    assert code == 2 and out.count("\n") == 1 and "bce" in out


def test_a_diverging_run_is_refused_not_written_with_nan_caches(tmp_path):
    path = tmp_path / "diverges.xlsx"
    code, out = run("build", "titanic-linear", "--lr", "5", "--epochs", "1", "-o", str(path))
    assert code == 2 and out.count("\n") == 1 and "diverges" in out and "lower lr" in out
    assert not path.exists()
    code, out = run("trace", "titanic-linear", "--lr", "5", "--epochs", "1")  # the engine's numbers still print
    assert code == 0 and "nan" in out.splitlines()[-1]
