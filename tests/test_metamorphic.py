"""A metamorphic test bench: realistic edits of every lesson kind's student version, each with a known verdict.

For every lesson kind (a data lesson per example and in mini-batches, too-high, the optimizers, the lr finder,
a Titanic lesson per example and in mini-batches, penguins-softmax, dropout, collab-filter, attention) a submission is
made per edit (tests/metamorphic_edits.py): equivalent rewrites that must pass (ŷ − y for the chain rule, the
sigmoid as 1/(1+EXP(−z)) or EXP(z)/(1+EXP(z)), a changed learning rate, renamed sheets), catalogued mistakes
that must be named (and be the only root cause), and tampering (values pasted instead of formulas, the full
workbook handed in, values forged behind other formulas, a redirected name). Each is judged twice: as
LibreOffice saved it (its values) and saved without values (recalculated by IronCalc). Every LibreOffice
recalculation of the bench is one soffice run over all files.
"""
from __future__ import annotations

import re
import zipfile

import numpy as np
import openpyxl
import pytest

from sheetsgd.check.checker import check
from metamorphic_edits import Edit, student_version, write_all

CORRECT = "correct"
SIGMOID_EXP = (lambda p: re.sub(r"1/\(1\+EXP\(-(\w+\{r\})\)\)", r"EXP(\1)/(1+EXP(\1))", p))
TITANIC = [  # the Titanic lessons' shared edits: (edit, verdict)
    (Edit("right"), CORRECT),
    (Edit("sigmoid-exp", "pred", rewrite=SIGMOID_EXP), CORRECT),
    (Edit("dz-pred-minus-y", "dz", "{pred}-{y}"), CORRECT),
    (Edit("lr-changed", scale={"lr": 0.5}), CORRECT),
    (Edit("dz-y-minus-pred", "dz", "{y}-{pred}"), ("dz", "error_reversed")),
    (Edit("loss-log", "loss", rewrite=lambda p: p.replace("LN(", "LOG(")), ("loss", "log_base_swapped")),
    (Edit("sigmoid-derivative", "dz", mistake="sigmoid_derivative_incomplete"), ("dz", "sigmoid_derivative_incomplete")),
    (Edit("pasted", "z", mistake="constant_typed"), ("z", "constant_typed")),
]

