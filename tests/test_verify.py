"""Verdicts that cannot be fooled by saved values, and checks that are bounded and contained.

Every formula cell the checker reads must hold the value its *own* formula computes from the file's values:
a zip edit that replaces formulas by ``0*A1`` while keeping the saved values fails (exit 1, the cells named),
for every lesson kind, in exercise and in given columns; an equivalent rewrite passes. Recalculations run in
child processes under ``--timeout``: a slow engine ends in one line, a formula nested 3,000 deep too.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from forge import forge, share_column
from sheetsgd import api
from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student

# a lesson of every kind (small options), and the bundled titanic-logistic for --strict
KINDS = {"linear": {"epochs": 1}, "too-high": {"epochs": 8}, "optimizers": {"epochs": 1},
         "lr-finder": {"epochs": 30}, "titanic-logistic": {"epochs": 1}, "collab-filter": {"epochs": 2},
         "conv": {"epochs": 1}}
BUNDLED = "titanic-logistic-bundled"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, recalc):
    """{name: the student version filled in correctly and saved by LibreOffice}, plus {name + '-filled'}: the
    same filled in through the XML only (no computed values)."""
    root = tmp_path_factory.mktemp("verify")
    (root / "in").mkdir()
    out = {}
    for name, options in list(KINDS.items()) + [(BUNDLED, None)]:
        lesson = kinds.load("titanic-logistic") if options is None else kinds.load(name, **options)
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        filled = root / "in" / f"{name}.xlsx"
        fill_xml_sheets(str(student), str(filled), fill_sheets(str(student)))
        out[f"{name}-filled"] = root / f"{name}-filled.xlsx"
        shutil.copy(filled, out[f"{name}-filled"])
    # twice: LibreOffice's recalculation on load across sheets settles in a second pass (see test_every_lesson_checks)
    out.update({p.stem: p for p in recalc(recalc(sorted((root / "in").glob("*.xlsx"))))})
    return out


def _exercise_letters(report) -> dict[str, list[str]]:
    out = {}
    for c in report.columns:
        if c.exercise:
            out.setdefault(c.sheet, []).append(c.letter)
    return out


def _run(*args):
    result = CliRunner().invoke(cli, ["check", *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(KINDS))
def test_forged_saved_values_fail_naming_the_cells(saved, name, tmp_path):
    correct = check(saved[name])
    assert correct.status == "correct", correct.to_text()[:2000]
    assert correct.recalculated_by is None  # every saved value followed from its formula: no engine was needed
    letters = _exercise_letters(correct)
    forged = tmp_path / "forged.xlsx"
    assert forge(saved[name], forged, letters) > 0
    code, out = _run("--json", forged)
    assert code == 1, out[:2000]
    report = json.loads(out)
    flagged = {(m["sheet"], m["letter"]) for m in report["mistakes"] if m["mistake"] == "value_not_from_formula"}
    assert flagged == {(sheet, letter) for sheet, ls in letters.items() for letter in ls}, report["mistakes"]
    for m in (m for m in report["mistakes"] if m["mistake"] == "value_not_from_formula"):
        assert m["not_following"] and all(re.fullmatch(m["letter"] + r"\d+", c["cell"]) for c in m["not_following"]), m
    assert report["score"]["correct"] < report["score"]["total"]
    code, text = _run(forged)
    assert code == 1 and "does not follow from the cell's own formula" in text and "cells: " in text, text[:2000]


def _examples_formulas(path: Path) -> dict[str, str]:
    """{column letter: formula} of the Examples sheet's first example row."""
    ws = openpyxl.load_workbook(path, read_only=True)["Examples"]
    row = next(r for r in ws.iter_rows(min_row=2, max_row=2))
    return {c.column_letter: c.value for c in row if isinstance(c.value, str) and c.value.startswith("=")}


