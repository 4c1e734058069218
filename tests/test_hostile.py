"""Untrusted files: every broken or hostile input ends with exit 0, 1 or 2 and a one-line reason,
never a traceback, a hang or a change to the file. Plus a seeded mutation fuzz run and the two
classic bombs (billion laughs, a 1 GB zip bomb) refused fast and in little memory."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

from sheetsgd.check.recalc.libreoffice import recalc_libreoffice
from click.testing import CliRunner

from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_cells, fill_xml
from sheetsgd.grade.batch import grade
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.lessons.sgd.student import resolve_exercise
from sheetsgd.lessons.sgd.workbook import build_workbook
from sheetsgd.read.workbook import Limits

ROOT = Path(__file__).resolve().parents[1]


def rezip(src: Path, dst: Path, edit=None, extra: dict | None = None, drop=()):
    """Copy a zip, editing members (edit(name, bytes) -> bytes) and adding extra ones."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            data = zin.read(item.filename)
            zout.writestr(item, edit(item.filename, data) if edit else data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def good(tmp_path_factory, recalc):
    """A correct submission saved by LibreOffice, and its engine-written twin (full version)."""
    root = tmp_path_factory.mktemp("hostile")
    lesson = override(load_lesson("linear"), epochs=1)
    student = root / "student.xlsx"
    build_workbook(lesson, student, exercise=resolve_exercise(lesson, None))
    filled = root / "fill" / "good.xlsx"
    filled.parent.mkdir()
    fill_xml(str(student), str(filled), fill_cells(str(student)))
    hot = override(load_lesson("linear"), epochs=6, lr=0.2)  # lr so high that the sheet overflows
    hot_student = root / "hot-student.xlsx"
    build_workbook(hot, hot_student, exercise=resolve_exercise(hot, None))
    hot_filled = root / "fill" / "hot.xlsx"
    fill_xml(str(hot_student), str(hot_filled), fill_cells(str(hot_student)))
    saved, hot_saved = recalc([filled, hot_filled])
    return {"root": root, "saved": saved, "student": student, "hot": hot_saved}


def corpus(good) -> dict[str, tuple[Path, set[int], str]]:
    """name -> (file, allowed exit codes, a word the reason must contain)."""
    root, saved = good["root"] / "corpus", good["saved"]
    root.mkdir(exist_ok=True)
    raw = saved.read_bytes()
    files = {}

    def put(name, data, codes, word):
        path = root / f"{name}.xlsx"
        path.write_bytes(data)
        files[name] = (path, codes, word)

    put("empty", b"", {2}, "empty")
    put("truncated", raw[: len(raw) // 3], {2}, "zip")
    put("csv", b"x,y\n1,2\n3,4\n", {2}, "CSV")
    put("png", b"\x89PNG\r\n\x1a\n" + os.urandom(200), {2}, "image")
    put("pdf", b"%PDF-1.7\n" + os.urandom(200), {2}, "PDF")
    put("xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000, {2}, ".xls")
    put("encrypted", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500 + "EncryptionInfo".encode("utf-16-le")
        + b"\0" * 500, {2}, "password")
    # the real thing too: LibreOffice's own .xls and .ods of a lesson, and Office encryption (msoffcrypto)
    for fmt, word in (("xls", ".xls"), ("ods", ".ods")):
        converted = recalc_libreoffice([saved], root / f"real-{fmt}", to=fmt)[0]
        files[f"real-{fmt}"] = (converted, {2}, word)
    from msoffcrypto.format.ooxml import OOXMLFile  # msoffcrypto-tool, a test dependency

    encrypted = io.BytesIO()
    with open(saved, "rb") as fh:
        OOXMLFile(fh).encrypt("secret", encrypted)
    put("real-encrypted", encrypted.getvalue(), {2}, "password")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    put("ods", buf.getvalue(), {2}, ".ods")

    def xml_edit(part, fn):
        return lambda name, data: fn(data) if name == part else data

    def rz(name, codes, word, **kw):
        files[name] = (rezip(saved, root / f"{name}.xlsx", **kw), codes, word)

    rz("no-manifest", {2}, "manifest", edit=xml_edit("xl/workbook.xml",
                                                     lambda d: re.sub(rb'<sheet name="_sheetsgd"[^>]*/>', b"", d)))
    manifest_part = _part_of(saved, "_sheetsgd")
    steps_part = _part_of(saved, "Steps")
    data_part = _part_of(saved, "Data")
    def manifest_edit(name, key, value):  # a student (or a script) editing the hidden sheet with openpyxl
        wb = openpyxl.load_workbook(saved)
        ws = wb["_sheetsgd"]
        row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == key)
        ws.cell(row, 2).value = value
        wb.save(root / f"{name}.xlsx")
        files[name] = (root / f"{name}.xlsx", {2}, "manifest")
    manifest_edit("manifest-json-broken", "model", '"lin')
    manifest_edit("manifest-unknown-model", "model", '"cubic"')
    manifest_edit("manifest-epochs-huge", "epochs", "1000000000")
    manifest_edit("manifest-columns-gone", "columns", "{}")
    manifest_edit("manifest-data-rows", "data_rows", "[2, 99999999]")
    rz("no-steps-sheet", {2}, "Steps sheet", edit=xml_edit("xl/workbook.xml",
                                                          lambda d: re.sub(rb'<sheet name="Steps"[^>]*/>', b"", d)))
    rz("no-data-sheet", {2}, "data", edit=xml_edit("xl/workbook.xml", lambda d: re.sub(rb'<sheet name="Data"[^>]*/>',
                                                                                       b"", d)))
    rz("header-renamed", {2}, "not found", edit=lambda name, d: re.sub(rb"(<t[^>]*>)new a(</t>)", rb"\1new A!\2", d)
       if name == "xl/sharedStrings.xml" else d)
    rz("lr-text", {2}, "lr", edit=_cell_edit(steps_part, "B4", '<c r="B4" t="inlineStr"><is><t>fast</t></is></c>'))
    rz("lr-error", {2}, "lr", edit=_cell_edit(steps_part, "B4", '<c r="B4" t="e"><f>1/0</f><v>#DIV/0!</v></c>'))
    rz("lr-nan", {2}, "lr", edit=_cell_edit(steps_part, "B4", '<c r="B4"><v>NaN</v></c>'))
    rz("data-text", {2}, "data", edit=_cell_edit(data_part, "B5", '<c r="B5" t="inlineStr"><is><t>n/a</t></is></c>'))
    rz("cell-errors", {1}, "error", edit=_cell_edit(steps_part, "I12", '<c r="I12" t="e"><f>1/0</f><v>#DIV/0!</v></c>'))
    rz("cell-inf", {1}, "", edit=_cell_edit(steps_part, "P12", '<c r="P12"><f>F12-lr*L12</f><v>inf</v></c>'))
    rz("billion-laughs", {2}, "DTD", edit=xml_edit("xl/workbook.xml", lambda d: _laughs() + d.split(b"?>", 1)[1]))
    rz("laughs-in-sheet", {2}, "DTD", edit=xml_edit(steps_part, lambda d: _laughs() + d.split(b"?>", 1)[1]))
    rz("external-entity", {2}, "DTD", edit=xml_edit(manifest_part, lambda d: b'<?xml version="1.0"?><!DOCTYPE x '
                                                    b'[<!ENTITY e SYSTEM "file:///etc/passwd">]>' + d.split(b"?>", 1)[1]))
    rz("macros", {0}, "macro", extra={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + os.urandom(300)})
    rz("nested-archive", {0}, "", extra={"xl/embeddings/oleObject1.bin": _small_bomb()})
    rz("sheet-not-xml", {2}, "XML", edit=xml_edit(steps_part, lambda d: d[: len(d) // 2]))
    rz("many-members", {2}, "members", extra={f"junk/{i}.txt": b"x" for i in range(2100)})
    rz("dimension-beyond", {2}, "beyond", edit=_cell_edit(steps_part, "B4", '<c r="B4"><v>0.0001</v></c>'
                                                          '<c r="XFD9999999"><v>1</v></c>'))
    rz("long-string", {2}, "characters", edit=_cell_edit(steps_part, "C4", '<c r="C4" t="inlineStr"><is><t>'
                                                           + "x" * 40_000 + "</t></is></c>"))
    wb = openpyxl.Workbook()
    wb.active["A1"] = "hello"
    wb.save(root / "not-a-lesson.xlsx")
    files["not-a-lesson"] = (root / "not-a-lesson.xlsx", {2}, "manifest")
    files["overflow"] = (good["hot"], {0}, "")
    return files


def _part_of(path: Path, sheet: str) -> str:
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    rid = re.search(rf'<sheet name="{sheet}"[^>]*r:id="(\w+)"', book).group(1)
    target = re.search(rf'Id="{rid}"[^>]*Target="([^"]+)"|Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + (target.group(1) or target.group(2)).lstrip("/").removeprefix("xl/")


def _cell_edit(part, ref, xml):
    def edit(name, data):
        if name != part:
            return data
        text, n = re.subn(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', xml, data.decode(), count=1)
        assert n == 1, ref
        return text.encode()
    return edit


def _laughs() -> bytes:
    ents = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                      for i in range(1, 10)]
    return ('<?xml version="1.0"?><!DOCTYPE lolz [' + "".join(ents) + "]>").encode()


def _small_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.bin", b"\0" * 50_000_000)
    return buf.getvalue()


def digest(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_every_broken_file_gets_a_clear_answer(good):
    files = corpus(good)
    before = digest(p for p, _, _ in files.values())
    runner = CliRunner()
    for name, (path, codes, word) in files.items():
        result = runner.invoke(cli, ["check", str(path)])
        out = result.output.strip()
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exception)
        assert result.exit_code in codes, (name, result.exit_code, out[:500])
        assert "Traceback" not in out, name
        if result.exit_code == 2:
            assert out.count("\n") == 0 and out.startswith("Error: "), (name, out)
        assert word.lower() in out.lower(), (name, word, out[:300])
        data = json.loads(runner.invoke(cli, ["check", "--json", str(path)]).output)
        assert data["exit_code"] == result.exit_code
    # grading the whole corpus: same answers, nothing stalls, nothing is written to the inputs
    graded = grade([p for p, _, _ in files.values()], jobs=2, timeout=30, progress=False)
    for (name, (_, codes, _)), (row, _, _) in zip(files.items(), graded):
        assert {"correct": 0, "mistakes": 1, "error": 2}[row["status"]] in codes, (name, row)
    assert digest(p for p, _, _ in files.values()) == before


def test_limits_have_flags(good):
    path = good["saved"]
    code = CliRunner().invoke(cli, ["check", str(path), "--max-cells", "100"])
    assert code.exit_code == 2 and "--max-cells" in code.output
    code = CliRunner().invoke(cli, ["check", str(path), "--max-part-mb", "0.01"])
    assert code.exit_code == 2 and "before inflating" in code.output
    assert CliRunner().invoke(cli, ["check", str(path), "--max-cells", "100000"]).exit_code == 0


def test_macros_are_noted_not_run(good):
    report = check(str(corpus(good)["macros"][0]))
    assert report.exit_code == 0 and any("macro" in n for n in report.notes)


def test_overflowing_sheet_agrees_with_the_engine_on_divergence(good):
    report = check(str(good["hot"]))
    assert report.exit_code == 0, report.to_text()
    found = openpyxl.load_workbook(good["hot"], data_only=True)["Steps"]
    errors = [c.value for row in found.iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith("#")]
    assert errors  # LibreOffice really overflowed (#NUM!) where the engine overflows to inf/nan
    assert any("diverges" in n and "as the engine does" in n for n in report.notes), report.notes


def _run_limited(code: str) -> tuple[float, float, str]:
    """Run python code in a fresh process; (seconds, peak RSS MB above a bare `import sheetsgd.check.checker`, output)."""
    probe = ("import resource, time, sys; sys.path.insert(0, %r); import sheetsgd.check.checker, sheetsgd.cli.commands; "
             "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.perf_counter();\n%s\n"
             "print('@@', time.perf_counter() - t, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)"
             % (str(ROOT), code))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    seconds, mb = out.rsplit("@@", 1)[1].split()
    return float(seconds), float(mb), out


def test_billion_laughs_and_zip_bomb_refused_fast_and_small(good, tmp_path):
    laughs = corpus(good)["billion-laughs"][0]
    bomb = tmp_path / "bomb.xlsx"
    part = _part_of(good["saved"], "Steps")
    with zipfile.ZipFile(good["saved"]) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename != part:
                zout.writestr(item, zin.read(item.filename))
        with zout.open(part, "w", force_zip64=True) as fh:  # 1 GB of zeros: about 1 MB compressed
            chunk = b"\0" * (1 << 24)
            for _ in range(64):
                fh.write(chunk)
    assert bomb.stat().st_size < 5_000_000
    with zipfile.ZipFile(bomb) as z:
        assert z.getinfo(part).file_size == 1 << 30
    for path, word in ((laughs, "DTD"), (bomb, "zip bomb")):
        seconds, mb, out = _run_limited(f"r = sheetsgd.check.checker.check({str(path)!r}); print(r.exit_code, r.message)")
        assert out.startswith("2 ") and (word in out or "before inflating" in out), out
        assert seconds < 1.0 and mb < 100, (path.name, seconds, mb)
    # a bomb that lies about its size, or a part limit raised too far, is still stopped while inflating
    report = check(str(bomb), limits=Limits(max_part_mb=2000, max_total_mb=50))
    assert report.exit_code == 2 and "zip bomb" in report.message


def test_fuzz_mutations_never_crash_or_hang(good, tmp_path):
    """≥ 2,000 seeded mutations of a real lesson workbook (byte flips, truncations, XML edits inside the
    zip), graded in worker processes with a time limit and a memory cap: every file gets an answer."""
    # a fixed seed by default, so CI is repeatable; SHEETSGD_FUZZ_SEED=random explores new cases
    chosen = os.environ.get("SHEETSGD_FUZZ_SEED", "20261122")
    seed = random.SystemRandom().randrange(1 << 30) if chosen == "random" else int(chosen)
    print(f"fuzz seed {seed} (replay: SHEETSGD_FUZZ_SEED={seed})")
    rng = random.Random(seed)
    src = good["saved"]
    raw = src.read_bytes()
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    xml_names = [n for n in members if n.endswith(".xml")]
    folder = tmp_path / "fuzz"
    folder.mkdir()
    n_cases = int(os.environ.get("SHEETSGD_FUZZ_CASES", 2000))
    for i in range(n_cases):
        kind = rng.choice(["flip", "truncate", "xml", "xml", "xml"])
        if kind == "flip":
            data = bytearray(raw)
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            blob = bytes(data)
        elif kind == "truncate":
            blob = raw[: rng.randrange(len(raw))]
        else:
            name = rng.choice(xml_names)
            text = bytearray(members[name])
            for _ in range(rng.randint(1, 5)):
                op = rng.random()
                at = rng.randrange(len(text))
                if op < 0.3:
                    del text[at: at + rng.randint(1, 40)]
                elif op < 0.6:
                    text[at:at] = rng.choice([b"<", b">", b"&", b"&amp;", b'"', b"<c r=\"A1\">", b"</c>", b"<f>1/0</f>",
                                              b"<v>nan</v>", b"<v>1e308</v>", b"<!ENTITY x 'y'>", b"\xff\xfe", b"0"])
                else:
                    seg = text[at: at + rng.randint(1, 200)]
                    text[at:at] = seg
            blob = rezip_bytes(members, {name: bytes(text)})
        (folder / f"case{i:05d}.xlsx").write_bytes(blob)
    graded = grade(sorted(folder.iterdir()), jobs=2, timeout=20, max_memory_mb=1024, progress=False)
    statuses = {}
    for row, _, _ in graded:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        assert row["status"] in ("correct", "mistakes", "error"), f"seed {seed}: {row}"
        if row["status"] == "error":
            assert row["message"] and "\n" not in row["message"] and "internal error" not in row["message"], \
                f"seed {seed}: {row}"
    assert len(graded) == n_cases, f"seed {seed}"
    print(f"fuzz seed {seed}: {statuses}")


def rezip_bytes(members: dict, changed: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, changed.get(name, data))
    return buf.getvalue()
