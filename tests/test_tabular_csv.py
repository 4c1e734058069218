"""The tabular kind on an author's own CSV (examples/tabular): logistic regression on a CSV with numeric and
categorical columns and missing values (filled by the mean and the mode), and a softmax over three classes
(a row with a missing value dropped).

The data is computed again here from the CSV with the csv module and the lesson's documented rules (the
seeded split, training-row statistics, every level a 0/1 column); the steps again in PyTorch (float64,
autograd) at every step; LibreOffice recalculates every formula cell to the engine's value. Bad CSVs are
one-line errors (exit 2). Templates saying ``kind = "tabular"`` or ``kind = "titanic"`` build the bundled
lessons cell for cell as they were.
"""
from __future__ import annotations

import csv
import functools
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.lessons.tabular.engine import train

from conftest import assert_recalculated_equals_cached, assert_steps_equal_engine, build_and_recalc, close
from test_bad_input import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "tabular"
CLINIC, FLOWERS = EXAMPLES / "clinic-logistic.toml", EXAMPLES / "flowers-softmax.toml"


@functools.lru_cache(maxsize=None)
def lesson(path: Path, **options):
    return kinds.load(str(path), **options)


def read_csv(name: str) -> list[dict]:
    with open(EXAMPLES / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def split(n: int, fraction: float, seed: int) -> np.ndarray:
    """The documented split: a seeded permutation's first n·fraction rows are validation; training rows
    first, each part in file order."""
    valid = np.sort(np.random.default_rng(seed).permutation(n)[:int(n * fraction)])
    return np.concatenate([np.setdiff1d(np.arange(n), valid), valid]), n - len(valid)


def standardised(values: np.ndarray, n_train: int) -> np.ndarray:
    train = values[:n_train][~np.isnan(values[:n_train])]
    mean = sum(train) / len(train)
    sd = (sum((v - mean) ** 2 for v in train) / len(train)) ** 0.5
    return (np.where(np.isnan(values), mean, values) - mean) / sd


def clinic_data():
    """age (mean-filled), dose standardised; ward (mode-filled) as A, B, C; ones; recovered; 25% validation."""
    rows = read_csv("clinic.csv")
    order, n_train = split(len(rows), 0.25, 1)
    rows = [rows[i] for i in order]
    age = np.array([float(r["age"]) if r["age"] else np.nan for r in rows])
    dose = np.array([float(r["dose"]) for r in rows])
    wards = [r["ward"] for r in rows[:n_train] if r["ward"]]
    top = max(wards.count(w) for w in set(wards))
    mode = min(w for w in set(wards) if wards.count(w) == top)
    ward = [r["ward"] or mode for r in rows]
    X = np.column_stack([standardised(age, n_train), standardised(dose, n_train)]
                        + [[1.0 if w == level else 0.0 for w in ward] for level in "ABC"] + [np.ones(len(rows))])
    return X, np.array([float(r["recovered"]) for r in rows]), n_train


def flowers_data():
    """Rows with a petal width only; three sizes standardised; colour as blue, violet, white; the class index."""
    rows = [r for r in read_csv("flowers.csv") if r["petal_width"]]
    order, n_train = split(len(rows), 0.2, 5)
    rows = [rows[i] for i in order]
    sizes = [standardised(np.array([float(r[c]) for r in rows]), n_train)
             for c in ("petal_length", "petal_width", "sepal_length")]
    colours = [[1.0 if r["colour"] == c else 0.0 for r in rows] for c in ("blue", "violet", "white")]
    kind = np.array([("setosa", "versicolor", "virginica").index(r["kind"]) for r in rows])
    return np.column_stack(sizes + colours), kind, n_train


def test_the_example_csvs_are_what_their_seeded_script_writes(tmp_path):
    import subprocess
    import sys

    shutil.copy(EXAMPLES / "make_csvs.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "make_csvs.py")], check=True, timeout=120)
    for name in ("clinic.csv", "flowers.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_the_data_follows_the_documented_rules():
    clinic, flowers = lesson(CLINIC), lesson(FLOWERS)
    X, y, n_train = clinic_data()
    assert clinic.data.n_train == n_train == 90 and len(clinic.data.y) == 120 and clinic.data.dropped == 0
    assert clinic.data.feature_keys == ["age", "dose", "ward_A", "ward_B", "ward_C", "Ones"]
    np.testing.assert_allclose(clinic.data.X, X, rtol=1e-12, atol=1e-12)
    assert (clinic.data.y == y).all()
    X, kind, n_train = flowers_data()
    assert flowers.data.n_train == n_train and len(flowers.data.y) == 89 and flowers.data.dropped == 1
    np.testing.assert_allclose(flowers.data.X, X, rtol=1e-12, atol=1e-12)
    assert (flowers.data.y.argmax(axis=1) == kind).all() and flowers.data.classes == ("setosa", "versicolor", "virginica")


def torch_steps(the_lesson, trace, X, target, k: int):
    """The same steps in PyTorch float64 with autograd: σ(X·w) with BCE (k = 1) or a linear layer with
    cross-entropy (k > 1); plain SGD. Returns [(loss, gradient, new parameters)] per step."""
    torch = pytest.importorskip("torch")
    theta = torch.tensor(the_lesson.init, dtype=torch.float64, requires_grad=True)
    Xt, f = torch.tensor(X), X.shape[1]
    out = []
    for idx in trace.batches:
        idx = torch.tensor(np.asarray(idx))
        if k == 1:
            p = torch.sigmoid(Xt[idx] @ theta)
            y = torch.tensor(target)[idx]
            loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        else:
            z = Xt[idx] @ theta[:k * f].reshape(k, f).T + theta[k * f:]
            loss = torch.nn.functional.cross_entropy(z, torch.tensor(target)[idx])
        grad, = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta = (theta - the_lesson.hyper["lr"] * grad).requires_grad_(True)
        out.append((loss.item(), grad.numpy().copy(), theta.detach().numpy().copy()))
    return out


@pytest.mark.parametrize("path,data,k", [(CLINIC, clinic_data, 1), (FLOWERS, flowers_data, 3)], ids=["logistic", "softmax"])
@pytest.mark.parametrize("batch", [None, 1])
def test_engine_equals_pytorch_at_every_step(path, data, k, batch):
    the_lesson = lesson(path) if batch is None else lesson(path, batch_size=batch, epochs=1)
    trace = train(the_lesson)
    X, target, _ = data()
    names = the_lesson.net().params
    steps = torch_steps(the_lesson, trace, X, target, k)
    assert len(steps) == the_lesson.n_steps > 5
    for t, (loss, grad, new) in enumerate(steps):
        assert close(loss, trace.steps["loss"][t]), (t, loss, trace.steps["loss"][t])
        for i, p in enumerate(names):
            assert close(grad[i], trace.steps[f"grad_{p}"][t], abs_tol=1e-12), (t, p)
            assert close(new[i], trace.steps[f"new_{p}"][t]), (t, p)


FINDER = f"""[lesson]
kind = "lr-finder"
[data]
csv = "{(EXAMPLES / 'clinic.csv').as_posix()}"
target = "recovered"
numeric = ["age", "dose"]
categorical = ["ward"]
missing = {{ age = "mean", ward = "mode" }}
[model]
kind = "logistic"
[training]
batch_size = 10
[finder]
num_it = 25
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, recalc):
    folder = tmp_path_factory.mktemp("tabular-csv")
    (folder / "finder.toml").write_text(FINDER, encoding="utf-8")
    return build_and_recalc(recalc, folder, {
        "clinic": lesson(CLINIC), "clinic-b1": lesson(CLINIC, batch_size=1, epochs=1),
        "flowers": lesson(FLOWERS), "flowers-full": lesson(FLOWERS, batch_size="full", epochs=3),
        "finder": kinds.load(str(folder / "finder.toml"))})


@pytest.mark.libreoffice
def test_an_lr_finder_over_an_author_csv_recalculates_to_the_engine(built):
    path, recalculated = built["finder"]
    assert assert_recalculated_equals_cached(path, recalculated) > 2000


@pytest.mark.libreoffice
@pytest.mark.parametrize("case,keys", [("clinic", ("new_w_ward_B", "loss", "grad_w_age")),
                                       ("clinic-b1", ("new_w_Ones", "loss")),
                                       ("flowers", ("new_w2_colour_violet", "new_b3", "loss", "correct")),
                                       ("flowers-full", ("new_w1_petal_width", "loss"))])
def test_libreoffice_recalculation_equals_the_engine_in_every_formula_cell(built, case, keys):
    path, recalculated = built[case]
    assert assert_recalculated_equals_cached(path, recalculated) > 2000
    options = {"clinic-b1": {"batch_size": 1, "epochs": 1}, "flowers-full": {"batch_size": "full", "epochs": 3}}
    source = CLINIC if case.startswith("clinic") else FLOWERS
    assert_steps_equal_engine(path, recalculated, train(lesson(source, **options.get(case, {}))), keys)


def test_the_data_sheet_fills_and_encodes_by_formulas(tmp_path):
    """Raw columns A–E (patient, recovered, age, dose, ward); the 90 training rows are Data rows 3–92."""
    from conftest import formula_cells

    path = tmp_path / "clinic.xlsx"
    the_lesson = lesson(CLINIC)
    kinds.kind_of(the_lesson).build(the_lesson, path)
    rows = read_csv("clinic.csv")
    order, n_train = split(len(rows), 0.25, 1)
    wards = [rows[i]["ward"] for i in order[:n_train] if rows[i]["ward"]]
    mode = sorted(set(wards), key=lambda w: (-wards.count(w), w))[0]
    cells = formula_cells(path)
    assert cells[("Data", "G3")] == '=(IF(C3="",AVERAGE(C$3:C$92),C3)-AVERAGE(C$3:C$92))/STDEVP(C$3:C$92)'
    assert cells[("Data", "H3")] == "=(D3-AVERAGE(D$3:D$92))/STDEVP(D$3:D$92)"
    assert cells[("Data", "I3")] == f'=IF(IF(E3="","{mode}",E3)="A",1,0)'


# ---------------------------------------------------------------------------------------------- bad CSVs

TEMPLATE = """[lesson]
kind = "tabular"
[data]
csv = "{csv}"
target = "{target}"
numeric = ["x"]
categorical = ["c"]
missing = "{missing}"
[model]
kind = "logistic"
[training]
batch_size = 2
"""


def bad(tmp_path, csv_bytes: bytes | None = None, target="y", missing="drop", csv_name="d.csv"):
    if csv_bytes is not None:
        (tmp_path / csv_name).write_bytes(csv_bytes)
    t = tmp_path / "t.toml"
    t.write_text(TEMPLATE.format(csv=csv_name, target=target, missing=missing), encoding="utf-8")
    return CliRunner().invoke(cli, ["build", str(t), "-o", str(tmp_path / "out.xlsx")])


GOOD = b"x,c,y\n1,a,0\n2,b,1\n3,a,1\n4,b,0\n"


def test_a_good_csv_builds(tmp_path):
    result = bad(tmp_path, GOOD)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case,csv_bytes,kw,needles", [
    ("missing column", GOOD, {"target": "label"}, ["'label' is not in d.csv"]),
    ("not a number", b"x,c,y\n1,a,0\n2,b,1\nthree,a,1\n", {}, ["d.csv line 4", "'three'", "numeric column 'x'"]),
    ("one class", b"x,c,y\n1,a,1\n2,b,1\n3,a,1\n", {}, ["one class"]),
    ("target not 0/1", b"x,c,y\n1,a,yes\n2,b,no\n", {}, ["must hold 0 and 1", "softmax"]),
    ("not UTF-8", b"x,c,y\n1,\xe9t\xe9,0\n2,b,1\n", {}, ["not UTF-8"]),
    ("empty", b"", {}, ["is empty"]),
    ("header only", b"x,c,y\n", {}, ["0 data row(s)"]),
    ("ragged", b"x,c,y\n1,a,0\n2,b\n", {}, ["line 3", "2 field(s)"]),
    ("duplicate header", b"x,x,y\n1,a,0\n2,b,1\n", {}, ["names 'x' twice"]),
    ("unknown missing policy", GOOD, {"missing": "median"}, ["missing-value policy", "median"]),
    ("mean of a category", b"x,c,y\n1,,0\n2,b,1\n3,a,1\n", {"missing": "mean"}, ["numeric column", "'c'"]),
    ("no file", None, {"csv_name": "absent.csv"}, ["absent.csv", "no such file"]),
    ("too many levels", b"x,c,y\n" + b"".join(b"%d,L%d,%d\n" % (i, i, i % 2) for i in range(250)), {},
     ["'c' has 250 different values", "at most 200"]),
    ("a level too long", b"x,c,y\n1," + b"a" * 150 + b",0\n2,b,1\n", {}, ["too long"]),
])
def test_a_bad_csv_is_a_one_line_error(tmp_path, case, csv_bytes, kw, needles):
    assert_one_line_error(bad(tmp_path, csv_bytes, **kw), *needles)


def test_keys_of_the_bundled_datasets_or_none_at_all_are_one_line_errors(tmp_path):
    (tmp_path / "d.csv").write_bytes(GOOD)
    t = tmp_path / "t.toml"
    text = TEMPLATE.format(csv="d.csv", target="y", missing="drop")
    t.write_text(text.replace("[model]", 'preset = "from-scratch"\n[model]'), encoding="utf-8")
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(t), "-o", str(tmp_path / "o.xlsx")]),
                          "preset belongs to the bundled datasets")
    t.write_text('[lesson]\nkind = "tabular"\n[data]\nvalid_fraction = 0.2\n', encoding="utf-8")
    assert_one_line_error(CliRunner().invoke(cli, ["build", str(t), "-o", str(tmp_path / "o.xlsx")]),
                          'give dataset = "titanic" or "penguins", or csv')


def test_a_hidden_layer_with_dropout_trains_on_an_author_csv(tmp_path):
    """The mlp with its dropout twin on the clinic CSV: the sheets say the CSV's target, not Survived."""
    from conftest import formula_cells

    text = CLINIC.read_text(encoding="utf-8").replace('kind = "logistic"', 'kind = "mlp"\ndropout = 0.5')
    (tmp_path / "clinic.csv").write_bytes((EXAMPLES / "clinic.csv").read_bytes())
    (tmp_path / "mlp.toml").write_text(text.replace('exercise = ["z", "pred", "loss", "dloss", "dz"]', ""), encoding="utf-8")
    the_lesson = kinds.load(str(tmp_path / "mlp.toml"), epochs=1)
    kinds.kind_of(the_lesson).build(the_lesson, tmp_path / "mlp.xlsx")
    import openpyxl
    headers = [c.value for c in openpyxl.load_workbook(tmp_path / "mlp.xlsx", read_only=True)["Examples"][1]]
    assert "recovered y" in headers and "survived y" not in headers
    assert formula_cells(tmp_path / "mlp.xlsx")


def test_a_directory_and_a_file_too_big_are_refused_unread(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    assert_one_line_error(bad(tmp_path, None, csv_name="folder.csv"), "folder", "not a regular file")
    with open(tmp_path / "big.csv", "wb") as fh:
        fh.write(b"x,c,y\n")
        fh.truncate(3 * 2**20)  # sparse: larger than the bound without writing it
    assert_one_line_error(bad(tmp_path, None, csv_name="big.csv"), "larger than 2 MB")


def test_the_workbook_checks_without_the_csv_beside_it(tmp_path):
    """The manifest records the CSV's text: the workbook checks after the CSV is gone."""
    folder = tmp_path / "author"
    shutil.copytree(EXAMPLES, folder)
    out = tmp_path / "clinic.xlsx"
    result = CliRunner().invoke(cli, ["build", str(folder / "clinic-logistic.toml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    shutil.rmtree(folder)
    result = CliRunner().invoke(cli, ["check", str(out)])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------------- the kind's old and new names

@pytest.mark.parametrize("name", ["titanic-logistic", "penguins-softmax"])
def test_kind_titanic_and_tabular_build_the_bundled_lessons_cell_for_cell(tmp_path, name):
    """The bundled template with ``kind = "tabular"`` or ``kind = "titanic"`` in [lesson] gives the same
    cells as without (titanic-logistic: as its golden dump), but for the manifest's record of the template."""
    from golden_dump import GOLDEN, dump

    text = (ROOT / "templates" / f"{name}.toml").read_text(encoding="utf-8")
    dumps = {}
    for kind in (None, "tabular", "titanic"):
        folder = tmp_path / str(kind)
        folder.mkdir()
        path = folder / f"{name}.toml"
        path.write_text(text if kind is None else text.replace("[lesson]\n", f'[lesson]\nkind = "{kind}"\n', 1),
                        encoding="utf-8")
        built_lesson = kinds.load(str(path), epochs=1)
        kinds.kind_of(built_lesson).build(built_lesson, folder / "out.xlsx")
        dumps[kind] = dump(folder / "out.xlsx")
    golden = GOLDEN / f"{name}.json.gz"
    if golden.exists():
        assert json.loads(json.dumps(dumps[None])) == json.loads(gzip.decompress(golden.read_bytes()))

    def without_origin(d):
        origin_rows = {c[1][1:] for c in d["cells"] if c[0] == "_sheetsgd" and c[1].startswith("A")
                       and str(c[3]).startswith("origin")}
        return [c for c in d["cells"] if not (c[0] == "_sheetsgd" and c[1][1:] in origin_rows)], d["names"], d["sheets"]

    assert without_origin(dumps["tabular"]) == without_origin(dumps["titanic"]) == without_origin(dumps[None])
    assert dumps["tabular"] != dumps[None]  # the template as given is recorded: kind = "tabular" in it
    assert len(dumps[None]["cells"]) - len(without_origin(dumps[None])[0]) >= 2
