"""What sheetsgd reads and records: only regular files are read as templates and rosters (a FIFO or a
device is refused in one line, unread, without hanging; a file over its size bound is refused), a
manifest records a template's name and content, never a path of the author's machine, and zip member
names that would land outside a folder (``../../x``, ``/abs/x``) are never copied into an annotated
workbook. Commands run in a subprocess under a timeout, as a user runs them."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.runtime.inputfile import MAX_ROSTER_BYTES, MAX_TEMPLATE_BYTES
from sheetsgd.lessons.sgd.lesson import bundled_lessons, templates_dir

ROOT = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def sheetsgd(*args, cwd=None, timeout=60):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "sheetsgd", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_refused(done, *words):
    """Exit 2 and one line on stderr naming the problem; no traceback; nothing on stdout."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@needs_fifo
@pytest.mark.parametrize("command", ["build", "trace", "autograder"])
def test_a_fifo_template_is_refused_without_hanging(tmp_path, command):
    fifo = tmp_path / "lesson.toml"
    os.mkfifo(fifo)
    args = [command, fifo] + (["-o", tmp_path / ("out.zip" if command == "autograder" else "out.xlsx")]
                              if command != "trace" else [])
    done = sheetsgd(*args, timeout=60)  # a read would block forever: the timeout fails the test
    assert_refused(done, str(fifo), "FIFO", "template")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.toml"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_template_is_refused(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    link = tmp_path / "lesson.toml"
    link.symlink_to(device)
    assert_refused(sheetsgd("build", link, "-o", tmp_path / "out.xlsx"), "device", "template")


