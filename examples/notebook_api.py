"""The Python API as a notebook would use it: load, train, look at the numbers, build, check.

    python examples/notebook_api.py [OUTDIR]        (default: ./api-example)

Each block below is a notebook cell; the DataFrames are what the workbook's sheets show.
"""
from __future__ import annotations

import sys
from pathlib import Path

from sheetsgd import api


def main(outdir: str = "api-example") -> None:
    out = Path(outdir)

    # a bundled lesson (or a template file), with the command line's options
    lesson = api.load("linear", optimizer="momentum", epochs=2)
    print(lesson, "·", lesson.title)

    # train it with the numpy engine: every sheet's quantities as pandas DataFrames
    run = lesson.train()
    frames = run.frames()
    print("sheets:", ", ".join(frames))
    steps = frames["Steps"]
    print(steps[["step", "epoch", "a", "b", "loss", "grad_a", "new_a", "new_b"]].tail(3).to_string(index=False))
    print(frames["Epochs"].to_string(index=False))

    # the same for any kind of lesson: a Titanic net's per-passenger rows of each full-batch step
    titanic = api.load("titanic-mlp", epochs=2).train()
    examples = titanic.frame("Examples")
    print(f"titanic-mlp: {len(examples):,} passenger rows; step 2 accuracy",
          round(float(titanic.frame("Steps")["correct"].iloc[-1]), 4))

    # the workbook, and a student version with the template's exercise columns blank
    built = lesson.build(out / "linear-momentum.xlsx")
    print(f"wrote {built.path}: {built.steps} steps, {built.formula_cells:,} formulas")
    student = lesson.build(out / "linear-student.xlsx", exercise=True)

    # check a file: the report is an object (status, score, mistakes) and its JSON
    report = api.check(built.path)
    print(report.status, "score", report.score)
    unfilled = api.check(student.path)
    print(unfilled.status, "score", unfilled.score, "first mistake:", unfilled.mistakes[0]["column"])


if __name__ == "__main__":
    main(*sys.argv[1:2])
