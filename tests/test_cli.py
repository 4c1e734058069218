"""The command line through click's CliRunner: every command, its options, its errors."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import bundled_lessons, load_lesson, override

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_every_command_has_help_and_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert cli.commands
    for name, command in cli.commands.items():
        result = run(name, "--help")
        assert result.exit_code == 0, result.output
        assert command.help and " ".join(command.help.split("\n")[0].split()) in " ".join(result.output.split())
        assert f"sheetsgd {name}" in readme, f"README does not document `sheetsgd {name}`"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert opt in readme, f"README does not mention {name} {opt}"


def test_lessons_lists_every_bundled_template():
    result = run("lessons")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(bundled_lessons())
    as_json = json.loads(run("lessons", "--json").output)
    assert {row["name"] for row in as_json} == set(bundled_lessons())


def _hyper(path, name):
    wb = openpyxl.load_workbook(path)
    dest = wb.defined_names[name].attr_text
    sheet, ref = dest.split("!")
    return wb[sheet][ref.replace("$", "")].value


def test_build_applies_the_options(tmp_path):
    out = tmp_path / "q.xlsx"
    result = run("build", "quadratic", "--optimizer", "adam", "--lr", "0.05", "--epochs", "4",
                 "--batch-size", "5", "--shuffle", "--seed", "3", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["optimizer"] == "adam" and report["steps"] == 16
    assert _hyper(out, "lr") == 0.05
    assert _hyper(out, "beta2") == 0.999
    assert {"Steps", "Epochs", "Data", "Batches", "Introduction"} <= set(openpyxl.load_workbook(out).sheetnames)


def test_build_text_report_names_the_file(tmp_path):
    out = tmp_path / "new" / "folder" / "lin.xlsx"  # missing folders are created
    result = run("build", "linear", "-o", out)
    assert result.exit_code == 0
    assert str(out) in result.output and "87 steps" in result.output
    assert out.stat().st_size > 10_000


def test_trace_csv_prints_the_engine_numbers(tmp_path):
    result = run("trace", "linear", "--optimizer", "rmsprop", "--epochs", "2")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    trace = train(override(load_lesson("linear"), optimizer="rmsprop", epochs=2))
    assert len(rows) == trace.n_steps == 58
    for key in ("loss", "grad_a", "v_b", "new_a"):
        assert [float(r[key]) for r in rows] == trace.steps[key].tolist()  # repr round-trips exactly
    assert rows[0]["step"] == "1" and rows[-1]["epoch"] == "2"


def test_trace_json_has_steps_and_epochs():
    result = run("trace", "quadratic", "--format", "json", "--epochs", "3")
    data = json.loads(result.output)
    assert data["lesson"] == "quadratic" and len(data["steps"]) == 3
    assert [e["epoch"] for e in data["epochs"]] == [1.0, 2.0, 3.0]
    assert data["hyperparameters"]["lr"] == 1e-5


def test_a_template_file_builds_like_a_bundled_lesson(tmp_path):
    template = tmp_path / "mine.toml"
    template.write_text("""
