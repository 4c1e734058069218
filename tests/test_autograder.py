"""The Gradescope autograder, as Gradescope runs it: the bundle built by the CLI, unpacked into a
temporary /autograder layout (source/, submission/, results/), setup.sh installing the bundled wheel
into a fresh virtual environment, and the real run_autograder writing results.json for a correct, a
wrong, a missing, a doubled, a non-workbook, a corrupt and two hostile submissions, and one of
another lesson. results.json is validated against the fields of Gradescope's specification, written
out below.

setup.sh runs with SHEETSGD_AUTOGRADER_OFFLINE=1 (no network here): the venv finds the dependencies
installed for this test's interpreter (a virtual environment's too), and the wheel is installed with
pip --no-index --no-deps. Nothing of this checkout is on the venv's path: run_autograder clears
PYTHONPATH, and the test asserts that sheetsgd is imported from the venv. That installed copy (no
source tree, no build backend) then bundles itself, and its bundle grades too.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets

EPOCHS = 1
STEPS = 29 * EPOCHS  # linear: 29 examples, one step each
COLUMNS = ["err", "grad_a", "grad_b", "new_a", "new_b"]

# --- Gradescope's results.json, field by field (its autograder specification) ------------------------
TOP = {"score": "number", "execution_time": "number", "output": "str", "output_format": "format",
       "test_output_format": "format", "test_name_format": "format", "visibility": "visibility",
       "stdout_visibility": "visibility", "extra_data": "dict", "tests": "tests", "leaderboard": "leaderboard"}
TEST = {"score": "number", "max_score": "number", "status": "status", "name": "str", "name_format": "format",
        "number": "str", "output": "str", "output_format": "format", "tags": "strlist", "visibility": "visibility",
        "extra_data": "dict"}
ENTRY = {"name": "str", "value": "value", "order": "order"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _value(kind: str, v, where: str) -> None:
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    hashable = isinstance(v, (str, int, float, type(None)))
    checks = {"number": lambda: number and math.isfinite(v), "str": lambda: isinstance(v, str),
              "format": lambda: hashable and v in FORMATS, "visibility": lambda: hashable and v in VISIBILITY,
              "dict": lambda: isinstance(v, dict), "status": lambda: v in ("passed", "failed"),
              "strlist": lambda: isinstance(v, list) and all(isinstance(t, str) for t in v),
              "value": lambda: (number and math.isfinite(v)) or isinstance(v, str),
              "order": lambda: v in ("asc", "desc"), "tests": lambda: isinstance(v, list),
              "leaderboard": lambda: isinstance(v, list)}
    ok = checks[kind]()
    assert ok, f"{where}: {v!r} is not a valid {kind}"
    if number and isinstance(v, float):
        assert float(f"{v:.6g}") == v, f"{where}: {v!r} has more than 6 significant digits (float noise)"


def validate(results: dict) -> None:
    """Every field known to Gradescope's spec, of its type; a score on the whole or on every test."""
    assert isinstance(results, dict)
    for key, v in results.items():
        assert key in TOP, f"unknown top-level field {key!r}"
        _value(TOP[key], v, key)
    assert "score" in results or all("score" in t for t in results.get("tests", [])), "no score"
    for i, t in enumerate(results.get("tests", [])):
        assert isinstance(t, dict)
        for key, v in t.items():
            assert key in TEST, f"tests[{i}]: unknown field {key!r}"
            _value(TEST[key], v, f"tests[{i}].{key}")
    for i, e in enumerate(results.get("leaderboard", [])):
        assert set(e) <= set(ENTRY) and {"name", "value"} <= set(e), e
        for key, v in e.items():
            _value(ENTRY[key], v, f"leaderboard[{i}].{key}")


