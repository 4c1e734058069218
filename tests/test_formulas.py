"""Every formula of every bundled lesson workbook uses only portable functions and features."""
from __future__ import annotations

import pytest

from sheetsgd.formula import PORTABLE_FUNCTIONS, check_portable, functions_used
from sheetsgd.lesson import bundled_lessons, load_lesson, override
from sheetsgd.optimizers import OPTIMIZERS
from sheetsgd.writer import build_workbook

from conftest import formula_cells


@pytest.mark.parametrize("lesson_name", sorted(bundled_lessons()))
def test_every_bundled_formula_is_portable(tmp_path, lesson_name):
    used = set()
    layouts = [dict(batch_size=1), dict(batch_size="full"), dict(batch_size=3, shuffle=True)]
    for opt in sorted(OPTIMIZERS):
        for layout in layouts:
            lesson = override(load_lesson(lesson_name), optimizer=opt, epochs=2, **layout)
            path = tmp_path / f"{opt}-{layout['batch_size']}.xlsx"
            build_workbook(lesson, path)
            formulas = formula_cells(path)
            assert formulas, "a lesson workbook without formulas"
            for (sheet, ref), formula in formulas.items():
                assert check_portable(formula) == [], f"{path.name} {sheet}!{ref}: {formula}"
                used |= functions_used(formula)
    assert used <= PORTABLE_FUNCTIONS
    assert {"SUMPRODUCT", "INDEX", "COUNT"} <= used  # the check really saw function calls


@pytest.mark.parametrize("formula,reason", [
    ("=STDEV.S(A1:A3)", "STDEV.S"),
    ("=_xlfn.XLOOKUP(1,A1:A3,B1:B3)", "_xlfn"),
    ("=SUM(Table1[[#This Row],[Age]])", "structured"),
    ("=SUM({1,2,3})", "array constant"),
    ("=LET(x,1,x+1)", "LET"),
    ("=[other.xlsx]Sheet1!A1", "external"),
    ("=A1#", "spill"),
    ("=RAND()", "RAND"),
    ("=CONCAT(A1,B1)", "CONCAT"),
])
def test_non_portable_formulas_are_rejected(formula, reason):
    assert check_portable(formula), f"{formula} should be refused ({reason})"


def test_portable_formulas_pass_and_strings_are_not_function_calls():
    assert check_portable('=SUMPRODUCT((E5*Data!$B$2:$B$30+F5-Data!$C$2:$C$30)^2)/COUNT(Data!$B$2:$B$30)') == []
    assert check_portable('=IF(A1<0,"RAND(",A1)') == []
    assert functions_used("=lr*SQRT(A1)+EXP(B2)") == {"SQRT", "EXP"}
