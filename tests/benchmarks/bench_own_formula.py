"""Benchmark: the engine on an author's own formula (examples/own-model, a·EXP(−b·t/10) + c, Adam, one example
per step) against the linear lesson with the same optimizer and steps, in the same run; and the own formula's
per-example loop on numpy arrays (the evaluator's path) instead of its compiled float functions.

    python tests/benchmarks/bench_own_formula.py [--steps 10000] [--repeat 5]

Prints each median and its ratio to the linear lesson's.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sheetsgd.lessons import kinds  # noqa: E402
from sheetsgd.lessons.sgd.engine import train  # noqa: E402
from sheetsgd.lessons.sgd.own_model import FormulaModel  # noqa: E402


def median_seconds(lesson, repeat: int) -> float:
    train(lesson)  # warm-up: imports, compiled functions
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        train(lesson)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    own = kinds.load(str(ROOT / "examples" / "own-model" / "coffee-cooling.toml"))
    own = kinds.load(str(ROOT / "examples" / "own-model" / "coffee-cooling.toml"), epochs=math.ceil(args.steps / len(own.data)))
    linear = kinds.load("linear", optimizer="adam", batch_size=1)
    linear = kinds.load("linear", optimizer="adam", batch_size=1, epochs=math.ceil(own.n_steps / len(linear.data)))
    base = median_seconds(linear, args.repeat)
    print(f"linear, adam, batch 1: {linear.n_steps:,} steps, median {base:.3f} s")
    compiled = median_seconds(own, args.repeat)
    print(f"own formula, adam, batch 1: {own.n_steps:,} steps, median {compiled:.3f} s ({compiled / base:.1f}x linear)")
    FormulaModel._is_scalar = lambda self, p, x: False  # every step through the evaluator on arrays
    arrays = median_seconds(own, max(1, args.repeat // 2))
    print(f"own formula on the array path: median {arrays:.3f} s ({arrays / base:.1f}x linear)")


if __name__ == "__main__":
    main()
