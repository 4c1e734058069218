"""Every bundled lesson is an exercise: a student version of each, filled in through its XML and
recalculated by real LibreOffice, checks clean when the formulas are right (exit 0) and names the
mistake at the right sheet, column and first step when one column is wrong (exit 1), with no knock-on
reported as a root cause. The full workbook saved by LibreOffice checks clean too, and a weight update
edited to add the lr term instead of subtracting it is caught at that column.
"""
from __future__ import annotations

import math
import shutil

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student

# lesson: options that keep it small, and two catalogued mistakes (column, first step) for its student version
LESSONS = {
    "linear": ({"epochs": 1}, [("update_sign_flipped", "new_a", 1), ("mse_factor_2_missing", "grad_a", 1)]),
    "quadratic": ({"epochs": 3}, [("sum_instead_of_mean", "grad_a", 1), ("feature_missing", "grad_b", 1)]),
    "too-high": ({"epochs": 8}, [("update_sign_flipped", "r2_new", 1), ("lr_missing", "r2_new", 1)]),
    "optimizers": ({"epochs": 1}, [("update_sign_flipped", "Adam:new_a", 1), ("lr_missing", "SGD:new_b", 1)]),
    "one-cycle": ({"epochs": 1}, [("schedule_phase_off_by_one", "One-cycle:lr", 1),
                                  ("schedule_phases_swapped", "One-cycle:beta1", 1)]),
    "optimizers-classic": ({"epochs": 1}, [("update_sign_flipped", "Momentum:new_a", 1),
                                           ("lr_missing", "RMSProp:new_b", 1)]),
    "lr-finder": ({"epochs": 30}, [("lr_additive", "lr", 2), ("bias_correction_omitted", "smooth", 1)]),
    "lr-finder-titanic": ({"epochs": 12}, [("lr_additive", "lr", 2), ("sigmoid_derivative_incomplete", "dz", 1)]),
    "titanic-linear": ({"epochs": 1}, [("mse_factor_2_missing", "dloss", 1), ("error_reversed", "dloss", 1)]),
    "titanic-logistic": ({"epochs": 1}, [("sigmoid_derivative_incomplete", "dz", 1),
                                         ("log_base_swapped", "loss", 1)]),
    "titanic-relu2": ({"epochs": 1}, [("relu_after_sum", "pred", 1), ("relu_derivative_wrong_side", "dz1", 1)]),
    # biases start at 0: a bias left out shows from step 2 on
    "collab-filter": ({"epochs": 2}, [("another_users_gradient", "Users:new_f1", 1), ("bias_missing", "pred_m1", 2),
                                      ("unrated_included", "err_m1", 1), ("y_range_derivative_missing", "dz", 1)]),
    "weight-decay": ({"epochs": 1}, [("weight_decay_missing", "AdamW:new_a", 1), ("weight_decay_missing", "Adam:gwd_b", 1),
                                     ("update_sign_flipped", "Adam:new_a", 1)]),
    "penguins-softmax": ({"epochs": 1}, [("log_base_swapped", "loss", 1), ("softmax_not_normalised", "p2", 1),
                                         ("one_hot_wrong_class", "y_Chinstrap", 0), ("error_reversed", "dz3", 1),
                                         ("bias_gradient_summed_over_classes", "grad_b1", 1)]),
    "dropout": ({"epochs": 2}, [("dropout_scale_missing", "r2", 1), ("dropout_mask_missing_backward", "dz1", 1),
                                ("dropout_in_validation", "Validation:out", 1), ("dropout_scale_missing", "dz3", 1)]),
    "titanic-mlp": ({"epochs": 2}, [("relu_derivative_wrong_side", "dz1", 1), ("sigmoid_derivative_incomplete", "dout", 1)]),
    # an author's lesson (its own CSV and formula): ∂ŷ/∂b at step 1 is 0 (minutes = 0), so its sign shows at step 2
    "own-model": ({"epochs": 1}, [("chain_rule_factor_missing", "dpred_b", 1), ("derivative_negated", "dpred_b", 2),
                                  ("feature_missing", "grad_b", 1)]),
    "attention": ({"epochs": 2}, [("softmax_wrong_axis", "a1_1", 1), ("attention_scale_missing", "s2_3", 1),
                                  ("softmax_jacobian_diagonal", "ds1_2", 1), ("update_sign_flipped", "Steps:new_wq11", 1)]),
    "conv": ({"epochs": 1}, [("filter_flipped", "z1_1_1", 1), ("window_off_by_one", "z2_2_3", 1),
                             ("window_off_by_one", "grad_f1_2_2", 1)]),
}
# lessons that are templates outside the bundle, by their path
SOURCES = {"own-model": str(__import__("pathlib").Path(__file__).resolve().parent.parent / "examples" / "own-model"
                            / "coffee-cooling.toml")}


