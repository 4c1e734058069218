"""Titanic lessons: LibreOffice's recalculation equals the engine, cell by cell, for every model × loss × batch.

All workbooks are built first and recalculated in ONE LibreOffice run (start-up dominates). Small
cases use the first 80 rows of a preset (60 training, 20 validation passengers) over 2 epochs; the
full-data cases use all 712 / 891 rows.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import zipfile

import numpy as np
import openpyxl
import pytest

from sheetsgd.lessons.datasets import TITANIC_CSV, TITANIC_MD5
from sheetsgd.sheet.formula import check_portable
from sheetsgd.lessons.tabular.engine import best_fit, train
from sheetsgd.lessons.tabular.features import prepare
from sheetsgd.lessons.tabular.lesson import parse_titanic_lesson
from sheetsgd.lessons.tabular.nets import LOSSES, MODELS, batch_gradient, batch_loss
from sheetsgd.lessons.tabular.workbook import build_titanic_workbook

from conftest import cell_values as read_values
from conftest import close
from conftest import formula_cells as read_formulas


@functools.lru_cache(maxsize=None)
def formula_cells(path):
    """Each workbook is read once per session: several tests look at the same files."""
    return read_formulas(path)


@functools.lru_cache(maxsize=None)
def cell_values(path):
    return read_values(path)

# model -> (preset, optimizer, lr): varied so every preset and several optimizers meet the sheet
MODEL_SETUP = {
    "linear": ("lesson3-sheet", "sgd", 0.01),
    "logistic": ("from-scratch", "momentum", 0.1),
    "relu2": ("lesson3-sheet", "adam", 0.01),
    "mlp": ("from-scratch", "rmsprop", 0.01),
}
BATCHES = (1, 32, "full")
SMALL = [(m, loss, b) for m in MODELS for loss in LOSSES for b in BATCHES]


def make(model, loss, batch, *, preset=None, rows=80, valid=0.25, epochs=2, shuffle=False, optimizer=None,
         lr=None, hidden=2, init=None, best_fit_steps=200, features=None, hyper=None):
    default_preset, default_opt, default_lr = MODEL_SETUP[model]
    optimizer = optimizer or default_opt
    data = {"dataset": "titanic", "preset": preset or default_preset, "valid_fraction": valid, "split_seed": 42}
    if rows:
        data["rows"] = rows
    if features:
        data["features"] = features
    raw = {
        "data": data,
        "model": {"kind": model, "loss": loss, "hidden": hidden, "init": init or {"random": "uniform", "seed": 5}},
        "optimizer": {"name": optimizer, optimizer: {"lr": lr or default_lr, **(hyper or {})}},
        "training": {"batch_size": batch, "epochs": epochs, "shuffle": shuffle, "seed": 3,
                     "best_fit_steps": best_fit_steps},
    }
    return parse_titanic_lesson(raw, f"{model}-{loss}-{batch}", "test.toml")


def cases() -> dict:
    out = {f"{m}-{loss}-{b}": make(m, loss, b, shuffle=(b == 32 and m in ("logistic", "mlp")))
           for m, loss, b in SMALL}
    out["logistic-bce-1-shuffled"] = make("logistic", "bce", 1, shuffle=True)
    out["mlp-bce-32-hidden3-l2"] = make("mlp", "bce", 32, hidden=3, optimizer="adam", lr=0.01,
                                          hyper={"weight_decay": 0.01})
    # full data: every passenger of each preset on the Data sheet
    out["full-lesson3-logistic-fullbatch"] = make("logistic", "bce", "full", preset="lesson3-sheet", rows=None,
                                                 valid=0.0, optimizer="sgd", lr=1.0)
    out["full-fromscratch-linear-b1"] = make("linear", "mse", 1, preset="from-scratch", rows=None, valid=0.2)
    out["full-lesson3-relu2-b32"] = make("relu2", "mse", 32, rows=None, valid=0.2, optimizer="sgd", lr=0.05)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    out = tmp_path_factory.mktemp("titanic")
    lessons = cases()
    paths = {}
    for key, lesson in lessons.items():
        paths[key] = out / f"{key}.xlsx"
        build_titanic_workbook(lesson, paths[key])
    # a student's edit: the named lr cell of one workbook tripled (saved by openpyxl, so no cached values)
    lesson = lessons["logistic-bce-32"]
    lessons["edited-lr"] = lesson.override(lr=lesson.hyper["lr"] * 3)
    wb = openpyxl.load_workbook(paths["logistic-bce-32"])
    sheet, ref = manifest(paths["logistic-bce-32"])["hyperparameters"]["lr"].split("!")
    wb[sheet][ref.replace("$", "")].value = lessons["edited-lr"].hyper["lr"]
    paths["edited-lr"] = out / "edited-lr.xlsx"
    wb.save(paths["edited-lr"])
    recalculated = dict(zip(paths, recalc(list(paths.values()))))
    return {k: (lessons[k], paths[k], recalculated[k]) for k in lessons}


def manifest(path) -> dict:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = {r[0]: json.loads(r[1]) for r in wb["_sheetsgd"].iter_rows(min_row=2, values_only=True)}
    wb.close()
    return rows


def assert_steps_equal_engine(lesson, values: dict, m: dict) -> int:
    """Every Steps column the engine names equals an independent engine run (nothing read from the workbook)."""
    trace = train(lesson)
    first = m["first_step_row"]
    checked = 0
    for key, info in m["columns"].items():
        if key not in trace.steps:
            continue  # first/last: Examples row numbers, layout not a quantity
        for i, expected in enumerate(trace.steps[key]):
            found = values["Steps"].get(f"{info['column']}{first + i}")
            assert isinstance(found, (int, float)), f"{key} step {i + 1}: {found!r}"
            assert close(expected, found), f"{key} step {i + 1}: engine {expected!r}, sheet {found!r}"
            checked += 1
    if m["examples_columns"]:
        for key, column in m["examples_columns"].items():
            if key not in trace.examples:
                continue
            for i, expected in enumerate(trace.examples[key]):
                found = values["Examples"].get(f"{column}{2 + i}")
                assert isinstance(found, (int, float)) and close(expected, found), \
                    f"Examples {key} row {2 + i}: engine {expected!r}, sheet {found!r}"
                checked += 1
    for e, block in enumerate(trace.validation):
        n = len(block["loss"])
        for key in ("pred", "loss", "correct"):
            column = m["validation_columns"][key]
            for j, expected in enumerate(block[key]):
                found = values["Validation"][f"{column}{2 + e * n + j}"]
                assert close(expected, found), f"Validation {key} epoch {e + 1} row {j}: {expected!r} vs {found!r}"
                checked += 1
    return checked


@pytest.mark.parametrize("key", list(cases()))  # (not "edited-lr": openpyxl dropped its cached values)
def test_recalculated_workbook_equals_engine(built, key):
    lesson, path, recalculated = built[key]
    assert lesson.epochs >= 2
    m = manifest(path)
    fresh = cell_values(recalculated)
    checked = assert_steps_equal_engine(lesson, fresh, m)
    assert checked >= lesson.n_steps * (2 * len(lesson.net().params) + 2)

    # every formula cell of every sheet: LibreOffice's value equals the engine value cached in it
    formulas = formula_cells(path)
    cached = cell_values(path)
    for (sheet, ref), formula in formulas.items():
        found = fresh[sheet].get(ref)
        assert isinstance(found, (int, float)), f"{sheet}!{ref} {formula}: {found!r}"
        assert close(cached[sheet][ref], found), f"{sheet}!{ref} {formula}: cached {cached[sheet][ref]!r}, {found!r}"
    assert len(formulas) > checked


def test_editing_lr_retrains_the_whole_sheet(built):
    """The lr cell drives every row: after the edit the sheet follows an engine run with the new lr, not the old."""
    lesson, path, recalculated = built["edited-lr"]
    m = manifest(path)
    fresh = cell_values(recalculated)
    assert_steps_equal_engine(lesson, fresh, m)
    with pytest.raises(AssertionError):
        assert_steps_equal_engine(built["logistic-bce-32"][0], fresh, m)


def test_no_cell_recalculates_to_an_error(built):
    for key, (_, _, recalculated) in built.items():
        for sheet, cells in cell_values(recalculated).items():
            errors = {ref: v for ref, v in cells.items() if isinstance(v, str) and v.startswith("#")}
            assert not errors, f"{key} {sheet}: {dict(list(errors.items())[:5])}"


def test_every_formula_is_portable(built):
    checked = {}  # formulas that differ only in row numbers pass or fail together: check each shape once
    for key, (_, path, _) in built.items():
        for (sheet, ref), formula in formula_cells(path).items():
            shape = re.sub(r"\d+", "0", formula)
            if shape not in checked:
                checked[shape] = check_portable(formula)
            assert checked[shape] == [], f"{key} {sheet}!{ref}: {formula}: {checked[shape]}"
    assert len(checked) > 200


@pytest.mark.parametrize("case, preset, shape", [
    ("full-lesson3-logistic-fullbatch", "lesson3-sheet", (712, 10)),
    ("full-fromscratch-linear-b1", "from-scratch", (891, 12)),
])
def test_sheet_feature_matrix_equals_engine(built, case, preset, shape):
    """The features LibreOffice computes from the raw Data columns equal the engine's matrix, cell by cell."""
    lesson, path, recalculated = built[case]
    m = manifest(path)
    values = cell_values(recalculated)["Data"]
    first, last = m["data_rows"]
    sheet = np.array([[values[f"{c}{r}"] for c in m["feature_columns"]] for r in range(first, last + 1)], dtype=float)
    assert sheet.shape == shape
    # an independent preprocessing run, in file order; the sheet lists training rows first, so match by PassengerId
    expected = prepare(preset)
    ids = [values[f"A{r}"] for r in range(first, last + 1)]
    order = {pid: i for i, pid in enumerate(expected.passengers["PassengerId"])}
    expected_rows = expected.X[[order[pid] for pid in ids]]
    assert expected.X.shape == shape
    for i in range(shape[0]):
        for j in range(shape[1]):
            assert close(expected_rows[i, j], sheet[i, j]), f"row {first + i} feature {j}: {expected_rows[i, j]} vs {sheet[i, j]}"
    # and the features really are formulas over the raw cells
    formulas = formula_cells(path)
    row = first
    assert all(("Data", f"{c}{row}") in formulas for c in m["feature_columns"][:9])