[lesson]
title = "My line"
[data]
x = [1, 2, 3, 4]
y = [3, 5, 7, 9]
[model]
kind = "linear"
init = { a = 0, b = 0 }
[optimizer]
name = "sgd"
sgd = { lr = 0.05 }
[training]
batch_size = 2
epochs = 5
""")
    out = tmp_path / "mine.xlsx"
    result = run("build", template, "-o", out)
    assert result.exit_code == 0, result.output
    assert "10 steps" in result.output


BAD_TEMPLATES = {
    "malformed TOML": ("[data\nx = [1]", "malformed TOML"),
    "no data": ("[model]\nkind='linear'", "missing [data]"),
    "unknown model": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\nkind='cubic'\ninit={a=1,b=1}", "unknown model 'cubic'"),
    "unknown optimizer": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1,b=1}\n[optimizer]\nname='lbfgs'",
                          "unknown optimizer 'lbfgs'"),
    "missing init": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1}", "init lacks b"),
    "uneven data": ("[data]\nx=[1,2,3]\ny=[1,2]\n[model]\ninit={a=1,b=1}", "equally long"),
    "text data": ("[data]\nx=['a','b']\ny=[1,2]\n[model]\ninit={a=1,b=1}", "x[0] must be a number"),
    "negative lr": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1,b=1}\n[optimizer]\nsgd={lr=-1}", "lr must be > 0"),
    "zero epochs": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1,b=1}\n[training]\nepochs=0", "epochs"),
    "bad beta": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1,b=1}\n[optimizer]\nname='adam'\nadam={beta1=1.5}",
                 "beta1"),
    "unknown hyperparameter": ("[data]\nx=[1,2]\ny=[1,2]\n[model]\ninit={a=1,b=1}\n[optimizer]\nsgd={lr=1,foo=2}",
                               "no hyperparameter foo"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEMPLATES))
def test_bad_templates_give_one_line_and_exit_2(tmp_path, case):
    text, expected = BAD_TEMPLATES[case]
    template = tmp_path / "bad.toml"
    template.write_text(text)
    before = template.read_bytes()
    out = tmp_path / "out.xlsx"
    for args in (("build", template, "-o", out), ("trace", template)):
        result = run(*args)
        assert result.exit_code == 2, (case, result.output)
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1 and "Traceback" not in result.output
        assert expected in message and "bad.toml" in message
    assert not out.exists()
    assert template.read_bytes() == before


@pytest.mark.parametrize("args,expected", [
    (("build", "nosuchlesson", "-o", "x.xlsx"), "unknown lesson 'nosuchlesson'"),
    (("build", "linear", "--lr", "0", "-o", "x.xlsx"), "--lr must be > 0"),
    (("build", "linear", "--lr", "-0.1", "-o", "x.xlsx"), "--lr must be > 0"),
    (("build", "linear", "--epochs", "0", "-o", "x.xlsx"), "--epochs"),
    (("build", "linear", "--batch-size", "zero", "-o", "x.xlsx"), "--batch-size"),
    (("build", "linear", "--optimizer", "lbfgs", "-o", "x.xlsx"), "--optimizer"),
    (("build", "linear", "-o", "afile.txt/x.xlsx"), "cannot create the output folder"),
    (("build", "linear", "-o", "adir.xlsx"), "is a directory"),
    (("build", "linear", "-o", "out.csv"), "must end in .xlsx"),
    (("build", "linear"), "-o"),
    (("trace", "linear", "--format", "xml"), "--format"),
    (("trace", "missing.toml"), "no such file"),
])
def test_bad_options_give_one_line_and_exit_2(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile.txt").write_text("not a folder")
    (tmp_path / "adir.xlsx").mkdir()  # a folder where the workbook should go
    result = run(*args)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert expected in message
    assert "Traceback" not in result.output
    assert [p.name for p in tmp_path.glob("*.xlsx")] in ([], ["adir.xlsx"])
    assert (tmp_path / "afile.txt").read_text() == "not a folder"


def test_the_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^sheetsgd = "sheetsgd\.cli\.commands:main"', text, re.M)


@pytest.mark.parametrize("lesson,options", [("too-high", []), ("optimizers", ["--epochs", "1"]),
                                            ("lr-finder", []), ("titanic-logistic", ["--epochs", "1"])])
def test_every_lesson_kind_is_checked_and_has_a_student_version(tmp_path, lesson, options):
    """check reads every kind: the full workbook is correct (exit 0); its student version, untouched, names
    the blank exercise columns (exit 1), which --json lists by block."""
    out = tmp_path / f"{lesson}.xlsx"
    assert run("build", lesson, *options, "-o", out).exit_code == 0
    result = run("check", out)
    assert result.exit_code == 0, result.output
    student = tmp_path / "student.xlsx"
    built = run("build", lesson, *options, "--exercise", "--json", "-o", student)
    assert built.exit_code == 0, built.output
    blanks = json.loads(built.stdout)["exercise"]
    assert blanks
    result = run("check", student, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert {m["mistake"] for m in report["mistakes"]} == {"blank"}
    assert {m["column"] for m in report["mistakes"]} == {b.rpartition(":")[2] for b in blanks}
