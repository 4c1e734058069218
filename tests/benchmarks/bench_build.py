"""Benchmark: building a 10,000-step linear workbook vs bare xlsxwriter writing the same cells.

Run by hand (not part of the test suite):

    python tests/benchmarks/bench_build.py [--steps 10000] [--repeat 3]

Prints a table of times (best of --repeat), ratios against the baseline measured in the same run,
peak Python memory (tracemalloc, separate pass) and file sizes. The baseline writes exactly the
cells sheetsgd wrote (the same formula text, cached values and numbers, read back from sheetsgd's
file beforehand) with xlsxwriter in the same constant_memory mode, and nothing else.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import tracemalloc

import openpyxl
import xlsxwriter

from sheetsgd.lessons.sgd.engine import train
from sheetsgd.lessons.sgd.lesson import load_lesson, override
from sheetsgd.lessons.sgd.workbook import PortableWorksheet, build_workbook


def read_cells(path):
    """[(sheet, row, col, formula or None, value)] of every cell sheetsgd wrote (0-based)."""
    formulas = openpyxl.load_workbook(path, read_only=True)
    values = openpyxl.load_workbook(path, read_only=True, data_only=True)
    out = {}
    for ws_f, ws_v in zip(formulas.worksheets, values.worksheets):
        cells = []
        for row_f, row_v in zip(ws_f.iter_rows(), ws_v.iter_rows()):
            for cf, cv in zip(row_f, row_v):
                if cf.value is None:
                    continue
                formula = cf.value if isinstance(cf.value, str) and cf.value.startswith("=") else None
                cells.append((cf.row - 1, cf.column - 1, formula, cv.value))
        out[ws_f.title] = cells
    return out


def bare_xlsxwriter(cells, path, worksheet_class=None):
    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    number = wb.add_format({"num_format": "0.000000"})
    for sheet, rows in cells.items():
        ws = wb.add_worksheet(sheet, worksheet_class=worksheet_class)
        for r, c, formula, value in rows:
            if formula is not None:
                ws.write_formula(r, c, formula, number, value)
            else:
                ws.write(r, c, value, number)
    wb.close()


def best_times(fns, repeat):
    """Best time of each function, measured round-robin so background load hits all of them alike."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [min(t) for t in times]


def peak_memory(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    base = load_lesson("linear")
    lesson = override(base, epochs=math.ceil(args.steps / len(base.data)))
    tmp = tempfile.mkdtemp(prefix="sheetsgd-bench-")
    ours, bare = os.path.join(tmp, "sheetsgd.xlsx"), os.path.join(tmp, "bare.xlsx")

    trace = train(lesson)
    report = build_workbook(lesson, ours, trace)
    cells = read_cells(ours)
    n_cells = sum(len(v) for v in cells.values())
    n_formulas = sum(1 for v in cells.values() for c in v if c[2] is not None)

    rows = [
        ("bare xlsxwriter, same cells (baseline)", lambda: bare_xlsxwriter(cells, bare), bare),
        ("bare xlsxwriter + PortableWorksheet", lambda: bare_xlsxwriter(cells, bare, PortableWorksheet), bare),
        ("sheetsgd writer (trace given)", lambda: build_workbook(lesson, ours, trace), ours),
        ("sheetsgd build (engine + writer)", lambda: build_workbook(lesson, ours), ours),
        ("engine trace alone", lambda: train(lesson), None),
    ]
    seconds = best_times([fn for _, fn, _ in rows], args.repeat)
    results = [(name, s, peak_memory(fn), path) for (name, fn, path), s in zip(rows, seconds)]
    baseline = results[0][1]

    print(f"linear lesson, sgd, batch size 1: {trace.n_steps:,} steps, {n_cells:,} cells "
          f"({n_formulas:,} formulas); best of {args.repeat}")
    print(f"{'what':<42} {'time s':>8} {'× baseline':>11} {'peak MiB':>9} {'file KiB':>9}")
    for name, seconds, peak, path in results:
        size = f"{os.path.getsize(path) / 1024:,.0f}" if path else "-"
        print(f"{name:<42} {seconds:>8.3f} {seconds / baseline:>11.2f} {peak / 2**20:>9.1f} {size:>9}")
    print(f"target: sheetsgd build ≤ 1.3 × baseline; sheetsgd wrote {report.cells:,} cells "
          "(PortableWorksheet skips xlsxwriter's _xlfn. regex passes, which portable formulas never need)")


if __name__ == "__main__":
    main()
