"""Benchmark (run by hand): `check` of big workbooks of two kinds vs python-calamine reading the same file,
and `grade` of 100 Titanic submissions with 1 vs 2 jobs. Ratios are of medians measured in this run.

    python3 tests/benchmarks/bench_check_kinds.py [--repeat 5] [--files 100]

1. titanic-logistic with one passenger per step for 5 epochs (3,565 steps), as built (cached values).
2. linear with 10,005 steps (345 epochs of 29 examples).
   Both: `check` (read safely, rebuild the blocks, judge every cell, and verify every formula cell's saved
   value from its own formula) / calamine reading every sheet. Target ≤ 2×. Beside it, the same check
   trusting the saved values (``verify_formulas=False``, the checker before formulas were verified): what
   verifying costs, in the same run. Last measured (README, "Checking speed, every kind"), two runs:
   titanic 1.82×, 1.77× verified (1.47×, 1.25× trusting), linear 1.70×, 1.66× (1.21×, 1.21×); the version
   before, in turns with them: titanic 2.37×, 2.28×, linear 1.88×, 1.97×.
3. `grade` of --files copies of a 1-epoch titanic-logistic student version filled in correctly
   (recalculated by IronCalc, as a file without cached values would be): --jobs 1 vs --jobs 2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sheetsgd.lessons import kinds  # noqa: E402
from sheetsgd.check.checker import check  # noqa: E402
from sheetsgd.check.demo import fill_sheets, fill_xml_sheets  # noqa: E402
from sheetsgd.write.lesson_file import build_student  # noqa: E402
from sheetsgd.grade.batch import grade  # noqa: E402


def times(fn, repeat):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), min(out)


def interleaved(baseline, *measured, repeat):
    """Medians of each, measured in turns (a load on the shared machine then weighs on all alike)."""
    fns = (baseline, *measured)
    for fn in fns:
        fn()
    runs = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, runs):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return [statistics.median(r) for r in runs]


def calamine_read(path):
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    return sum(len(wb.get_sheet_by_name(name).to_python()) for name in wb.sheet_names)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--files", type=int, default=100, help="0: skip the grade part")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sheetsgd-bench-"))
    try:
        print(f"{'check of':<44}{'steps':>7}{'MB':>5}{'calamine s':>11}{'check s':>9}{'ratio':>7}"
              f"{'unverified s':>14}{'ratio':>7}   target ≤ 2 (verified)")
        for name, options in [("titanic-logistic", {"batch_size": 1, "epochs": 5}), ("linear", {"epochs": 345})]:
            lesson = kinds.load(name, **options)
            path = work / f"{name}.xlsx"
            built = kinds.kind_of(lesson).build(lesson, path)
            report = check(str(path))
            assert report.status == "correct", report.to_text()[:2000]
            cal, chk, trusting = interleaved(lambda: calamine_read(path), lambda: check(str(path)),
                                             lambda: check(str(path), verify_formulas=False), repeat=args.repeat)
            label = f"{name} ({', '.join(f'{k} {v}' for k, v in options.items())})"
            print(f"{label:<44}{built.steps:>7,}{path.stat().st_size / 1e6:>5.1f}{cal:>11.3f}{chk:>9.3f}"
                  f"{chk / cal:>7.2f}{trusting:>14.3f}{trusting / cal:>7.2f}")
        if not args.files:
            return

        lesson = kinds.load("titanic-logistic", epochs=1)
        student = work / "student.xlsx"
        build_student(kinds.kind_of(lesson), lesson, student, "")
        filled = work / "filled.xlsx"
        fill_xml_sheets(str(student), str(filled), fill_sheets(str(student)))
        folder = work / "submissions"
        folder.mkdir()
        for i in range(args.files):
            shutil.copy(filled, folder / f"s{i:03d}.xlsx")
        files = sorted(folder.iterdir())
        g1, _ = times(lambda: grade(files, jobs=1, progress=False), max(1, args.repeat // 2))
        g2, _ = times(lambda: grade(files, jobs=2, progress=False), max(1, args.repeat // 2))
        print(f"\ngrade of {args.files} titanic-logistic submissions, {os.cpu_count()} cores: "
              f"--jobs 1 {g1:.2f} s, --jobs 2 {g2:.2f} s, speed-up {g1 / g2:.2f}× (medians)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
