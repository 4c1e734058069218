"""How the lessons read: one number format per column, no ### and no clipped header or label when
LibreOffice draws every bundled lesson (full and student version) to PDF, and a student version whose
cells waiting for a blank show nothing until it is filled."""
from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata

import openpyxl
import pytest

from sheetsgd.lessons import kinds
from sheetsgd.sheet import presentation
from sheetsgd.sheet.blocks import StudentPlan
from sheetsgd.check.demo import Flaw, fill_sheets, fill_xml_sheets
from sheetsgd.write.lesson_file import build_student
from sheetsgd.check.recalc.libreoffice import recalc_libreoffice

# small options: every sheet of each lesson, few rows
OPTIONS = {"linear": {"epochs": 1}, "quadratic": {"epochs": 1}, "too-high": {"epochs": 8},
           "optimizers": {"epochs": 1}, "optimizers-classic": {"epochs": 1}, "one-cycle": {"epochs": 1}, "lr-finder": {"epochs": 30},
           "lr-finder-titanic": {"epochs": 12}, "titanic-linear": {"epochs": 1}, "titanic-logistic": {"epochs": 1},
           "titanic-relu2": {"epochs": 1}, "titanic-mlp": {"epochs": 1}, "collab-filter": {"epochs": 1},
           "weight-decay": {"epochs": 1}, "penguins-softmax": {"epochs": 1}, "dropout": {"epochs": 2},
           "attention": {"epochs": 1}, "conv": {"epochs": 1}}


def test_every_bundled_lesson_is_rendered():
    from sheetsgd.lessons.sgd.lesson import bundled_lessons

    assert set(OPTIONS) == set(bundled_lessons())


# --- number formats --------------------------------------------------------------------------------

def test_number_format_by_magnitude():
    assert presentation.number_format([1, 2, 30]) == "0"
    assert presentation.number_format([1.5, 2.25, 30.125]) == "0.000"  # 4 significant digits at 1.5
    assert presentation.number_format([0.0123, 0.5]) == "0.00000"
    assert presentation.number_format([6.0, -58.8, 8.1e4, -2.1e14]) == presentation.SCIENTIFIC  # diverging
    assert presentation.number_format([1e-7, 1e-3, 10.0]) == presentation.SCIENTIFIC  # lr finder's lr
    assert presentation.number_format([1.0, float("inf"), "#NUM!"]) == "0"
    assert presentation.render(-2.13e14, presentation.SCIENTIFIC) == "-2.130E+14"
    assert presentation.render(0.1234567, "0.0000") == "0.1235"


def test_text_width_is_measured_not_counted():
    """A real font: 'W' is wider than 'i', bold wider than regular, and widths grow with text."""
    assert presentation.text_width("WWWW") > presentation.text_width("iiii") * 2
    assert presentation.text_width("rows recorded", bold=True) > presentation.text_width("rows recorded")
    one_line = presentation.header_width("run 1: x0 = 1, lr 0.01, gradients accumulated: x", lines=1)
    assert presentation.header_width("run 1: x0 = 1, lr 0.01, gradients accumulated: x") < one_line


@pytest.mark.parametrize("name", ["linear", "too-high", "optimizers", "lr-finder", "titanic-linear", "collab-filter", "attention"])
def test_each_block_column_has_one_number_format(tmp_path, name):
    lesson = kinds.load(name, **OPTIONS[name])
    report = kinds.kind_of(lesson).build(lesson, tmp_path / f"{name}.xlsx")
    wb = openpyxl.load_workbook(tmp_path / f"{name}.xlsx", read_only=True)
    checked = 0
    for block in report.blocks:
        ws = wb[block.sheet]
        cols = {c.col: c for c in block.columns if c.key in block.values}
        seen = {col: set() for col in cols}
        for row in ws.iter_rows(min_row=block.first_row + 1, max_row=block.last_row + 1):
            for cell in row:
                col = getattr(cell, "column", None)
                if col is not None and col - 1 in seen and cell.value is not None:
                    seen[col - 1].add(cell.number_format)
        for col, formats in seen.items():
            assert len(formats) <= 1, (block.sheet, cols[col].header, formats)
            checked += bool(formats)
    wb.close()
    assert checked >= 3


# --- rendered by LibreOffice ----------------------------------------------------------------------

