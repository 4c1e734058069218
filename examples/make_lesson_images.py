"""Redraw the README's pictures of lesson sheets from LibreOffice's rendering (PDF export, one run).

Needs LibreOffice (soffice) and poppler (pdftotext, pdftoppm). Each picture is the top of the first PDF
page whose text begins with its marker (a sheet's title or header), cropped::

    PYTHONPATH=. python examples/make_lesson_images.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sheetsgd.lessons import kinds  # noqa: E402
from sheetsgd.check.recalc.libreoffice import recalc_libreoffice  # noqa: E402

IMAGES = ROOT / "examples" / "images"
# picture: (lesson, options, marker at the top of its page, dpi, width, height) in pixels at that dpi
PICTURES = {
    "linear-steps.png": ("linear", {}, "Yellow cells are inputs: change one", 140, 1640, 600),
    "linear-data.png": ("linear", {}, "fitted ŷ", 100, 1169, 520),
    "lr-finder-chart.png": ("lr-finder", {}, "The lr range test", 100, 1060, 600),
    "lr-finder-titanic-chart.png": ("lr-finder-titanic", {}, "The lr range test", 100, 1075, 620),
    "collab-filter-loss.png": ("collab-filter", {}, "One row per full-batch step",
                               70, 819, 579),
    "dropout-epochs.png": ("dropout", {}, "Loss per epoch", 80, 560, 335),
    "one-cycle-compare.png": ("one-cycle", {}, "1849.000", 80, 1300, 760),  # Compare: step 1's loss, 43²
    "collab-filter-predictions.png": ("collab-filter", {}, "Predictions: one block of rows per step", 200, 1400, 600),
}


def page_of(pdf: Path, marker: str) -> int:
    pages = int(next(line.split()[1] for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                                 text=True, check=True).stdout.splitlines()
                     if line.startswith("Pages:")))
    for page in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        if marker in text[:400]:
            return page
    raise SystemExit(f"{pdf.name}: no page begins with {marker!r}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = {}
        for lesson_name, options, *_ in PICTURES.values():
            if lesson_name not in files:
                lesson = kinds.load(lesson_name, **options)
                files[lesson_name] = tmp / "in" / f"{lesson_name}.xlsx"
                kinds.kind_of(lesson).build(lesson, files[lesson_name])
        pdfs = dict(zip(files, recalc_libreoffice(list(files.values()), tmp / "pdf", to="pdf")))
        for picture, (lesson_name, _, marker, dpi, width, height) in PICTURES.items():
            pdf = pdfs[lesson_name]
            page = page_of(pdf, marker)
            subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
                            "-W", str(width), "-H", str(height), str(pdf), str(IMAGES / picture[:-4])],
                           check=True, timeout=120)
            print("wrote", picture, "from page", page, "of", pdf.name)


if __name__ == "__main__":
    main()
