"""Regenerate the README's pictures of a lesson's sheets as LibreOffice draws them (print layout, page 1).

    python3 examples/make_weight_decay_images.py           # the weight-decay lesson's Adam, AdamW and Compare sheets

Needs LibreOffice (soffice) and poppler (pdftoppm). For each picture, a copy of the built workbook with
every other sheet hidden is printed to PDF by LibreOffice (which recalculates it), and the top of its
first page is cut out.
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
# (lesson, options, sheet, picture, crop of the 150-dpi page: width, height in pixels)
PICTURES = [
    ("weight-decay", {}, "Adam", "weight-decay-adam.png", (1760, 560)),
    ("weight-decay", {}, "AdamW", "weight-decay-adamw.png", (1760, 560)),
    ("weight-decay", {}, "Compare", "weight-decay-compare.png", (1760, 980)),
]


def only_sheet(src: Path, dst: Path, keep: str) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                names = re.findall(r'<sheet name="([^"]*)"', data.decode())
                text = re.sub(r'<sheet name="([^"]*)"[^>]*?/>', lambda m: m.group(0) if m.group(1) == keep else
                              re.sub(r'\s*state="[^"]*"', "", m.group(0)).replace("<sheet ", '<sheet state="hidden" '),
                              data.decode())
                data = text.replace("<workbookView ", f'<workbookView activeTab="{names.index(keep)}" ').encode()
            elif item.filename.startswith("xl/worksheets/sheet"):  # the kept sheet is the selected one
                data = data.replace(b' tabSelected="1"', b"")
            zout.writestr(item, data)


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for lesson_name, options, sheet, picture, (width, height) in PICTURES:
            built = tmp / f"{lesson_name}.xlsx"
            if not built.exists():
                lesson = kinds.load(lesson_name, **options)
                kinds.kind_of(lesson).build(lesson, built)
            copy = tmp / f"{picture[:-4]}.xlsx"
            only_sheet(built, copy, sheet)
            subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(copy)],
                           check=True, capture_output=True, timeout=300)
            subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", "-W", str(width),
                            "-H", str(height), str(copy.with_suffix(".pdf")), str(tmp / picture[:-4])],
                           check=True, timeout=120)
            shutil.copy(tmp / picture, IMAGES / picture)
            print("wrote", IMAGES / picture)


if __name__ == "__main__":
    main()
