"""Shared fixtures: building lesson workbooks and recalculating them in real LibreOffice."""
from __future__ import annotations

import json
import math
from pathlib import Path

import openpyxl
import pytest

from sheetsgd.recalc import libreoffice_path, recalc_libreoffice

REL_TOL = 1e-9
ABS_TOL = 1e-12


def close(expected: float, found: float, rel: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """The issue's tolerance: relative ≤ 1e-9, absolute ≤ 1e-12 near zero."""
    return math.isclose(expected, found, rel_tol=rel, abs_tol=abs_tol)


def require_libreoffice() -> None:
    if libreoffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed: install libreoffice-calc-nogui to run this test")


@pytest.fixture(scope="session")
def recalc(tmp_path_factory):
    """recalc([paths]) -> recalculated copies, via one LibreOffice process per call."""
    require_libreoffice()

    def run(paths):
        out = tmp_path_factory.mktemp("recalculated")
        return recalc_libreoffice(paths, out)

    return run


def read_manifest(path: Path) -> dict:
    """The hidden _sheetsgd sheet: {key: decoded JSON value}."""
    wb = openpyxl.load_workbook(path, read_only=True)
    out = {r[0]: json.loads(r[1]) for r in wb["_sheetsgd"].iter_rows(min_row=2, values_only=True)}
    wb.close()
    return out


def formula_cells(path: Path) -> dict[tuple[str, str], str]:
    """{(sheet, cell): formula} for every formula cell of a workbook."""
    wb = openpyxl.load_workbook(path, read_only=True)
    out = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    out[(ws.title, c.coordinate)] = c.value
    wb.close()
    return out


def cell_values(path: Path) -> dict[str, dict[str, object]]:
    """{sheet: {cell: value}} as last computed (cached values)."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    out = {ws.title: {c.coordinate: c.value for row in ws.iter_rows() for c in row if c.value is not None}
           for ws in wb.worksheets}
    wb.close()
    return out


_LIBREOFFICE_FIXTURES = {"recalc"}


def pytest_collection_modifyitems(config, items):
    """Every test that recalculates in LibreOffice (through the ``recalc`` fixture, directly or through
    a fixture built on it) carries the ``libreoffice`` marker, so ``-m "not libreoffice"`` is the fast
    subset for real."""
    for item in items:
        if _LIBREOFFICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.libreoffice)


def assert_recalculated_equals_cached(path: Path, recalculated: Path) -> int:
    """Every formula cell of every sheet: LibreOffice's recalculated value is a number (no error, no
    blank) and equals the engine's value the writer cached in it. Returns the number of cells compared."""
    formulas = formula_cells(path)
    cached, fresh = cell_values(path), cell_values(recalculated)
    for (sheet, ref), formula in formulas.items():
        found, expected = fresh[sheet].get(ref), cached[sheet].get(ref)
        if isinstance(expected, str) or expected is None:  # a text formula (a label, "" where a column shows
            # nothing; collab's unrated cells cache an empty <v></v>, which reads as None)
            assert found == expected or (expected in ("", None) and found in ("", None)), f"{sheet}!{ref} {formula}: {found!r}"
            continue
        assert isinstance(found, (int, float)), f"{sheet}!{ref} {formula}: {found!r}"
        assert isinstance(expected, (int, float)), f"{sheet}!{ref} {formula}: cached {expected!r}"
        assert close(expected, found), f"{sheet}!{ref} {formula}: cached {expected!r}, LibreOffice {found!r}"
    return len(formulas)


def assert_compare_sheets_equal_engine(lesson, recalculated: Path, manifest: dict) -> None:
    """An optimizers-kind workbook recalculated by LibreOffice: every formula column of every run's step
    sheet equals an engine run made here (nothing read from the workbook), step by step."""
    from sheetsgd.compare_lesson import train_compare
    from sheetsgd.spec import step_columns

    values = cell_values(recalculated)
    trace = train_compare(lesson)
    for name, les in lesson.lessons().items():
        info = manifest["sheets"][name]
        sheet = values[info["sheet"]]
        for column in step_columns(les):
            if column.formula is None:
                continue
            letter = info["columns"][column.key]["column"]
            for i, expected in enumerate(trace.traces[name].steps[column.key]):
                found = sheet.get(f"{letter}{info['first_step_row'] + i}")
                assert isinstance(found, (int, float)), (name, column.key, i + 1, found)
                assert close(expected, found), (name, column.key, i + 1, expected, found)