def pandas_features(preset: str):
    """The presets written out in pandas straight from lesson-sources.md §4–5: a second, separate implementation."""
    import pandas as pd

    df = pd.read_csv(TITANIC_CSV)
    if preset == "lesson3-sheet":
        df = df.dropna(subset=["Age", "Embarked"])
        X = pd.DataFrame({"SibSp": df.SibSp, "Parch": df.Parch, "Age": df.Age / 80, "LogFare": np.log10(df.Fare + 1),
                          "Pclass_1": (df.Pclass == 1) * 1.0, "Pclass_2": (df.Pclass == 2) * 1.0,
                          "Embark_S": (df.Embarked == "S") * 1.0, "Embark_C": (df.Embarked == "C") * 1.0,
                          "Male": (df.Sex == "male") * 1.0, "Ones": 1.0})
    else:
        df = df.fillna(df.mode().iloc[0])
        X = pd.DataFrame({"Age": df.Age, "SibSp": df.SibSp, "Parch": df.Parch, "LogFare": np.log(df.Fare + 1)})
        dummies = pd.get_dummies(df[["Sex", "Pclass", "Embarked"]], columns=["Sex", "Pclass", "Embarked"]) * 1.0
        X = X.join(dummies[["Sex_male", "Sex_female", "Pclass_1", "Pclass_2", "Pclass_3",  # the notebook's order
                            "Embarked_C", "Embarked_Q", "Embarked_S"]])
        X = X / X.max()
    return dict(zip(df.PassengerId, X.to_numpy(dtype=float)))