def test_the_validator_can_fail():
    with pytest.raises(AssertionError):
        validate({"score": 1, "tests": [{"score": 1, "status": "ok"}]})
    with pytest.raises(AssertionError):
        validate({"score": -3.2060934000000003})
    with pytest.raises(AssertionError):
        validate({"score": 0, "colour": "red"})
    validate({"score": 1.5, "tests": [{"score": 1, "max_score": 2, "status": "failed", "tags": ["x"]}],
              "leaderboard": [{"name": "a", "value": 3, "order": "asc"}]})


# --- the bundle, installed as Gradescope installs it ------------------------------------------------

def _env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"SHEETSGD_AUTOGRADER_ROOT": str(root), "SHEETSGD_AUTOGRADER_PYTHON": sys.executable, **extra})
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(autograder root, the bundle's configuration): built by the CLI, unpacked, setup.sh run."""
    tmp = tmp_path_factory.mktemp("gradescope")
    bundle = tmp / "autograder.zip"
    result = CliRunner().invoke(cli, ["autograder", "linear", "--epochs", str(EPOCHS), "-o", str(bundle),
                                      "--leaderboard", "--visibility", "after_published"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        assert {"setup.sh", "run_autograder", "sheetsgd-autograder.json", "assignment.xlsx"} <= set(names)
        assert (z.getinfo("run_autograder").external_attr >> 16) & 0o111, "run_autograder is not executable"
    root = tmp / "autograder"
    # like Gradescope: run_autograder is copied to /autograder and run from there (zipfile drops the mode
    # bits that Gradescope's unzip keeps: _set_up restores them)
    venv_python = _set_up(bundle, root, sys.executable)
    where = subprocess.run([str(venv_python), "-c", "import sheetsgd; print(sheetsgd.__file__, sheetsgd.__version__)"],
                           cwd=root, env=_env(root), capture_output=True, text=True, check=True).stdout.split()
    assert Path(where[0]).is_relative_to(root / "sheetsgd-venv"), where  # the bundled wheel, not this checkout
    config = json.loads((root / "source" / "sheetsgd-autograder.json").read_text())
    return root, config


def run_autograder(root: Path, files: dict[str, Path | bytes]) -> dict:
    """Lay the submission out as Gradescope does, run the real run_autograder, return results.json."""
    for d in ("submission", "results"):
        shutil.rmtree(root / d, ignore_errors=True)
    (root / "results").mkdir()
    if files is not None:
        (root / "submission").mkdir()
        for name, content in files.items():
            target = root / "submission" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else Path(content).read_bytes())
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=_env(root), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    validate(results)
    return results


@pytest.fixture(scope="module")
def filled(installed, tmp_path_factory, request):
    """The bundle's assignment filled in correctly and with a flipped update sign, saved by LibreOffice."""
    recalc = request.getfixturevalue("recalc")
    root, _ = installed
    tmp = tmp_path_factory.mktemp("filled")
    student = root / "source" / "assignment.xlsx"
    out = {}
    for tag, flaw in (("correct", None), ("wrong", Flaw("update_sign_flipped", "new_a"))):
        out[tag] = tmp / f"{tag}.xlsx"
        fill_xml_sheets(str(student), str(out[tag]), fill_sheets(str(student), flaw))
    saved = recalc(recalc([out["correct"], out["wrong"]]))
    return dict(zip(("correct", "wrong"), saved))


def _set_up(bundle: Path, root: Path, python: str) -> Path:
    """Unpack ``bundle`` into ``root/source``, run its setup.sh offline with ``python``; the venv's python."""
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")],
                          env=_env(root, SHEETSGD_AUTOGRADER_OFFLINE="1", SHEETSGD_AUTOGRADER_PYTHON=python),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    return root / "sheetsgd-venv" / "bin" / "python"


def test_an_installed_sheetsgd_bundles_itself(installed, filled, tmp_path):
    """The sheetsgd setup.sh installed from the wheel (no source tree beside it) writes its own bundle, with
    no build backend and no index: the very same wheel, byte for byte; that bundle, set up offline from
    the venv's own interpreter (a virtual environment's, whose base has none of its packages' paths),
    grades a correct and a wrong submission."""
    root, _ = installed
    venv = root / "sheetsgd-venv"
    package = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sheetsgd; print(sheetsgd.__file__)"],
                                  cwd=tmp_path, env=_env(root), capture_output=True, text=True, check=True).stdout.strip())
    assert package.is_relative_to(venv) and not (package.parent.parent / "pyproject.toml").exists()
    bundle = tmp_path / "again.zip"
    no_backend = "import sys; sys.modules['hatchling'] = None; from sheetsgd.cli.commands import main; main()"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", no_backend, "autograder", "linear", "--epochs",
                           str(EPOCHS), "-o", str(bundle), "--leaderboard"], cwd=tmp_path,
                          env=_env(root, PIP_NO_INDEX="1"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [first] = (root / "source" / "wheels").glob("sheetsgd-*.whl")
    with zipfile.ZipFile(bundle) as z:
        assert z.read(f"wheels/{first.name}") == first.read_bytes()
    again = tmp_path / "autograder"
    venv_python = _set_up(bundle, again, str(venv / "bin" / "python"))
    where = subprocess.run([str(venv_python), "-c", "import sheetsgd, xlsxwriter; print(sheetsgd.__file__)"],
                           cwd=again, env=_env(again), capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(again / "sheetsgd-venv"), where
    right = run_autograder(again, {"right.xlsx": filled["correct"]})
    assert right["score"] == len(COLUMNS) * STEPS and "all correct" in right["output"], right["output"]
    wrong = run_autograder(again, {"wrong.xlsx": filled["wrong"]})
    assert 0 < wrong["score"] < len(COLUMNS) * STEPS
    assert any("update_sign_flipped" in t["tags"] for t in wrong["tests"]), wrong["tests"]


def test_a_plain_install_runs_a_courses_commands(installed, filled, tmp_path):
    """The commands a course runs, from the ``sheetsgd`` console script of a plain (non-editable) install with
    no source tree beside it: list the lessons, build a lesson and its student version, check a correct and a
    wrong submission (text and HTML), grade a folder."""
    root, _ = installed
    venv = root / "sheetsgd-venv"
    script = venv / "bin" / "sheetsgd"

    def run(*args):
        return subprocess.run([str(script), *map(str, args)], cwd=tmp_path, env=_env(root), capture_output=True,
                              text=True, timeout=600)

    listed = run("lessons")
    assert listed.returncode == 0 and "linear" in listed.stdout and "collab-filter" in listed.stdout
    assert run("build", "linear", "--epochs", EPOCHS, "-o", "linear.xlsx", "--quiet").returncode == 0
    built = run("build", "linear", "--epochs", EPOCHS, "--exercise", "-o", "student.xlsx", "--quiet")
    assert built.returncode == 0, built.stderr
    assert zipfile.ZipFile(tmp_path / "student.xlsx").testzip() is None
    right = run("check", filled["correct"])
    assert right.returncode == 0 and "all correct" in right.stdout, right.stdout + right.stderr
    wrong = run("check", filled["wrong"], "--json")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert [m["mistake"] for m in json.loads(wrong.stdout)["mistakes"]] == ["update_sign_flipped"]
    page = run("check", filled["wrong"], "--format", "html")
    assert page.returncode == 1 and "<html" in page.stdout.lower() and "Steps!Q10" in page.stdout
    folder = tmp_path / "class"
    folder.mkdir()
    for tag in ("correct", "wrong"):
        shutil.copy(filled[tag], folder / f"{tag}.xlsx")
    graded = run("grade", folder, "-o", "grades.csv", "--quiet")
    assert graded.returncode == 0 and "1 correct, 1 mistakes" in graded.stdout, graded.stdout + graded.stderr
    rows = {r["id"]: r for r in __import__("csv").DictReader(open(tmp_path / "grades.csv", encoding="utf-8"))}
    assert rows["correct"]["status"] == "correct" and float(rows["correct"]["grade"]) == 1.0
    assert rows["wrong"]["status"] == "mistakes" and "update_sign_flipped" in rows["wrong"]["mistakes"]


def test_the_wheel_holds_what_the_build_backend_puts_in_it(installed, tmp_path):
    """The bundled wheel's package files equal, byte for byte, those of the wheel the build backend makes
    from this checkout (when hatchling is importable here; built offline)."""
    pytest.importorskip("hatchling")
    from sheetsgd.grade.wheelfile import project_root

    checkout = project_root()
    if checkout is None:
        pytest.skip("sheetsgd does not run from a checkout here")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(tmp_path), str(checkout)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    root, _ = installed
    [ours] = (root / "source" / "wheels").glob("sheetsgd-*.whl")
    [theirs] = tmp_path.glob("sheetsgd-*.whl")

    def files(wheel):
        with zipfile.ZipFile(wheel) as z:
            return {n: z.read(n) for n in z.namelist() if ".dist-info/" not in n}

    assert files(ours) == files(theirs)


def test_bundle_records_the_lesson(installed):
    _, config = installed
    assert config["lesson"] == "linear" and config["options"] == {"epochs": EPOCHS}
    assert config["exercise"] == sorted(COLUMNS)
    assert config["visibility"] == "after_published" and config["leaderboard"] is True


def test_correct_submission_scores_every_cell(installed, filled):
    root, _ = installed
    results = run_autograder(root, {"hw/correct.xlsx": filled["correct"]})
    tests = {t["name"]: t for t in results["tests"]}
    assert len(tests) == len(COLUMNS)
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] == STEPS for t in tests.values())
    assert results["score"] == len(COLUMNS) * STEPS
    assert all(t["output_format"] == "md" and t["visibility"] == "after_published" and t["tags"] == []
               for t in tests.values())
    board = {e["name"]: e for e in results["leaderboard"]}
    assert {k: e["value"] for k, e in board.items() if k != "Final loss"} == {"Cells right (%)": 100, "Formulas right (%)": 100}
    # the last step's loss, as a written-out SGD loop on the variant-free lesson computes it (6 digits)
    x = [14, 86, 28, 51, 28, 29, 72, 62, 84, 15, 42, 62, 47, 35, 9, 38, 44, 99, 13, 21, 28, 20, 8, 64, 99, 70, 27, 17, 8]
    a = b = 1.0
    for xi in x:
        yi = 2 * xi + 30
        err = a * xi + b - yi
        loss = err ** 2
        a, b = a - 1e-4 * 2 * err * xi, b - 1e-4 * 2 * err
    assert board["Final loss"]["order"] == "asc" and math.isclose(board["Final loss"]["value"], loss, rel_tol=1e-5)
    assert "all correct" in results["output"]


