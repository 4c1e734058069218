"""Regenerate the examples: a student version and filled-in submissions saved by LibreOffice.

    python3 examples/make_examples.py

Writes examples/linear-student.xlsx (the blank exercise) and examples/submissions/*.xlsx: the blanks
filled as a student would (formulas typed into the cells, filled down), then opened, recalculated and
saved by LibreOffice, like a file a student hands in. Try:

    sheetsgd check examples/submissions/alice-correct.xlsx
    sheetsgd check examples/submissions/bob-sign-flipped.xlsx
    sheetsgd grade examples/submissions -o grades.csv --results-json results.json
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sheetsgd.check.demo import Flaw, fill_cells, fill_xml  # noqa: E402
from sheetsgd.lessons.sgd.lesson import load_lesson, override  # noqa: E402
from sheetsgd.check.recalc.libreoffice import recalc_libreoffice  # noqa: E402
from sheetsgd.lessons.sgd.student import resolve_exercise  # noqa: E402
from sheetsgd.lessons.sgd.workbook import build_workbook  # noqa: E402

SUBMISSIONS = {
    "alice-correct": None,
    "bob-sign-flipped": Flaw("update_sign_flipped", "new_a"),
    "carol-factor-2-missing": Flaw("mse_factor_2_missing", "grad_a"),
    "dan-lr-relative": Flaw("lr_relative", "new_b"),
    "erin-pasted-values": Flaw("constant_typed", "new_b"),
    "frank-x-missing": Flaw("feature_missing", "grad_a"),
}


def main() -> None:
    lesson = override(load_lesson("linear"), epochs=2)
    student = HERE / "linear-student.xlsx"
    build_workbook(lesson, student, exercise=resolve_exercise(lesson, None))
    out = HERE / "submissions"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        filled = []
        for name, flaw in SUBMISSIONS.items():
            path = Path(tmp, f"{name}.xlsx")
            fill_xml(str(student), str(path), fill_cells(str(student), flaw))
            filled.append(path)
        saved = recalc_libreoffice(filled, Path(tmp, "saved"))
        out.mkdir()
        for path in saved:
            shutil.copy(path, out / path.name)
    print(f"wrote {student.relative_to(HERE.parent)} and {len(SUBMISSIONS)} submissions in "
          f"{out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
