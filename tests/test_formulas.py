"""Every formula of every bundled lesson workbook uses only portable functions and features."""
from __future__ import annotations

import pytest

from sheetsgd.sheet.formula import PORTABLE_FUNCTIONS, check_portable, functions_used
from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd.lesson import bundled_lessons
from sheetsgd.lessons.optimizers import OPTIMIZERS

from conftest import formula_cells


def bundled_variants(lesson_name):
    """Every bundled lesson; SGD lessons with every optimizer and batch layout."""
    lesson = kinds.load(lesson_name)
    if lesson.kind != "sgd":
        yield "default", lesson
        return
    layouts = [dict(batch_size=1), dict(batch_size="full"), dict(batch_size=3, shuffle=True)]
    for opt in sorted(OPTIMIZERS):
        for layout in layouts:
            yield f"{opt}-{layout['batch_size']}", kinds.load(lesson_name, optimizer=opt, epochs=2, **layout)


@pytest.mark.parametrize("lesson_name", sorted(bundled_lessons()))
def test_every_bundled_formula_is_portable(tmp_path, lesson_name):
    used = set()
    for variant, lesson in bundled_variants(lesson_name):
        path = tmp_path / f"{variant}.xlsx"
        kinds.kind_of(lesson).build(lesson, path)
        formulas = formula_cells(path)
        assert formulas, "a lesson workbook without formulas"
        for (sheet, ref), formula in formulas.items():
            assert check_portable(formula) == [], f"{path.name} {sheet}!{ref}: {formula}"
            used |= functions_used(formula)
    assert used <= PORTABLE_FUNCTIONS
    if kinds.load(lesson_name).kind == "sgd":
        assert {"INDEX", "SUMPRODUCT", "COUNT"} <= used  # the check really saw function calls


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
