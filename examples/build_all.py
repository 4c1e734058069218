"""Build every bundled lesson with each optimizer into a folder, and say what was written.

    python examples/build_all.py [OUTDIR]        (default: ./lessons-built)

Uses the library API the CLI uses: load a template, override the optimizer, build.
"""
from __future__ import annotations

import sys
from pathlib import Path

from sheetsgd.errors import SheetsgdError
from sheetsgd.lesson import bundled_lessons, load_lesson, override
from sheetsgd.optimizers import OPTIMIZERS
from sheetsgd.writer import build_workbook


def main(outdir: str = "lessons-built") -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in bundled_lessons():
        for optimizer in OPTIMIZERS:
            try:
                lesson = override(load_lesson(name), optimizer=optimizer)
            except SheetsgdError as exc:  # a lesson that does not offer this optimizer
                print(f"skip {name} × {optimizer}: {exc}")
                continue
            report = build_workbook(lesson, out / f"{name}-{optimizer}.xlsx")
            print(f"{report.path}: {report.steps} steps, {report.formula_cells:,} formulas, "
                  f"{report.bytes / 1024:,.0f} KiB")


if __name__ == "__main__":
    main(*sys.argv[1:2])