def _printed_columns(path) -> dict[str, int]:
    """{sheet: its print area's last column (0-based)}: a sheet wider than a readable page prints its
    leading columns."""
    import zipfile

    from openpyxl.utils import column_index_from_string

    from xlsx_parts import sheet_parts

    with zipfile.ZipFile(path) as z:
        names = list(sheet_parts(z))
        book = z.read("xl/workbook.xml").decode("utf-8")
    out = {}
    for m in re.finditer(r'<definedName name="_xlnm\.Print_Area" localSheetId="(\d+)"[^>]*>[^<]*:\$([A-Z]+)\$\d+<', book):
        out[names[int(m.group(1))]] = column_index_from_string(m.group(2)) - 1
    return out


def _plain(text: str) -> str:
    """Without combining marks (pdftotext spells v̂ with its accent elsewhere)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _words(text: str) -> list[str]:
    return [w for w in _plain(text).split() if len(w) > 1]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """{file stem: (pdftotext -layout text, blocks)} for every lesson, full and student, one LibreOffice run."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    root = tmp_path_factory.mktemp("render")
    (root / "in").mkdir()
    files, blocks, lessons = [], {}, {}
    for name, options in OPTIONS.items():
        lesson = kinds.load(name, **options)
        kind = kinds.kind_of(lesson)
        report = kind.build(lesson, root / "in" / f"{name}.xlsx")
        blocks[name] = report.blocks
        build_student(kind, lesson, root / "in" / f"{name}-student.xlsx", "")
        blocks[f"{name}-student"] = report.blocks
        files += [root / "in" / f"{name}.xlsx", root / "in" / f"{name}-student.xlsx"]
        lessons[name] = lesson
    student = root / "in" / "linear-student.xlsx"  # and a student version filled in correctly
    fill_xml_sheets(str(student), str(root / "in" / "linear-filled.xlsx"), fill_sheets(str(student)))
    files.append(root / "in" / "linear-filled.xlsx")
    blocks["linear-filled"] = blocks["linear"]
    # a student's sign-flipped update (3 epochs: the parameters reach 1e6 and beyond) must show numbers
    lesson = kinds.load("linear", epochs=3)
    build_student(kinds.kind_of(lesson), lesson, root / "flip.xlsx", "")
    fill_xml_sheets(str(root / "flip.xlsx"), str(root / "in" / "linear-flipped.xlsx"),
                    fill_sheets(str(root / "flip.xlsx"), Flaw("update_sign_flipped", "new_a")))
    files.append(root / "in" / "linear-flipped.xlsx")
    blocks["linear-flipped"] = blocks["linear"]
    return root, files, blocks


@pytest.fixture(scope="module")
def pdfs(rendered, recalc):
    """Every rendered workbook through LibreOffice to PDF (one soffice run)."""
    root, files, blocks = rendered
    return recalc_libreoffice(files, root / "pdf", to="pdf")


def test_every_lesson_renders_without_hashes_or_clipped_labels(rendered, pdfs):
    root, files, blocks = rendered
    problems = []
    for pdf in pdfs:
        txt = pdf.with_suffix(".txt")
        subprocess.run(["pdftotext", "-layout", str(pdf), str(txt)], check=True)
        text = _plain(txt.read_text(encoding="utf-8"))
        if "###" in text:
            problems.append(f"{pdf.stem}: ### on {text.count('###')} cells")
        tokens = set(text.split())
        lines = text.splitlines()
        printed = _printed_columns(root / "in" / f"{pdf.stem}.xlsx")
        headers = {c.header for b in blocks[pdf.stem] for c in b.columns if c.col <= printed.get(b.sheet, 16383)}
        for header in headers:  # wrapped headers: every word whole on some line
            broken = [w for w in _words(header) if w not in tokens and not any(w in t for t in tokens)]
            if broken:
                problems.append(f"{pdf.stem}: header {header!r} has no whole {broken}")
        # the Introduction's legend lists every column of a step sheet (the Titanic kind's, penguins' too:
        # the first weight's only)
        legend = {_plain(c.header) for b in blocks[pdf.stem] if b.name in LEGEND_BLOCKS and not
                  pdf.stem.startswith(("titanic", "penguins", "dropout", "conv")) for c in b.columns}  # conv: each group's first
        for header in legend:  # the Introduction's legend: each header whole at the start of a line
            if not any(line.startswith(header) for line in lines):
                problems.append(f"{pdf.stem}: legend row {header!r} not whole")
        for label in LABELS.get(pdf.stem.replace("-student", ""), ()):
            if _plain(label) not in text:
                problems.append(f"{pdf.stem}: label {label!r} clipped")
        if re.search(r"^\s*•\s{3,}\S", text, re.M):
            problems.append(f"{pdf.stem}: an Introduction bullet a column away from its text")
    assert not problems, "\n".join(problems[:40])

    # a student version reads as unfinished: from step 2 on (a, b read the blank new a, new b) a Steps row
    # shows its step, epoch, example #, x and y only; filled in, the same rows show every column again
    def numbers_in_step_rows(stem):
        text = (root / "pdf" / f"{stem}.txt").read_text(encoding="utf-8")
        rows = [line.split() for line in text.splitlines() if re.match(r"^\s+[2-9]\s+1\s+[2-9]\s", line)]
        return [sum(bool(re.fullmatch(r"-?[0-9.]+(E[+-][0-9]+)?", t)) for t in row) for row in rows[:5]]
    assert numbers_in_step_rows("linear-student") == [5] * 5
    full = numbers_in_step_rows("linear")
    assert len(full) == 5 and min(full) >= 15
    assert numbers_in_step_rows("linear-filled") == full
    flipped = (root / "pdf" / "linear-flipped.txt").read_text(encoding="utf-8")
    assert re.search(r"-\d\.\d\dE\+0[6-9]", flipped), "the diverging sheet reaches millions, shown in scientific"


