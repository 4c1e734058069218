"""Every exercise of the Titanic-kind lessons is one fill-down (issue 19), and older workbooks still check.

A student completes a blank column by writing its first cell and dragging the fill handle down. For every
lesson of the kind (titanic-*, penguins-softmax, dropout, lr-finder-titanic) in every layout (per example,
mini-batch, shuffled mini-batch, full batch), the full workbook's formulas of each exercise column are what
openpyxl's Translator gives when it moves the column's first formula to each row: the same relative
references, row by row. The given lookup columns (Data row, the step's weights, the features) and the
batch means by step number are fill-downs too; a weight's batch gradient (a SUMPRODUCT over the batch's
own rows) is the one given column that is not, and is listed as such.

Workbooks built before the row-local layout (their manifests have no layout_version) are rebuilt as they
were laid out: the fixtures under tests/fixtures/tabular_layout_v1 were built and filled in (correctly,
and with one catalogued mistake) by the code before this layout, and check as they did.
"""
from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
from openpyxl.formula.translate import Translator

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.lessons.exercise import resolve

FIXTURES = Path(__file__).parent / "fixtures" / "tabular_layout_v1"

# lesson, options: each layout the kind has (per example, mini-batch, shuffled mini-batch, full batch)
LAYOUTS = [
    ("titanic-linear", {"epochs": 1}),
    ("titanic-linear", {"epochs": 1, "batch_size": 64}),
    ("titanic-linear", {"epochs": 1, "batch_size": 64, "shuffle": True}),
    ("titanic-linear", {"epochs": 2, "batch_size": "full"}),
    ("titanic-logistic", {"epochs": 1, "batch_size": 1}),
    ("titanic-logistic", {"epochs": 1}),
    ("titanic-logistic", {"epochs": 1, "shuffle": True}),
    ("titanic-logistic", {"epochs": 2, "batch_size": "full"}),
    ("titanic-relu2", {"epochs": 1}),
    ("titanic-relu2", {"epochs": 1, "batch_size": 64, "shuffle": True}),
    ("titanic-mlp", {"epochs": 2}),
    ("titanic-mlp", {"epochs": 1, "batch_size": 1}),
    ("titanic-mlp", {"epochs": 1, "batch_size": 100}),
    ("penguins-softmax", {"epochs": 1}),
    ("penguins-softmax", {"epochs": 1, "shuffle": False}),
    ("penguins-softmax", {"epochs": 1, "batch_size": 1}),
    ("penguins-softmax", {"epochs": 2, "batch_size": "full"}),
    ("dropout", {"epochs": 2}),
    ("dropout", {"epochs": 1, "batch_size": 20, "shuffle": True}),
    ("lr-finder-titanic", {"epochs": 12}),
]


def _id(case):
    name, options = case
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def _is_batch_product(block, key: str) -> bool:
    """A weight's batch gradient: SUMPRODUCT over the batch's own rows ({lo}:{hi}), a given column."""
    pattern = block.column(key).pattern or ""
    return "{lo}" in pattern


def _fill_down_misses(grid, block, key: str) -> list[str]:
    """Rows of a block column whose formula is not the Translator fill-down of its first cell."""
    col = block.column(key).col
    letter = openpyxl.utils.get_column_letter(col + 1)
    first_row = block.first_row + 1
    formulas = [grid[block.first_row + i][col] for i in range(block.n)]
    first = formulas[0]
    assert isinstance(first, str) and first.startswith("="), f"{block.name}!{letter}{first_row}: {first!r}"
    translator = Translator(first, origin=f"{letter}{first_row}")
    misses = []
    for i, found in enumerate(formulas):
        expected = translator.translate_formula(f"{letter}{first_row + i}")
        if found != expected:
            misses.append(f"{block.sheet}!{letter}{first_row + i}: {found} (fill-down: {expected})")
    return misses


_BUILT: dict[str, tuple] = {}


def _built(tmp_path_factory, case):
    """(lesson, blocks, {sheet: rows of cell formulas/values}) of the full workbook, built once per case."""
    key = _id(case)
    if key not in _BUILT:
        name, options = case
        lesson = kinds.load(name, **options)
        kind = kinds.kind_of(lesson)
        path = tmp_path_factory.mktemp("filldown") / f"{key}.xlsx"
        report = kind.build(lesson, path)
        book = openpyxl.load_workbook(path, read_only=True)
        sheets = {b.sheet for b in report.blocks}
        grids = {s: [tuple(r) for r in book[s].iter_rows(values_only=True)] for s in sheets}
        book.close()
        _BUILT[key] = (lesson, report.blocks, grids)
    return _BUILT[key]


