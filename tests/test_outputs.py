"""The output policy (sheetsgd.runtime.outputs), as users meet it on the command line: every file the tool writes
(grade's CSV, --results-json, --feedback-dir, --annotate-dir, check --annotate, build -o, --variants,
autograder -o) is never written through a symbolic link, never over an input (a hard link to a submission
is the submission), lands by a rename (no temporary file left behind) and gets the usual mode (0666 less
the umask). Refusals are one line, exit 2, and leave every input byte for byte as it was.
"""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sheetsgd import api
from sheetsgd.lessons.sgd.lesson import bundled_lessons

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sheetsgd", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd, preexec_fn=lambda: os.umask(0o022))


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink()}


def one_line_refusal(result, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines


@pytest.fixture(scope="module")
def subs(tmp_path_factory):
    """A submissions folder: bob (a student version, blank: mistakes), alice (the full workbook: correct),
    and a student's own carol.html beside carol.xlsx."""
    folder = tmp_path_factory.mktemp("subs")
    api.load("linear", epochs=1).build(folder / "bob.xlsx", True, progress=False)
    api.load("linear", epochs=1).build(folder / "alice.xlsx", progress=False)
    api.load("linear", epochs=1).build(folder / "carol.xlsx", progress=False)
    (folder / "carol.html").write_text("<p>carol's own page</p>", encoding="utf-8")
    return folder


def test_a_hard_link_to_a_submission_given_as_output_is_refused(subs, tmp_path):
    before = hashes(subs)
    link = tmp_path / "grades.csv"
    os.link(subs / "bob.xlsx", link)
    one_line_refusal(run("grade", subs, "-o", link), "would overwrite an input")
    assert hashes(subs) == before


def test_results_json_naming_a_submission_is_refused(subs, tmp_path):
    before = hashes(subs)
    one_line_refusal(run("grade", subs, "-o", tmp_path / "g.csv", "--results-json", subs / "alice.xlsx"),
                     "would overwrite an input")
    assert hashes(subs) == before and not (tmp_path / "g.csv").exists()


@pytest.mark.parametrize("option", ["--annotate-dir", "--feedback-dir"])
def test_an_output_folder_holding_the_submissions_is_refused(subs, tmp_path, option):
    before = hashes(subs)
    one_line_refusal(run("grade", subs, "-o", tmp_path / "g.csv", option, subs), "holds inputs")
    assert hashes(subs) == before  # bob.xlsx and carol's own carol.html untouched
    assert sorted(p.name for p in subs.iterdir()) == ["alice.xlsx", "bob.xlsx", "carol.html", "carol.xlsx"]


def test_a_planted_link_in_the_feedback_folder_is_not_followed(subs, tmp_path):
    before = hashes(subs)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    pages, copies = tmp_path / "pages", tmp_path / "copies"
    pages.mkdir()
    copies.mkdir()
    (pages / "alice.html").symlink_to(victim)
    (copies / "bob.xlsx").symlink_to(victim)
    done = run("grade", subs, "-o", tmp_path / "g.csv", "--feedback-dir", pages, "--annotate-dir", copies)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert victim.read_text(encoding="utf-8") == "precious"
    assert (pages / "alice.html").is_symlink() and (copies / "bob.xlsx").is_symlink()
    refused = [line for line in done.stderr.splitlines() if "symbolic link" in line]
    assert len(refused) == 2 and any("alice.html" in r for r in refused) and any("bob.xlsx" in r for r in refused)
    assert (pages / "bob.html").is_file() and (copies / "alice.xlsx").is_file()  # the others are written
    assert hashes(subs) == before


def test_check_annotate_never_writes_over_its_input_or_through_a_link(subs, tmp_path):
    before = hashes(subs)
    hard = tmp_path / "copy.xlsx"
    os.link(subs / "bob.xlsx", hard)
    one_line_refusal(run("check", subs / "bob.xlsx", "--annotate", hard), "would overwrite an input")
    link = tmp_path / "link.xlsx"
    link.symlink_to(tmp_path / "elsewhere.xlsx")
    one_line_refusal(run("check", subs / "bob.xlsx", "--annotate", link), "symbolic link")
    assert not (tmp_path / "elsewhere.xlsx").exists() and hashes(subs) == before


def test_build_never_writes_through_a_link_or_over_its_template(tmp_path):
    template = tmp_path / "mine.toml"
    template.write_bytes(Path(bundled_lessons()["linear"]).read_bytes())
    hard = tmp_path / "mine.xlsx"
    os.link(template, hard)
    before = hashes(tmp_path)
    one_line_refusal(run("build", template, "-o", hard), "would overwrite an input")
    link = tmp_path / "out.xlsx"
    link.symlink_to(tmp_path / "target.xlsx")
    one_line_refusal(run("build", "linear", "-o", link), "symbolic link")
    assert not (tmp_path / "target.xlsx").exists()
    assert hashes(tmp_path) == before


def test_variants_never_write_through_a_planted_link(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nalice\nbob\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (out / "bob.xlsx").symlink_to(victim)
    one_line_refusal(run("build", "linear", "--epochs", "1", "--variants", roster, "-o", out), "symbolic link")
    assert victim.read_text(encoding="utf-8") == "precious" and (out / "bob.xlsx").is_symlink()
    (out / "bob.xlsx").unlink()
    (out / "variants.csv").symlink_to(victim)
    one_line_refusal(run("build", "linear", "--epochs", "1", "--variants", roster, "-o", out), "symbolic link")
    assert victim.read_text(encoding="utf-8") == "precious"


def test_autograder_output_through_a_link_is_refused_before_any_work(tmp_path):
    link = tmp_path / "ag.zip"
    link.symlink_to(tmp_path / "target.zip")
    result = run("autograder", "linear", "-o", link, timeout=60)
    one_line_refusal(result, "symbolic link")
    assert not (tmp_path / "target.zip").exists()


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_output_gets_the_usual_mode_and_no_temporary_file_is_left(subs, tmp_path, mask):
    """0666 less the umask, as open() makes files (the annotated copies and pages used to be 0600)."""
    old = os.umask(mask)
    try:
        from click.testing import CliRunner

        from sheetsgd.cli.commands import cli

        runner = CliRunner()
        out = tmp_path / "out"
        out.mkdir()
        results = [runner.invoke(cli, ["grade", str(subs), "-o", str(out / "g.csv"), "--results-json",
                                       str(out / "r.json"), "--feedback-dir", str(out / "pages"),
                                       "--annotate-dir", str(out / "copies"), "-q", "-j", "1"]),
                   runner.invoke(cli, ["check", str(subs / "bob.xlsx"), "--annotate", str(out / "bob-marked.xlsx")]),
                   runner.invoke(cli, ["build", "linear", "--epochs", "1", "-o", str(out / "built.xlsx"), "-q"])]
    finally:
        os.umask(old)
    assert [r.exit_code for r in results] == [0, 1, 0], [r.output for r in results]
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) == 2 + 4 + 3 + 1 + 1  # csv, json, 4 pages, 3 copies (carol.html is no workbook), check, build
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, (p, oct(p.stat().st_mode))
        assert not p.name.startswith(".") and not p.name.endswith(".part")
