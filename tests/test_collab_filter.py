"""The collab-filter lesson: generated ratings, the sheet computes what the engine computes (LibreOffice),
PyTorch's nn.Embedding + torch.optim.SGD take the same steps, and the learned predictions beat the
all-means baseline on the held-back ratings."""
from __future__ import annotations

import math
import re
import zipfile

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from conftest import assert_recalculated_equals_cached, close


def unsquashed(tmp_path):
    """The bundled template without y_range and without weight decay, as a file."""
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    text = bundled_lessons()["collab-filter"].read_text(encoding="utf-8")
    text = text.replace("y_range = [0.5, 5.5]", "y_range = []").replace("wd = 0.01", "wd = 0.0")
    path = tmp_path / "collab-plain.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_ratings_are_generated_as_the_template_says():
    lesson = kinds.load("collab-filter")
    data = lesson.ratings
    rated = np.isfinite(data.train) | np.isfinite(data.held)
    assert data.train.shape == (15, 15) and 0.4 < rated.mean() < 0.6  # about half the cells
    values = np.concatenate([data.train[np.isfinite(data.train)], data.held[np.isfinite(data.held)]])
    assert set(values) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(set(values)) >= 4
    assert not (np.isfinite(data.train) & np.isfinite(data.held)).any()  # a rating is trained on or held back
    assert abs(np.isfinite(data.held).sum() / rated.sum() - 0.2) < 0.02
    assert (np.isfinite(data.train).sum(axis=0) >= 2).all() and (np.isfinite(data.train).sum(axis=1) >= 2).all()
    # the noise-free model behind them: 3 + tastes·features/√k + biases
    clean = 3 + data.true_users @ data.true_movies.T / math.sqrt(3) + data.true_user_bias[:, None] \
        + data.true_movie_bias[None, :]
    np.testing.assert_allclose(clean, data.clean, rtol=1e-12)
    again = kinds.load("collab-filter").ratings  # seeded
    np.testing.assert_array_equal(np.nan_to_num(again.train), np.nan_to_num(data.train))
    other = kinds.from_raw({"lesson": {"kind": "collab"}, "ratings": {"users": 8, "movies": 11, "density": 0.7,
                                                                       "seed": 3}}, "x", "x.toml")
    assert other.ratings.train.shape == (8, 11)


def test_pytorch_embeddings_take_the_same_steps():
    """nn.Embedding for factors and biases, torch.optim.SGD with weight_decay, MSE on the training ratings,
    y_range's sigmoid: from the same start, the same parameters at every step (float64)."""
    torch = pytest.importorskip("torch")
    lesson = kinds.load("collab-filter", epochs=25)
    trace = kinds.kind_of(lesson).train(lesson)
    init = lesson.init()
    cells = np.argwhere(np.isfinite(lesson.ratings.train))
    users, movies = torch.tensor(cells[:, 0]), torch.tensor(cells[:, 1])
    target = torch.tensor(lesson.ratings.train[cells[:, 0], cells[:, 1]], dtype=torch.float64)
    emb = {}
    for name, values in (("users", init["users"]), ("movies", init["movies"]),
                         ("user_bias", init["user_bias"][:, None]), ("movie_bias", init["movie_bias"][:, None])):
        emb[name] = torch.nn.Embedding(*values.shape, dtype=torch.float64)
        with torch.no_grad():
            emb[name].weight.copy_(torch.tensor(values))
    opt = torch.optim.SGD([e.weight for e in emb.values()], lr=lesson.lr, weight_decay=lesson.wd)
    lo, hi = lesson.y_range
    for step in range(lesson.steps):
        for name in ("users", "movies"):
            assert np.allclose(emb[name].weight.detach().numpy(), trace.params[step][name], rtol=1e-9, atol=1e-12)
        for name in ("user_bias", "movie_bias"):
            assert np.allclose(emb[name].weight.detach().numpy()[:, 0], trace.params[step][name], rtol=1e-9,
                               atol=1e-12)
        opt.zero_grad()
        z = (emb["users"](users) * emb["movies"](movies)).sum(1) + emb["user_bias"](users)[:, 0] \
            + emb["movie_bias"](movies)[:, 0]
        pred = torch.sigmoid(z) * (hi - lo) + lo
        loss = torch.nn.functional.mse_loss(pred, target)
        assert close(trace.loss[step], loss.item())
        loss.backward()
        opt.step()
    assert np.allclose(emb["users"].weight.detach().numpy(), trace.final["users"], rtol=1e-9, atol=1e-12)


