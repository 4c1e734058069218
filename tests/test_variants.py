"""Per-student variants: the documented rule, every lesson kind varies, each variant checks clean against
itself (full workbooks with the engine's cached values for every kind; student versions filled in and
recalculated by LibreOffice), and grade flags a file that follows another student's variant: a
manifest edited to claim another ID, or a copied file under another name."""
from __future__ import annotations

import csv
import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetsgd import api
from sheetsgd.lessons import kinds
from sheetsgd.check.checker import check
from sheetsgd.cli.commands import cli
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets
from sheetsgd.lessons.sgd.lesson import bundled_lessons, read_template
from sheetsgd.lessons.variants import apply

SMALL = {"linear": {"epochs": 1}, "quadratic": {"epochs": 3}, "too-high": {}, "optimizers": {"epochs": 1},
         "optimizers-classic": {"epochs": 1}, "one-cycle": {"epochs": 1}, "lr-finder": {}, "lr-finder-titanic": {},
         "titanic-linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1}, "titanic-relu2": {"epochs": 1},
         "titanic-mlp": {"epochs": 2}, "collab-filter": {"epochs": 3}, "weight-decay": {"epochs": 1}, "penguins-softmax": {"epochs": 1}, "dropout": {"epochs": 2},
         "attention": {"epochs": 1}, "conv": {"epochs": 1}}
A, B = "s-alice-01", "s-bob-02"


def _h(lesson: str, id_: str) -> bytes:
    return hashlib.sha256(b"sheetsgd variant 1\0" + lesson.encode() + b"\0" + id_.encode()).digest()


def test_every_bundled_lesson_is_covered():
    assert set(SMALL) == set(bundled_lessons())


def test_the_rule_as_documented():
    offsets = [k / 4 for k in range(-8, 9) if k != 0]  # −2 … 2 by 0.25, never 0
    factors = [0.9, 0.925, 0.95, 0.975, 1.025, 1.05, 1.075, 1.1]
    h = _h("linear", A)
    first = api.load("linear", epochs=1, variant=A).train().table()[0]
    assert (first["a"], first["b"]) == (1 + offsets[h[0] % 16], 1 + offsets[h[1] % 16])
    raw = read_template("quadratic")[0]
    h = _h("quadratic", A)
    varied = apply(raw, "quadratic", A)
    assert varied["model"]["init"]["seed"] == int.from_bytes(h[:8], "big") >> 1
    assert varied["data"]["generate"]["seed"] == int.from_bytes(h[8:16], "big") >> 1
    assert raw["model"]["init"]["seed"] == 42  # the template itself is not changed
    h = _h("titanic-logistic", A)
    varied = apply(read_template("titanic-logistic")[0], "titanic-logistic", A)
    assert varied["data"]["split_seed"] == int.from_bytes(h[16:24], "big") >> 1
    h = _h("too-high", A)
    runs = apply(read_template("too-high")[0], "too-high", A)["runs"]
    assert [r["x0"] for r in runs] == [round(x0 * factors[h[16 + k] % 8], 6) for k, x0 in enumerate([1, 1, 6, 6])]
    assert runs[0]["label"].startswith("run 1: x0 ≈ 1,")
    h = _h("collab-filter", A)
    raw = read_template("collab-filter")[0]
    assert apply(raw, "collab-filter", A)["model"]["seed"] == int.from_bytes(h[:8], "big") >> 1 != raw["model"]["seed"]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_two_students_get_different_numbers_and_the_same_id_the_same(name):
    def first_rows(variant):
        table = api.load(name, **SMALL[name], variant=variant).train().table()
        return repr(table[:3])  # NaN (not applicable) compares equal as text
    alice, bob, again, plain = first_rows(A), first_rows(B), first_rows(A), first_rows(None)
    assert alice == again
    assert alice != bob and alice != plain


