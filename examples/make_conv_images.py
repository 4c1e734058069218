"""Regenerate the README's pictures of the conv lesson as LibreOffice draws them: the last steps of the
Filters sheet (the filters, their gradients and the new filters as 3×3 grids with colour
scales: the learned filters are the last rows), the training images (Pictures) and the Loss sheet.

    python3 examples/make_conv_images.py

Needs LibreOffice (soffice) and poppler (pdftoppm, pdfinfo). For each picture every other sheet is hidden.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_penguins_images import only  # noqa: E402
from sheetsgd.lessons import kinds  # noqa: E402

IMAGES = HERE / "images"


def pages(path: Path, sheet: str, marker: str, tmp: Path) -> tuple[str, list[int]]:
    """The PDF of one sheet and its pages whose text has ``marker`` (LibreOffice 7.4 prints hidden sheets too)."""
    one = tmp / f"{sheet}.xlsx"
    only(path, one, sheet)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(one)],
                   check=True, capture_output=True, timeout=600)
    pdf = str(tmp / f"{sheet}.pdf")
    n = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout)[1])
    texts = [subprocess.run(["pdftotext", "-f", str(p), "-l", str(p), pdf, "-"], capture_output=True, text=True).stdout
             for p in range(1, n + 1)]
    return pdf, [i + 1 for i, t in enumerate(texts) if marker in t]


def draw(pdf: str, page: int, name: str, crop: list[str], tmp: Path) -> None:
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", *crop, pdf,
                    str(tmp / name[:-4])], check=True, timeout=120)
    shutil.copy(tmp / name, IMAGES / name)


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lesson = kinds.load("conv")
        kinds.kind_of(lesson).build(lesson, tmp / "conv.xlsx")
        pdf, found = pages(tmp / "conv.xlsx", "Filters", "newF1", tmp)
        draw(pdf, found[-1], "conv-filters-last.png", ["-W", "900", "-H", "420"], tmp)
        pdf, found = pages(tmp / "conv.xlsx", "Pictures", "x[·,1]", tmp)
        draw(pdf, found[0], "conv-pictures.png", ["-W", "640", "-H", "600"], tmp)
        pdf, found = pages(tmp / "conv.xlsx", "Loss", "mean loss", tmp)
        draw(pdf, found[0], "conv-loss.png", ["-W", "800", "-H", "600"], tmp)
    print("wrote conv-filters-last.png, conv-pictures.png, conv-loss.png")


if __name__ == "__main__":
    main()
