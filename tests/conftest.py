"""Shared fixtures: building lesson workbooks and recalculating them in real LibreOffice."""
from __future__ import annotations

import json
import math
from pathlib import Path

import openpyxl
import pytest

from sheetsgd.check.recalc.libreoffice import libreoffice_path, recalc_libreoffice

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


@pytest.fixture(scope="session", autouse=True)
def _report_audit_file(tmp_path_factory):
    """Every check report any test makes — in this process, a grade worker or a CLI subprocess — is checked
    against the grading invariant (sheetsgd.check.report.invariant_breach); breaches land in this file."""
    import os

    from sheetsgd.check.report import AUDIT_ENV

    path = tmp_path_factory.mktemp("audit") / "breaches.txt"
    path.touch()
    os.environ[AUDIT_ENV] = str(path)
    yield path
    os.environ.pop(AUDIT_ENV, None)


@pytest.fixture(autouse=True)
def _report_invariant(_report_audit_file):
    """A test whose reports break the invariant (status "correct" ⇔ every exercise cell right ⇔ grade 1.0 ⇔
    score 1.0) fails, naming the report."""
    before = _report_audit_file.stat().st_size
    yield
    with open(_report_audit_file, encoding="utf-8") as fh:
        fh.seek(before)
        breaches = fh.read().strip()
    if breaches:
        pytest.fail("a report breaks the grading invariant: " + breaches[:2000], pytrace=False)


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
    from sheetsgd.lessons.compare import train_compare
    from sheetsgd.lessons.sgd.spec import step_columns

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


def build_and_recalc(recalc, folder: Path, lessons: dict) -> dict:
    """{key: (built path, LibreOffice-recalculated path)} of lessons built into ``folder`` by their kind's
    writer, recalculated in one LibreOffice run."""
    from sheetsgd.lessons import kinds

    paths = {}
    for key, lesson in lessons.items():
        paths[key] = folder / f"{key}.xlsx"
        kinds.kind_of(lesson).build(lesson, paths[key])
    return dict(zip(paths, zip(paths.values(), recalc(list(paths.values())))))


def assert_steps_equal_engine(path: Path, recalculated: Path, trace, keys) -> None:
    """The recalculated Steps sheet's columns ``keys`` (found through the workbook's manifest) equal an
    engine run's, step by step; and no cell of any sheet shows an error value."""
    from sheetsgd.check.submission import read_manifest as manifest_of
    from sheetsgd.read.workbook import Workbook

    fresh = cell_values(recalculated)
    manifest, _ = manifest_of(Workbook(str(path)))  # long values continue on the rows below their key
    first = manifest["first_step_row"]
    for key in keys:
        column = manifest["columns"][key]["column"]
        for t, expected in enumerate(trace.steps[key]):
            assert close(expected, fresh["Steps"][f"{column}{first + t}"]), (key, t + 1)
    errors = [(s, r, v) for s, cells in fresh.items() for r, v in cells.items() if isinstance(v, str) and v.startswith("#")]
    assert not errors, errors[:5]