@pytest.mark.parametrize("name", ["linear", "too-high", "optimizers", "lr-finder", "titanic-logistic", "collab-filter", "attention"])
def test_student_cells_waiting_for_a_blank_are_hidden_by_a_formula_rule(tmp_path, name):
    """Every block cell that depends on a blank has a conditional format (formula rule, nothing shown), and
    no block cell that does not; outside the blocks only formulas that cache nothing have it; formulas are
    those of the full version."""
    lesson = kinds.load(name, **OPTIONS[name])
    kind = kinds.kind_of(lesson)
    report = build_student(kind, lesson, tmp_path / "s.xlsx", "")
    plan = StudentPlan(report.blocks, report.exercise)
    wb = openpyxl.load_workbook(tmp_path / "s.xlsx")
    cached = openpyxl.load_workbook(tmp_path / "s.xlsx", data_only=True)
    covered = {}
    for ws in wb.worksheets:
        for cf in ws.conditional_formatting:
            for rule in cf.rules:
                if rule.type == "expression" and rule.dxf is not None and rule.dxf.numFmt is not None \
                        and rule.dxf.numFmt.formatCode == ";;;" and "COUNTBLANK" in rule.formula[0]:
                    for rng in cf.sqref.ranges:
                        covered.setdefault(ws.title, set()).update(
                            (r, c) for r in range(rng.min_row, rng.max_row + 1) for c in range(rng.min_col, rng.max_col + 1))
    expected = {}  # the block formula cells that cache nothing: the ones that depend on a blank
    for b in report.blocks:
        for c in b.columns:
            if c.pattern is None or plan.is_blank(b, c.key):
                continue
            for i in range(b.n):
                cell = (b.first_row + 1 + i, c.col + 1)
                if c.key in b.values and b.values[c.key][i] == "":  # deliberately empty (an unrated pair's error): shows nothing anyway
                    covered.get(b.sheet, set()).discard(cell)
                elif cached[b.sheet].cell(*cell).value in (None, ""):
                    expected.setdefault(b.sheet, set()).add(cell)
    in_blocks = {b.sheet: set() for b in report.blocks}
    for b in report.blocks:
        in_blocks[b.sheet].update((b.first_row + 1 + i, c.col + 1) for i in range(b.n) for c in b.columns)
    assert expected and {s: v & in_blocks.get(s, set()) for s, v in covered.items() if v & in_blocks.get(s, set())} \
        == expected
    for s, cells in covered.items():  # outside the blocks (Epochs, fitted curve, Solver row): formulas caching nothing
        for cell in cells - in_blocks.get(s, set()):
            formula = wb[s].cell(*cell).value
            assert formula is None or (isinstance(formula, str) and formula.startswith("=")
                                       and cached[s].cell(*cell).value in (None, "")), (s, cell)
    full = tmp_path / "full.xlsx"
    kind.build(lesson, full)
    f = openpyxl.load_workbook(full)
    for b in report.blocks:
        for c in b.columns:
            if c.pattern and not plan.is_blank(b, c.key):
                for i in (0, b.n - 1):
                    assert wb[b.sheet].cell(b.first_row + 1 + i, c.col + 1).value == \
                        f[b.sheet].cell(b.first_row + 1 + i, c.col + 1).value