def test_wrong_submission_names_the_mistake(installed, filled):
    root, _ = installed
    results = run_autograder(root, {"wrong.xlsx": filled["wrong"], "notes.txt": b"my notes"})
    tests = {t["name"].rsplit("(", 1)[1].rstrip(")"): t for t in results["tests"]}
    assert tests["new_a"]["status"] == "failed" and tests["new_a"]["tags"] == ["update_sign_flipped"]
    assert "step 1" in tests["new_a"]["output"] and "Hint" in tests["new_a"]["output"]
    assert 0 < results["score"] < len(COLUMNS) * STEPS
    assert results["score"] == sum(t["score"] for t in results["tests"])
    assert "notes.txt" in results["output"]  # the ignored file is named


@pytest.mark.parametrize("case", ["missing", "empty", "two", "csv"])
def test_no_single_workbook_scores_zero_with_a_reason(installed, case, tmp_path):
    root, config = installed
    assignment = (root / "source" / "assignment.xlsx").read_bytes()
    files = {"missing": None, "empty": {}, "two": {"a.xlsx": assignment, "b/b.xlsx": assignment},
             "csv": {"answers.csv": b"x,y\n1,2\n", "~$lock.xlsx": b"lock"}}[case]
    results = run_autograder(root, files)
    assert results["score"] == 0 and results["tests"] == []
    word = {"missing": "No file", "empty": "No file", "two": "exactly one", "csv": "answers.csv"}[case]
    assert word in results["output"], results["output"]


