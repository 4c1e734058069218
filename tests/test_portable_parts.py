"""Every formula a bundled workbook carries — cell formulas, conditional-format rules (a student version's
"hidden until filled"), data validations, defined names and chart series ranges — uses only the one
allowlist, ``PORTABLE_FUNCTIONS``; and no INDEX reads a one-row range with one index (Google Sheets'
documentation does not promise that form: ``INDEX(range, 1, n)`` is the same everywhere)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.sheet.evaluate import FUNCTIONS, Val
from sheetsgd.write.lesson_file import build_student
from sheetsgd.sheet.formula import PORTABLE_FUNCTIONS, check_portable, functions_used

from test_presentation import OPTIONS
from xlsx_parts import formula_parts

README_LIST = re.compile(r"`sheetsgd\.sheet\.formula\.PORTABLE_FUNCTIONS` \(([^)]*)\)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    out = {}
    for name, options in OPTIONS.items():
        lesson = kinds.load(name, **options)
        kind = kinds.kind_of(lesson)
        kind.build(lesson, root / f"{name}.xlsx")
        build_student(kind, lesson, root / f"{name}-student.xlsx", "")
        out[name] = (root / f"{name}.xlsx", root / f"{name}-student.xlsx")
    return out


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_every_formula_part_uses_the_allowlist(built, name):
    seen = {}
    for path in built[name]:
        for kind, where, formula in formula_parts(path):
            assert check_portable(formula) == [], f"{path.name} {kind} {where}: {formula[:200]}"
            seen.setdefault(kind, set()).update(functions_used(formula))
    assert {"cell", "defined name", "chart"} <= set(seen), seen  # the parts were really read
    assert "COUNTBLANK" in seen.get("conditional format", ()), "the student version hides cells by a formula rule"


def _index_calls(formula: str):
    """(first argument, number of arguments) of every INDEX call."""
    text = re.sub(r'"[^"]*"', '""', formula)
    for m in re.finditer(r"\bINDEX\(", text, re.I):
        depth, args, start = 0, [], m.end()
        for i in range(m.end(), len(text)):
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            elif ch in ",)" and depth == 0:
                args.append(text[start:i])
                start = i + 1
                if ch == ")":
                    break
        yield args[0] if args else "", len(args)


def _one_row(ref: str, names: dict[str, str]) -> bool:
    ref = names.get(ref.strip(), ref.strip())
    m = re.fullmatch(r"(?:.*!)?\$?[A-Z]{1,3}\$?(\d+):\$?[A-Z]{1,3}\$?(\d+)", ref.lstrip("="))
    return bool(m) and m.group(1) == m.group(2)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_no_one_argument_index_reads_a_one_row_range(built, name):
    """(collab-filter's Predictions read factor rows as INDEX(row, n) until its layout gives the row: this test
    fails for collab-filter until then.)"""
    bad = []
    for path in built[name]:
        parts = formula_parts(path)
        names = {where: f for kind, where, f in parts if kind == "defined name"}
        for kind, where, formula in parts:
            for first, n_args in _index_calls(formula):
                if n_args == 2 and _one_row(first, names):
                    bad.append(f"{path.name} {where}: {formula[:120]}")
    assert not bad, f"{len(bad)} one-argument INDEX on a one-row range, e.g. {bad[:3]}"


def test_index_reader_sees_one_row_ranges():
    assert list(_index_calls("=INDEX($B$5:$P$5,C9)*2+INDEX(Data!$B$2:$B$30,ROWS(A1:A2),1)")) == \
        [("$B$5:$P$5", 2), ("Data!$B$2:$B$30", 3)]
    assert _one_row("$B$5:$P$5", {}) and not _one_row("Data!$B$2:$B$30", {})
    assert _one_row("factors", {"factors": "=Users!$I$20:$T$20"})


def test_countblank_counts_the_empty_cells_of_each_rows_range():
    """Two block rows reading a 2-row × 2-column range; row 0 has one blank cell, row 1 (a 1-row range,
    padded) none — counted by hand."""
    v = np.array([[1.0, 0.0, 2.0, 3.0], [4.0, 5.0, 0.0, 0.0]])
    mask = np.array([[True, False, True, True], [True, True, False, False]])
    rows = np.array([[2.0], [1.0]])
    out = FUNCTIONS["COUNTBLANK"]([Val(v, np.abs(v), mask, rows=rows)])
    assert out.v.ravel().tolist() == [1.0, 0.0]
    assert "COUNTBLANK" in PORTABLE_FUNCTIONS


def test_readme_lists_the_whole_allowlist():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    listed = {f.strip() for f in README_LIST.search(" ".join(text.split())).group(1).split(",")}
    assert listed == set(PORTABLE_FUNCTIONS), (set(PORTABLE_FUNCTIONS) - listed, listed - set(PORTABLE_FUNCTIONS))
