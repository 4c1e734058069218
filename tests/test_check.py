"""`sheetsgd check` through a real spreadsheet: student versions filled in (correctly and with each
catalogued mistake), recalculated and saved by LibreOffice, then checked.

Each mistake must be named at the right column and first step, as the only root cause: the cells
that go wrong because of it are knock-ons. The same holds after LibreOffice itself inserts rows and
columns and renames and reorders sheets, and for files saved by openpyxl (no cached values), which
the embedded engine recalculates.
"""
from __future__ import annotations

import json
import re
import zipfile

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_cells, fill_openpyxl, fill_xml
from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.check.mistakes.catalogue import CATALOGUE
from sheetsgd.lessons.sgd.spec import step_columns
from sheetsgd.lessons.sgd.student import resolve_exercise
from sheetsgd.lessons.sgd.workbook import build_workbook

from lo_edit import insert_rows_and_rename

LESSONS = {  # name: (lesson, exercise columns or None for the template's)
    "linear": (lambda: override(load_lesson("linear"), epochs=2), None),
    "quadratic": (lambda: override(load_lesson("quadratic"), epochs=5), None),
    "adam": (lambda: override(load_lesson("linear"), optimizer="adam", epochs=1), "m_a,v_a,mhat_a,new_a,new_b"),
}
# (lesson, flaw, first wrong step); templates given only for mistakes that are not a catalogue edit
FLAWS = [
    ("linear", Flaw("update_sign_flipped", "new_a"), 1),
    ("linear", Flaw("lr_missing", "new_b"), 1),
    ("linear", Flaw("mse_factor_2_missing", "grad_a"), 1),
    ("linear", Flaw("feature_missing", "grad_a"), 1),
    ("linear", Flaw("wrong_feature", "grad_b"), 1),
    ("linear", Flaw("error_reversed", "err"), 1),
    ("linear", Flaw("gradient_negated", "grad_b"), 1),
    ("linear", Flaw("stale_parameter", "new_a"), 1),
    ("linear", Flaw("lr_relative", "new_a"), 2),
    ("linear", Flaw("own_row_update", "err", "{new_a}*{x}+{new_b}-{y}"), 1),
    ("linear", Flaw("wrong_row", "grad_b", "{prev:dloss}"), 1),
    ("linear", Flaw("constant_typed", "new_b"), 1),
    ("linear", Flaw("blank", "grad_a"), 30),
    ("quadratic", Flaw("sum_instead_of_mean", "grad_a"), 1),
    ("quadratic", Flaw("mse_factor_2_missing", "grad_b"), 1),
    ("quadratic", Flaw("feature_missing", "grad_b"), 1),
    ("quadratic", Flaw("wrong_feature", "grad_a"), 1),
    ("adam", Flaw("bias_correction_omitted", "new_a"), 1),
    ("adam", Flaw("bias_correction_omitted", "mhat_a"), 1),
    ("adam", Flaw("beta_swapped", "m_a"), 1),
    ("adam", Flaw("not_squared", "v_a"), 1),
    ("adam", Flaw("sqrt_missing", "new_b"), 1),
]


def flaw_id(lesson, flaw):
    return f"{lesson}-{flaw.mistake}-{flaw.column}" if flaw else f"{lesson}-correct"


@pytest.fixture(scope="module")
def made(tmp_path_factory, recalc):
    """Student versions, fills written into their XML, all recalculated by LibreOffice in one call."""
    root = tmp_path_factory.mktemp("check")
    students, lessons, filled = {}, {}, {}
    for name, (make, exercise) in LESSONS.items():
        lesson = lessons[name] = make()
        students[name] = root / f"{name}-student.xlsx"
        build_workbook(lesson, students[name], exercise=resolve_exercise(lesson, exercise))
    (root / "in").mkdir()
    cases = [(name, None) for name in LESSONS] + [(n, f) for n, f, _ in FLAWS] + [("linear", Flaw("hard_coded", "new_a"))]
    for name, flaw in cases:
        path = root / "in" / f"{flaw_id(name, flaw)}.xlsx"
        fill_xml(str(students[name]), str(path), fill_cells(str(students[name]), flaw))
        filled[flaw_id(name, flaw)] = path
    saved = dict(zip(filled, recalc(list(filled.values()))))
    return {"root": root, "students": students, "lessons": lessons, "saved": saved}


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def root_causes(report):
    return [(m["column"], m["mistake"], m["step"]) for m in report.mistakes]


