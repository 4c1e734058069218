"""Regenerate the README's pictures of penguins-softmax as LibreOffice draws them: the Epochs sheet
(training and validation loss and accuracy with their charts) and the first rows of the Examples sheet
(scores, the stable softmax, cross-entropy, argmax, p − y).

    python3 examples/make_penguins_images.py

Needs LibreOffice (soffice) and poppler (pdftoppm, pdfinfo). For the picture only, every other sheet is
hidden (so the PDF holds just the one sheet) and the sheet is printed landscape.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sheetsgd.lessons import kinds  # noqa: E402

IMAGES = HERE / "images"


def only(src: Path, dst: Path, keep: str) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                text = data.decode()
                text = re.sub(r'<sheet name="([^"]*)"[^>]*?/>', lambda m: m.group(0) if m.group(1) == keep else re.sub(
                    r'\s*state="[^"]*"', "", m.group(0)).replace("<sheet ", '<sheet state="hidden" '), text)
                names = re.findall(r'<sheet name="([^"]*)"', text)
                text = text.replace("<workbookView ", f'<workbookView activeTab="{names.index(keep)}" ', 1)
                data = text.encode()
            elif item.filename.startswith("xl/worksheets/sheet"):
                text = data.decode().replace(' tabSelected="1"', "")
                if "<pageSetup" in text:
                    text = re.sub(r'(<pageSetup\b[^>]*?)orientation="portrait"', r'\1orientation="landscape"', text)
                else:
                    text = text.replace("</worksheet>", '<pageSetup orientation="landscape"/></worksheet>')
                data = text.encode()
            zout.writestr(item, data)


def picture(path: Path, sheet: str, marker: str, name: str, crop: list[str], tmp: Path) -> None:
    """The first PDF page whose text has ``marker`` (LibreOffice 7.4 may print hidden sheets too)."""
    one = tmp / f"{sheet}.xlsx"
    only(path, one, sheet)
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(one)],
                   check=True, capture_output=True, timeout=600)
    pdf = str(tmp / f"{sheet}.pdf")
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout)[1])
    texts = [subprocess.run(["pdftotext", "-f", str(p), "-l", str(p), pdf, "-"], capture_output=True, text=True).stdout
             for p in range(1, pages + 1)]
    page = next(i + 1 for i, t in enumerate(texts) if marker in t and "Examples column" not in t
                and "Things to try" not in t)  # not the Introduction's column table
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", str(page), "-l", str(page), "-singlefile", *crop,
                    str(tmp / f"{sheet}.pdf"), str(tmp / name[:-4])], check=True, timeout=120)
    shutil.copy(tmp / name, IMAGES / name)


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lesson = kinds.load("penguins-softmax", epochs=12)
        kinds.kind_of(lesson).build(lesson, tmp / "penguins.xlsx")
        picture(tmp / "penguins.xlsx", "Epochs", "Loss per epoch", "penguins-softmax-epochs.png", ["-W", "800", "-H", "560"], tmp)
        short = kinds.load("penguins-softmax", epochs=1)
        kinds.kind_of(short).build(short, tmp / "short.xlsx")
        picture(tmp / "short.xlsx", "Examples", "p1 = e1/Σe", "penguins-softmax-examples.png", ["-W", "820", "-H", "330"], tmp)
    print("wrote penguins-softmax-epochs.png, penguins-softmax-examples.png")


if __name__ == "__main__":
    main()
