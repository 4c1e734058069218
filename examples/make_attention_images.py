"""Redraw the README's pictures of the attention lesson from LibreOffice's rendering (PDF export, one run).

Needs LibreOffice (soffice) and poppler (pdftotext, pdftoppm). The Attention sheet's first page (its first
steps' attention grids and the loss chart) and its last page (the last steps' grids), cropped::

    PYTHONPATH=. python examples/make_attention_images.py
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
MARKER = "The attention matrix of each step's first sequence"
DPI = 90
# picture: (which page: "first" the Attention sheet's first, "last" the PDF's last; crop x, y, width, height)
PICTURES = {"attention-start.png": ("first", 55, 55, 1000, 330), "attention-end.png": ("last", 55, 55, 420, 300)}


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def first_page(pdf: Path) -> int:
    for page in range(1, pages(pdf) + 1):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        if text.startswith(MARKER):
            return page
    raise SystemExit(f"{pdf.name}: no page begins with {MARKER!r}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lesson = kinds.load("attention")
        built = tmp / "attention.xlsx"
        kinds.kind_of(lesson).build(lesson, built)
        [pdf] = recalc_libreoffice([built], tmp / "pdf", to="pdf")
        for picture, (which, x, y, width, height) in PICTURES.items():
            page = first_page(pdf) if which == "first" else pages(pdf)  # the Attention sheet is the last one
            subprocess.run(["pdftoppm", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page), "-singlefile",
                            "-x", str(x), "-y", str(y), "-W", str(width), "-H", str(height), str(pdf),
                            str(IMAGES / picture[:-4])], check=True, timeout=120)
            print("wrote", picture, "from page", page, "of", pdf.name)


if __name__ == "__main__":
    main()
