"""Each block's columns are found by their headers: a helper column inserted inside a table (by real
LibreOffice, which moves every reference past it) leaves correct work correct, for every kind of sheet
(a data lesson's Steps, a Titanic lesson's Steps and Examples, penguins' Examples with Σe before p, an
optimizer sheet, collab-filter's Train and Users); a column deleted stops the check with one line naming
it (exit 2), never a report on misaligned columns."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.column_map import ColumnMap, locate_columns, normal
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student
from sheetsgd.check.rebuild import rebuild
from sheetsgd.check.submission import read_manifest
from sheetsgd.read.workbook import Limits, Workbook

from conftest import require_libreoffice

# lesson: small options, and (sheet, key of the column the helper goes before) for each insertion
INSERTS = {
    "linear": ({"epochs": 1}, [("Steps", "grad_a")]),
    "titanic-logistic": ({"epochs": 1}, [("Steps", "loss"), ("Examples", "dloss")]),
    "penguins-softmax": ({"epochs": 1}, [("Examples", "p1")]),  # Σe before p
    "optimizers": ({"epochs": 1}, [("Adam", "new_a"), ("SGD", "grad_b")]),
    "collab-filter": ({"epochs": 2}, [("Train", "dz"), ("Users", "grad_f1")]),
    "attention": ({"epochs": 1}, [("Examples", "ds1_1"), ("Steps", "new_wq11")]),
}
# lesson: (sheet, key of the column deleted)
DELETES = {"linear": ("Steps", "loss"), "titanic-logistic": ("Examples", "pc")}


def test_headers_place_columns_past_helpers_and_refuse_a_gap():
    columns = {"a": [0, "x"], "b": [1, "y"], "c": [2, "new a"], "d": [3, "new b"]}
    # a helper inserted between y and new a: everything after it moves one to the right
    found, missing = locate_columns(columns, {1: "x", 2: "y", 3: "my helper", 4: "new a", 5: "new b"})
    assert found == {"a": 1, "b": 2, "c": 4, "d": 5} and missing == []
    # new a's header renamed but its neighbours in place: it is where they say
    found, missing = locate_columns(columns, {1: "x", 2: "y", 3: "mine", 4: "new b"})
    assert found["c"] == 3 and missing == []
    # new a deleted: its neighbours are adjacent, there is no place for it
    found, missing = locate_columns(columns, {1: "x", 2: "y", 3: "new b"})
    assert missing == ["c"]
    # a header written twice in a block (side-by-side tables) is matched in order, past a helper
    twice = {"p": [0, "z"], "q": [1, "loss"], "r": [3, "z"], "s": [4, "loss"]}
    found, missing = locate_columns(twice, {1: "z", 2: "loss", 4: "z", 5: "helper", 6: "loss"})
    assert found == {"p": 1, "q": 2, "r": 4, "s": 6} and missing == []
    assert normal("  New\u00a0A ") == "new a"
    cmap = ColumnMap(0)
    cmap.add(0, 1)
    cmap.add(5, 8)  # two columns inserted before the sixth
    assert cmap(0) == 1 and cmap(5) == 8 and cmap(6) == 9 and cmap(1) == 2  # a column no block owns


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """{(lesson, "insert"|"delete"): the correctly filled student version edited in LibreOffice}."""
    require_libreoffice()
    from lo_columns import edit_columns

    root = tmp_path_factory.mktemp("columns")
    jobs, out = [], {}
    for name, (options, inserts) in INSERTS.items():
        lesson = kinds.load(name, **options)
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        filled = root / f"{name}-filled.xlsx"
        fill_xml_sheets(str(student), str(filled), fill_sheets(str(student)))
        book = Workbook(str(student))
        manifest, sheet = read_manifest(book)
        _, blocks, _ = rebuild(str(student), book, manifest, sheet, Limits())
        where = {}
        for b in blocks:
            for c in b.columns:
                where.setdefault((b.sheet, c.key), (c.col, b.header_row, b.last_row, c.header))
        edits = []
        for sheet_name, key in inserts:
            col, header_row, last_row, _ = where[(sheet_name, key)]
            edits.append(("insert", sheet_name, col, header_row, last_row))
        out[(name, "insert")] = root / f"{name}-insert.xlsx"
        jobs.append((filled, out[(name, "insert")], edits))
        if name in DELETES:
            sheet_name, key = DELETES[name]
            out[(name, "delete")] = root / f"{name}-delete.xlsx"
            out[(name, "deleted header")] = where[(sheet_name, key)][3]
            jobs.append((filled, out[(name, "delete")], [("delete", sheet_name, where[(sheet_name, key)][0])]))
    edit_columns(jobs)
    return out


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(INSERTS))
def test_a_helper_column_inside_a_table_leaves_correct_work_correct(edited, name):
    report = check(edited[(name, "insert")])
    assert report.status == "correct" and report.exit_code == 0, report.to_text()[:3000]
    correct, total = report.score
    assert total > 0 and correct == total and report.formulas_right == total
    moved = [c for c in report.columns if c.sheet in {s for s, _ in INSERTS[name][1]}]
    assert moved  # the edited sheets were judged, at the columns' new places
    result = CliRunner().invoke(cli, ["check", str(edited[(name, "insert")])])
    assert result.exit_code == 0, result.output[-2000:]


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(DELETES))
def test_a_deleted_column_cannot_be_checked_and_is_named(edited, name):
    path = edited[(name, "delete")]
    header = edited[(name, "deleted header")]
    report = check(path)
    assert report.status == "error" and report.exit_code == 2
    assert f"column {header!r}" in report.message and "not found on" in report.message, report.message
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2 and f"column {header!r}" in result.output and "\n" not in result.output.strip()