@pytest.mark.parametrize("case, preset", [("full-lesson3-logistic-fullbatch", "lesson3-sheet"),
                                          ("full-fromscratch-linear-b1", "from-scratch")])
def test_sheet_feature_matrix_equals_a_pandas_preprocessing(built, case, preset):
    _, path, recalculated = built[case]
    m = manifest(path)
    values = cell_values(recalculated)["Data"]
    first, last = m["data_rows"]
    reference = pandas_features(preset)
    assert len(reference) == last - first + 1
    for r in range(first, last + 1):
        expected = reference[values[f"A{r}"]]
        found = [values[f"{c}{r}"] for c in m["feature_columns"]]
        assert all(close(e, f) for e, f in zip(expected, found)), (r, list(expected), found)


def test_feature_formulas_show_how_each_feature_is_made(built):
    _, path, _ = built["full-fromscratch-linear-b1"]
    f = formula_cells(path)
    assert f[("Data", "K3")] == '=IF(E3="",24,E3)'  # Age: a blank filled with the mode, visibly
    assert f[("Data", "N3")] == "=LN(H3+1)"
    assert f[("Data", "T3")] == '=IF(IF(I3="","S",I3)="C",1,0)'  # Embarked_C, blank port → mode S
    assert f[("Data", "K2")] == "=MAX(K$3:K$893)"
    assert f[("Data", "W3")] == "=K3/K$2"  # scaled feature = derived / column max
    _, path, _ = built["full-lesson3-logistic-fullbatch"]
    f = formula_cells(path)
    assert f[("Data", "M3")] == "=E3/80" and f[("Data", "N3")] == "=LOG10(H3+1)"