LEGEND_BLOCKS = {"Steps", "Runs", "LR finder", "Finder"}
LABELS = {
    "lr-finder": ("rows recorded", "suggested lr: steepest", "suggested lr: minimum/10", "smooth_beta", "stop_factor"),
    "lr-finder-titanic": ("rows recorded", "suggested lr: steepest", "smooth_beta", "stop_factor"),
    "too-high": ("run1_lr", "run4_lr", "target"),
    "linear": ("fd_step",),
    "titanic-linear": ("Solver (starts at the initial weights)", "SGD after the last step"),
    "titanic-logistic": ("Solver (starts at the initial weights)",),
}


# --- on paper: no overlapping or cut text, one page wide, pages counted -----------------------------

_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


def _pages(pdf) -> list[tuple[float, float, list[tuple[float, float, float, float, str]]]]:
    """[(width, height, [(x0, y0, x1, y1, word)])] per page, from ``pdftotext -bbox-layout``."""
    out = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    pages = []
    for chunk in out.split("<page ")[1:]:
        m = _PAGE.match("<page " + chunk)
        pages.append((float(m.group(1)), float(m.group(2)),
                      [(*map(float, w.groups()[:4]), w.group(5)) for w in _WORD.finditer(chunk)]))
    return pages


def _overlaps(words) -> list[tuple[str, str]]:
    """Pairs of words whose boxes cross: text printed over other text (a wrapped line over the next row,
    a value over its neighbour)."""
    found = []
    ordered = sorted(words, key=lambda w: w[1])
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b[1] >= a[3]:
                break
            dx = min(a[2], b[2]) - max(a[0], b[0])
            dy = min(a[3], b[3]) - max(a[1], b[1])
            if dx > 1.0 and dy > 0.3 * min(a[3] - a[1], b[3] - b[1]):
                found.append((a[4], b[4]))
    return found


def test_every_page_reads_cleanly_one_page_wide(rendered, pdfs):
    """Every page of every lesson (full, student, filled, diverging): no word prints over another, none past
    the paper's edge; every sheet set up one page wide (fitToWidth 1, fitToHeight 0) at a readable scale;
    each step sheet's header row repeated on every page it prints on. Pages per lesson are printed."""
    import zipfile

    from xlsx_parts import sheet_parts

    root, files, blocks = rendered
    problems, pages_per_lesson = [], {}
    for xlsx, pdf in zip(files, pdfs):
        pages = _pages(pdf)
        pages_per_lesson[pdf.stem] = len(pages)
        for n, (width, height, words) in enumerate(pages, start=1):
            crossing = _overlaps(words)
            if crossing:
                problems.append(f"{pdf.stem} page {n}: {len(crossing)} words over others, e.g. {crossing[:3]}")
            outside = [w[4] for w in words if w[2] > width + 0.5 or w[3] > height + 0.5]
            if outside:
                problems.append(f"{pdf.stem} page {n}: words past the paper's edge {outside[:3]}")
        with zipfile.ZipFile(xlsx) as z:
            book = z.read("xl/workbook.xml").decode("utf-8")
            for sheet, part in sheet_parts(z).items():
                xml = z.read(part).decode("utf-8")
                if re.search(rf'<sheet name="{re.escape(sheet)}"[^>]*state="hidden"', book):
                    continue
                setup = re.search(r"<pageSetup [^>]*>", xml)
                if not (setup and 'fitToHeight="0"' in setup.group(0) and 'fitToWidth' not in
                        setup.group(0).replace('fitToWidth="1"', "") and '<pageSetUpPr fitToPage="1"/>' in xml):
                    problems.append(f"{xlsx.name} {sheet}: not set up one page wide ({setup and setup.group(0)})")
                index = list(sheet_parts(z)).index(sheet)
                if not re.search(rf'<definedName name="_xlnm\.Print_Area" localSheetId="{index}"', book):
                    problems.append(f"{xlsx.name} {sheet}: no print area")
        # the step table's header on every page of its sheet (the footer names the sheet)
        for block in blocks[pdf.stem]:
            if block.name not in LEGEND_BLOCKS:
                continue
            first = _plain(block.columns[0].header).split()[0]
            for n, (_, _, words) in enumerate(pages, start=1):
                texts = [w[4] for w in words]
                if block.sheet in texts[-8:] and first not in texts:
                    problems.append(f"{pdf.stem} page {n}: {block.sheet} without its header row")
    print("pages per lesson:", pages_per_lesson)
    assert not problems, "\n".join(problems[:40])


