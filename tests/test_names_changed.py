"""A defined name the lesson writes (lr, sgd_lr, …) widened to a range, pointed at a cell without a number,
or deleted: the cells that read it cannot be judged, so they count as not right under both scores (never
leaving the total), the name is reported (``input_name_changed``) and the grade is below 1 — with and
without saved values, for every kind. A name pointed at another cell holding a number is an input like
any other: its cells are judged with that number, and the change is noted."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student
from sheetsgd.grade.batch import row_for

READ_BY_EXERCISE = {"run2_lr": "run2_lr"}  # too-high: run 2's lr is the one the exercise columns read
LESSONS = {"linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1}, "penguins-softmax": {"epochs": 1},
           "optimizers": {"epochs": 1}, "collab-filter": {"epochs": 2}, "too-high": {},
           "attention": {"epochs": 1}}


def set_name(src: Path, dst: Path, name: str, target: str | None) -> Path:
    """A copy whose defined name ``name`` refers to ``target`` (None: the name deleted), as Name Manager
    would leave it: only workbook.xml changes, every cell keeps its formula and saved value."""
    pattern = re.compile(r'<definedName(?![^>]*localSheetId)[^>]*\sname="' + re.escape(name) + r'"[^>]*>[^<]*</definedName>')
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                text = data.decode("utf-8")
                new, n = pattern.subn("" if target is None else f'<definedName name="{name}">{target}</definedName>',
                                      text)
                assert n == 1, f"no defined name {name} in {src}"
                data = new.encode("utf-8")
            zout.writestr(item, data)
    return dst


def lr_name(path: Path) -> tuple[str, str, int, int]:
    """(name, sheet, row, column) of the lesson's first learning-rate name."""
    from sheetsgd.check.rebuild import name_cells
    from sheetsgd.read.workbook import Workbook

    cells = name_cells(Workbook(str(path)))
    name = next(n for n in sorted(cells, key=lambda n: n != READ_BY_EXERCISE.get(n)) if n.lower().endswith("lr"))
    return (name, *cells[name])


def _quoted(sheet: str) -> str:
    return f"'{sheet}'" if re.search(r"[^A-Za-z0-9_]", sheet) else sheet


def _letters(col: int) -> str:
    from sheetsgd.read.workbook import column_letters

    return column_letters(col)


_FILLED: dict[str, Path] = {}


def filled(name: str, root: Path) -> Path:
    """The lesson's student version filled in correctly, formulas only (no saved values)."""
    if name not in _FILLED:
        lesson = kinds.load(name, **LESSONS[name])
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        _FILLED[name] = fill_xml_sheets(str(student), str(root / f"{name}-filled.xlsx"), fill_sheets(str(student))) \
            or root / f"{name}-filled.xlsx"
    return _FILLED[name]


def assert_name_reported(path: Path, name: str) -> None:
    report = check(path)
    assert report.status == "mistakes" and report.exit_code == 1, report.to_text()[:2000]
    changed = [m for m in report.mistakes if m["mistake"] == "input_name_changed"]
    assert changed and all(f"defined name {name} " in m["title"] for m in changed), report.to_text()[:2000]
    correct, total = report.score
    reading = [c for c in report.columns if (c.sheet, c.key) in {(m["sheet"], m["column"]) for m in changed}]
    assert reading and all(c.correct == c.local_correct == 0 for c in reading)  # not right, and still counted
    assert total > 0 and correct < total and report.formulas_right < total
    row = row_for(path, report.to_dict())
    assert row["grade"] < 1 and row["score"] < 1


@pytest.mark.parametrize("name", sorted(LESSONS))
def test_a_widened_redirected_or_deleted_name_is_reported_without_saved_values(name, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"names-{name}")
    path = filled(name, root)
    assert check(path).status == "correct"
    lr, sheet, row, col = lr_name(path)
    here = f"{_quoted(sheet)}!${_letters(col)}${row}"
    widened = f"{_quoted(sheet)}!${_letters(col)}${row}:${_letters(col)}${row + 1}"
    text_cell = f"{_quoted(sheet)}!${_letters(col - 1)}${row}"  # the name's label: text, no number
    assert set_name(path, root / "same.xlsx", lr, here) and check(root / "same.xlsx").status == "correct"
    for tag, target in (("widened", widened), ("text", text_cell), ("deleted", None)):
        assert_name_reported(set_name(path, root / f"{tag}.xlsx", lr, target), lr)


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", ["linear", "titanic-logistic", "collab-filter"])
def test_a_widened_or_redirected_name_is_reported_with_saved_values(name, tmp_path_factory, recalc):
    root = tmp_path_factory.mktemp(f"names-saved-{name}")
    [saved] = recalc(recalc([filled(name, root)]))
    report = check(saved)
    assert report.status == "correct" and report.recalculated_by is None, report.to_text()[:2000]
    lr, sheet, row, col = lr_name(saved)
    widened = f"{_quoted(sheet)}!${_letters(col)}${row}:${_letters(col)}${row + 1}"
    assert_name_reported(set_name(saved, root / "widened.xlsx", lr, widened), lr)
    assert_name_reported(set_name(saved, root / "text.xlsx", lr, f"{_quoted(sheet)}!${_letters(col - 1)}${row}"), lr)
    # pointed at another number: a redirected input, never judged as the lesson's
    assert_name_reported(set_name(saved, root / "other.xlsx", lr, f"{_quoted(sheet)}!${_letters(col)}${row + 1}"), lr)


def test_a_name_pointed_at_another_number_is_reported(tmp_path):
    """Without saved values too: the file is recalculated, but a name redirected to another cell holding a
    number is no input changed in its cell: its cells are not right, the name reported."""
    path = filled("linear", tmp_path)
    lr, sheet, row, col = lr_name(path)
    moved = set_name(path, tmp_path / "moved.xlsx", lr, f"{sheet}!${_letters(col)}${row + 1}")
    assert_name_reported(moved, lr)
    report = check(moved)
    assert any(f"defined name {lr} refers to {sheet}!${_letters(col)}${row + 1}" in m["title"] for m in report.mistakes)
