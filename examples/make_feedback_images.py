"""Regenerate the README's pictures of the feedback: the annotated workbook as LibreOffice draws it, and
the HTML feedback page as Chromium draws it, both for examples/submissions/carol-factor-2-missing.xlsx.

    python3 examples/make_feedback_images.py

Needs LibreOffice (soffice), poppler (pdftoppm) and Chromium. For the picture only, the annotated copy's
Introduction, Epochs and Data sheets are hidden (so the PDF holds the Feedback and Steps sheets) and the
first note is made visible; the copy `check --annotate` writes shows notes when the pointer is on a cell.
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

from sheetsgd.feedback.annotate import annotate  # noqa: E402
from sheetsgd.check.checker import check  # noqa: E402
from sheetsgd.feedback.html import render  # noqa: E402

SUBMISSION = HERE / "submissions" / "carol-factor-2-missing.xlsx"
IMAGES = HERE / "images"


def for_the_picture(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                text = data.decode()
                for name in ("Introduction", "Epochs", "Data"):
                    text = re.sub(rf'<sheet name="{name}"[^>]*?/>', lambda m: re.sub(
                        r'\s*state="[^"]*"', "", m.group(0)).replace("<sheet ", '<sheet state="hidden" '), text)
                data = text.encode()
            elif item.filename.startswith("xl/worksheets/sheet") and b"<legacyDrawing" in data:  # Steps
                text = data.decode().replace('fitToPage="false"', 'fitToPage="true"')
                text = re.sub(r'(<pageSetup\b[^>]*?)orientation="portrait"', r'\1orientation="landscape"', text)
                data = text.replace('fitToHeight="1"', 'fitToHeight="0"').encode()
            elif item.filename.endswith(".vml"):
                data = data.decode().replace("visibility:hidden", "visibility:visible", 1).encode()
            zout.writestr(item, data)


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        report = check(SUBMISSION).to_dict()
        annotate(SUBMISSION, report, tmp / "annotated.xlsx")
        for_the_picture(tmp / "annotated.xlsx", tmp / "carol.xlsx")
        subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp), str(tmp / "carol.xlsx")],
                       check=True, capture_output=True, timeout=300)
        pages = subprocess.run(["pdfinfo", str(tmp / "carol.pdf")], capture_output=True, text=True).stdout
        n = int(re.search(r"Pages:\s+(\d+)", pages).group(1))
        for page, name, crop in ((1, "annotated-feedback-sheet.png", ["-W", "580", "-H", "640"]),
                                 (2, "annotated-steps.png", ["-W", "820", "-H", "300"])):
            if page <= n:
                subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", str(page), "-l", str(page), "-singlefile",
                                *crop, str(tmp / "carol.pdf"), str(tmp / name[:-4])], check=True, timeout=120)
                shutil.copy(tmp / name, IMAGES / name)
        page = tmp / "carol-feedback.html"
        page.write_text(render(report), encoding="utf-8")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'p'}",
                        '--host-resolver-rules=MAP * ~NOTFOUND', f"--screenshot={IMAGES / 'feedback-html.png'}",
                        "--window-size=1000,1000", page.as_uri()], check=True, capture_output=True, timeout=120)
    print("wrote", ", ".join(sorted(p.name for p in IMAGES.glob("*feedback*.png")) + ["annotated-steps.png"]))


if __name__ == "__main__":
    main()