def test_missing_values_are_blank_cells_and_rows_are_the_documented_ones():
    lesson3, scratch = prepare("lesson3-sheet"), prepare("from-scratch")
    assert len(lesson3.y) == 712 and lesson3.dropped == 179 and len(lesson3.features) == 10
    assert len(scratch.y) == 891 and len(scratch.features) == 12
    assert np.all(scratch.X.max(axis=0) == 1.0)
    assert np.isnan(scratch.passengers["Age"]).sum() == 177
    split = prepare("from-scratch", valid_fraction=0.2, split_seed=42)
    assert (split.n_train, split.n_valid) == (713, 178)
    assert sorted(split.passengers["PassengerId"]) == list(range(1, 892))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradients_equal_central_finite_differences(model, loss):
    lesson = make(model, loss, 32, hidden=3)
    net, lf = lesson.net(), LOSSES[loss]
    X, y = lesson.data.X[:40], lesson.data.y[:40]
    theta = lesson.init * 2  # away from zero so ReLU units are active and σ is not saturated
    analytic = batch_gradient(net, lf, theta, X, y, lesson.clip_eps)
    h = 1e-6
    numeric = np.array([(batch_loss(net, lf, theta + h * e, X, y, lesson.clip_eps)
                         - batch_loss(net, lf, theta - h * e, X, y, lesson.clip_eps)) / (2 * h)
                        for e in np.eye(len(theta))])
    assert np.max(np.abs(analytic - numeric)) < 1e-6 * max(1.0, np.max(np.abs(numeric)))
    assert np.max(np.abs(analytic)) > 1e-3  # a real gradient, not all zeros


def test_sheet_gradient_columns_are_the_chain_rule(built):
    """On the sheet itself: each step's gradient equals (sheet loss at w ± h − …)/2h computed by the engine's loss.

    The sheet's gradient cells (LibreOffice) are compared with central differences of the batch loss
    at the sheet's own weights of that step.
    """
    lesson, path, recalculated = built["relu2-bce-32"]
    m = manifest(path)
    values = cell_values(recalculated)["Steps"]
    net, lf = lesson.net(), lesson.loss_cls()
    trace = train(lesson)
    row = m["first_step_row"] + 1  # step 2
    theta = np.array([values[f"{m['columns'][p]['column']}{row}"] for p in net.params])
    batch = trace.batches[1]
    X, y = lesson.data.X[batch], lesson.data.y[batch]
    h = 1e-6
    for i, p in enumerate(net.params):
        e = np.zeros_like(theta)
        e[i] = h
        numeric = (batch_loss(net, lf, theta + e, X, y, lesson.clip_eps)
                   - batch_loss(net, lf, theta - e, X, y, lesson.clip_eps)) / (2 * h)
        assert abs(values[f"{m['columns']['grad_' + p]['column']}{row}"] - numeric) < 1e-6, p