@pytest.mark.parametrize("name", list(LESSONS))
def test_correct_submission_passes(made, name):
    path = made["saved"][f"{name}-correct"]
    code, out = run("check", path)
    assert code == 0, out
    report = check(str(path))
    assert report.recalculated_by is None  # LibreOffice stored every value
    correct, total = report.score
    assert correct == total == len(report.lesson["exercise"]) * report.lesson["steps"] > 0
    # an independent engine run agrees with the values the checker accepted (read here with openpyxl)
    lesson = made["lessons"][name]
    trace = train(lesson)
    key = report.lesson["exercise"][-1]
    header = next(c.header for c in step_columns(lesson) if c.key == key)
    rows = list(openpyxl.load_workbook(path, data_only=True, read_only=True)["Steps"].iter_rows(values_only=True))
    top = next(i for i, r in enumerate(rows) if r and header in r)
    col = rows[top].index(header)
    found = [rows[top + 2 + i][col] for i in range(trace.n_steps)]
    assert found == pytest.approx(list(trace.steps[key]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name,flaw,step", FLAWS, ids=[flaw_id(n, f) for n, f, _ in FLAWS])
def test_each_mistake_is_the_only_root_cause(made, name, flaw, step):
    path = made["saved"][flaw_id(name, flaw)]
    code, out = run("check", path)
    assert code == 1, out
    assert CATALOGUE[flaw.mistake].title in out
    report = check(str(path))
    assert root_causes(report) == [(flaw.column, flaw.mistake, step)]
    by_key = {c.key: c for c in report.columns}
    assert by_key[flaw.column].status == "root cause"
    assert by_key[flaw.column].first_wrong["step"] <= step
    for c in report.columns:  # every other wrong column is a knock-on of the flawed one
        if c.key != flaw.column and c.correct < c.total:
            assert c.status == "knock-on", (c.key, c.status)
            assert flaw.column in c.knock_on_of
    data = json.loads(run("check", "--json", path)[1])
    assert data["exit_code"] == 1 and data["mistakes"][0]["mistake"] == flaw.mistake
    assert data["mistakes"][0]["formula"] is None or data["mistakes"][0]["formula"].startswith("=")


def test_constant_with_right_value_is_flagged_but_causes_no_knock_ons(made):
    report = check(str(made["saved"]["linear-constant_typed-new_b"]))
    by_key = {c.key: c for c in report.columns}
    n = report.lesson["steps"]
    assert by_key["new_b"].correct == 0 and by_key["new_b"].total == n
    assert all(c.correct == c.total for c in report.columns if c.key != "new_b")
    assert report.score == (4 * n, 5 * n)  # the pasted values are right, so nothing downstream goes wrong


@pytest.fixture(scope="module")
def edited(made):
    """LibreOffice itself inserts rows and a column, renames and reorders sheets (a Basic macro)."""
    out = {}
    for key in ("linear-correct", "linear-mse_factor_2_missing-grad_a", "quadratic-sum_instead_of_mean-grad_a"):
        out[key] = insert_rows_and_rename(made["saved"][key], made["root"] / f"edited-{key}.xlsx")
    return out


def test_rows_inserted_and_sheets_renamed_by_libreoffice(made, edited):
    book = openpyxl.load_workbook(edited["linear-correct"], read_only=True)
    assert "My SGD" in book.sheetnames and "Steps" not in book.sheetnames and book.sheetnames[0] == "Examples"
    book.close()
    code, out = run("check", edited["linear-correct"])
    assert code == 0, out
    for key in ("linear-mse_factor_2_missing-grad_a", "quadratic-sum_instead_of_mean-grad_a"):
        before, after = check(str(made["saved"][key])), check(str(edited[key]))
        assert root_causes(after) == root_causes(before)
        assert after.score == before.score
        assert after.mistakes[0]["cell"] != before.mistakes[0]["cell"]  # reported where the cell now is


def test_student_version_holds_no_answers(made):
    for name, path in made["students"].items():
        lesson = made["lessons"][name]
        trace = train(lesson)
        report = check(str(path))
        exercise = report.lesson["exercise"]
        with zipfile.ZipFile(path) as z:
            text = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
        # no engine value of an exercise column appears anywhere in the file, in any spelling
        leaked = []
        for key in exercise:
            for v in trace.steps[key][:50]:
                if v != int(v):
                    for spelling in {repr(float(v)), f"{v:.15g}", f"{v:.12g}"}:
                        if len(spelling) > 6 and spelling in text:
                            leaked.append((key, spelling))
        assert not leaked, leaked[:5]
        # the blanks are empty and unlocked; the cells after them cache nothing; the rest keeps its values
        book = openpyxl.load_workbook(path)
        steps = book["Steps"]
        assert steps.protection.sheet and not steps.protection.password
        cols = {c.key: i + 1 for i, c in enumerate(step_columns(lesson))}
        first = next(r for r in range(1, 40) if steps.cell(r, cols["step"]).value == 1)
        for key in exercise:
            cell = steps.cell(first, cols[key])
            assert cell.value is None and cell.protection.locked is False
        intro = "\n".join(str(c.value) for row in book["Introduction"].iter_rows() for c in row if c.value)
        assert "Your task" in intro and "sheetsgd check" in intro
        assert "-lr*" not in intro.replace(" ", "")  # the update formula of step 1 is not shown
        manifest = "\n".join(str(c.value) for row in book["_sheetsgd"].iter_rows() for c in row if c.value)
        assert "=" not in manifest and "lr*" not in manifest  # names and headers only, no formulas
        values = openpyxl.load_workbook(path, data_only=True)["Steps"]
        assert values.cell(first, cols["x" if "x" in cols else "step"]).value is not None
        assert report.status == "mistakes" and {m["mistake"] for m in report.mistakes} == {"blank"}


def test_openpyxl_saved_file_checks_the_same_through_ironcalc(made):
    for key, flaw in (("linear-correct", None), ("linear-feature_missing-grad_a", Flaw("feature_missing", "grad_a")),
                      ("adam-beta_swapped-m_a", Flaw("beta_swapped", "m_a"))):
        name = key.split("-")[0]
        student = made["students"][name]
        path = made["root"] / f"openpyxl-{key}.xlsx"
        fill_openpyxl(str(student), str(path), fill_cells(str(student), flaw))
        with zipfile.ZipFile(path) as z:  # really no cached values in the filled cells
            assert "<v>" not in re.sub(r"<c [^>]*>(?!<f>).*?</c>", "", z.read("xl/worksheets/sheet2.xml").decode())
        no_cache, via_lo = check(str(path)), check(str(made["saved"][key]))
        assert no_cache.recalculated_by == "ironcalc"
        assert root_causes(no_cache) == root_causes(via_lo)
        assert no_cache.score == via_lo.score
        assert [(c.key, c.correct, c.status) for c in no_cache.columns] == \
               [(c.key, c.correct, c.status) for c in via_lo.columns]


def test_recalc_libreoffice_option(made, recalc):
    path = made["root"] / "openpyxl-linear-correct-lo.xlsx"
    fill_openpyxl(str(made["students"]["linear"]), str(path), fill_cells(str(made["students"]["linear"])))
    report = check(str(path), recalc="libreoffice")
    assert report.recalculated_by == "libreoffice" and report.status == "correct"


def test_strict_catches_pasted_values_and_typed_inputs(made):
    pasted = made["saved"]["linear-constant_typed-new_b"]
    code, out = run("check", "--strict", pasted)
    assert code == 1 and "Strict" in out
    hard = made["saved"]["linear-hard_coded-new_a"]
    assert run("check", hard)[0] == 0  # the typed lr gives the right values for this lr…
    report = check(str(hard), strict=True)
    assert report.exit_code == 1  # …but not for another one
    assert [(m["column"], m["mistake"]) for m in report.mistakes] == [("new_a", "hard_coded")]
    assert "0.0001" in report.mistakes[0]["formula"]
    correct = check(str(made["saved"]["linear-correct"]), strict=True)
    assert correct.exit_code == 0 and not correct.strict["mismatches"]


def test_a_student_who_changes_lr_and_is_right_passes(made, recalc):
    src = made["root"] / "in" / "linear-correct.xlsx"
    book = openpyxl.load_workbook(src)
    book["Steps"]["B4"] = 3e-4
    changed = made["root"] / "lr" / "linear-lr.xlsx"
    changed.parent.mkdir(exist_ok=True)
    book.save(changed)
    [saved] = recalc([changed])
    report = check(str(saved))
    assert report.exit_code == 0 and report.lesson["inputs"]["lr"] == 3e-4
    reference = check(str(made["saved"]["linear-correct"]))
    assert reference.lesson["inputs"]["lr"] == 1e-4


def test_cannot_check_answers_in_one_line(made, tmp_path):
    not_lesson = tmp_path / "plain.xlsx"
    wb = openpyxl.Workbook()
    wb.active["A1"] = 1
    wb.save(not_lesson)
    code, out = run("check", not_lesson)
    assert code == 2 and "manifest" in out and out.count("\n") == 1 and "Traceback" not in out
    code, out = run("check", tmp_path / "missing.xlsx")
    assert code == 2 and "no such file" in out


FULL_CASES = [(lesson, opt, batch, {}) for lesson in ("linear", "quadratic") for opt in
              ("sgd", "momentum", "rmsprop", "adam", "adamw") for batch in (1, "full")] + [
    ("linear", "momentum", 4, {"nesterov": 1.0, "weight_decay": 0.05, "dampening": 0.5}),
    ("linear", "adam", 1, {"bias_correction": 0.0, "weight_decay": 0.01}),
    ("quadratic", "sgd", 6, {"shuffle": True}),
    ("linear", "rmsprop", 1, {"loss": "mae"}),
]


@pytest.mark.parametrize("name,opt,batch,extra", FULL_CASES)
def test_full_workbooks_check_clean_in_every_layout(tmp_path, name, opt, batch, extra):
    """The writer's own workbooks (engine values cached) pass: the local evaluation of every template of
    every optimizer, loss and batch layout agrees with the engine, and a broken cache is caught."""
    from sheetsgd.lessons.sgd.lesson import with_optimizer

    extra = dict(extra)
    lesson = override(load_lesson(name), optimizer=opt, batch_size=batch, epochs=2,
                      shuffle=extra.pop("shuffle", None), loss=extra.pop("loss", None))
    if extra:
        lesson = with_optimizer(lesson, opt, **{**lesson.optimizer_tables.get(opt, {}), **extra})
    path = tmp_path / "full.xlsx"
    build_workbook(lesson, path)
    report = check(str(path))
    assert report.exit_code == 0, report.to_text()
    assert report.score[0] == report.score[1] > 0
    # a wrong cached value in the middle of an update column is a root cause at that very step
    key = next(c.key for c in step_columns(lesson) if c.key.startswith("new_"))
    from sheetsgd.check.submission import locate

    ref = locate(str(path)).cell_ref(key, report.lesson["steps"] // 2)
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(broken, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                data = re.sub(rf'(<c r="{ref}"[^>]*><f>[^<]*</f><v>)[^<]*', r"\g<1>12345", data.decode()).encode()
            zout.writestr(item, data)
    bad = check(str(broken))  # (the next row's parameter, cached from the true value, does not follow either)
    assert bad.exit_code == 1 and bad.mistakes[0]["column"] == key and bad.mistakes[0]["cell"] == ref


def _as_shared_formulas(src, dst, letters, first_row):
    """Rewrite columns as Excel stores a filled-down formula: a master with t="shared" and followers
    that only name it (their formula text is the master's, moved)."""
    def edit(text):
        for letter in letters:
            def one(m):
                row = int(m.group(2))
                if row == first_row:
                    return f'<c r="{letter}{row}"{m.group(3)}><f t="shared" ref="{letter}{row}:{letter}9999" ' \
                           f'si="{letter}">{m.group(4)}</f>'
                return f'<c r="{letter}{row}"{m.group(3)}><f t="shared" si="{letter}"/>'
            text = re.sub(rf'<c r="({letter})(\d+)"([^>]*)><f[^>]*>([^<]*)</f>', one, text)
        return text
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                data = edit(data.decode()).encode()
            zout.writestr(item, data)


def test_excel_shared_formulas(made):
    """Excel writes a filled-down column as one shared formula: the checker reads the followers' formulas."""
    for key, expect in (("linear-correct", []), ("linear-lr_relative-new_a", [("new_a", "lr_relative", 2)])):
        src = made["saved"][key]
        dst = made["root"] / f"shared-{key}.xlsx"
        _as_shared_formulas(src, dst, ["I", "L", "N", "P", "Q"], 9)
        with zipfile.ZipFile(dst) as z:
            assert z.read("xl/worksheets/sheet2.xml").count(b'<f t="shared" si=') > 100
        report = check(str(dst))
        assert root_causes(report) == expect
        if expect:
            assert report.mistakes[0]["formula"] == "=F10-B5*L10"  # the master =F9-B4*L9, moved one row


@pytest.mark.parametrize("name,column", [("bob-sign-flipped", "new_a"), ("carol-factor-2-missing", "grad_a"),
                                         ("frank-x-missing", "grad_a")])
def test_formulas_right_forgives_knock_ons(name, column):
    """One wrong column: every other exercise column's formulas are right given the student's own values,
    so "formulas right" is all cells but that column's, while the value score also loses the knock-ons."""
    from pathlib import Path

    from sheetsgd.check.checker import check

    path = Path(__file__).resolve().parent.parent / "examples" / "submissions" / f"{name}.xlsx"
    report = check(str(path))
    assert report.status == "mistakes" and [m["column"] for m in report.mistakes] == [column]
    correct, total = report.score
    exercise = [c for c in report.columns if c.exercise]
    steps = total // len(exercise)  # every exercise column has one cell per step
    assert report.formulas_right == total - steps  # only the root-cause column's cells
    assert correct < report.formulas_right
    assert report.to_dict()["score"]["formulas_share"] == pytest.approx(report.formulas_right / total)