def _rezip(src: Path, edit) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                edit(zout, item, data)
            else:
                zout.writestr(item, data)
    return buf.getvalue()


def test_corrupt_and_hostile_files_score_zero_in_one_line(installed):
    root, _ = installed
    good = root / "source" / "assignment.xlsx"

    def bomb(zout, item, data):  # 128 MB of zeros in the Steps sheet (above the 64 MB part limit)
        with zout.open(item.filename, "w", force_zip64=True) as fh:
            for _ in range(8):
                fh.write(b"\0" * (1 << 24))

    def xxe(zout, item, data):
        head = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        zout.writestr(item, head + data.split(b"?>", 1)[1].replace(b"<sheetData>", b"<sheetData>&e;", 1))

    cases = {"truncated": good.read_bytes()[:5000], "bomb": _rezip(good, bomb), "xxe": _rezip(good, xxe),
             "text": b"not a workbook at all"}
    for name, content in cases.items():
        results = run_autograder(root, {f"{name}.xlsx": content})
        assert results["score"] == 0 and results["tests"] == [], (name, results)
        assert results["output"].startswith(f"Cannot check {name}.xlsx: ") and "\n" not in results["output"], results
        assert "root:" not in json.dumps(results)  # no file's content came back


def test_another_lessons_workbook_is_refused(installed, tmp_path):
    root, _ = installed
    other = tmp_path / "quadratic.xlsx"
    assert CliRunner().invoke(cli, ["build", "quadratic", "--epochs", "1", "--exercise", "-o", str(other)]).exit_code == 0
    results = run_autograder(root, {"q.xlsx": other})
    assert results["score"] == 0 and "not this assignment's workbook" in results["output"]
    assert "quadratic" in results["output"]