# lesson key: (bundled lesson, options, [(edit, verdict)]); verdict CORRECT or (column, mistake named there)
BENCH = {
    "linear": ("linear", {"epochs": 1}, [
        (Edit("right"), CORRECT),
        (Edit("chain-rule", "grad_a", "2*{err}*{x}"), CORRECT),
        (Edit("lr-changed", scale={"lr": 2.0}), CORRECT),
        (Edit("full", full=True), CORRECT),  # scored on the template's exercise columns
        (Edit("sign", "new_a", mistake="update_sign_flipped"), ("new_a", "update_sign_flipped")),
        (Edit("factor-2", "grad_a", "{err}*{x}"), ("grad_a", "mse_factor_2_missing")),
        (Edit("y-minus-pred", "err", "{y}-{pred}"), ("err", "error_reversed")),
        (Edit("pasted", "new_b", mistake="constant_typed"), ("new_b", "constant_typed")),
    ]),
    "linear-batches": ("linear", {"epochs": 1, "batch_size": 8}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"lr": 0.5}), CORRECT),
        (Edit("sum", "grad_b", mistake="sum_instead_of_mean"), ("grad_b", "sum_instead_of_mean")),
        (Edit("factor-2", "grad_a", mistake="mse_factor_2_missing"), ("grad_a", "mse_factor_2_missing")),
    ]),
    "too-high": ("too-high", {"epochs": 8}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"run2_lr": 0.5}), CORRECT),
        (Edit("sign", "r2_new", mistake="update_sign_flipped"), ("r2_new", "update_sign_flipped")),
        (Edit("no-lr", "r2_new", mistake="lr_missing"), ("r2_new", "lr_missing")),
    ]),
    "optimizers": ("optimizers", {"epochs": 1}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"adam_lr": 0.5}), CORRECT),
        (Edit("adam-m-v", "Adam:new_a", "{a}-{hp:adam_lr}*{m_a}/(SQRT({v_a})+{hp:adam_eps})"),
         ("new_a", "bias_correction_omitted")),
        (Edit("sign", "Adam:new_b", mistake="update_sign_flipped"), ("new_b", "update_sign_flipped")),
    ]),
    "one-cycle": ("one-cycle", {"epochs": 1}, [
        (Edit("right"), CORRECT),
        # β1 written as another named input: a reference, not a typed number; outside the catalogue
        (Edit("beta1-other-input", "One-cycle:beta1", "{hp:onecycle_beta2}"), ("beta1", "unrecognised")),
        (Edit("phase", "One-cycle:lr", mistake="schedule_phase_off_by_one"), ("lr", "schedule_phase_off_by_one")),
    ]),
    "lr-finder": ("lr-finder", {"epochs": 30}, [
        (Edit("right"), CORRECT),
        (Edit("additive", "lr", mistake="lr_additive"), ("lr", "lr_additive")),
        (Edit("no-correction", "smooth", mistake="bias_correction_omitted"), ("smooth", "bias_correction_omitted")),
    ]),
    "titanic-per-example": ("titanic-logistic", {"epochs": 1, "batch_size": 1}, [
        (e, v) for e, v in TITANIC if e.tag in ("right", "dz-pred-minus-y", "dz-y-minus-pred", "loss-log",
                                                  "sigmoid-derivative")]),
    "titanic-batches": ("titanic-logistic", {"epochs": 1}, TITANIC + [
        # ∂loss/∂z written σ and ∂loss/∂ŷ without the clipping's 0, lr raised so ŷ reaches the clipped range:
        # one root cause (∂loss/∂z); ∂loss/∂ŷ's clipped rows are its knock-ons
        (Edit("clipped", "dz", mistake="sigmoid_derivative_incomplete", scale={"lr": 4.0},
              also=(("dloss", "({pred}-{y})/({pred}*(1-{pred}))"),)), ("dz", "sigmoid_derivative_incomplete")),
        # the same ∂loss/∂ŷ with every other formula right, lr raised so far that ŷ is clipped: the convention
        (Edit("clip-convention", "dloss", "({pred}-{y})/({pred}*(1-{pred}))", scale={"lr": 40.0}),
         ("dloss", "clipping_ignored")),
    ]),
    "penguins-softmax": ("penguins-softmax", {"epochs": 1}, [
        (Edit("right"), CORRECT),
        (Edit("loss-log", "loss", rewrite=lambda p: p.replace("LN(", "LOG(")), ("loss", "log_base_swapped")),
        (Edit("dz-reversed", "dz3", mistake="error_reversed"), ("dz3", "error_reversed")),
        (Edit("not-normalised", "p2", mistake="softmax_not_normalised"), ("p2", "softmax_not_normalised")),
    ]),
    "dropout": ("dropout", {"epochs": 2}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"lr": 0.5}), CORRECT),
        (Edit("no-scale", "r2", mistake="dropout_scale_missing"), ("r2", "dropout_scale_missing")),
        (Edit("no-mask", "dz1", mistake="dropout_mask_missing_backward"), ("dz1", "dropout_mask_missing_backward")),
    ]),
    "collab-filter": ("collab-filter", {"epochs": 2}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"lr": 0.5}), CORRECT),
        (Edit("no-weight-decay", "Users:grad_f1", rewrite=lambda p: p.rsplit("+wd*", 1)[0]),
         ("grad_f1", "weight_decay_missing")),
        (Edit("neighbour", "Users:new_f1", mistake="another_users_gradient"), ("new_f1", "another_users_gradient")),
    ]),
    "attention": ("attention", {"epochs": 1}, [
        (Edit("right"), CORRECT),
        (Edit("lr-changed", scale={"lr": 0.5}), CORRECT),
        (Edit("scaled-by-root-half", "s1_1", rewrite=lambda p: p.replace("/SQRT(2)", "*SQRT(0.5)")), CORRECT),
        (Edit("column-softmax", "a1_1", mistake="softmax_wrong_axis"), ("a1_1", "softmax_wrong_axis")),
        (Edit("diagonal-jacobian", "ds1_2", mistake="softmax_jacobian_diagonal"), ("ds1_2", "softmax_jacobian_diagonal")),
    ]),
}

# IronCalc recalculates a Titanic workbook slowly: there, a few edits are judged through it, not all
IRONCALC_ONLY = {"titanic-per-example": {"right", "dz-y-minus-pred"},
                 "titanic-batches": {"right", "dz-pred-minus-y", "loss-log", "clipped", "clip-convention"}}
CASES = [(key, edit.tag, how) for key, (_, _, edits) in BENCH.items() for edit, _ in edits for how in ("lo", "ic")
         if how == "lo" or key not in IRONCALC_ONLY or edit.tag in IRONCALC_ONLY[key]]
_MADE: dict = {}


@pytest.fixture(scope="module")
def bench(tmp_path_factory, recalc):
    """{lesson key: {tag: {"lo": file, "ic": file}}} plus the student versions; one LibreOffice run for all."""
    if _MADE:
        return _MADE
    root = tmp_path_factory.mktemp("bench")
    plans = {}
    for key, (name, options, edits) in BENCH.items():
        student, full = student_version(name, options, root / key / "versions")
        plans[key] = (student, full, [e for e, _ in edits])
    every = []
    for key, (student, full, edits) in plans.items():
        made = write_all(edits, student, full, root / key, None)
        every += [(key, tag, f["ic"].parent.parent / "stale" / f"{tag}.xlsx") for tag, f in made.items()]
        _MADE[key] = {tag: dict(f) for tag, f in made.items()}
        _MADE[key]["_student"] = student
    named = []  # LibreOffice's outputs share one folder: give every input a distinct name
    for key, tag, path in every:
        target = root / "lo-in" / f"{key}--{tag}.xlsx"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(path.read_bytes())
        named.append(target)
    for (key, tag, _), out in zip(every, recalc(recalc(named))):
        _MADE[key][tag]["lo"] = out
    return _MADE