# --- one number format per quantity, across the workbook -------------------------------------------

def _numeric_formats_below(ws, row: int, col: int, rows: int = 80) -> set[str]:
    """Number formats of the numbers and formulas under a header, down to the first empty cell."""
    out = set()
    for r in range(row + 1, min(ws.max_row, row + rows) + 1):
        cell = ws.cell(r, col)
        if cell.value is None or cell.value == "":
            break
        if isinstance(cell.value, (int, float)) or (isinstance(cell.value, str) and cell.value.startswith("=")):
            out.add(cell.number_format.split(";")[0])  # (collab's unrated errors: the zero section empty)
    return out


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_one_number_format_per_quantity_across_sheets(tmp_path, name):
    """Every column of one quantity — a block column's key (:func:`presentation.quantity`: every loss, every
    accuracy, a weight and its new value) or a column headed "… loss …" on any sheet (Epochs, Compare,
    Solver, the lr finder's marks) — shows one number format in the whole workbook."""
    lesson = kinds.load(name, **OPTIONS[name])
    report = kinds.kind_of(lesson).build(lesson, tmp_path / f"{name}.xlsx")
    wb = openpyxl.load_workbook(tmp_path / f"{name}.xlsx")
    by_quantity: dict[str, dict[str, set]] = {}
    for block in report.blocks:
        ws = wb[block.sheet]
        for c in block.columns:
            if c.pattern is None:
                continue
            formats = _numeric_formats_below(ws, block.first_row, c.col + 1, rows=block.n)
            by_quantity.setdefault(presentation.quantity(c.key), {}).setdefault(
                "|".join(sorted(formats)), set()).add(f"{block.sheet}!{c.header}")
    for ws in wb.worksheets:
        if ws.sheet_state != "visible":
            continue
        for row in ws.iter_rows(min_row=1, max_row=min(ws.max_row, 14)):
            for cell in row:
                text = cell.value if isinstance(cell.value, str) else ""
                header = cell.font is not None and cell.font.b and cell.fill is not None and \
                    str(cell.fill.fgColor.rgb).upper().endswith("DDEBF7")
                if header and re.search(r"\bloss\b", text, re.I) and "∂" not in text:
                    formats = _numeric_formats_below(ws, cell.row, cell.column)
                    formats.discard("General")  # a hyperparameter's or a note's cell under a title
                    if formats:
                        by_quantity.setdefault("loss", {}).setdefault("|".join(sorted(formats)), set()).add(
                            f"{ws.title}!{cell.coordinate} {text[:30]}")
    mixed = {q: seen for q, seen in by_quantity.items() if len(seen) > 1}
    assert not mixed, mixed
    assert "loss" in by_quantity or name == "too-high"  # f(x) is too-high's loss


def test_collab_unrated_errors_show_nothing(tmp_path):
    """An unrated (user, movie) pair's error is 0 by formula (it is not in the loss) and shows empty; a rated
    pair's shows its digits."""
    lesson = kinds.load("collab-filter", **OPTIONS["collab-filter"])
    report = kinds.kind_of(lesson).build(lesson, tmp_path / "c.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "c.xlsx")
    (pred,) = [b for b in report.blocks if b.name == "Predictions"]
    shown = {"unrated": set(), "rated": set()}
    for c in pred.columns:
        if c.key.startswith("err_m"):
            obs = pred.column("obs_" + c.key[4:])
            for i in range(pred.n):
                cell = wb[pred.sheet].cell(pred.first_row + 1 + i, c.col + 1)
                rated = pred.values[obs.key][i] != ""
                shown["rated" if rated else "unrated"].add(
                    presentation.render(float(pred.values[c.key][i]), cell.number_format))
    assert shown["unrated"] == {""}
    assert "" not in shown["rated"] and len(shown["rated"]) > 10
