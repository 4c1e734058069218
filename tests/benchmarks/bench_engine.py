"""Benchmark: the engine trace of a 10,000-step linear lesson (SGD, one example per step).

Run by hand (not part of the test suite):

    python tests/benchmarks/bench_engine.py [--steps 10000] [--repeat 7]

Prints the median of --repeat runs (and the fastest and slowest) of ``sheetsgd.lessons.sgd.engine.train``, the
numbers every sheet column caches, without a workbook. Target: median < 0.1 s.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sheetsgd.lessons.sgd.engine import train  # noqa: E402
from sheetsgd.lessons.sgd.lesson import load_lesson, override  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--lesson", default="linear")
    args = parser.parse_args()
    base = load_lesson(args.lesson)
    lesson = override(base, epochs=math.ceil(args.steps / base.steps_per_epoch))
    train(lesson)  # warm-up: imports, first allocations
    seconds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        trace = train(lesson)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(f"{args.lesson} lesson, {lesson.optimizer}, batch size {lesson.batch_size}: {trace.n_steps:,} steps, "
          f"{len(trace.steps)} quantities per step")
    print(f"engine trace: median {median:.3f} s of {args.repeat} runs (min {min(seconds):.3f}, max {max(seconds):.3f}); "
          f"{median / trace.n_steps * 1e6:.1f} µs per step")
    print(f"target: median < 0.1 s → {'met' if median < 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