@needs_fifo
def test_a_fifo_roster_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "roster.csv"
    os.mkfifo(fifo)
    assert_refused(sheetsgd("build", "linear", "--variants", fifo, "-o", tmp_path / "out"), "FIFO", "roster")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_roster_is_refused_at_once(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    done = sheetsgd("build", "linear", "--variants", device, "-o", tmp_path / "out", timeout=30)
    assert_refused(done, device, "device", "roster")
    assert "MemoryError" not in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("what,name,bound", [("template", "big.toml", MAX_TEMPLATE_BYTES),
                                             ("roster", "big.csv", MAX_ROSTER_BYTES)])
def test_a_file_over_its_size_bound_is_refused_unread(tmp_path, what, name, bound):
    big = tmp_path / name
    with open(big, "wb") as fh:  # a sparse file: its size without its bytes
        fh.truncate(bound + 1)
    args = ["build", big, "-o", tmp_path / "out.xlsx"] if what == "template" else \
        ["build", "linear", "--variants", big, "-o", tmp_path / "out"]
    assert_refused(sheetsgd(*args), what, "larger than")
    assert big.stat().st_size == bound + 1


def test_a_template_at_its_bound_is_read(tmp_path):
    """The bound refuses only what is over it: the linear template padded with a comment to exactly the bound."""
    text = (templates_dir() / "linear.toml").read_bytes()
    padded = tmp_path / "padded.toml"
    padded.write_bytes(text + b"\n#" + b"x" * (MAX_TEMPLATE_BYTES - len(text) - 3) + b"\n")
    assert padded.stat().st_size == MAX_TEMPLATE_BYTES
    done = sheetsgd("trace", padded, "--epochs", "1")
    assert done.returncode == 0, done.stderr


# --- manifests record the template, never where it lay --------------------------------------------------

SMALL = {"linear": {"epochs": 1}, "too-high": {}, "optimizers": {"epochs": 1}, "lr-finder": {},
         "titanic-linear": {"epochs": 1}, "collab-filter": {"epochs": 1},
         "attention": {"epochs": 1}}  # one lesson of each kind


def test_every_lesson_records_its_templates_name_only():
    for name, path in bundled_lessons().items():
        lesson = kinds.load(str(path))
        assert lesson.origin["source"] == f"{name}.toml", (name, lesson.origin["source"])
        assert lesson.origin["name"] == name


def _all_text(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_built_workbook_names_no_path_of_the_authors_machine(name, tmp_path):
    """Every kind, built from a copy of its template in a private folder given by its absolute path: no
    part of the workbook holds that folder, the checkout's or the bundled templates' folder."""
    private = tmp_path / "home" / "alice" / "course-secrets"
    private.mkdir(parents=True)
    template = private / f"my-{name}.toml"
    shutil.copy(templates_dir() / f"{name}.toml", template)
    out = tmp_path / "lesson.xlsx"
    args = ["build", str(template.resolve()), "-o", str(out)] + [x for k, v in SMALL[name].items() for x in (f"--{k}", str(v))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = _all_text(out)
    for folder in (private, tmp_path, ROOT, templates_dir()):
        assert str(folder) not in text, folder
    assert f'"source": "my-{name}.toml"' in text


def test_the_checker_rebuilds_from_the_recorded_template_alone(tmp_path):
    """A student version built from a private template, filled in correctly, checks correct after the
    template is gone: the manifest's copy of it is what the checker rebuilds from."""
    private = tmp_path / "private"
    private.mkdir()
    template = private / "mine.toml"
    template.write_text((templates_dir() / "linear.toml").read_text(encoding="utf-8").replace("lr = 1e-4", "lr = 2e-4"),
                        encoding="utf-8")
    student = tmp_path / "student.xlsx"
    result = CliRunner().invoke(cli, ["build", str(template), "--epochs", "1", "--exercise", "-o", str(student)])
    assert result.exit_code == 0, result.output
    filled = tmp_path / "filled.xlsx"
    fill_xml_sheets(str(student), str(filled), fill_sheets(str(student)))
    shutil.rmtree(private)
    done = sheetsgd("check", filled, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["status"] == "correct", done.stdout + done.stderr
    assert report["lesson"]["name"] == "mine"


# --- zip member names ---------------------------------------------------------------------------------

EVIL_MEMBERS = ["../../evil.txt", "/abs/evil.txt", "xl/../../evil2.txt", "C:/evil.txt", "xl\\..\\..\\evil3.txt"]


@pytest.fixture(scope="module")
def with_evil_members(tmp_path_factory):
    """A correct linear submission (a wrong grad_a column) whose zip also holds members named to escape."""
    from sheetsgd.check.demo import Flaw

    tmp = tmp_path_factory.mktemp("members")
    student = tmp / "student.xlsx"
    assert CliRunner().invoke(cli, ["build", "linear", "--epochs", "1", "--exercise", "-o", str(student)]).exit_code == 0
    filled = tmp / "filled.xlsx"
    fill_xml_sheets(str(student), str(filled), fill_sheets(str(student), Flaw("update_sign_flipped", "new_a")))
    evil = tmp / "subs" / "evil.xlsx"
    evil.parent.mkdir()
    with zipfile.ZipFile(filled) as zin, zipfile.ZipFile(evil, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        for name in EVIL_MEMBERS:
            zout.writestr(zipfile.ZipInfo(name), b"planted")
    with zipfile.ZipFile(evil) as z:
        assert set(EVIL_MEMBERS) <= set(z.namelist())  # zipfile keeps the names as given
    return evil


def _assert_clean_copy(copy: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(copy) as z:
        names = z.namelist()
    assert not any("evil" in n for n in names), names
    assert len(names) == len(set(names))
    wb = openpyxl.load_workbook(copy)  # still a workbook
    assert "Feedback" in wb.sheetnames
    wb.close()
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(copy) as z:
        z.extractall(out)
    assert not list(tmp_path.rglob("evil*.txt"))


def test_check_annotate_drops_member_names_that_escape(with_evil_members, tmp_path):
    before = hashlib.sha256(with_evil_members.read_bytes()).hexdigest()
    copy = tmp_path / "annotated.xlsx"
    done = sheetsgd("check", with_evil_members, "--annotate", copy)
    assert done.returncode == 1, done.stderr
    _assert_clean_copy(copy, tmp_path)
    assert hashlib.sha256(with_evil_members.read_bytes()).hexdigest() == before


def test_grade_annotate_dir_drops_member_names_that_escape(with_evil_members, tmp_path):
    before = hashlib.sha256(with_evil_members.read_bytes()).hexdigest()
    done = sheetsgd("grade", with_evil_members, "-o", tmp_path / "g.csv", "--annotate-dir", tmp_path / "marked", "-q")
    assert done.returncode == 0, done.stderr
    _assert_clean_copy(tmp_path / "marked" / "evil.xlsx", tmp_path)
    assert hashlib.sha256(with_evil_members.read_bytes()).hexdigest() == before