def test_learned_predictions_beat_the_all_means_baseline():
    lesson = kinds.load("collab-filter")
    trace = kinds.kind_of(lesson).train(lesson)
    p, data = trace.final, lesson.ratings
    lo, hi = lesson.y_range
    pred = lo + (hi - lo) / (1 + np.exp(-(p["users"] @ p["movies"].T + p["user_bias"][:, None]
                                          + p["movie_bias"][None, :])))
    held = np.isfinite(data.held)
    learned = float(np.mean((pred[held] - data.held[held]) ** 2))
    baseline = float(np.mean((data.held[held] - np.nanmean(data.train)) ** 2))
    assert learned < 0.7 * baseline, (learned, baseline)
    assert close(baseline, trace.baseline)
    print(f"held-back MSE after {lesson.steps} steps: {learned:.4f}; all-means baseline {baseline:.4f}")


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory, recalc):
    """The bundled lesson and an unsquashed variant without weight decay, built and recalculated by LibreOffice."""
    root = tmp_path_factory.mktemp("collab")
    paths = []
    for name, source, options in (("bundled", "collab-filter", {}), ("plain", unsquashed(root), {"epochs": 4})):
        lesson = kinds.load(source, **options)
        kinds.kind_of(lesson).build(lesson, root / f"{name}.xlsx")
        paths.append(root / f"{name}.xlsx")
    return dict(zip(("bundled", "plain"), zip(paths, recalc(paths))))


@pytest.mark.parametrize("which", ["bundled", "plain"])
def test_libreoffice_computes_every_formula_cell_as_the_engine(recalculated, which):
    built, saved = recalculated[which]
    checked = assert_recalculated_equals_cached(built, saved)  # every formula cell, every sheet
    assert checked > (90_000 if which == "bundled" else 5_000)


def test_the_workbook_has_every_sheet_and_solver_preconfigured(recalculated):
    built, saved = recalculated["bundled"]
    wb = openpyxl.load_workbook(saved, read_only=True, data_only=True)
    assert wb.sheetnames[:-1] == ["Introduction", "Loss", "Ratings", "Predictions", "Train", "Users", "Movies",
                                  "HeldBack", "Solver", "Tastes"]
    workbook_xml = zipfile.ZipFile(built).read("xl/workbook.xml").decode()
    names = dict(re.findall(r'<definedName name="(solver_\w+)"[^>]*hidden="1"[^>]*>([^<]*)<', workbook_xml))
    assert names["solver_opt"] == "Solver!$B$4" and names["solver_adj"] == "Solver!$C$8:$H$37"
    assert {"solver_typ", "solver_eng", "solver_neg", "solver_num", "solver_ver"} <= set(names)
    lesson = kinds.load("collab-filter")
    trace = kinds.kind_of(lesson).train(lesson)
    loss = wb["Loss"]
    rows = list(loss.iter_rows(min_row=12, max_row=11 + lesson.steps, values_only=True))
    assert [r[0] for r in rows] == list(range(1, lesson.steps + 1))
    assert close(rows[-1][2], trace.held_loss[-1]) and rows[-1][2] < loss["B9"].value  # beats the baseline
    assert close(wb["Solver"]["B4"].value, trace.objective[0])  # the Solver starts where SGD starts
    tastes = wb["Tastes"]
    assert close(tastes["B5"].value, lesson.ratings.true_users[0, 0])


@pytest.mark.parametrize("old,new,needles", [
    ("factors = 5", "factor = 5", ["[model]", "unknown key 'factor'", "did you mean factors"]),
    ("y_range = [0.5, 5.5]", "y_range = [5.5, 0.5]", ["y_range must be [] (no squashing) or [low, high]"]),
    ("density = 0.5", "density = 0.05", ["too few ratings", "raise density"]),
    ("users = 15", "users = 1", ["users must be"]),
])
def test_a_bad_template_is_one_line_naming_the_key(tmp_path, old, new, needles):
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    text = bundled_lessons()["collab-filter"].read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and all(n in result.output for n in needles), result.output


def test_options_that_do_not_apply_are_refused(tmp_path):
    result = CliRunner().invoke(cli, ["build", "collab-filter", "--batch-size", "4", "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2 and "does not apply" in result.output