# --- every lesson kind: the bundle's run, in this process (the code run_autograder runs) ---------------

SMALL = {"linear": {"epochs": 1}, "quadratic": {"epochs": 3}, "too-high": {}, "optimizers": {"epochs": 1},
         "optimizers-classic": {"epochs": 1}, "one-cycle": {"epochs": 1}, "lr-finder": {}, "lr-finder-titanic": {},
         "titanic-linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1}, "titanic-relu2": {"epochs": 1},
         "titanic-mlp": {"epochs": 1}, "collab-filter": {"epochs": 3}, "weight-decay": {"epochs": 1}, "penguins-softmax": {"epochs": 1}, "dropout": {"epochs": 2},
         "attention": {"epochs": 1}, "conv": {"epochs": 1}}


@pytest.fixture(scope="module")
def wheel(installed):
    root, _ = installed
    [found] = (root / "source" / "wheels").glob("sheetsgd-*.whl")
    return found


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_lesson_kind_gets_an_autograder(name, wheel, tmp_path):
    """The blank assignment scores 0 with one failed test per exercise column; the full workbook of the
    same lesson (the engine's values cached, which any student can build) is refused: score 0, one line."""
    from sheetsgd import api
    from sheetsgd.grade.autograder_run import run
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    assert set(SMALL) == set(bundled_lessons())
    bundle = tmp_path / "ag.zip"
    args = ["autograder", name, "-o", str(bundle), "--wheel", str(wheel), "--points", "10"]
    args += [x for k, v in SMALL[name].items() for x in (f"--{k}", str(v))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    config = json.loads((root / "source" / "sheetsgd-autograder.json").read_text())
    full = tmp_path / "full.xlsx"
    api.load(name, **SMALL[name]).build(full, progress=False)
    for what, source in (("blank", root / "source" / "assignment.xlsx"), ("full", full)):
        shutil.rmtree(root / "submission", ignore_errors=True)
        (root / "submission").mkdir()
        shutil.copy(source, root / "submission" / f"{what}.xlsx")
        results = run(root)
        validate(json.loads((root / "results" / "results.json").read_text()))
        if what == "blank":
            assert len(results["tests"]) == len(config["exercise"]) > 0, results["output"]
            assert math.isclose(sum(t["max_score"] for t in results["tests"]), 10, rel_tol=1e-5)
            assert results["score"] == 0 and all(t["status"] == "failed" for t in results["tests"])
            assert all("blank" in t["tags"] or "knock_on" in t["tags"] for t in results["tests"]), results["tests"]
        else:  # the full workbook, every answer in it (any student can build it): refused, score 0, one line
            assert results["score"] == 0 and results["tests"] == [], results["output"]
            assert "\n" not in results["output"] and "full workbook" in results["output"], results["output"]


def _filled(path: Path, lesson: str = "linear", **options) -> Path:
    """The lesson's student version filled in correctly (formulas as a student types them, no saved values)."""
    from sheetsgd import api

    student = path.with_name(path.stem + "-blank.xlsx")
    api.load(lesson, **options).build(student, exercise=True, progress=False)
    fill_xml_sheets(str(student), str(path), fill_sheets(str(student)))
    student.unlink()
    return path


def test_variants_are_accepted_with_allow_variants(wheel, tmp_path):
    from sheetsgd import api
    from sheetsgd.grade.autograder_run import run

    full = _filled(tmp_path / "mine.xlsx", epochs=1, variant="s-0042")
    for flag in (["--allow-variants"], []):
        bundle = tmp_path / "ag.zip"
        result = CliRunner().invoke(cli, ["autograder", "linear", "--epochs", "1", "-o", str(bundle), "--wheel", str(wheel),
                                          *flag])
        assert result.exit_code == 0, result.output
        root = tmp_path / f"autograder{len(flag)}"
        with zipfile.ZipFile(bundle) as z:
            z.extractall(root / "source")
        (root / "submission").mkdir()
        shutil.copy(full, root / "submission" / "mine.xlsx")
        results = run(root)
        assert results["score"] == len(COLUMNS) * STEPS and "variant s\\-0042" not in results["output"]
        assert "variant s-0042" in results["output"]
        assert ("this assignment has no variants" in results["output"]) == (not flag)


def test_variant_key_accepts_only_the_submitters_own_variant(wheel, tmp_path):
    from sheetsgd import api
    from sheetsgd.grade.autograder_run import run

    bundle = tmp_path / "ag.zip"
    result = CliRunner().invoke(cli, ["autograder", "linear", "--epochs", "1", "-o", str(bundle), "--wheel", str(wheel),
                                      "--variant-key", "email"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    (root / "submission").mkdir()
    users = {"users": [{"email": "ann@uni.edu", "name": "Ann", "id": 1}, {"email": "ben@uni.edu", "name": "Ben", "id": 2}]}
    for owner, expect_full in (("ben@uni.edu", True), ("eve@uni.edu", False), (None, False)):
        (root / "submission_metadata.json").write_text(json.dumps(users))
        _filled(root / "submission" / "hw.xlsx", epochs=1, variant=owner)
        results = run(root)
        if expect_full:
            assert results["score"] == len(COLUMNS) * STEPS, results["output"]
        else:
            assert results["score"] == 0 and "not your own variant" in results["output"], results["output"]
            assert "eve@" not in results["output"]  # another student's ID is not shown
    (root / "submission_metadata.json").unlink()  # no metadata: graded, with a note
    _filled(root / "submission" / "hw.xlsx", epochs=1, variant="eve@uni.edu")
    results = run(root)
    assert results["score"] == len(COLUMNS) * STEPS and "not verified" in results["output"]
