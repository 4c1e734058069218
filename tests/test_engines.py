"""IronCalc against LibreOffice for the functions students plausibly use (issue 10): every difference in
the README table is measured here, and the checker falls back (LibreOffice) or says it cannot judge."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import xlsxwriter
from click.testing import CliRunner

import sheetsgd.check.checker as checking
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_cells, fill_xml
from sheetsgd.check.recalc.engines import ARRAY_ARITHMETIC, INDEX_RANGE, SUMX_SINGLE, differences_in
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.check.recalc.libreoffice import libreoffice_path, recalc_libreoffice
from sheetsgd.check.recalc.child import run_ironcalc
from sheetsgd.read.workbook import CellError
from sheetsgd.lessons.sgd.workbook import build_workbook

# A1 = 3, B1 = 5, A2 = 2, B2 = 4, C1 blank. formula → (LibreOffice, IronCalc); "error" = any error value.
SAME = {
    "SUMXMY2(A1:A2,B1:B2)": 8, "SUMSQ(A1)": 9, "SUMSQ(A1,B1)": 34, "SUMSQ(A1:B2)": 54, "SUMSQ(A1-B1)": 4,
    "POWER(A1,2)": 9, "POWER(-8,1/3)": -2, "POWER(A1,0)": 1, "PRODUCT(A1,B1)": 15, "PRODUCT(A1:B2)": 120,
    "PRODUCT(A1,C1)": 3, "ROUND(2.5,0)": 3, "ROUND(-2.5,0)": -3, "ROUND(A1/7,3)": 0.429, "ROUND(1.005,2)": 1.01,
    "ROUND(1234.5,-2)": 1200, "SUMPRODUCT(A1,B1)": 15, "SUMPRODUCT(A1*B1)": 15, "SUMPRODUCT(A1:A2,B1:B2)": 23,
    "SUMPRODUCT((A1:A2-B1:B2)^2)": 8, "SUMPRODUCT(2*(A1-B1)*A1)": -12, "SUMPRODUCT(A1:A2)/COUNT(A1:A2)": 2.5,
    "SUM((A1-B1)^2)": 4, "AVERAGE(A1:B2)": 3.5, "MAX(A1:B2)": 5, "MIN(A1,C1)": 3, "ABS(-A1)": 3, "SIGN(-A1)": -1,
    "SQRT(SUMSQ(A1,B1))": 34 ** 0.5, "EXP(-1000)": 0, "LOG10(1000)": 3, "MOD(-7,3)": 2, "INT(-2.5)": -3,
    "-A1^2": 9, "2^3^2": 64, "(A1>1)*2": 2, "IF(A1>B1,1,0)": 0, "INDEX(A1:A2,2)": 2, "C1*2": 0,
    "EXP(710)": "error", "1/0": "error", "10^400": "error", "SQRT(-1)": "error", "LN(0)": "error",
    "POWER(1E200,2)": "error", "1E308*10": "error",
}
DIFFERENT = {  # formula → (LibreOffice, IronCalc)
    "SUMXMY2(A1,B1)": (4, "#VALUE!"), "SUMXMY2($A$1,$B$1)": (4, "#VALUE!"), "SUMXMY2(A1,5)": (4, "#VALUE!"),
    "SUMX2MY2(A1,B1)": (-16, "#VALUE!"), "SUMX2PY2(A1,B1)": (34, "#VALUE!"),
    "SUM(A1:A2*B1:B2)": ("#VALUE!", 23), "SUMSQ(A1:A2-B1:B2)": ("#VALUE!", 8), "AVERAGE(A1:A2*2)": ("#VALUE!", 5),
    "MAX(A1:A2-B1:B2)": ("#VALUE!", -2), "SUM(ABS(A1:A2-B1:B2))": ("#VALUE!", 4),
    "POWER(0,0)": (1, "#NUM!"), "0^0": (1, "#NUM!"), "POWER(C1,0)": (1, "#NUM!"),
    'SUM(A1,"2")': ("#VALUE!", 5), "2^-1070": ("#NUM!", 8e-323),
    "1/(1+EXP(1000))": ("#NUM!", 0), "SUM(INDEX(A1:A2,1):INDEX(A1:A2,2))": (5, "#VALUE!"), "SUMPRODUCT(INDEX(A1:B2,1,1):INDEX(A1:B2,2,1),B1:B2)": (23, "#VALUE!"),
}


def _is_error(v):
    return isinstance(v, str) and v.startswith("#")


def _same(a, b):
    if _is_error(a) or _is_error(b):
        return a == b if not (_is_error(a) and _is_error(b)) else True
    return a == pytest.approx(b, rel=1e-12, abs=1e-300)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """{formula: (LibreOffice value, IronCalc value)} for SAME and DIFFERENT, one workbook, one LibreOffice run."""
    if libreoffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    import openpyxl

    root = tmp_path_factory.mktemp("engines")
    formulas = list(SAME) + list(DIFFERENT)
    path = root / "t.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("S")
    for r, c, v in ((0, 0, 3), (0, 1, 5), (1, 0, 2), (1, 1, 4)):
        ws.write(r, c, v)
    for i, f in enumerate(formulas):
        ws.write_formula(i + 4, 0, "=" + f, None, "")
    wb.close()
    [lo_path] = recalc_libreoffice([path], root / "lo")
    lo = openpyxl.load_workbook(lo_path, data_only=True)["S"]
    rows = [i + 5 for i in range(len(formulas))]
    ic = run_ironcalc(str(path), {"S": (rows, [1] * len(rows))})["S"]  # in a child process, as the checker runs it
    ic = [str(v) if isinstance(v, CellError) else v for v in ic]
    return {f: (lo.cell(i + 5, 1).value, ic[i]) for i, f in enumerate(formulas)}


@pytest.mark.parametrize("formula", list(SAME))
def test_engines_agree(both_engines, formula):
    lo, ic = both_engines[formula]
    if SAME[formula] == "error":
        assert _is_error(lo) and _is_error(ic), (lo, ic)  # error kinds may differ: the checker never compares them
    else:
        assert lo == pytest.approx(SAME[formula], rel=1e-12) and ic == pytest.approx(SAME[formula], rel=1e-12)


@pytest.mark.parametrize("formula", list(DIFFERENT))
def test_engines_differ_as_documented(both_engines, formula):
    lo, ic = both_engines[formula]
    want_lo, want_ic = DIFFERENT[formula]
    assert _same(lo, want_lo) and _same(ic, want_ic), (lo, ic)


def test_every_difference_is_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for formula in ["SUMXMY2", "SUMX2MY2", "SUMX2PY2", "SUM(B2:B9*C2:C9)", "0^0", 'SUM(A1,"2")', "2^-1070",
                    "INDEX(…):INDEX(…)", "1/(1+EXP(1000))"]:
        assert f"`{formula}" in readme, formula


@pytest.mark.parametrize("formula,found", [
    ("SUMXMY2(H9,E9)", [SUMX_SINGLE]), ("SUMXMY2($H$9,5)", [SUMX_SINGLE]), ("sumx2my2(A1,B1)", [SUMX_SINGLE]),
    ("SUMXMY2(A1:A3,B1:B3)", []), ("SUMXMY2(Data!B2:B5,Data!C2:C5)", []),
    ("SUM((F9*Data!$B$2:$B$5+G9-Data!$C$2:$C$5)^2)/COUNT(Data!$B$2:$B$5)", [ARRAY_ARITHMETIC]),
    ("SUMSQ(A1:A2-B1:B2)", [ARRAY_ARITHMETIC]), ("SUM(A1:A9)", []), ("SUMPRODUCT((A1:A2-B1:B2)^2)", []),
    ("SUMSQ(A1,B1)+POWER(A1,2)*PRODUCT(A1,B1)-ROUND(A1,2)", []), ('SUM(A1,"x:y")', []),
    ("SUMPRODUCT(INDEX(Data!$B$2:$B$30,C9):INDEX(Data!$B$2:$B$30,C9+3),E9:E12)", [INDEX_RANGE]),
    ("SUMPRODUCT(A1:INDEX(A1:A9,3))", [INDEX_RANGE]), ("INDEX(Data!$B$2:$B$30,C9)*2", []), ("INDEX(A1:A9,3)+SUM(B1:B2)", []),
])
def test_differences_are_recognised_in_formula_text(formula, found):
    assert differences_in(formula) == found


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def sumxmy2_submission(tmp_path_factory):
    """A correct per-example loss written as SUMXMY2(ŷ, y), saved without computed values."""
    root = tmp_path_factory.mktemp("sumxmy2")
    lesson = override(load_lesson("linear"), epochs=1)
    student = root / "student.xlsx"
    build_workbook(lesson, student, exercise=frozenset({"loss"}))
    path = root / "sumxmy2.xlsx"
    fill_xml(str(student), str(path), fill_cells(str(student), Flaw("x", "loss", "SUMXMY2({pred},{y})")))
    return path


def test_falls_back_to_libreoffice(sumxmy2_submission):
    if libreoffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    result = run("check", sumxmy2_submission, "--json")
    report = json.loads(result.output)
    assert result.exit_code == 0, report
    assert report["recalculated_by"] == "libreoffice"
    assert any("IronCalc computes SUMXMY2" in n for n in report["notes"])


def test_without_libreoffice_the_cells_cannot_be_judged(sumxmy2_submission, monkeypatch):
    monkeypatch.setattr(checking, "libreoffice_path", lambda: None)
    result = run("check", sumxmy2_submission)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot judge" in lines[0] and "IronCalc computes SUMXMY2" in lines[0]


def test_forced_ironcalc_says_so_too(sumxmy2_submission):
    result = run("check", sumxmy2_submission, "--recalc", "ironcalc", "--json")
    report = json.loads(result.output)
    assert result.exit_code == 2 and "cannot judge" in report["message"]