_BUILT: dict[str, dict] = {}


@pytest.fixture
def made(tmp_path_factory, recalc):
    """made(name) -> {tag: LibreOffice-recalculated file}: the full workbook, the student version filled in
    correctly, and with each of the lesson's mistakes (built once per lesson, one LibreOffice run)."""
    def make(name):
        if name in _BUILT:
            return _BUILT[name]
        options, flaws = LESSONS[name]
        root = tmp_path_factory.mktemp(name)
        (root / "in").mkdir()
        lesson = kinds.load(SOURCES.get(name, name), **options)
        kind = kinds.kind_of(lesson)
        student = root / "student.xlsx"
        build_student(kind, lesson, student, "")
        kind.build(lesson, root / "in" / "full.xlsx")
        shutil.copy(student, root / "in" / "blank.xlsx")
        for flaw in [None] + list(flaws) + list(EXTRA.get(name, [])):
            tag = "correct" if flaw is None else f"{flaw[0]}-{flaw[1].replace(':', '_')}"
            f = None if flaw is None else Flaw(flaw[0], flaw[1], flaw[3] if len(flaw) > 3 else None)
            fill_xml_sheets(str(student), str(root / "in" / f"{tag}.xlsx"), fill_sheets(str(student), f))
        # twice: LibreOffice 7.4's recalculation on load of an .xlsx with stale values is order-dependent
        # across sheets (a cell may read another's stale value once); a second pass starts from settled ones
        _BUILT[name] = {p.stem: p for p in recalc(recalc(sorted(root.joinpath("in").glob("*.xlsx"))))}
        _BUILT[name]["student"] = student
        return _BUILT[name]
    return make


# formulas that are right although they differ from the lesson's own: they must pass
EXTRA = {"titanic-logistic": [("bce_simplified", "dz", 0, "{pred}-{y}")]}


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(LESSONS))
def test_student_version_filled_correctly_checks_clean(made, name):
    report = check(made(name)["correct"])
    assert report.status == "correct", report.to_text()[:3000]
    assert report.exit_code == 0
    assert report.recalculated_by is None, report.notes  # every saved value follows from its own formula
    correct, total = report.score
    assert total > 0 and correct == total


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(LESSONS))
def test_full_workbook_saved_by_libreoffice_checks_clean(made, name):
    report = check(made(name)["full"])
    assert report.status == "correct", report.to_text()[:3000]
    assert not [n for n in report.notes if n.startswith("cannot be judged")], report.notes  # every column evaluates
    assert sum(c.total for c in report.columns) > 0


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(LESSONS))
def test_no_cached_value_gives_an_answer_away(made, name, tmp_path):
    """Every value the student version caches is one LibreOffice computes with the blanks still empty: so
    none of them follows from an answer (a cell that did would recalculate to something else)."""
    files = made(name)
    student = openpyxl.load_workbook(files["student"], read_only=True, data_only=False)
    cached_book = openpyxl.load_workbook(files["student"], read_only=True, data_only=True)
    recalculated = openpyxl.load_workbook(files["blank"], read_only=True, data_only=True)
    checked = 0
    for ws in student.worksheets:
        if ws.title == "_sheetsgd":
            continue
        cached = {c.coordinate: c.value for row in cached_book[ws.title].iter_rows() for c in row
                  if getattr(c, "value", None) is not None}
        again = {c.coordinate: c.value for row in recalculated[ws.title].iter_rows() for c in row
                 if getattr(c, "value", None) is not None}
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("=") and isinstance(cached.get(c.coordinate), float):
                    value, other = cached[c.coordinate], again.get(c.coordinate)
                    assert isinstance(other, (int, float)) and math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), \
                        f"{ws.title}!{c.coordinate} caches {value}, LibreOffice computes {other} with the blanks empty"
                    checked += 1
    assert checked > 0