@pytest.mark.libreoffice
def test_equivalent_rewrites_still_pass(saved, tmp_path):
    path = saved["titanic-logistic"]
    formulas = _examples_formulas(path)
    [(sigmoid, z)] = [(letter, re.fullmatch(r"=1/\(1\+EXP\(-([A-Z]+)2\)\)", f).group(1))
                      for letter, f in formulas.items() if re.fullmatch(r"=1/\(1\+EXP\(-([A-Z]+)2\)\)", f)]
    [(dz, dp, p)] = [(letter, *re.fullmatch(r"=([A-Z]+)2\*([A-Z]+)2\*\(1-\2+2\)", f).groups())
                     for letter, f in formulas.items() if re.fullmatch(r"=([A-Z]+)2\*([A-Z]+)2\*\(1-\2+2\)", f)]
    one = tmp_path / "one.xlsx"
    forge(path, one, {"Examples": [sigmoid]}, f"EXP({z}{{r}})/(1+EXP({z}{{r}}))")
    both = tmp_path / "both.xlsx"
    assert forge(one, both, {"Examples": [dz]}, f"{dp}{{r}}*({p}{{r}}-{p}{{r}}^2)") > 0
    code, out = _run(both)
    assert code == 0, out[:3000]


@pytest.mark.libreoffice
def test_a_forged_given_column_is_caught(saved, tmp_path):
    """A given column forged where exercise cells read it (the Steps updates the Examples rows read): those
    cells are judged on the recalculated values, so the file is not correct and the forged cells are named.
    A given column no exercise cell reads (the accuracy's per-row 'correct'): reported, the grade untouched
    (status follows the exercise cells alone)."""
    path = saved["titanic-logistic"]
    report = check(path)
    updates = [c.letter for c in report.columns if c.sheet == "Steps" and not c.exercise and c.key.startswith("new_")]
    assert updates
    forged = tmp_path / "forged.xlsx"
    assert forge(path, forged, {"Steps": updates[:1]}) > 0
    code, out = _run("--json", forged)
    assert code == 1, out[:2000]
    mistakes = json.loads(out)["mistakes"]
    assert any(m["mistake"] == "value_not_from_formula" and m["letter"] == updates[0] for m in mistakes), mistakes

    formulas = _examples_formulas(path)
    unread = [c.letter for c in report.columns if c.sheet == "Examples" and c.key == "correct" and c.letter in formulas]
    assert unread
    aside = tmp_path / "aside.xlsx"
    assert forge(path, aside, {"Examples": unread}) > 0
    code, out = _run("--json", aside)
    assert code == 0, out[:2000]
    notes = json.loads(out)["notes"]
    assert any("outside the exercise" in n and "does not follow from the cell's own formula" in n
               and f"({unread[0]}2)" in n for n in notes), notes


@pytest.mark.libreoffice
def test_strict_titanic_as_bundled_finishes_within_its_timeout(saved):
    code, out = _run("--strict", "--timeout", "60", saved[BUNDLED])
    assert code == 0, out[-2000:]
    assert "Strict:" in out


def _deep(tmp_path: Path, src: Path, letters: dict) -> Path:
    sheet, [letter, *_] = next(iter(letters.items()))
    deep = tmp_path / f"deep-{src.stem}.xlsx"
    assert forge(src, deep, {sheet: [letter]}, "(" * 3000 + "A1" + ")" * 3000, rows=(1, 30)) > 0
    return deep


def _one_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out[:2000]
    return lines[0]


