"""Text from files shown safely: control characters inside a submission's formulas and sheet names never
reach a terminal, a CSV, Markdown or an HTML page raw; a newline in a name stays on its line; a file name
that is not UTF-8 (as unzip makes from a legacy archive) is graded, named and written everywhere.

Every command runs as a user runs it (a subprocess writing real bytes), with the inputs' hashes compared
before and after."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.runtime.safetext import json_text, shown
from xlsx_parts import sheet_parts

ROOT = Path(__file__).resolve().parents[1]
# ESC sequences (clear the screen, retitle the terminal), BEL, the one-byte CSI U+009B, DEL, and a newline
# followed by a fake verdict
EVIL = "\x1b[2J\x1b]0;pwned\x07\u009b31m\x7f\n  all correct"
FORMULA = f'=I9*D9+LEN("{EVIL}")'
SHEET = "Steps\n# All correct\n- yes"  # a newline in a sheet name (a character reference in workbook.xml)
ODD_NAME = b"stud\xff\xfeent.xlsx"  # not UTF-8: Latin-1 bytes as unzip writes them from a legacy archive
# raw bytes that must never be printed: C0 but newline (and tab in HTML), DEL, C1 in UTF-8
RAW_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def sheetsgd(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "sheetsgd", *map(os.fsdecode, args)], cwd=cwd, env=env,
                          capture_output=True, timeout=300)


def digest(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(folder).iterdir() if p.is_file()}


def _rename_steps(src: Path, dst: Path, new: str) -> None:
    """The Steps sheet renamed everywhere it is named (the manifest keeps the layout's name)."""
    attr = new.replace("\n", "&#10;")
    quoted = "'" + new.replace("'", "''") + "'!"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        manifest = sheet_parts(zin)["_sheetsgd"]
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(".xml") and item.filename != manifest:
                text = re.sub(r"'?Steps'?!", lambda m: quoted, data.decode())
                data = text.replace('name="Steps"', f'name="{attr}"').encode()
            zout.writestr(item, data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """{'ctl': a formula full of control characters, 'sheet': a newline in the sheet's name}, and the folder."""
    tmp = tmp_path_factory.mktemp("safe-text")
    student = tmp / "student.xlsx"
    assert CliRunner().invoke(cli, ["build", "linear", "--epochs", "1", "--exercise", "-o", str(student)]).exit_code == 0
    cells = fill_sheets(str(student))
    cells["Steps"]["L9"] = FORMULA
    subs = tmp / "subs"
    subs.mkdir()
    fill_xml_sheets(str(student), str(subs / "ctl.xlsx"), cells)
    _rename_steps(subs / "ctl.xlsx", subs / "sheet.xlsx", SHEET)
    return {"ctl": subs / "ctl.xlsx", "sheet": subs / "sheet.xlsx", "folder": subs, "student": student}


def test_shown_escapes_every_control_character_and_keeps_text():
    cases = {"\x1b[2J": "\\x1b[2J", "\x07": "\\x07", "\x00": "\\x00", "\x7f": "\\x7f", "\u009b": "\\x9b",
             "\u0085": "\\x85", "a\nb": "a\\nb", "a\r\tb": "a\\r\\tb", "\u2028": "\\u2028", "\u202e": "\\u202e",
             os.fsdecode(b"stud\xff\xfeent"): "stud\\xff\\xfeent"}
    for raw, expected in cases.items():
        assert shown(raw) == expected, raw
    text = "∂L/∂a ŷ − y café 😀 «quotes» 日本"
    assert shown(text) == text
    assert shown("two\nlines\x1b", keep="\n") == "two\nlines\\x1b"
    assert shown(b"stud\xff.xlsx") == "stud\\xff.xlsx"


def test_json_text_is_lossless_and_prints_no_raw_control():
    data = {"formula": FORMULA, "sheet": SHEET, "name": os.fsdecode(ODD_NAME), "plain": "∂L/∂a"}
    text = json_text(data)
    assert not RAW_CONTROL.search(text.encode("utf-8"))  # encodes: no surrogate left
    back = json.loads(text)
    assert back["formula"] == FORMULA and back["sheet"] == SHEET and back["plain"] == "∂L/∂a"
    assert back["name"] == "stud\\xff\\xfeent.xlsx"


def test_check_text_json_and_html_escape_the_formula(hostile):
    before = digest(hostile["folder"])
    done = sheetsgd("check", hostile["ctl"])
    assert done.returncode == 1, done.stderr
    assert not RAW_CONTROL.search(done.stdout), done.stdout
    out = done.stdout.decode()
    assert shown(FORMULA) in out  # the formula, escaped, on the line of its mistake
    assert not any(line.strip() == "all correct" for line in out.splitlines())
    done = sheetsgd("check", hostile["ctl"], "--json")
    assert done.returncode == 1 and not RAW_CONTROL.search(done.stdout.replace(b"\n", b""))
    assert [m["formula"] for m in json.loads(done.stdout)["mistakes"]] == [FORMULA]  # lossless
    done = sheetsgd("check", hostile["ctl"], "--format", "html")
    assert done.returncode == 1 and not RAW_CONTROL.search(done.stdout.replace(b"\t", b""))
    assert b"\\x1b[2J" in done.stdout
    assert digest(hostile["folder"]) == before


def test_a_newline_in_a_sheet_name_stays_on_its_line(hostile, tmp_path):
    done = sheetsgd("check", hostile["sheet"])
    assert done.returncode in (1, 2), done.stderr
    text = (done.stdout + done.stderr).decode()
    assert "Steps\\n# All correct\\n- yes" in text, text
    assert not any(line.startswith(("# All", "- yes")) for line in text.splitlines())
    out = tmp_path / "r.json"
    done = sheetsgd("grade", hostile["sheet"], "-o", tmp_path / "g.csv", "--results-json", out, "-q")
    assert done.returncode == 0, done.stderr
    [sub] = json.loads(out.read_text(encoding="utf-8"))["submissions"]
    markdown = [sub["output"]] + [t["output"] for t in sub["tests"]]
    for md in markdown:
        assert not any(line.startswith(("#", "- yes", "- \\# All")) for line in md.splitlines()), md
        assert not RAW_CONTROL.search(md.replace("\n", "").encode())


def test_grade_names_a_file_that_is_not_utf8_everywhere(hostile, tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copy(hostile["ctl"], folder / "ctl.xlsx")
    shutil.copy(hostile["sheet"], folder / "sheet.xlsx")
    shutil.copy(hostile["student"], os.path.join(os.fsencode(folder), ODD_NAME))
    before = digest(folder)
    out, results, feedback = tmp_path / "g.csv", tmp_path / "r.json", tmp_path / "fb"
    marked = tmp_path / "marked"
    done = sheetsgd("grade", folder, "-o", out, "--results-json", results, "--feedback-dir", feedback,
                    "--annotate-dir", marked)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and not RAW_CONTROL.search(done.stderr.replace(b"\n", b"").replace(b"\r", b""))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    odd = "stud\\xff\\xfeent"
    assert sorted(r["id"] for r in rows) == ["ctl", "sheet", odd]
    row = next(r for r in rows if r["id"] == odd)
    assert row["status"] == "mistakes" and row["file"].endswith(odd + ".xlsx")  # the blank assignment, checked
    assert not any(RAW_CONTROL.search(v.encode()) for r in rows for v in r.values())
    subs = {s["id"]: s for s in json.loads(results.read_bytes().decode("utf-8"))["submissions"]}
    assert set(subs) == {"ctl", "sheet", odd} and subs[odd]["file"].endswith(odd + ".xlsx")
    assert f"**{odd.replace(chr(92), chr(92) * 2)}.xlsx**" in subs[odd]["output"]  # Markdown-escaped backslashes
    assert sorted(p.name for p in feedback.iterdir()) == sorted(f"{i}.html" for i in subs)
    assert "stud\\xff\\xfeent.xlsx" in (feedback / f"{odd}.html").read_text(encoding="utf-8")
    assert (marked / f"{odd}.xlsx").is_file()  # the one file here whose XML an annotation can edit
    assert digest(folder) == before


def test_the_autograder_grades_a_file_that_is_not_utf8(hostile, tmp_path, capfd):
    from sheetsgd.grade.autograder_run import run

    bundle = tmp_path / "ag.zip"
    result = CliRunner().invoke(cli, ["autograder", "linear", "--epochs", "1", "-o", str(bundle)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    (root / "submission").mkdir()
    shutil.copy(hostile["ctl"], os.path.join(os.fsencode(root / "submission"), ODD_NAME))
    (root / "submission" / "notes\x1b[2J.txt").write_bytes(b"x")
    capfd.readouterr()
    results = run(root)
    printed = capfd.readouterr().out.encode("utf-8", "surrogateescape")
    assert not RAW_CONTROL.search(printed.replace(b"\n", b"")), printed
    written = json.loads((root / "results" / "results.json").read_bytes().decode("utf-8"))
    assert written["score"] == results["score"] > 0 and len(written["tests"]) == 5
    assert "stud\\\\xff\\\\xfeent.xlsx" in written["output"] and "notes\\\\x1b\\[2J.txt" in written["output"]
    failed = [t for t in written["tests"] if t["status"] == "failed"]
    assert failed and all(not RAW_CONTROL.search(t["output"].replace("\n", "").encode()) for t in failed)


def test_progress_lines_escape_stage_names():
    from sheetsgd.runtime.progress import Reporter

    stream = io.StringIO()
    reporter = Reporter(stream=stream, delay=0, interval=0)
    reporter.stage("Steps\x1b]0;pwned\x07", 10)
    reporter.close()
    assert "\x1b" not in stream.getvalue() and "\x07" not in stream.getvalue()
    assert "Steps\\x1b]0;pwned\\x07" in stream.getvalue()