CASES = [(name, mistake, column, step) for name, (_, flaws) in LESSONS.items()
         for mistake, column, step in flaws]


@pytest.mark.libreoffice
@pytest.mark.parametrize("name,mistake,column,step", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_catalogued_mistake_is_the_one_root_cause(made, name, mistake, column, step):
    report = check(made(name)[f"{mistake}-{column.replace(':', '_')}"])
    assert report.exit_code == 1, report.to_text()[:2000]
    key = column.rpartition(":")[2]
    mine = [m for m in report.mistakes if m["column"] == key and (":" not in column or m["block"] == column.split(":")[0])]
    assert mine, report.to_text()[:2000]
    assert mine[0]["mistake"] == mistake, report.to_text()[:2000]
    assert mine[0]["step"] == step
    others = [m for m in report.mistakes if m is not mine[0]]
    assert not others, f"knock-ons reported as root causes: {[(m['block'], m['column'], m['mistake']) for m in others]}"


@pytest.mark.libreoffice
def test_the_simplified_bce_gradient_passes_too(made):
    """∂loss/∂z written as ŷ − y (the simplified form) instead of ∂loss/∂ŷ · σ′: both right."""
    report = check(made("titanic-logistic")["bce_simplified-dz"])
    assert report.status == "correct", report.to_text()[:2000]


def test_every_bundled_lesson_builds_a_student_version(tmp_path):
    runner = CliRunner()
    for name, (options, _) in LESSONS.items():
        out = tmp_path / f"{name}.xlsx"
        args = ["build", SOURCES.get(name, name), "--exercise", "-o", str(out)] + [x for k, v in options.items() for x in (f"--{k}", str(v))]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert {n for n, _ in [(x, 0) for x in LESSONS]} - set(SOURCES) == {n for n in kinds_names()}


def kinds_names():
    from sheetsgd.lessons.sgd.lesson import bundled_lessons
    return bundled_lessons()


_UPDATES: dict[str, tuple] = {}


@pytest.fixture
def update_flipped(tmp_path_factory, recalc):
    """update_flipped(name) -> (column key, checked report): the lesson's first weight/parameter update column
    written with + lr·g instead of − lr·g in every row (through a student version whose one blank is that
    column), recalculated by LibreOffice (twice, as above)."""
    def make(name):
        if name in _UPDATES:
            return _UPDATES[name]
        options, _ = LESSONS[name]
        lesson = kinds.load(SOURCES.get(name, name), **options)
        kind = kinds.kind_of(lesson)
        probe = kind.build(lesson, None)
        block, key = next((b, c.key) for b in probe.blocks for c in b.columns
                          if c.pattern and (c.key.startswith("new_") or c.key.endswith("_new")))
        root = tmp_path_factory.mktemp(f"{name}-update")
        (root / "in").mkdir()
        student = root / "student.xlsx"
        build_student(kind, lesson, student, f"{block.name}:{key}")
        out = root / "in" / "flipped.xlsx"
        fill_xml_sheets(str(student), str(out), fill_sheets(str(student), Flaw("update_sign_flipped", key)))
        [saved] = recalc(recalc([out]))
        # the first step whose update moves the parameter (the engine's own numbers: new p ≠ p): before it
        # lr·g = 0, and adding or subtracting it gives the same value
        param = key[4:] if key.startswith("new_") else key[:-4] + "_x"
        moved = [i for i, (new, old) in enumerate(zip(block.values[key], block.values[param])) if new != old]
        _UPDATES[name] = (block.name, key, check(saved), int(block.step[moved[0]]) if moved else 1)
        return _UPDATES[name]
    return make


@pytest.mark.libreoffice
@pytest.mark.parametrize("name", sorted(LESSONS))
def test_an_update_that_adds_the_lr_term_is_caught_at_its_column(update_flipped, name):
    block, key, report, first_move = update_flipped(name)
    assert report.exit_code == 1, report.to_text()[:2000]
    [root] = report.mistakes
    assert (root["block"], root["column"], root["mistake"], root["step"]) == (block, key, "update_sign_flipped",
                                                                             first_move)