@pytest.mark.libreoffice
def test_a_formula_nested_3000_deep_is_one_line_not_a_crash(saved, tmp_path, monkeypatch):
    letters = _exercise_letters(check(saved["linear"]))
    deep = _deep(tmp_path, saved["linear"], letters)
    code, out = _run(deep)
    assert code == 1 and "nested 3,000 parentheses deep" in out, out[:2000]  # the cell is named, never right
    report = api.check(deep)
    assert report.status == "mistakes" and report.score[0] < report.score[1]
    for args in (["--recalc", "ironcalc"], ["--strict"]):  # no engine ever sees it
        code, out = _run(*args, deep)
        assert code == 2 and "nested 3,000 parentheses deep" in _one_line(out), out[:2000]
    assert api.check(deep, recalc="ironcalc").status == "error"
    monkeypatch.setattr("sheetsgd.check.recalc.child.over_bounds", lambda text: None)  # past the bound, IronCalc
    crashed = api.check(deep, recalc="ironcalc")  # crashes: in its child process, so one line, not our death
    assert crashed.status == "error" and "crashed" in crashed.message, crashed.message
    monkeypatch.undo()
    no_values = _deep(tmp_path, saved["linear-filled"], letters)  # recalculated by IronCalc: refused first
    code, out = _run(no_values)
    assert code == 2 and re.search(r"Steps!\w+\d+", _one_line(out)), out


def _slow_engine(monkeypatch):
    monkeypatch.setenv("SHEETSGD_TEST_ENGINE_DELAY", "120")  # the IronCalc child sleeps before loading


@pytest.mark.libreoffice
@pytest.mark.parametrize("path_args", [("linear-filled", []), ("linear", ["--strict"]), ("linear", ["--recalc", "ironcalc"]),
                                       ("forged", []), ("linear", ["--recalc", "libreoffice"])],
                         ids=["no-values", "strict", "recalc-ironcalc", "verification", "libreoffice"])
def test_timeout_holds_on_every_path(saved, tmp_path, monkeypatch, path_args):
    name, args = path_args
    path = saved.get(name)
    if name == "forged":
        path = tmp_path / "forged.xlsx"
        forge(saved["linear"], path, _exercise_letters(check(saved["linear"])))
    _slow_engine(monkeypatch)
    limit = 0.5 if "libreoffice" in args else 3  # LibreOffice does not start within half a second
    for fmt in ([], ["--json"]):
        start = time.monotonic()
        code, out = _run(*args, "--timeout", limit, *fmt, path)
        took = time.monotonic() - start
        assert code == 2, out[:2000]
        assert took < limit + 8, took
        if fmt:
            report = json.loads(out.splitlines()[0])
            assert report["status"] == "error" and "--timeout" in report["message"]
        else:
            assert "cannot check" in _one_line(out) and "--timeout" in out


def test_forms_read_every_reference_row():
    from sheetsgd.read.formula_forms import Forms, join

    texts = [b"H7-lr*K7", b"LOG10(B$3)+Data!$C$12*A7", b"SUM(A1:A9)/1E5", b"H8-lr*K8", b"H9-lr*K9", b"H10-lr*K11",
             b"H8-lr*K8+1"]
    forms = Forms(*join(texts))
    assert forms.values.tolist() == [7, 7, 3, 12, 7, 1, 9, 8, 8, 9, 9, 10, 11, 8, 8]  # not LOG10's 10, nor 1E5's 5
    assert forms.first.tolist() == [0, 2, 5, 7, 9, 11, 13, 15]
    # the cheap test: equal but for rows of equal widths (H10-lr*K11's rows are wider: told equal by its key)
    assert forms.same_as_previous.tolist() == [False, False, False, False, True, False, False]
    assert [g.tolist() for g in forms.groups(0, 7)] == [[0, 3, 4, 5], [1], [2], [6]]  # K8+1: another form
    assert forms.rows_of(np.array([0, 3, 4, 5])).tolist() == [[7, 7], [8, 8], [9, 9], [10, 11]]
    assert Forms(*join([b"E5+1E5+B.E5"])).values.tolist() == [5]  # the cell E5 only (B.E5 is a name)
    # a row number's place is part of the form: A1+B2 and A12+B are not one form; A1B's 1 is no row
    forms = Forms(*join([b"A1+B2", b"A12+B", b"A3+B4", b"A1B", b"A2B"]))
    assert [g.tolist() for g in forms.groups(0, 5)] == [[0, 2], [1], [3], [4]]
    # a text holding the byte the fast test marks rows with is still told apart (A\xff is not A1)
    forms = Forms(*join([b"A1", b"A\xff", b"A2"]))
    assert forms.same_as_previous.tolist() == [False, False, False]
    assert [g.tolist() for g in forms.groups(0, 3)] == [[0, 2], [1]]