def _verdict(key: str, tag: str):
    return next(v for e, v in BENCH[key][2] if e.tag == tag)


@pytest.mark.libreoffice
@pytest.mark.parametrize("key,tag,how", CASES, ids=[f"{k}-{t}-{h}" for k, t, h in CASES])
def test_edit_is_judged_as_expected(bench, key, tag, how):
    report = check(str(bench[key][tag][how]))
    text = report.to_text()[:4000]
    verdict = _verdict(key, tag)
    if verdict == CORRECT:
        assert report.status == "correct" and report.exit_code == 0, text
        correct, total = report.score
        assert total > 0 and correct == total == report.formulas_right
        return
    column, mistake = verdict
    assert report.exit_code == 1, text
    assert [(m["column"], m["mistake"]) for m in report.mistakes] == [(column, mistake)], text
    m = report.mistakes[0]
    if m["expected"] is not None and m["found"] is not None:  # never "expected x, found x"
        line = next(l for l in text.splitlines() if l.startswith(f"  ✗ {m['header']}"))
        shown = re.search(r"expected (.*?), found (.*?), formula", line)
        assert shown.group(1) != shown.group(2), line  # a typed right value says so


@pytest.mark.libreoffice
def test_the_clipped_case_reaches_the_clipped_range(bench):
    """The bench's clipping case is real: LibreOffice's ŷ leaves [ε, 1 − ε] on some Examples row."""
    wb = openpyxl.load_workbook(bench["titanic-batches"]["clipped"]["lo"], read_only=True, data_only=True)
    ws = wb["Examples"]
    preds = np.array([r[0] for r in ws.iter_rows(min_row=2, min_col=5, max_col=5, values_only=True)
                      if isinstance(r[0], (int, float))])
    wb.close()
    assert ((preds < 1e-7) | (preds > 1 - 1e-7)).any()


@pytest.mark.libreoffice
def test_a_blank_expects_the_engine_value(bench):
    """The student version as handed out: each blank's "expected" is the engine's value, never a 0 computed
    from other blanks."""
    report = check(str(bench["linear"]["_student"]))
    grads = [m for m in report.mistakes if m["column"] == "grad_a"]
    assert grads and grads[0]["mistake"] == "blank"
    assert grads[0]["expected"] not in (0, None)


@pytest.mark.libreoffice
def test_forged_values_are_not_correct(bench, tmp_path):
    """Every exercise formula replaced by 0*A1 in the LibreOffice-saved right file, saved values kept."""
    from forge import forge

    src = bench["linear"]["right"]["lo"]
    letters = sorted({c.letter for c in check(str(src)).columns if c.exercise})  # every exercise column, as found
    assert forge(src, tmp_path / "forged.xlsx", {"Steps": letters}) > 0
    report = check(str(tmp_path / "forged.xlsx"))
    assert report.exit_code == 1, report.to_text()[:2000]
    assert any(m["mistake"] == "value_not_from_formula" for m in report.mistakes), report.to_text()[:2000]


@pytest.mark.libreoffice
def test_a_widened_lr_is_not_correct(bench, tmp_path):
    src = bench["linear"]["right"]["ic"]
    out = tmp_path / "widened.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = data.replace(b">Steps!$B$4<", b">Steps!$B$4:$B$5<")
            zout.writestr(item, data)
    report = check(str(out))
    assert report.status != "correct", report.to_text()[:2000]
    assert any("lr" in (m.get("title", "") + m.get("mistake", "")) for m in report.mistakes) or \
        any("lr" in n for n in report.notes)


@pytest.mark.libreoffice
def test_the_full_workbook_is_not_the_assignment(bench, tmp_path):
    from click.testing import CliRunner

    from sheetsgd.cli.commands import cli

    out = tmp_path / "grades.csv"
    result = CliRunner().invoke(cli, ["grade", str(bench["linear"]["full"]["lo"]), "-o", str(out),
                                      "--assignment", "linear", "--epochs", "1"])
    assert result.exit_code in (0, 1), result.output
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and float(rows[0]["grade"] or 0) == 0 and float(rows[0]["score"] or 0) == 0, rows


@pytest.mark.libreoffice
def test_sheets_renamed_and_rows_inserted_by_libreoffice(bench, tmp_path):
    """An equivalent layout: LibreOffice itself inserts rows and a column above/left of the tables and renames
    the sheets (moving every reference); a right submission and a catalogued mistake keep their verdicts."""
    from lo_edit import insert_rows_and_rename

    right = check(str(insert_rows_and_rename(bench["linear"]["right"]["lo"], tmp_path / "right.xlsx")))
    assert right.status == "correct", right.to_text()[:2000]
    wrong = check(str(insert_rows_and_rename(bench["linear"]["sign"]["lo"], tmp_path / "sign.xlsx")))
    assert [(m["column"], m["mistake"]) for m in wrong.mistakes] == [("new_a", "update_sign_flipped")], \
        wrong.to_text()[:2000]