def test_solver_sheet_is_preconfigured_and_shows_the_best_fit(built):
    lesson, path, recalculated = built["full-fromscratch-linear-b1"]
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/workbook.xml").decode()
    for name, value in (("solver_opt", "Solver!$B$5"), ("solver_typ", "2"), ("solver_eng", "1"),
                        ("solver_neg", "2"), ("solver_num", "0"), ("solver_ver", "3")):
        assert f'<definedName name="{name}" localSheetId="' in xml, name
        start = xml.index(f'<definedName name="{name}"')
        element = xml[start:xml.index("</definedName>", start)]
        assert 'hidden="1"' in element and element.endswith(">" + value), element
    assert "solver_adj" in xml and "Solver!$D$5:$O$5" in xml  # the 12 weights of the parameter row

    fresh = cell_values(recalculated)["Solver"]
    trace = train(lesson)
    best, how = best_fit(lesson)
    assert "least squares" in how
    X, y = lesson.data.X[:lesson.data.n_train], lesson.data.y[:lesson.data.n_train]
    net, lf = lesson.net(), lesson.loss_cls()
    # the optimum is one: its gradient vanishes, and neither SGD nor the start beats it
    assert np.max(np.abs(batch_gradient(net, lf, best, X, y, 1e-7))) < 1e-10
    assert close(batch_loss(net, lf, lesson.init, X, y, 1e-7), fresh["B5"])  # Solver row: initial weights
    assert close(batch_loss(net, lf, trace.final, X, y, 1e-7), fresh["B6"])  # SGD row
    assert fresh["B7"] <= fresh["B6"] <= fresh["B5"]
    # LibreOffice's re-save keeps the Solver model
    with zipfile.ZipFile(recalculated) as z:
        assert "solver_opt" in z.read("xl/workbook.xml").decode()


def test_explicit_initial_weights_start_the_steps(tmp_path):
    features = ["Age", "Male", "Ones"]
    lesson = make("relu2", "mse", 1, rows=20, valid=0.0, epochs=1, features=features,
                  init={"u1": [0.1, -0.2, 0.3], "u2": [0.25, 0.5, -0.75]})
    path = tmp_path / "init.xlsx"
    build_titanic_workbook(lesson, path)
    m = manifest(path)
    values = cell_values(path)["Steps"]
    start = m["first_step_row"] - 1
    got = [values[f"{m['columns']['new_' + p]['column']}{start}"] for p in lesson.net().params]
    assert got == [0.1, -0.2, 0.3, 0.25, 0.5, -0.75]
    assert m["features"] == features


def test_size_guard_refuses_before_writing(tmp_path):
    from sheetsgd.errors import SheetsgdError

    lesson = make("mlp", "bce", 32, rows=None, valid=0.0, epochs=2000, hidden=8)
    path = tmp_path / "huge.xlsx"
    with pytest.raises(SheetsgdError) as err:
        build_titanic_workbook(lesson, path)
    message = str(err.value)
    assert "Google Sheets" in message and "fewer epochs" in message and "\n" not in message
    assert not path.exists()


def test_size_guard_limits():
    from sheetsgd.lessons.sizeguard import WorkbookSize

    ok = WorkbookSize(cells=9_999_999, formula_cells=1, longest_formula=8192, max_rows=1_048_576, max_columns=16_384)
    assert ok.problems() == []
    assert "8,192" in WorkbookSize(10, 1, 8193, 10, 10).problems()[0]
    assert "1,048,576" in WorkbookSize(10, 1, 10, 1_048_577, 10).problems()[0]
    assert "10,000,000" in WorkbookSize(10_000_001, 1, 10, 10, 10).problems()[0]


def test_shipped_data_is_the_attributed_file():
    assert hashlib.md5(TITANIC_CSV.read_bytes()).hexdigest() == TITANIC_MD5
    assert (TITANIC_CSV.parent / "ATTRIBUTION.md").read_text(encoding="utf-8").count("BSD-3-Clause") == 1