def test_forged_values_in_a_built_workbook_fail(tmp_path):
    """Without LibreOffice: the full workbook as built (its values cached by the engine), formulas swapped."""
    lesson = kinds.load("linear", epochs=1)
    path = tmp_path / "full.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    report = check(path)
    assert report.status == "correct"
    letters = _exercise_letters(report)
    forged = tmp_path / "forged.xlsx"
    assert forge(path, forged, letters, "0*A1+{r}-{r}") > 0
    bad = check(forged)
    assert bad.status == "mistakes" and {m["mistake"] for m in bad.mistakes} == {"value_not_from_formula"}
    rewrite = tmp_path / "rewrite.xlsx"
    assert forge(path, rewrite, letters, "({f})*2/2") > 0  # the same formulas, written otherwise
    assert check(rewrite).status == "correct"


def test_shared_formulas_are_verified_too(tmp_path):
    """Excel saves a filled-down column as one shared formula and followers: each follower's own formula is
    the master's moved to its row."""
    lesson = kinds.load("linear", epochs=1)
    path = tmp_path / "full.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    letter = _exercise_letters(check(path))["Steps"][-1]
    shared = tmp_path / "shared.xlsx"
    share_column(path, shared, "Steps", letter)
    assert check(shared).status == "correct"
    forged = tmp_path / "forged.xlsx"
    share_column(path, forged, "Steps", letter, master="0*A1")
    report = check(forged)
    assert report.status == "mistakes" and [m["mistake"] for m in report.mistakes] == ["value_not_from_formula"]
    assert report.mistakes[0]["letter"] == letter and report.mistakes[0]["cells"] == lesson.n_steps


# every bundled lesson (small options), as in test_autograder's list
EVERY = {"linear": {"epochs": 1}, "quadratic": {"epochs": 3}, "too-high": {}, "optimizers": {"epochs": 1},
         "optimizers-classic": {"epochs": 1}, "one-cycle": {"epochs": 1}, "lr-finder": {}, "lr-finder-titanic": {},
         "titanic-linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1}, "titanic-relu2": {"epochs": 1},
         "titanic-mlp": {"epochs": 1}, "collab-filter": {"epochs": 2}, "weight-decay": {"epochs": 1},
         "penguins-softmax": {"epochs": 1}, "dropout": {"epochs": 2}, "attention": {"epochs": 1}, "conv": {"epochs": 1}}


def test_every_lesson_is_listed():
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    assert set(EVERY) == set(bundled_lessons())


