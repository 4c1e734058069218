"""Benchmark: building the penguins-softmax workbook (per example, mini-batch, full batch) vs bare xlsxwriter writing the same cells.

Run by hand:  cd WORKTREE && python tests/benchmarks/bench_penguins.py [--epochs 3] [--repeat 3]

"sheetsgd build" is the whole build: data generation, engine training, block planning, formula
rendering, formats, the chart, the Solver sheet and the manifest. "bare xlsxwriter" writes exactly the
cells sheetsgd wrote (the same formula text and cached values, read back from sheetsgd's file) into a
constant_memory workbook with one format and nothing else. Best of --repeat, measured round-robin.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_build import best_times, bare_xlsxwriter, read_cells  # noqa: E402

from sheetsgd import kinds  # noqa: E402
from sheetsgd.book import PortableWorksheet  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for batch in (1, 16, "full"):
        bench(kinds.load("penguins-softmax", epochs=args.epochs, batch_size=batch), args.repeat)


def bench(lesson, repeat):
    kind = kinds.kind_of(lesson)
    tmp = tempfile.mkdtemp(prefix="sheetsgd-bench-")
    ours, bare = os.path.join(tmp, "sheetsgd.xlsx"), os.path.join(tmp, "bare.xlsx")
    trace = kind.train(lesson)
    report = kind.build(lesson, ours, trace=trace)
    cells = read_cells(ours)
    n_cells = sum(len(v) for v in cells.values())
    n_formulas = sum(1 for v in cells.values() for c in v if c[2] is not None)
    rows = [("bare xlsxwriter, same cells (baseline)", lambda: bare_xlsxwriter(cells, bare), bare),
            ("bare xlsxwriter + PortableWorksheet", lambda: bare_xlsxwriter(cells, bare, PortableWorksheet), bare),
            ("sheetsgd writer (trace given)", lambda: kind.build(lesson, ours, trace=trace), ours),
            ("sheetsgd build (engine + writer)", lambda: kind.build(lesson, ours), ours),
            ("engine trace alone", lambda: kind.train(lesson), None)]
    seconds = best_times([fn for _, fn, _ in rows], repeat)
    baseline = seconds[0]
    print(f"penguins-softmax, batch size {lesson.batch_size}: {trace.n_steps} steps, {n_cells:,} cells ({n_formulas:,} formulas; "
          f"sheetsgd counted {report.cells:,}); best of {repeat}")
    print(f"{'what':<42} {'time s':>8} {'× baseline':>11} {'file KiB':>9}")
    for (name, _, path), s in zip(rows, seconds):
        size = f"{os.path.getsize(path) / 1024:,.0f}" if path else "-"
        print(f"{name:<42} {s:>8.3f} {s / baseline:>11.2f} {size:>9}")
    print("target: sheetsgd build ≤ 0.5 × baseline")


if __name__ == "__main__":
    main()
