"""Build every bundled lesson (SGD lessons with each optimizer) into a folder, and say what was written.

    python examples/build_all.py [OUTDIR]        (default: ./lessons-built)

Uses the library API the CLI uses: load a template with options, build it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from sheetsgd.lessons import kinds
from sheetsgd.lessons.sgd.lesson import bundled_lessons
from sheetsgd.lessons.optimizers import OPTIMIZERS


def main(outdir: str = "lessons-built") -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in bundled_lessons():
        lesson = kinds.load(name)
        if lesson.kind != "sgd":  # a lesson with its own fixed setup: built once
            report(kinds.kind_of(lesson).build(lesson, out / f"{name}.xlsx"))
            continue
        for optimizer in OPTIMIZERS:
            lesson = kinds.load(name, optimizer=optimizer)
            report(kinds.kind_of(lesson).build(lesson, out / f"{name}-{optimizer}.xlsx"))


def report(built) -> None:
    print(f"{built.path}: {built.steps} steps, {built.formula_cells:,} formulas, {built.bytes / 1024:,.0f} KiB")


if __name__ == "__main__":
    main(*sys.argv[1:2])
