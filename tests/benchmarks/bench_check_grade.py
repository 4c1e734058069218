"""Benchmark (run by hand): `check` vs merely reading values, and `grade` with 1 vs 2 jobs.

    python3 tests/benchmarks/bench_check_grade.py [--steps 10000] [--files 100] [--repeat 5]

1. A correctly filled 10,000-step workbook (saved by LibreOffice, so it carries cached values):
   `check` (read safely, locate, judge every cell) against python-calamine reading the values of
   every sheet of the same file, the fastest reader available. Target: check ≤ 2× calamine.
2. `grade` of N filled submissions with --jobs 1 and --jobs 2. Target: ≥ 1.8× speed-up.
Times are the best of --repeat runs (the least disturbed by other load on the machine).
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

from sheetsgd.check.checker import check  # noqa: E402
from sheetsgd.check.demo import Flaw, fill_cells, fill_xml  # noqa: E402
from sheetsgd.grade.batch import grade  # noqa: E402
from sheetsgd.lessons.sgd.lesson import load_lesson, override  # noqa: E402
from sheetsgd.check.recalc.libreoffice import recalc_libreoffice  # noqa: E402
from sheetsgd.lessons.sgd.student import resolve_exercise  # noqa: E402
from sheetsgd.lessons.sgd.workbook import build_workbook  # noqa: E402


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def calamine_read(path):
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    return sum(len(wb.get_sheet_by_name(name).to_python()) for name in wb.sheet_names)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sheetsgd-bench-"))
    try:
        base = load_lesson("linear")
        epochs = -(-args.steps // len(base.data))
        lesson = override(base, epochs=epochs)
        student = work / "big-student.xlsx"
        build_workbook(lesson, student, exercise=resolve_exercise(lesson, None))
        filled = work / "fill" / "big.xlsx"
        filled.parent.mkdir()
        fill_xml(str(student), str(filled), fill_cells(str(student)))
        [big] = recalc_libreoffice([filled], work / "lo")
        report = check(str(big))
        assert report.status == "correct", report.to_text()
        print(f"check workbook: {lesson.n_steps:,} steps, {big.stat().st_size / 1e6:.1f} MB, saved by LibreOffice")
        cal = best(lambda: calamine_read(big), args.repeat)
        chk = best(lambda: check(str(big)), args.repeat)
        print(f"{'task':<44}{'best s':>9}{'median s':>10}{'ratio':>8}")
        print(f"{'python-calamine: read every sheet (baseline)':<44}{cal[0]:>9.3f}{cal[1]:>10.3f}{1:>8.2f}")
        print(f"{'sheetsgd check (read safely + judge)':<44}{chk[0]:>9.3f}{chk[1]:>10.3f}{chk[0] / cal[0]:>8.2f}"
              f"   target ≤ 2.00")

        small = override(base, epochs=3)
        stu = work / "small-student.xlsx"
        build_workbook(small, stu, exercise=resolve_exercise(small, None))
        kinds = [None, Flaw("update_sign_flipped", "new_a"), Flaw("mse_factor_2_missing", "grad_a"),
                 Flaw("constant_typed", "new_b")]
        fills = []
        for i, flaw in enumerate(kinds):
            p = work / "fills" / f"kind{i}.xlsx"
            p.parent.mkdir(exist_ok=True)
            fill_xml(str(stu), str(p), fill_cells(str(stu), flaw))
            fills.append(p)
        saved = recalc_libreoffice(fills, work / "lo-small")
        folder = work / "submissions"
        folder.mkdir()
        for i in range(args.files):
            shutil.copy(saved[i % len(saved)], folder / f"s{i:03d}.xlsx")
        files = sorted(folder.iterdir())
        g1 = best(lambda: grade(files, jobs=1, progress=False), max(1, args.repeat // 2))
        g2 = best(lambda: grade(files, jobs=2, progress=False), max(1, args.repeat // 2))
        print(f"\ngrade: {args.files} submissions of {small.n_steps} steps, {os.cpu_count()} cores")
        print(f"{'task':<44}{'best s':>9}{'median s':>10}{'speed-up':>9}")
        print(f"{'grade --jobs 1 (baseline)':<44}{g1[0]:>9.3f}{g1[1]:>10.3f}{1:>9.2f}")
        print(f"{'grade --jobs 2':<44}{g2[0]:>9.3f}{g2[1]:>10.3f}{g1[0] / g2[0]:>9.2f}   target ≥ 1.80")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