@pytest.mark.parametrize("case", LAYOUTS, ids=[_id(c) for c in LAYOUTS])
def test_every_exercise_column_is_one_fill_down(tmp_path_factory, case):
    lesson, blocks, grids = _built(tmp_path_factory, case)
    exercise = resolve(blocks, None, list(lesson.exercise))
    checked = 0
    for block in blocks:
        for key in sorted(exercise.get(block.name, ())):
            assert not _fill_down_misses(grids[block.sheet], block, key)[:3]
            checked += 1
    assert checked == sum(len(v) for v in exercise.values()) > 0


@pytest.mark.parametrize("case", LAYOUTS, ids=[_id(c) for c in LAYOUTS])
def test_every_row_column_is_one_fill_down_but_the_batch_products(tmp_path_factory, case):
    """Any column a teacher may choose (``--exercise COLUMNS``) on Steps, Examples and Validation, the
    lookups and the means by step number among them; only a weight's batch gradient is not (given)."""
    lesson, blocks, grids = _built(tmp_path_factory, case)
    products = 0
    for block in blocks:
        if block.sheet not in ("Steps", "Examples", "Validation", "Finder"):
            continue
        for c in block.columns:
            if not c.pattern or block.n < 2:
                continue
            if _is_batch_product(block, c.key):
                products += 1
                assert c.key.startswith("grad_") and re.search(r"SUMPRODUCT\(Examples!", c.pattern), c.pattern
                continue
            assert not _fill_down_misses(grids[block.sheet], block, c.key)[:3], c.key
    per_example = lesson.batch_size == 1 if hasattr(lesson, "batch_size") else False
    assert (products == 0) == per_example


def test_lookups_read_explicit_rows_only(tmp_path_factory):
    """The lookups are INDEX of a one-column range at an explicit row: no INDEX:INDEX, OFFSET or INDIRECT."""
    lesson, blocks, _ = _built(tmp_path_factory, ("titanic-logistic", {"epochs": 1}))
    patterns = [c.pattern for b in blocks for c in b.columns if c.pattern]
    assert not [p for p in patterns if re.search(r"OFFSET|INDIRECT|\)\s*:\s*INDEX", p)]
    examples = next(b for b in blocks if b.name == "Examples")
    assert examples.column("z").pattern == "SUMPRODUCT(D{r}:O{r},P{r}:AA{r})"
    assert examples.column("w_Age").pattern == "INDEX(Steps!F$9:F$31,$A{r},1)"
    assert examples.column("x_Age").pattern == "INDEX(Data!W$1:W$893,$C{r},1)"
    steps = next(b for b in blocks if b.name == "Steps")
    assert steps.column("loss").pattern == "SUMIF(Examples!$A$2:$A$714,$A{r},Examples!$AF$2:$AF$714)/$E{r}"


# --------------------------------------------------------------------------- workbooks built before

V1 = [("titanic-logistic", "sigmoid_derivative_incomplete", "Examples", "dz"),
      ("titanic-linear", "mse_factor_2_missing", "Steps", "dloss"),
      ("penguins-softmax", "bias_gradient_summed_over_classes", "Steps", "grad_b1")]


@pytest.mark.parametrize("name,mistake,block,column", V1, ids=[v[0] for v in V1])
def test_workbook_built_before_the_row_local_layout_checks_as_built(name, mistake, block, column):
    correct = FIXTURES / f"{name}-v1-correct.xlsx"
    report = check(str(correct))
    assert report.status == "correct" and report.exit_code == 0, report.to_text()[:2000]
    wrong = check(str(FIXTURES / f"{name}-v1-{mistake}.xlsx"))
    assert wrong.exit_code == 1, wrong.to_text()[:2000]
    [found] = wrong.mistakes
    assert (found["block"], found["column"], found["mistake"], found["step"]) == (block, column, mistake, 1)


def test_v1_fixtures_are_the_old_layout():
    """The fixtures really are the old layout: no layout_version, and Examples reads Steps by block addresses."""
    from conftest import read_manifest

    manifest = read_manifest(FIXTURES / "titanic-logistic-v1-correct.xlsx")
    assert "layout_version" not in manifest
    book = openpyxl.load_workbook(FIXTURES / "titanic-logistic-v1-correct.xlsx", read_only=True)
    z = next(book["Examples"].iter_rows(min_row=2, max_row=2, values_only=True))[3]
    assert z.startswith("=SUMPRODUCT(Steps!$")


def test_the_layout_before_was_no_fill_down(tmp_path):
    """The same check finds the old layout's per-block addresses (so it can fail): z read Steps row by row
    of each batch, and the Data rows restart each epoch."""
    from dataclasses import replace

    lesson = replace(kinds.load("titanic-logistic", epochs=2), layout_version=1)
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "v1.xlsx")
    book = openpyxl.load_workbook(tmp_path / "v1.xlsx", read_only=True)
    grid = [tuple(r) for r in book["Examples"].iter_rows(values_only=True)]
    examples = next(b for b in report.blocks if b.name == "Examples")
    misses = _fill_down_misses(grid, examples, "z")
    assert len(misses) > examples.n // 2
