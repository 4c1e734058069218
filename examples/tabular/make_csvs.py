"""Writes the worked example's two small CSV files (seeded, so the files never change):

clinic.csv  120 patients: age and dose (numbers, one age missing), ward (A, B or C; one missing),
            recovered (0/1), drawn from a logistic model of them.
flowers.csv 90 flowers of three kinds (setosa-like, versicolor-like, virginica-like): petal and sepal
            sizes and a colour (a categorical column), one petal width missing.

Run ``python examples/tabular/make_csvs.py`` to write them again beside this script.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def clinic(rng: np.random.Generator) -> list[dict]:
    rows = []
    for i in range(120):
        age = int(rng.integers(20, 80))
        dose = round(float(rng.uniform(0.5, 5.0)), 1)
        ward = str(rng.choice(["A", "B", "C"]))
        z = 2.0 - 0.05 * (age - 50) + 0.6 * (dose - 2.5) + {"A": 0.5, "B": -0.3, "C": -0.8}[ward] - 1.5
        recovered = int(rng.uniform() < 1 / (1 + np.exp(-z)))
        rows.append({"patient": 101 + i, "age": age, "dose": dose, "ward": ward, "recovered": recovered})
    rows[7]["age"] = ""  # a missing number: missing = "mean" fills it on the sheet
    rows[12]["ward"] = ""  # a missing category: missing = "mode" fills it
    return rows


def flowers(rng: np.random.Generator) -> list[dict]:
    kinds = {"setosa": (1.5, 0.3, 5.0, "white"), "versicolor": (4.3, 1.3, 5.9, "violet"),
             "virginica": (5.5, 2.0, 6.6, "violet")}
    rows = []
    for i in range(90):
        kind = list(kinds)[i % 3]
        length, width, sepal, colour = kinds[kind]
        if rng.uniform() < 0.2:
            colour = "blue"
        rows.append({"petal_length": round(float(rng.normal(length, 0.45)), 1),
                     "petal_width": round(float(rng.normal(width, 0.25)), 1),
                     "sepal_length": round(float(rng.normal(sepal, 0.5)), 1), "colour": colour, "kind": kind})
    rows[20]["petal_width"] = ""  # dropped by missing = "drop"
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    write(HERE / "clinic.csv", clinic(np.random.default_rng(2026)))
    write(HERE / "flowers.csv", flowers(np.random.default_rng(7)))
