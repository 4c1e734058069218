"""An author's own data and model as a lesson: ``[data] csv`` with an own formula (examples/own-model).

The sheet built from the author's CSV computes what the engine computes (LibreOffice); the workbook records
the data itself, so it checks away from the CSV; its student version, each blank column typed in its first
cell and filled down by LibreOffice, checks clean, and a catalogued mistake there — on the derived ∂ŷ/∂p
column too — is named at its column; bad CSV files are one-line errors (exit 2).
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd import own_data
from sheetsgd.cli.commands import cli
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.write.lesson_file import build_student
from sheetsgd.lessons.sgd.spec import step_columns

from conftest import assert_recalculated_equals_cached, build_and_recalc, cell_values, close, read_manifest
from test_bad_input import assert_one_line_error

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own-model" / "coffee-cooling.toml"
EXAM = Path(__file__).resolve().parent / "fixtures" / "own" / "exam.toml"  # logistic regression, bce, 0/1 target
CSV_LINES = ["minutes,temperature,cup", "0,89.6,mug", "2.5,77.0,mug", "5,66.1,mug", "7.5,56.4,mug"]


def test_the_csv_columns_are_the_lesson_data():
    lesson = kinds.load(str(EXAMPLE))
    lines = (EXAMPLE.parent / "coffee.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines[1:]]
    assert lesson.data.x.tolist() == [float(r[0]) for r in rows]
    assert lesson.data.y.tolist() == [float(r[1]) for r in rows]
    assert (lesson.data.x_name, lesson.data.y_name) == ("minutes", "temperature")
    recorded = lesson.origin["template"]["data"]  # what the workbook's manifest keeps: numbers, no path
    assert "csv" not in recorded and recorded["x"] == lesson.data.x.tolist()


@pytest.fixture(scope="module")
def example_built(tmp_path_factory, recalc):
    folder = tmp_path_factory.mktemp("own-data")
    lessons = {"coffee": kinds.load(str(EXAMPLE), epochs=2),
               "coffee-b4-mae": kinds.load(str(EXAMPLE), epochs=2, batch_size=4, loss="mae"),
               "exam-bce": kinds.load(str(EXAM)), "exam-bce-full": kinds.load(str(EXAM), batch_size="full", epochs=5)}
    return {k: (lessons[k], *paths) for k, paths in build_and_recalc(recalc, folder, lessons).items()}


@pytest.mark.parametrize("key", ["coffee", "coffee-b4-mae", "exam-bce", "exam-bce-full"])
def test_a_csv_lesson_recalculated_by_libreoffice_equals_the_engine(example_built, key):
    lesson, path, recalculated = example_built[key]
    trace = train(lesson)  # an engine run made here
    manifest, values = read_manifest(path), cell_values(recalculated)["Steps"]
    checked = 0
    for column in step_columns(lesson):
        if column.formula is None or column.key in ("first", "last"):
            continue
        letter = manifest["columns"][column.key]["column"]
        for i, expected in enumerate(trace.steps[column.key]):
            found = values.get(f"{letter}{manifest['first_step_row'] + i}")
            assert isinstance(found, (int, float)) and close(expected, found), (column.key, i + 1, expected, found)
            checked += 1
    assert checked >= lesson.n_steps * 8
    assert assert_recalculated_equals_cached(path, recalculated) > checked


@pytest.mark.parametrize("options", [{}, {"batch_size": 4}], ids=["per-example", "batch-4"])
def test_bce_on_a_csv_equals_torch_at_every_step(options):
    """Logistic regression on the author's CSV: the loss and every gradient equal torch's BCELoss and autograd."""
    torch = pytest.importorskip("torch")
    lesson = kinds.load(str(EXAM), **options)
    trace = train(lesson)
    hours = torch.tensor(lesson.data.x, dtype=torch.float64)
    passed = torch.tensor(lesson.data.y, dtype=torch.float64)
    assert set(lesson.data.y.tolist()) == {0.0, 1.0}
    for step, idx in enumerate(trace.batches):
        a, b = (torch.tensor(trace.steps[p][step], dtype=torch.float64, requires_grad=True) for p in "ab")
        pred = torch.sigmoid(a * hours[idx] + b)
        loss = torch.nn.functional.binary_cross_entropy(pred, passed[idx])
        ga, gb = torch.autograd.grad(loss, [a, b])
        assert close(loss.item(), trace.steps["loss"][step]), step + 1
        assert close(ga.item(), trace.steps["grad_a"][step]) and close(gb.item(), trace.steps["grad_b"][step]), step + 1


def test_bce_needs_01_targets_and_a_probability(tmp_path):
    path = _author(tmp_path, _lines(*CSV_LINES), extra='loss = "bce"\n')
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")]),
                          "bce", "0/1 targets", "89.6")
    path = tmp_path / "linear.toml"
    path.write_text('[data]\nx = [1, 2]\ny = [0, 1]\n[model]\nloss = "bce"\ninit = { a = 0.0, b = 0.0 }\n')
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")]),
                          "bce", "prediction in (0, 1)", "formula")


def test_the_workbook_checks_away_from_its_csv(tmp_path):
    folder = tmp_path / "author"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    shutil.copy(EXAMPLE.parent / "coffee.csv", folder / "coffee.csv")
    result = CliRunner().invoke(cli, ["build", str(folder / EXAMPLE.name), "--epochs", "1", "-o", str(tmp_path / "c.xlsx")])
    assert result.exit_code == 0, result.output
    shutil.rmtree(folder)  # the template and its CSV are gone: the workbook holds the data
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "c.xlsx"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "correct"


# --- a student fills the own-formula lesson down in LibreOffice ----------------------------------------------

FLAWS = [("chain_rule_factor_missing", "dpred_b"), ("mse_factor_2_missing", "dloss"), ("feature_missing", "grad_b")]


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    from conftest import require_libreoffice
    from lo_fill import fill_down, first_cells, type_first_cells
    from sheetsgd.check.demo import Flaw, _lesson_blocks, fill_sheets

    require_libreoffice()
    root = tmp_path_factory.mktemp("own-fill")
    lesson = kinds.load(str(EXAMPLE), epochs=2)
    student = root / "student.xlsx"
    build_student(kinds.kind_of(lesson), lesson, student, "")
    _, _, blocks, exercise = _lesson_blocks(str(student))
    columns = first_cells(blocks, exercise)
    jobs, out = [], {}
    for flaw in [None, *FLAWS]:
        tag = "correct" if flaw is None else f"{flaw[0]}-{flaw[1]}"
        typed = root / f"{tag}-typed.xlsx"
        type_first_cells(student, typed, fill_sheets(str(student), flaw and Flaw(*flaw)), columns)
        jobs.append((typed, root / f"{tag}.xlsx", columns))
        out[flaw] = root / f"{tag}.xlsx"
    fill_down(jobs, timeout=600)
    return out


def _check(path):
    result = CliRunner().invoke(cli, ["check", str(path), "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.mark.libreoffice
def test_the_student_version_filled_down_checks_clean(filled):
    code, report = _check(filled[None])
    assert code == 0 and report["status"] == "correct", report["mistakes"][:3]
    exercise = {c["key"]: c for c in report["columns"] if c["exercise"]}
    assert {"pred", "err", "dloss", "dpred_b", "grad_b", "new_b"} == set(exercise)
    assert all(c["correct"] == c["total"] == 26 for c in exercise.values())
    assert report["score"]["correct"] == report["score"]["total"] == 6 * 26


@pytest.mark.libreoffice
@pytest.mark.parametrize("flaw", FLAWS, ids=lambda f: f"{f[0]}-{f[1]}")
def test_a_mistake_filled_down_is_named_at_its_column(filled, flaw):
    code, report = _check(filled[flaw])
    assert code == 1
    mine = [m for m in report["mistakes"] if m["column"] == flaw[1]]
    assert mine and mine[0]["mistake"] == flaw[0] and mine[0]["step"] == 1, report["mistakes"][:3]
    assert [m["column"] for m in report["mistakes"]][0] == flaw[1]  # the root cause, not a knock-on first


# --- bad CSV files: one line, exit 2 -----------------------------------------------------------------------

TEMPLATE = """
[data]
csv = "{csv}"
inputs = ["minutes"]
target = "temperature"
[model]
formula = "a*EXP(-b*minutes/10)+c"
init = {{ a = 60.0, b = 1.0, c = 20.0 }}
"""


def _author(tmp_path, content: bytes | None, csv="data.csv", extra="") -> Path:
    if content is not None:
        (tmp_path / csv).write_bytes(content)
    path = tmp_path / "lesson.toml"
    path.write_text(TEMPLATE.format(csv=csv) + extra, encoding="utf-8")
    return path


def _lines(*lines) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.mark.parametrize("content,needles", [
    (_lines("min,temperature", "0,89.6"), ["data.csv", "no column 'minutes'", "'min'"]),
    (_lines(*CSV_LINES[:3], "5,warm,mug"), ["data.csv", "line 4", "'temperature'", "'warm' is not a number"]),
    (_lines(*CSV_LINES[:3], ",66.1,mug"), ["data.csv", "line 4", "'minutes'", "'' is not a number"]),
    (_lines(*CSV_LINES[:3], "5,inf,mug"), ["line 4", "not a finite number"]),
    ("minutes,temperature\n0,8\xe9\n".encode("latin-1"), ["data.csv", "not UTF-8"]),
    (b"", ["data.csv", "is empty"]),
    (_lines("minutes,temperature"), ["data.csv", "no rows of data"]),
    (_lines("minutes,minutes,temperature", "1,2,3"), ["two columns named 'minutes'"]),
], ids=["missing-column", "text-cell", "empty-cell", "infinite", "not-utf8", "empty", "header-only", "duplicate"])
def test_a_bad_csv_is_one_line_exit_2(tmp_path, content, needles):
    result = CliRunner().invoke(cli, ["build", str(_author(tmp_path, content)), "-o", str(tmp_path / "o.xlsx")])
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "o.xlsx").exists()


def test_a_csv_over_the_size_bound_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(own_data, "MAX_CSV_BYTES", 1000)
    path = _author(tmp_path, _lines(*CSV_LINES, *(f"{i},{i},mug" for i in range(200))))
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")]), "data.csv", "larger than")


def test_a_directory_missing_file_or_fifo_is_refused(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(_author(tmp_path, None, "folder.csv")), "-o", "o.xlsx"]),
                          "folder.csv", "not a regular file")
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(_author(tmp_path, None, "gone.csv")), "-o", "o.xlsx"]),
                          "gone.csv", "no such file")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.csv")
        assert_one_line_error(CliRunner().invoke(cli, ["build", str(_author(tmp_path, None, "pipe.csv")), "-o", "o.xlsx"]),
                              "pipe.csv", "not a regular file")


@pytest.mark.parametrize("extra_data,needles", [
    ('x = [1, 2]\n', ["csv", "one of them"]),
    ('', []),
], ids=["csv-and-x", "fine"])
def test_csv_keys_combine_only_as_documented(tmp_path, extra_data, needles):
    content = _lines(*CSV_LINES)
    path = _author(tmp_path, content)
    text = path.read_text().replace('target = "temperature"\n', 'target = "temperature"\n' + extra_data)
    path.write_text(text)
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")])
    if needles:
        assert_one_line_error(result, *needles)
    else:
        assert result.exit_code == 0, result.output


def test_inputs_without_csv_and_two_inputs_are_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[data]\nx = [1, 2]\ny = [1, 2]\ninputs = ["x"]\n')
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")]), "give csv too")
    path = _author(tmp_path, _lines(*CSV_LINES))
    path.write_text(path.read_text().replace('inputs = ["minutes"]', 'inputs = ["minutes", "cup"]'))
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "o.xlsx")]), "inputs", "1 item")


# --- variants and the autograder hold for the author's lesson ----------------------------------------------

def _filled_variant(path: Path, variant: str, flaw=None) -> Path:
    """The author lesson's student version for ``variant``, filled in (formulas only: IronCalc computes them)."""
    from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets

    student = path.with_name(path.stem + "-blank.xlsx")
    lesson = kinds.load(str(EXAMPLE), epochs=1, variant=variant)
    build_student(kinds.kind_of(lesson), lesson, student, "")
    fill_xml_sheets(str(student), str(path), fill_sheets(str(student), flaw and Flaw(*flaw)))
    student.unlink()
    return path