@pytest.mark.parametrize("name", sorted(EVERY))
def test_a_form_that_is_the_lessons_pattern_takes_the_judges_values(name, tmp_path, monkeypatch):
    """Where a cell's own formula reads exactly what the lesson's pattern reads, the verification takes the
    pattern's values (evaluated once, for the judge) instead of evaluating again: they must be the numbers
    its own evaluation gives, bit for bit, and the verdicts those of evaluating every form itself."""
    from sheetsgd.check import own_formulas
    from sheetsgd.check.judge import PatternValues
    from sheetsgd.check.placement import SheetValues, find_blocks
    from sheetsgd.check.rebuild import _names, rebuild
    from sheetsgd.check.submission import read_manifest
    from sheetsgd.read.workbook import Limits, Workbook

    lesson = kinds.load(name, **EVERY[name])
    path = tmp_path / "full.xlsx"
    kinds.kind_of(lesson).build(lesson, path)
    # one cached value forged in every formula column of the first block with formulas (its formula kept: the pattern's)
    book = Workbook(str(path))
    manifest, sheet = read_manifest(book)
    _, blocks, _ = rebuild(str(path), book, manifest, sheet, Limits())
    first = next(b for b in blocks if any(c.is_formula for c in b.columns))
    row = first.first_row + 1 + first.n // 2
    forged = tmp_path / "forged.xlsx"
    forged_cells = {(first.sheet, row, col) for col in
                    _forge_values(path, forged, first.sheet, row, [c.col for c in first.columns if c.is_formula])}
    assert forged_cells

    compared = {"reused": 0, "own": 0}
    original = own_formulas.LessonColumn.values

    def both(self, own, idx):
        reused = original(self, own, idx)
        if reused is not None:
            ctx = own_formulas.OwnContext(self.stores, own.sheet, self.own_names, own.fields, own.wants_text)
            evaluated = own_formulas.column(own.tree, ctx, len(idx))
            assert np.array_equal(reused[0], evaluated[0], equal_nan=True)
            assert np.array_equal(reused[1], evaluated[1], equal_nan=True)
            saved = self.stores[own.sheet].gather(self.patterns.shifts[self.block.sheet].to_student(
                self.block.first_row + 1 + idx), self.patterns.shifts[self.block.sheet].col(self.block.column(self.key).col))
            assert np.array_equal(reused[2], own_formulas.agree(saved, *evaluated))  # the judge's comparison
            compared["reused"] += 1
        else:
            compared["own"] += 1
        return reused

    for file in (path, forged):
        book = Workbook(str(file))
        manifest, sheet = read_manifest(book)
        _, blocks, _ = rebuild(str(file), book, manifest, sheet, Limits())
        shifts = find_blocks(book, [b.manifest() for b in blocks])
        stores = {s.sheet: SheetValues(book.sheet(s.sheet)) for s in shifts.values()}
        names = _names(book, stores)
        patterns = PatternValues(shifts, stores, names)
        plain = own_formulas.verify(book, blocks, shifts, stores, names)
        monkeypatch.setattr(own_formulas.LessonColumn, "values", both)
        monkeypatch.setattr(own_formulas.LessonColumn, "own_names", names, raising=False)
        reusing = own_formulas.verify(book, blocks, shifts, stores, names, patterns)
        monkeypatch.undo()
        for key, c in plain.columns.items():
            r = reusing.columns[key]
            assert (c.suspect == r.suspect).all() and (c.unknown == r.unknown).all(), key
        suspects = {(c.sheet, int(row), c.col - 1) for c in reusing.columns.values()
                    for row in c.rows[np.flatnonzero(c.suspect)]}
        if any(s.missing_cache for s in stores.values()):
            continue  # formulas without saved values: the check recalculates the file instead of verifying it
        # the forged cells, and cells that read them (their own formulas now compute other values)
        assert forged_cells <= suspects if file == forged else not suspects, (name, forged_cells - suspects)
    assert compared["reused"] > 0  # the lesson's own formulas are its patterns


def _forge_values(src: Path, dst: Path, sheet: str, row: int, cols: list[int]) -> list[int]:
    """Copy src to dst with the saved number of the formula cells at ``row`` (1-based) and ``cols`` (0-based)
    changed, formulas kept. Returns the columns changed (cells holding a plain number)."""
    import zipfile

    from forge import sheet_parts
    from sheetsgd.read.workbook import column_letters

    part, changed = sheet_parts(src)[sheet], []

    def swap(m):  # a different change in every column: a column equal to another's stays unequal
        changed.append(cols[[column_letters(c + 1) for c in cols].index(m.group(2))])
        return m.group(1) + repr(float(m.group(3)) * 3 + 7 + changed[-1]) + "</v>"
    cells = "|".join(column_letters(c + 1) for c in cols)
    pattern = re.compile(r'(<c r="(' + cells + r')' + str(row) + r'"(?: s="\d+")?>(?:<f>[^<]*</f>)<v>)([-0-9.Ee+]+)</v>')
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == part:
                data = pattern.sub(swap, data.decode()).encode()
            zout.writestr(item, data)
    return changed
