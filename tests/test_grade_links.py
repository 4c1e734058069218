"""`grade`: unique ids regardless of case, the same file graded once, the link policy with a notice for
every skipped entry, the output checked for writability before grading (issue 10)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.lessons.sgd.workbook import build_workbook


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    """A full (correct) lesson workbook with cached values: `check` passes it without recalculating."""
    path = tmp_path_factory.mktemp("wb") / "full.xlsx"
    build_workbook(override(load_lesson("linear"), epochs=1), path)
    return path


def rows(csv_path: Path) -> list[dict]:
    with open(csv_path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_ids_differing_only_in_case_are_made_unique(tmp_path, workbook):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in ("same.xlsx", "same.XLSX", "same.Xlsx"):
        shutil.copy(workbook, folder / name)
    result = run("grade", folder, "-o", tmp_path / "g.csv", "--results-json", tmp_path / "r.json", "-q", "-j", "1")
    assert result.exit_code == 0, result.output + result.stderr
    ids = [r["id"] for r in rows(tmp_path / "g.csv")]
    assert len(ids) == 3 and len({i.casefold() for i in ids}) == 3, ids
    assert ids[0] == "same" and set(ids[1:]) == {"same-2", "same-3"}
    subs = json.loads((tmp_path / "r.json").read_text())["submissions"]
    assert [s["id"] for s in subs] == ids


def test_the_same_file_named_three_times_is_graded_once(tmp_path, workbook):
    f = tmp_path / "a.xlsx"
    shutil.copy(workbook, f)
    result = run("grade", f, f, tmp_path / "." / "a.xlsx", "-o", tmp_path / "g.csv", "-q", "-j", "1")
    assert result.exit_code == 0, result.stderr
    assert len(rows(tmp_path / "g.csv")) == 1
    notices = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(notices) == 2 and all("graded once" in n for n in notices)
    assert "skipped 2 entries" in result.output


def test_links_never_lead_out_of_the_folder_and_every_skip_is_reported(tmp_path, workbook):
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(workbook, folder / "good.xlsx")
    (tmp_path / "outside.xlsx").write_bytes(workbook.read_bytes())
    os.symlink("good.xlsx", folder / "link-in.xlsx")  # the same file: graded once
    os.symlink("/etc/passwd", folder / "passwd.xlsx")
    os.symlink(tmp_path / "outside.xlsx", folder / "out.xlsx")
    os.symlink(folder / "missing.xlsx", folder / "dangling.xlsx")
    os.symlink(folder / "loop2.xlsx", folder / "loop1.xlsx")
    os.symlink(folder / "loop1.xlsx", folder / "loop2.xlsx")
    os.symlink(tmp_path, folder / "folderlink.xlsx")
    os.symlink("/dev/null", folder / "null.xlsx")
    os.mkfifo(folder / "fifo.xlsx")
    (folder / "sub").mkdir()
    shutil.copy(workbook, folder / "sub" / "deep.xlsx")
    (folder / "x.xlsx").mkdir()
    (folder / ".hidden.xlsx").write_bytes(b"")
    start = time.monotonic()
    result = run("grade", folder, "-o", tmp_path / "g.csv", "-q", "-j", "1")
    assert time.monotonic() - start < 30
    assert result.exit_code == 0, result.stderr
    graded = rows(tmp_path / "g.csv")
    assert [r["id"] for r in graded] == ["good"] and graded[0]["status"] == "correct"
    skipped = {Path(line.split(": ", 1)[0].removeprefix("skipped ")).name: line
               for line in result.stderr.splitlines() if line.startswith("skipped ")}
    expected = {"link-in.xlsx": "graded once", "passwd.xlsx": "out of its folder", "out.xlsx": "out of its folder",
                "dangling.xlsx": "dangling link", "loop1.xlsx": "cannot be resolved", "loop2.xlsx": "cannot be resolved",
                "folderlink.xlsx": "out of its folder", "null.xlsx": "out of its folder", "fifo.xlsx": "FIFO",
                "sub": "subfolder", "x.xlsx": "subfolder", ".hidden.xlsx": "hidden"}
    assert set(skipped) == set(expected), skipped
    for name, why in expected.items():
        assert why in skipped[name], skipped[name]
    assert "root:" not in result.output  # /etc/passwd was never read


def test_a_link_inside_the_folder_to_a_folder_is_not_followed(tmp_path, workbook):
    folder = tmp_path / "subs"
    (folder / "inner").mkdir(parents=True)
    shutil.copy(workbook, folder / "good.xlsx")
    os.symlink("inner", folder / "dir.xlsx")
    result = run("grade", folder, "-o", tmp_path / "g.csv", "-q", "-j", "1")
    assert "dir.xlsx: a link to a folder: not followed" in result.stderr


def test_an_explicit_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "f.xlsx")
    result = run("grade", tmp_path / "f.xlsx", "-o", tmp_path / "g.csv", "-q")
    assert result.exit_code == 2 and "FIFO" in result.stderr and "no files to grade" in result.stderr


@pytest.mark.parametrize("target", ["/proc/g.csv", "{tmp}/missing-folder/g.csv", "{tmp}"])
def test_unwritable_output_fails_before_grading(tmp_path, workbook, target):
    start = time.monotonic()
    out = target.format(tmp=tmp_path)
    result = run("grade", workbook, workbook, "-o", out, "-q")
    assert result.exit_code == 2 and time.monotonic() - start < 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and out in lines[0], lines


def test_unwritable_results_json_fails_before_grading(tmp_path, workbook):
    result = run("grade", workbook, "-o", tmp_path / "g.csv", "--results-json", "/proc/r.json", "-q")
    assert result.exit_code == 2 and "/proc/r.json" in result.stderr
    assert not (tmp_path / "g.csv").exists()


def test_small_file_limits_print_sizes_with_useful_precision(tmp_path, workbook):
    result = run("check", workbook, "--max-file-mb", "0.01")
    assert result.exit_code == 2
    size = workbook.stat().st_size / 1e6
    assert f"file is {size:.3g} MB, over the 0.01 MB limit" in result.stderr, result.stderr
    assert "file is 0 MB" not in result.stderr
