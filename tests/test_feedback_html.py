"""HTML feedback (check --format html, grade --feedback-dir) rendered by a real headless Chromium: the
page draws (a screenshot of more than one colour, the verdict's red or green among them), fetches
nothing (Chromium's own network log, with a control page proving the log would show a fetch), and
student-controlled text — a sheet name and a formula with a script element, a file name with an image
element — is shown as text (the DOM Chromium builds has no such element).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student
from sheetsgd.feedback.html import render
from sheetsgd.check.report import show_pair

from hostile_names import HOSTILE_FORMULA, HOSTILE_SHEET, make_hostile
from pngcheck import decode

HOSTILE_FILE = "<img src=x onerror=alert(3)>.xlsx"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        print("Chromium is not installed (apt-get install chromium): HTML rendering tests skipped")
        pytest.skip("Chromium is not installed: apt-get install -y --no-install-recommends chromium")
    return path


def run_chromium(page: Path, tmp: Path, what: str) -> tuple[bytes, list[dict]]:
    """Chromium headless on the page: ``what`` is "screenshot" (PNG bytes) or "dom" (the serialised DOM);
    with the requests the page itself started, from Chromium's network log."""
    net = tmp / f"net-{what}-{page.stem}.json"
    shot = tmp / f"{page.stem}.png"
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'profile'}",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", '--host-resolver-rules=MAP * ~NOTFOUND', f"--log-net-log={net}",
            "--window-size=1200,1600"]
    args += [f"--screenshot={shot}"] if what == "screenshot" else ["--dump-dom"]
    done = subprocess.run(args + [page.resolve().as_uri()], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    log = json.loads(net.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    # requests the page started carry its origin as initiator; Chromium's own (updates, time) carry none
    started = [e["params"] for e in log["events"] if names.get(e["type"]) == "URL_REQUEST_START_JOB"
               and "url" in e.get("params", {}) and e["params"].get("initiator") != "not an origin"]
    return (shot.read_bytes() if what == "screenshot" else done.stdout), started


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """JSON check reports: linear with a hostile sheet name and formula (IronCalc recalculates it),
    titanic-linear with a catalogued mistake, optimizers correct, and a file that is not a workbook."""
    root = tmp_path_factory.mktemp("html")
    out = {}
    lesson = kinds.load("linear", epochs=1)
    build_student(kinds.kind_of(lesson), lesson, root / "linear.xlsx", "")
    make_hostile(str(root / "linear.xlsx"), str(root / HOSTILE_FILE))
    out["hostile"] = check(root / HOSTILE_FILE, recalc="ironcalc").to_dict()
    for name, flaw in (("titanic-linear", Flaw("error_reversed", "dloss")), ("optimizers", None)):
        lesson = kinds.load(name, epochs=1)
        student = root / f"{name}-student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        fill_xml_sheets(str(student), str(root / f"{name}.xlsx"), fill_sheets(str(student), flaw))
        out[name] = check(root / f"{name}.xlsx", recalc="ironcalc").to_dict()
    (root / "notes.xlsx").write_text("a,b\n1,2\n")
    out["error"] = check(root / "notes.xlsx").to_dict()
    return out


def test_page_is_self_contained_and_escapes_student_text(reports):
    report = reports["hostile"]
    assert report["status"] == "mistakes" and report["lesson"]["steps_sheet"] == HOSTILE_SHEET
    page = render(report)
    assert not re.search(r"https?://|<[^>]*\b(?:src|href)\s*=|<script|<link|<img|url\(|@import", page, re.I)
    assert "St&#34;e&#39;ps&lt;script&gt;alert(1)" in page  # the sheet name, escaped
    assert "LEN(&#34;&lt;script&gt;alert(2)&lt;/script&gt;&#34;)" in page.replace("<wbr>", "")  # the formula, escaped
    assert "&lt;img src=x onerror=alert(3)&gt;.xlsx" in page  # the file name, escaped
    m = report["mistakes"][0]
    for shown in (m["title"], m["hint"], *show_pair(m["expected"], m["found"]), "<details>"):
        assert shown.replace("'", "&#39;").replace('"', "&#34;") in page


def test_knock_ons_follow_their_root_cause_and_cell_names_never_break(reports):
    """The exercise table shows a knock-on column as following from its root cause (not red, no first wrong
    step of its own); every cell name is one unbreakable piece; expected and found share one format."""
    report = reports["titanic-linear"]
    page = render(report)
    knock = [c for c in report["columns"] if c.get("exercise") and c.get("status") == "knock-on"]
    assert knock, "the catalogued mistake leaves knock-on exercise columns"
    for c in knock:
        row = page[page.index(f'({c["key"]})</span>'):]
        row = row[:row.index("</tr>")]
        assert 'class="num fail"' not in row and "follows from ∂loss/∂ŷ" in row, row
    root = next(c for c in report["columns"] if c.get("status") == "root cause")
    assert f'<code class="cell">{root["sheet"]}!{root["first_wrong"]["cell"]}</code>' in page
    assert re.search(r"code\.cell \{ white-space: nowrap; \}", page) and "break-all" not in page
    assert f"<td class=\"num\">{show_pair(root['first_wrong']['expected'], 0)[0]}</td>" in page
    assert show_pair(1.03366916, 1.1204) == ("1.03367", "1.12040")  # one format for the pair
    assert show_pair(0.5, -2.5e250) == ("0.500000", "-2.50000E+250")
    formula = render({**report, "mistakes": [dict(report["mistakes"][0], formula="=Examples!D34*lr")]})
    assert "=<wbr>Examples!D34*<wbr>lr" in formula  # a long formula may wrap after an operator only


@pytest.mark.parametrize("name", ["hostile", "titanic-linear", "optimizers", "error"])
def test_chromium_draws_the_page_and_fetches_nothing(reports, name, tmp_path):
    page = tmp_path / f"{name}.html"
    page.write_text(render(reports[name]), encoding="utf-8")
    png, started = run_chromium(page, tmp_path, "screenshot")
    assert started == [], started
    pixels = decode(png)
    assert pixels.shape[:2] == (1600, 1200)
    colours = np.unique(pixels.reshape(-1, pixels.shape[2])[:, :3], axis=0)
    assert len(colours) > 20  # text and boxes, not one colour
    verdict = {"hostile": (255, 214, 214), "titanic-linear": (255, 214, 214), "optimizers": (216, 240, 204),
               "error": (238, 238, 238)}[name]  # the verdict box's background (.bad, .ok, .error)
    assert (pixels[:400, :, :3] == verdict).all(axis=2).sum() > 1000


def test_the_network_log_would_show_a_fetch(tmp_path):
    """Control: a page with an external image is seen starting that request (so an empty list means none)."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><p>x</p><img src="http://example.invalid/x.png">')
    _, started = run_chromium(page, tmp_path, "screenshot")
    assert any("example.invalid" in s.get("url", "") for s in started)


def test_hostile_text_is_text_in_the_dom_chromium_builds(reports, tmp_path):
    page = tmp_path / "hostile.html"
    page.write_text(render(reports["hostile"]), encoding="utf-8")
    dom, started = run_chromium(page, tmp_path, "dom")
    assert started == []
    parsed = Elements()
    parsed.feed(dom.decode("utf-8"))
    assert "script" not in parsed.tags and "img" not in parsed.tags
    text = "".join(parsed.text)
    assert HOSTILE_SHEET in text and HOSTILE_FORMULA in text and HOSTILE_FILE in text


def test_check_format_html_and_grade_feedback_dir(reports, tmp_path):
    runner = CliRunner()
    lesson = kinds.load("linear", epochs=1)
    student = tmp_path / "s.xlsx"
    build_student(kinds.kind_of(lesson), lesson, student, "")
    fill_xml_sheets(str(student), str(tmp_path / "ada.xlsx"), fill_sheets(str(student), Flaw("lr_missing", "new_a")))
    r = runner.invoke(cli, ["check", str(tmp_path / "ada.xlsx"), "--format", "html", "--recalc", "ironcalc"])
    assert r.exit_code == 1 and r.stdout.startswith("<!DOCTYPE html>")
    report = json.loads(runner.invoke(cli, ["check", str(tmp_path / "ada.xlsx"), "--json", "--recalc", "ironcalc"]).stdout)
    assert r.stdout == render(report)
    r = runner.invoke(cli, ["check", str(tmp_path / "nothing.xlsx"), "--format", "html"])
    assert r.exit_code == 2 and "Cannot check" in r.stdout and len(r.stderr.strip().splitlines()) == 1
