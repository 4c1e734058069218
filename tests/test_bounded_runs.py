"""Work bounded by the input, as users run it: the annotated copy in time linear in the file (inside check's
deadline and grade's workers), a check's rebuild bounded by the cells the file holds, shared strings
bounded, check's memory cap, Ctrl-C during grade keeping every finished result, and progress on stderr
only when it is a terminal. Every command runs in a subprocess with a timeout; refusals are one line,
exit 2, no traceback, and inputs are unchanged (hashes before and after).
"""
from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from sheetsgd import api
from sheetsgd.lessons import runbounds

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def run(*args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "sheetsgd", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, **kw)


def run_measured(*args, timeout=120):
    """(result, peak resident MB of the command) — measured in a fresh parent so earlier runs do not count."""
    probe = ("import resource, subprocess, sys, json\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(json.dumps([r.returncode, r.stdout, r.stderr,"
             " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    done = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "sheetsgd", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV)
    code, out, err, peak = json.loads(done.stdout)
    return subprocess.CompletedProcess(args, code, out, err), peak


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def refused(result, *words):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), (result.returncode, lines)
    assert "Traceback" not in result.stdout + result.stderr
    for w in words:
        assert w in lines[0], lines


def rezip(src: Path, dst: Path, edit=None, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, edit(info.filename, data) if edit else data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """The full linear workbook (cached values: no recalculation), one epoch."""
    path = tmp_path_factory.mktemp("full") / "full.xlsx"
    api.load("linear", epochs=1).build(path, progress=False)
    return path


# --- the annotated copy: linear, inside the deadline ---------------------------------------------------

PLACES = {  # where 30,000 elements the annotator must not scan quadratically go (before the anchor)
    "in cellXfs": ("xl/styles.xml", b"</cellXfs>", b"<xf-a></xf-a>"),
    "before cellXfs": ("xl/styles.xml", b"<cellXfs", b"<xf-a></xf-a>"),
    "in fills": ("xl/styles.xml", b"</fills>", b"<fill-a></fill-a>"),
    "rows in a sheet": ("xl/worksheets/sheet2.xml", b"</sheetData>", b"<row-a r=\"1\"><c-a/></row-a>"),
}


def padded(full: Path, out: Path, place: str, n: int) -> Path:
    part, anchor, element = PLACES[place]

    def edit(name, data):
        if name != part:
            return data
        assert anchor in data, (name, anchor)
        return data.replace(anchor, element * n + anchor, 1)
    return rezip(full, out, edit)


def first_sheet(path: Path) -> str:
    from xml.etree import ElementTree as ET

    with zipfile.ZipFile(path) as z:
        return ET.fromstring(z.read("xl/workbook.xml")).find(f"{{{MAIN}}}sheets")[0].get("name")


@pytest.mark.parametrize("place", PLACES)
def test_thirty_thousand_unknown_elements_are_annotated_within_the_check_deadline(full, tmp_path, place):
    """192 s before (quadratic patterns); now the whole check and copy fit the 5 s --timeout."""
    sub = padded(full, tmp_path / "sub.xlsx", place, 30_000)
    assert sub.stat().st_size < 100_000
    before = sha(sub)
    done = run("check", sub, "--annotate", tmp_path / "marked.xlsx", "--timeout", "5", timeout=60)
    assert done.returncode == 0, done.stderr
    assert first_sheet(tmp_path / "marked.xlsx") == "Feedback"
    assert sha(sub) == before


def test_annotation_time_grows_linearly(full, tmp_path):
    """A hundred times the elements costs a bounded multiple of the time, not ten thousand times."""
    from sheetsgd.feedback.annotate import annotate
    from sheetsgd.check.checker import check

    def seconds(n):
        sub = padded(full, tmp_path / f"sub{n}.xlsx", "in cellXfs", n)
        report = check(str(sub)).to_dict()
        best = float("inf")
        for k in range(3):
            start = time.perf_counter()
            annotate(str(sub), report, str(tmp_path / f"out{n}-{k}.xlsx"))
            best = min(best, time.perf_counter() - start)
        return best
    small, big = seconds(300), seconds(30_000)
    assert big < 4 * small + 1.0, (small, big)


def test_grade_annotates_in_its_workers_within_the_per_file_timeout(full, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    padded(full, subs / "styled.xlsx", "in cellXfs", 30_000)
    before = sha(subs / "styled.xlsx")
    done = run("grade", subs, "-o", tmp_path / "g.csv", "--annotate-dir", tmp_path / "copies", "--timeout", "10",
               timeout=90)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "g.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("styled,") and ",correct," in rows[1]
    assert (tmp_path / "copies" / "styled.xlsx").is_file() and sha(subs / "styled.xlsx") == before


def test_the_copy_is_made_from_the_bytes_that_were_checked(full, tmp_path):
    """A file replaced between its check and its annotation: the copy follows the checked bytes (as a
    grade worker and check --annotate make it: one read, pinned)."""
    from sheetsgd.feedback.annotate import annotate
    from sheetsgd.check.checker import check
    from sheetsgd.read.package import pinned

    sub = tmp_path / "sub.xlsx"
    sub.write_bytes(full.read_bytes())
    other = tmp_path / "other.xlsx"
    api.load("linear", epochs=1).build(other, True, progress=False)  # blank exercise columns
    with pinned(sub):
        report = check(str(sub)).to_dict()
        os.replace(other, sub)  # the student's file changes under the grader
        annotate(str(sub), report, str(tmp_path / "marked.xlsx"))
    assert report["status"] == "correct"
    marked = openpyxl.load_workbook(tmp_path / "marked.xlsx")
    original = openpyxl.load_workbook(full)
    first = original["Steps"]
    header = next(r for r in range(1, 20) if first.cell(r, 1).value == "step")
    formulas = [(r, c) for r in range(header + 1, header + 30) for c in range(1, 20)
                if isinstance(first.cell(r, c).value, str) and first.cell(r, c).value.startswith("=")]
    assert formulas and all(marked["Steps"].cell(r, c).value == first.cell(r, c).value for r, c in formulas)


# --- costs bounded by the input ------------------------------------------------------------------------

def test_a_small_file_never_buys_a_huge_rebuild(full, tmp_path):
    """A 30 KB workbook whose manifest names a legal lesson just under 10 M cells: refused in one line
    before the rebuild (24 s and 767 MB before)."""
    lo, hi = 1, 100_000
    while lo < hi:  # the most epochs that still fit Google Sheets' 10 M cells
        mid = (lo + hi + 1) // 2
        fits = runbounds.estimate(api.load("linear", epochs=mid).spec).cells < 10_000_000
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    assert runbounds.estimate(api.load("linear", epochs=lo).spec).cells > 9_000_000
    wb = openpyxl.load_workbook(full)
    ws = wb["_sheetsgd"]
    row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "origin")
    origin = json.loads(ws.cell(row, 2).value)
    origin["options"]["epochs"] = lo
    ws.cell(row, 2).value = json.dumps(origin)
    sub = tmp_path / "tampered.xlsx"
    wb.save(sub)
    assert sub.stat().st_size < 60_000
    before = sha(sub)
    done, peak = run_measured("check", sub, timeout=120)
    refused(done, "far more than the file holds")
    assert peak < 300, peak
    assert sha(sub) == before


def shared_strings_file(full: Path, out: Path, body: bytes, n: int) -> Path:
    """``full`` with a shared-string table holding ``body`` (``n`` entries); the manifest's first cell reads
    entry 0, so every check reads the table."""
    sst = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="' + MAIN.encode()
           + b'" count="%d" uniqueCount="%d">' % (n, n) + body + b"</sst>")

    def edit(name, data):
        if name == "[Content_Types].xml":
            return data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(b"</Relationships>", b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.'
                                b'org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                b"</Relationships>")
        if name == "xl/worksheets/sheet5.xml":  # the _sheetsgd manifest
            new, k = re.subn(rb'<c r="A1"([^>]*?) t="inlineStr"><is><t>key</t></is></c>', rb'<c r="A1"\1 t="s">'
                             rb"<v>0</v></c>", data, count=1)
            assert k == 1
            return new
        return data
    return rezip(full, out, edit, {"xl/sharedStrings.xml": sst})


@pytest.mark.parametrize("what", ["runs", "count"])
def test_shared_strings_are_bounded(full, tmp_path, what):
    """One string of 20,000 runs used the whole timeout; 3.5 M strings used 878 MB."""
    if what == "runs":
        sub = shared_strings_file(full, tmp_path / "s.xlsx", b"<si>" + b"<r><t>k</t></r>" * 20_000 + b"</si>", 1)
    else:
        sub = shared_strings_file(full, tmp_path / "s.xlsx", b"<si><t>x</t></si>" * 3_500_000, 3_500_000)
    before = sha(sub)
    done, peak = run_measured("check", sub, "--timeout", "30", timeout=90)
    refused(done, "shared string")
    assert peak < 400, peak
    assert sha(sub) == before


def test_a_table_within_the_bounds_is_read(full, tmp_path):
    sub = shared_strings_file(full, tmp_path / "s.xlsx", b"<si><r><t>k</t></r><r><t>ey</t></r>"
                              b"<rPh><t>reading</t></rPh></si>", 1)
    done = run("check", sub)
    assert done.returncode == 0, done.stderr


def test_check_has_a_memory_cap(tmp_path):
    sub = tmp_path / "long.xlsx"
    api.load("linear", epochs=300).build(sub, progress=False)
    before = sha(sub)
    refused(run("check", sub, "--max-memory-mb", "64"), "ran out of memory", "--max-memory-mb")
    assert run("check", sub).returncode == 0
    assert sha(sub) == before


# --- Ctrl-C during grade ---------------------------------------------------------------------------------

def test_ctrl_c_during_grade_keeps_every_finished_result(full, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(120):
        (subs / f"s{i:03d}.xlsx").write_bytes(full.read_bytes())
    before = {p.name: sha(p) for p in subs.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "sheetsgd", "grade", str(subs), "-o", str(out / "g.csv"),
                             "--results-json", str(out / "r.json"), "-j", "2", "--feedback-dir", str(out / "pages"),
                             "--annotate-dir", str(out / "copies")], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the streamed CSV (a temporary file beside it) holds 3 rows
        parts = [p for p in out.iterdir() if p.name.endswith(".part.csv")]
        if parts and len(parts[0].read_text(encoding="utf-8").splitlines()) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("Interrupted: ")
    rows = (out / "g.csv").read_text(encoding="utf-8").splitlines()
    ids = [r.split(",")[0] for r in rows[1:]]
    assert 3 <= len(ids) < 120 and ids == sorted(ids)
    assert all(",correct," in r for r in rows[1:])
    results = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert [s["id"] for s in results["submissions"]] == ids
    assert f"{len(ids)} of 120" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["copies", "g.csv", "pages", "r.json"]  # no temporary file left
    pages, copies = ({p.name for p in (out / sub).iterdir()} for sub in ("pages", "copies"))
    assert {f"{i}.html" for i in ids} <= pages and {f"{i}.xlsx" for i in ids} <= copies  # every finished row's
    assert not [n for n in pages | copies if n.startswith(".") or ".part" in n]
    assert {p.name: sha(p) for p in subs.iterdir()} == before


# --- progress on stderr ----------------------------------------------------------------------------------

def on_a_terminal(*args, timeout=120) -> tuple[int, str]:
    """(exit code, what the command wrote to its stderr, a pseudo-terminal)."""
    master, slave = pty.openpty()
    # progress from the first moment, so a command that happens to be fast still shows it on a terminal
    proc = subprocess.Popen([sys.executable, "-m", "sheetsgd", *map(str, args)], env={**ENV, "SHEETSGD_PROGRESS_DELAY": "0"},
                            stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def long_titanic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("titanic") / "titanic.xlsx"
    api.load("titanic-linear", epochs=2).build(path, progress=False)
    return path


def test_check_shows_progress_on_a_terminal_only(long_titanic, tmp_path):
    code, shown = on_a_terminal("check", long_titanic, "--annotate", tmp_path / "marked.xlsx")
    assert code == 0 and "sheetsgd check titanic.xlsx: " in shown, shown  # the stage (checking, annotating …)
    assert re.search(r"sheetsgd check titanic\.xlsx: (checking|annotating: \w+) · \d+\.\d s", shown), shown
    code, shown = on_a_terminal("check", long_titanic, "--annotate", tmp_path / "marked.xlsx", "--quiet")
    assert code == 0 and shown == ""
    piped = run("check", long_titanic)
    assert piped.returncode == 0 and piped.stderr == ""


def test_grade_shows_progress_on_a_terminal_only(full, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(4):
        (subs / f"s{i}.xlsx").write_bytes(full.read_bytes())
    code, shown = on_a_terminal("grade", subs, "-o", tmp_path / "g.csv", "-j", "1")
    assert code == 0 and "4/4" in shown, shown
    code, shown = on_a_terminal("grade", subs, "-o", tmp_path / "g.csv", "-q")
    assert code == 0 and shown == ""
    assert run("grade", subs, "-o", tmp_path / "g.csv").stderr == ""


def test_autograder_shows_progress_on_a_terminal_only(tmp_path):
    code, shown = on_a_terminal("autograder", "linear", "--epochs", "1", "-o", tmp_path / "ag.zip", timeout=300)
    assert code == 0 and "sheetsgd autograder ag.zip: " in shown and "writing" in shown, shown
    code, shown = on_a_terminal("autograder", "linear", "--epochs", "1", "-o", tmp_path / "ag2.zip", "-q", timeout=300)
    assert code == 0 and shown == ""
