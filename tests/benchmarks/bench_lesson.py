"""Benchmark: any bundled lesson's build vs bare xlsxwriter writing the same cells.

Run by hand:  python3 tests/benchmarks/bench_lesson.py [--lesson titanic-logistic] [--epochs 5]
              [--batch-size 1|N|full] [--repeat 5]

The README quotes: titanic-logistic --epochs 5 --batch-size 1 (issue 9's 3,565 per-passenger steps, the
defaults), weight-decay --epochs 150, penguins-softmax --epochs 3 (batch sizes 1, 16, full),
collab-filter --epochs 40 and dropout --epochs 40 --batch-size full (the bundled run).

"sheetsgd" is the whole build of the lesson's kind: engine training, formula rendering, formats,
charts and the size guard. "bare xlsxwriter" writes exactly the same cells
(sheet, row, column, formula or value, cached result), recorded from a sheetsgd build, into a
constant_memory workbook with no formats or charts: the floor any writer of these cells pays.
Each measurement runs in a fresh child process, so the peak memory (max RSS) is its own; the
median of --repeat runs is reported (sheetsgd and bare runs alternate, so background load hits both).
A child builds twice: the ratio compares the second (warm) builds, the first (cold) is shown beside it.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


OPTIONS = {}  # set from the command line (the child processes get them as JSON)


def the_lesson():
    from sheetsgd.lessons import kinds

    return kinds.load(OPTIONS["lesson"], **{k: v for k, v in OPTIONS.items() if k != "lesson"})


def build(lesson, out):
    from sheetsgd.lessons import kinds

    return kinds.kind_of(lesson).build(lesson, out)


def child_sheetsgd(out: Path) -> dict:
    """The first build in a fresh process (cold: lazy imports, fonts) and a second one (warm: what the
    ratio compares, as a course author building variants or a grader rebuilding lessons sees it)."""
    lesson = the_lesson()
    start = time.perf_counter()
    build(lesson, out)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    report = build(lesson, out)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cold": cold, "cells": report.cells, "formula_cells": report.formula_cells}


def child_record(out: Path, cells_file: Path) -> dict:
    """Build once with xlsxwriter's cell writers wrapped, to record every cell written."""
    import xlsxwriter.worksheet as ws_mod

    cells = []
    Worksheet = ws_mod.Worksheet
    # the private writers every public write (write, write_row, headers…) ends in
    originals = {name: getattr(Worksheet, name) for name in ("_write_formula", "_write_number", "_write_string")}

    def wrap(name):
        original = originals[name]

        def recorded(self, row, col, *args):
            plain = [a for a in args if a is not None and not hasattr(a, "num_format")]  # drop formats
            cells.append((self.name, name, row, col, plain))
            return original(self, row, col, *args)
        return recorded

    for name in originals:
        setattr(Worksheet, name, wrap(name))
    build(the_lesson(), out)
    with open(cells_file, "wb") as fh:
        pickle.dump(cells, fh)
    return {"cells": len(cells)}


def child_bare(out: Path, cells_file: Path) -> dict:
    import xlsxwriter

    with open(cells_file, "rb") as fh:
        cells = pickle.load(fh)
    gc.freeze()  # the recorded cells are input, not work: keep the garbage collector from rescanning them
    cold = write_bare(xlsxwriter, out, cells)
    return {"seconds": write_bare(xlsxwriter, out, cells), "cold": cold, "cells": len(cells)}


def write_bare(xlsxwriter, out: Path, cells) -> float:
    start = time.perf_counter()
    wb = xlsxwriter.Workbook(str(out), {"constant_memory": True, "strings_to_numbers": False})
    sheets = {}
    for sheet, kind, row, col, args in cells:
        ws = sheets.get(sheet) or sheets.setdefault(sheet, wb.add_worksheet(sheet))
        if kind == "_write_formula":
            ws.write_formula(row, col, args[0], None, *args[1:])
        elif kind == "_write_number":
            ws.write_number(row, col, args[0])
        else:
            ws.write_string(row, col, args[0])
    wb.close()
    return time.perf_counter() - start


def median_run(runs: list[dict]) -> dict:
    """The run of median time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def run_child(*args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--options", json.dumps(OPTIONS), "--child", *map(str, args)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lesson", default="titanic-logistic")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=lambda v: v if v == "full" else int(v),
                        help="default: 1 for titanic-logistic, else the template's (collab-filter has none)")
    parser.add_argument("--options", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    OPTIONS.update(json.loads(args.options) if args.options else
                   {"lesson": args.lesson, "epochs": args.epochs,
                    **({"batch_size": args.batch_size} if args.batch_size is not None else
                       {"batch_size": 1} if args.lesson == "titanic-logistic" else {})})
    if args.child:
        kind, *paths = args.child
        result = {"sheetsgd": child_sheetsgd, "record": child_record, "bare": child_bare}[kind](*map(Path, paths))
        result["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="sheetsgd-bench-") as tmp:
        tmp = Path(tmp)
        cells_file = tmp / "cells.pickle"
        run_child("record", tmp / "recorded.xlsx", cells_file)
        ours, bare = [], []
        for _ in range(args.repeat):  # round-robin
            ours.append(run_child("sheetsgd", tmp / "sheetsgd.xlsx"))
            bare.append(run_child("bare", tmp / "bare.xlsx", cells_file))
        o, b = median_run(ours), median_run(bare)
        sizes = {"sheetsgd": os.path.getsize(tmp / "sheetsgd.xlsx"), "bare": os.path.getsize(tmp / "bare.xlsx")}
    print(f"{OPTIONS['lesson']}, batch size {OPTIONS.get('batch_size', 'as the template')}, {OPTIONS['epochs']} epochs; "
          f"median of {args.repeat} runs each")
    print(f"{'writer':<16}{'seconds':>9}{'ratio':>8}{'cold s':>8}{'ratio':>7}{'peak RSS MiB':>14}{'file KiB':>10}"
          f"{'cells':>10}{'formulas':>10}")
    print(f"{'sheetsgd':<16}{o['seconds']:>9.2f}{o['seconds'] / b['seconds']:>8.2f}{o['cold']:>8.2f}"
          f"{o['cold'] / b['cold']:>7.2f}{o['max_rss_kib'] / 1024:>14.1f}"
          f"{sizes['sheetsgd'] / 1024:>10,.0f}{o['cells']:>10,}{o['formula_cells']:>10,}")
    print(f"{'bare xlsxwriter':<16}{b['seconds']:>9.2f}{1:>8.2f}{b['cold']:>8.2f}{1:>7.2f}{b['max_rss_kib'] / 1024:>14.1f}"
          f"{sizes['bare'] / 1024:>10,.0f}{b['cells']:>10,}{'':>10}")
    print("seconds: a second build in the process (warm); cold: the first (lazy imports, fonts loaded)")
    print(f"target: ratio ≤ 0.5 → {'met' if o['seconds'] / b['seconds'] <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