def test_variants_of_an_author_lesson_start_elsewhere_and_check(tmp_path):
    plain = kinds.load(str(EXAMPLE), epochs=1)
    mine = kinds.load(str(EXAMPLE), epochs=1, variant="s-0042")
    assert mine.init != plain.init and set(mine.init) == {"a", "b", "c"}
    assert mine.data.x.tolist() == plain.data.x.tolist()  # the author's data, the variant's start values
    code, report = _check(_filled_variant(tmp_path / "mine.xlsx", "s-0042"))
    assert code == 0 and report["status"] == "correct", report["mistakes"][:3]


def test_an_author_lesson_gets_an_autograder(tmp_path):
    import zipfile

    from sheetsgd.grade.autograder_run import run

    bundle = tmp_path / "ag.zip"
    result = CliRunner().invoke(cli, ["autograder", str(EXAMPLE), "--epochs", "1", "--allow-variants", "-o", str(bundle)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    total = 6 * 13  # six exercise columns, 13 steps: one point per cell
    for tag, flaw in (("right", None), ("wrong", ("chain_rule_factor_missing", "dpred_b"))):
        shutil.rmtree(root / "submission", ignore_errors=True)
        (root / "submission").mkdir()
        _filled_variant(root / "submission" / f"{tag}.xlsx", "s-0042", flaw)
        results = run(root)
        if flaw is None:
            assert results["score"] == total, results["output"]
        else:
            assert 0 < results["score"] < total
            assert any("chain_rule_factor_missing" in t["tags"] for t in results["tests"]), results["tests"]


@pytest.mark.libreoffice
def test_the_author_lesson_renders_readably(tmp_path, recalc):
    """Printed by LibreOffice: no cell shows ###, and every Steps header (∂ŷ/∂b …) is whole on the page."""
    import subprocess

    from sheetsgd.check.recalc.libreoffice import recalc_libreoffice
    from test_presentation import _plain, _printed_columns

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    lesson = kinds.load(str(EXAMPLE), epochs=1)
    kind = kinds.kind_of(lesson)
    (tmp_path / "in").mkdir()
    report = kind.build(lesson, tmp_path / "in" / "coffee.xlsx")
    build_student(kind, lesson, tmp_path / "in" / "coffee-student.xlsx", "")
    headers = {c.header for b in report.blocks if b.sheet == "Steps" for c in b.columns}
    assert {"∂ŷ/∂a", "∂ŷ/∂b", "∂ŷ/∂c", "minutes", "temperature"} <= headers
    for pdf in recalc_libreoffice(sorted((tmp_path / "in").glob("*.xlsx")), tmp_path / "pdf", to="pdf"):
        txt = pdf.with_suffix(".txt")
        subprocess.run(["pdftotext", "-layout", str(pdf), str(txt)], check=True)
        text = txt.read_text(encoding="utf-8")
        assert "###" not in text, pdf.stem
        tokens = set(_plain(text).split())
        printed = _printed_columns(tmp_path / "in" / f"{pdf.stem}.xlsx").get("Steps", 16383)
        shown = {c.header for b in report.blocks if b.sheet == "Steps" for c in b.columns if c.col <= printed}
        assert {"∂ŷ/∂a", "minutes", "temperature"} <= shown
        for header in shown:  # wrapped headers: each word whole on some line
            for word in _plain(header).split():
                assert any(word in t for t in tokens), (pdf.stem, header, word)


def test_the_size_guard_refuses_a_big_author_lesson_before_training(tmp_path):
    """20,000 CSV rows × 50 epochs, one example per step: over Google Sheets' 10 M cells, refused in one line
    before any step is computed (the same bound as the bundled lessons)."""
    import time

    rows = "".join(f"{i / 1000},{20 + 60 * math.exp(-i / 5000):.4f}\n" for i in range(20_000))
    path = _author(tmp_path, ("minutes,temperature\n" + rows).encode())
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["build", str(path), "--epochs", "50", "-o", str(tmp_path / "o.xlsx")])
    assert_one_line_error(result, "too large", "cells")
    assert time.perf_counter() - start < 20  # refused from the estimate: no 1,000,000 steps were trained
    assert not (tmp_path / "o.xlsx").exists()


@pytest.mark.parametrize("options", [{"batch_size": 1}, {"batch_size": 4}, {"batch_size": 4, "shuffle": True},
                                     {"batch_size": "full"}], ids=["b1", "b4", "b4-shuffled", "full"])
def test_each_exercise_column_of_the_author_lesson_is_one_fill_down(options, tmp_path):
    """As for the bundled lessons (tests/test_fill_down.py): every exercise cell is its column's first cell moved."""
    from test_fill_down import test_each_exercise_column_is_one_fill_down_of_its_first_cell as one_fill_down

    one_fill_down(str(EXAMPLE), {"epochs": 2, **options}, tmp_path)


def test_a_manifest_naming_a_csv_file_is_refused_unread(tmp_path):
    """A workbook is untrusted: a manifest whose template names a file (csv) was tampered with; the checker
    refuses it in one line and opens no path it names."""
    import openpyxl

    path = tmp_path / "c.xlsx"
    lesson = kinds.load(str(EXAMPLE), epochs=1)
    kinds.kind_of(lesson).build(lesson, path)
    (tmp_path / "secret.csv").write_text("minutes,temperature\n1,2\n")
    wb = openpyxl.load_workbook(path)
    ws = wb["_sheetsgd"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "origin":
            origin = json.loads(row[1].value)
            data = origin["template"]["data"]
            for key in ("x", "y", "columns"):
                data.pop(key)
            data.update(csv=str(tmp_path / "secret.csv"), inputs=["minutes"], target="temperature")
            row[1].value = json.dumps(origin)
            break
    else:
        pytest.fail("no origin entry in the manifest")
    wb.save(path)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert_one_line_error(result, "names a file (csv)", "tampered")


def test_a_template_from_a_workbook_never_opens_the_file_it_names(monkeypatch):
    """Every reader of a workbook's template (check's rebuild, grade's suspected copies) goes through
    kinds.from_raw: a CSV it names is refused there, unread, for data and tabular lessons alike; only a
    template file (kinds.load) reads its CSV."""
    from sheetsgd.errors import SheetsgdError
    from sheetsgd.lessons.sgd import own_data
    from sheetsgd.lessons.tabular import author_csv

    opened = []
    monkeypatch.setattr(own_data, "read_csv_columns", lambda *args, **kwargs: opened.append(args))
    monkeypatch.setattr(author_csv, "read_regular", lambda *args, **kwargs: opened.append(args))
    raw, _, source = kinds.read_template(str(EXAMPLE))
    assert "csv" in raw["data"]
    tabular = {"data": {"csv": source, "target": "cup", "numeric": ["minutes"]}, "model": {"kind": "logistic"}}
    for template in (raw, tabular):
        with pytest.raises(SheetsgdError, match="names a file"):
            kinds.from_raw(template, "c", "variant", {"variant": "s1"})
    assert opened == []