def _claim(src: Path, dst: Path, old: str, new: str) -> None:
    """A copy of a workbook whose manifest claims another variant ID (the ID's text replaced in the XML)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(".xml"):
                data = data.replace(old.encode(), new.encode())
            zout.writestr(item, data)


def _grade(tmp: Path, files: list[Path]) -> dict[str, dict]:
    out = tmp / "grades.csv"
    result = CliRunner().invoke(cli, ["grade", *map(str, files), "-o", str(out), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        return {Path(r["file"]).stem: r for r in csv.DictReader(fh)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_full_workbooks_check_against_their_variant_and_copies_are_flagged(name, tmp_path):
    """Every kind: the full workbook of each variant (the engine's values cached) checks clean against
    its own variant; a copy of alice's file that claims bob's ID, and one renamed, are flagged."""
    files = {}
    for who, id_ in (("alice", A), ("bob", B)):
        files[who] = tmp_path / f"{who}.xlsx"
        api.load(name, **SMALL[name], variant=id_).build(files[who], progress=False)
        report = check(files[who])
        assert report.status == "correct", report.to_text()[:1500]
        assert report.lesson["variant"] == id_
    claims_bob = tmp_path / "mallory.xlsx"
    _claim(files["alice"], claims_bob, A, B)
    renamed = tmp_path / "carol.xlsx"
    shutil.copy(files["alice"], renamed)
    rows = _grade(tmp_path, [files["alice"], files["bob"], claims_bob, renamed])
    assert (rows["alice"]["variant"], rows["bob"]["variant"], rows["mallory"]["variant"]) == (A, B, B)
    assert "follows" not in rows["alice"]["suspected_copy"] + rows["bob"]["suspected_copy"]
    assert str(files["alice"]) in rows["mallory"]["suspected_copy"] and f"variant {A!r}" in rows["mallory"]["suspected_copy"]
    assert str(claims_bob) in rows["bob"]["suspected_copy"]  # two files claim bob's ID
    assert str(files["alice"]) in rows["carol"]["suspected_copy"] and str(renamed) in rows["alice"]["suspected_copy"]


@pytest.mark.libreoffice
def test_student_versions_filled_in_libreoffice_check_clean_and_a_claimed_id_is_flagged(recalc, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(f"id,name\n{A},Alice\n{B},Bob\n", encoding="utf-8")
    blank = {}
    for name in ("linear", "too-high"):
        folder = tmp_path / name
        args = ["build", name, "--exercise", "--variants", str(roster), "-o", str(folder)]
        args += [x for k, v in SMALL[name].items() for x in (f"--{k}", str(v))]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        for id_ in (A, B):
            blank[(name, id_)] = folder / f"{id_}.xlsx"
    filled = []
    for (name, id_), path in blank.items():
        out = tmp_path / f"{name}-{id_}.xlsx"
        fill_xml_sheets(str(path), str(out), fill_sheets(str(path)))
        filled.append(out)
    saved = dict(zip(blank, recalc(recalc(filled))))
    for key, path in saved.items():
        report = check(path)
        assert report.status == "correct" and report.lesson["variant"] == key[1], report.to_text()[:1500]
    tampered = tmp_path / "linear-claims-bob.xlsx"
    _claim(saved[("linear", A)], tampered, A, B)
    rows = _grade(tmp_path, [*saved.values(), tampered])
    assert str(saved[("linear", A)]) in rows["linear-claims-bob"]["suspected_copy"]
    assert not rows[saved[("too-high", A)].stem]["suspected_copy"] and not rows[saved[("too-high", B)].stem]["suspected_copy"]


def test_roster_files_are_named_safely_and_indexed(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("ID,Name,email\n../../etc/x,Eve,e@x\nann lee,Ann,\n=cmd(),Bad,\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "linear", "--epochs", "1", "--exercise", "--variants", str(roster),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ann_lee.xlsx", "cmd.xlsx", "etc_x.xlsx", "variants.csv"]
    index = list(csv.DictReader((out / "variants.csv").open(encoding="utf-8")))
    assert [r["id"] for r in index] == ["../../etc/x", "ann lee", "'=cmd()"]  # a formula-looking ID is quoted
    assert check(out / "ann_lee.xlsx").lesson["variant"] == "ann lee"


@pytest.mark.parametrize("text,word", [("name\nann\n", "'id' column"), ("id\nann\nann\n", "twice"),
                                       ("id\na/b\na_b\n", "same file name"), ("id\n\n", "'id' column")])
def test_bad_rosters_are_one_line_errors(tmp_path, text, word):
    roster = tmp_path / "r.csv"
    roster.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", "linear", "--variants", str(roster), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and word in result.output and result.output.count("\n") == 1, result.output


def test_variant_options_are_checked(tmp_path):
    runner = CliRunner()
    both = runner.invoke(cli, ["build", "linear", "--variant", "x", "--variants", "r.csv", "-o", str(tmp_path / "o")])
    assert both.exit_code == 2 and "not both" in both.output
    bad = runner.invoke(cli, ["build", "linear", "--variant", "a\tb", "-o", str(tmp_path / "o.xlsx")])
    assert bad.exit_code == 2 and "printable" in bad.output
    assert kinds.load("linear", variant=A).origin["options"] == {"variant": A}
