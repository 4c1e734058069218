"""Palmer penguins → standardised features and one-hot targets, in numpy and as Data-sheet formulas, side by side.

The Data sheet holds the CSV's columns as values (a row number first, as the Titanic sheet's PassengerId)
and every feature as a formula: each measurement minus its mean over the training rows, divided by
their population standard deviation (AVERAGE and STDEVP over the training rows, which come first on the
sheet), and one 0/1 column per species (IF(species="Adelie",1,0), …): the softmax lesson's targets. The
two rows of the CSV without any measurement are dropped (342 rows stay, in file order); a missing sex,
which no feature uses, stays a blank cell.
"""
from __future__ import annotations

import csv

import numpy as np

from sheetsgd.lessons.sgd.data import sheet_float
from sheetsgd.lessons.datasets import PENGUINS_CSV
from sheetsgd.errors import SheetsgdError
from .features import Feature, Passengers, TitanicData, chosen_features, first_rows, split_order
from .layout import col

RAW = ("row", "species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex",
       "year")
TEXT = ("species", "island", "sex")
MEASURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
DROPPED = 2  # CSV rows without any measurement
SHORT = {"bill_length_mm": "bill_length", "bill_depth_mm": "bill_depth", "flipper_length_mm": "flipper_length",
         "body_mass_g": "body_mass"}


def read_penguins(path=PENGUINS_CSV) -> Passengers:
    """Every CSV row with its measurements (the two rows without any are dropped); ``row`` is the CSV's
    1-based data row."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    kept = [(i + 1, r) for i, r in enumerate(rows) if all(r[m] != "NA" for m in MEASURES)]
    cols: dict[str, np.ndarray] = {"row": np.array([float(i) for i, _ in kept])}
    for name in RAW[1:]:
        values = [r[name] for _, r in kept]
        if name in TEXT:
            cols[name] = np.array(["" if v == "NA" else v for v in values], dtype=object)
        else:
            cols[name] = np.array([sheet_float(v) for v in values], dtype=float)
    return Passengers(cols)


def _standardised(name: str, n_train: int, first_row: int, letter: str, stats) -> Feature:
    span = f"{letter}${first_row}:{letter}${first_row + n_train - 1}"
    mean, sd = stats
    return Feature(SHORT[name], f"{SHORT[name]} (std)", f"({{{name}}}-AVERAGE({span}))/STDEVP({span})",
                   lambda p: (p[name] - mean) / sd,
                   f"{name} minus its training mean, over its training standard deviation (population)")


def _one_hot(level: str) -> Feature:
    return Feature(f"y_{level}", f"y {level}", f'IF({{species}}="{level}",1,0)',
                   lambda p: (p["species"] == level).astype(float), f"1 when the species is {level}, else 0")


def prepare_penguins(features, rows, valid_fraction, split_seed, where: str, first_row: int) -> TitanicData:
    """The lesson's data: rows (optionally the first ``rows``), a seeded split (training rows first, each
    part in file order), standardised features (statistics of the training rows) and one-hot targets.
    ``first_row``: the 1-based Data-sheet row of the first penguin (the AVERAGE/STDEVP ranges start there)."""
    everyone = read_penguins()
    if rows is not None:
        everyone = everyone.take(np.arange(first_rows(rows, len(everyone), where)))
    keys = [SHORT[m] for m in MEASURES]
    if features is not None:
        keys = chosen_features(features, keys, "the penguins", where)
    order, n_valid = split_order(len(everyone), valid_fraction, split_seed, where, min_train=2)
    n = len(everyone)
    kept = everyone.take(order)
    n_train = n - n_valid
    measures = [m for m in MEASURES if SHORT[m] in keys]
    measures.sort(key=lambda m: keys.index(SHORT[m]))
    feats = []
    for m in measures:
        train = kept[m][:n_train]
        mean, sd = float(np.mean(train)), float(np.std(train))
        if sd == 0:
            raise SheetsgdError(f"{m} is the same in every training row: it cannot be standardised", where)
        feats.append(_standardised(m, n_train, first_row, col(RAW.index(m)), (mean, sd)))
    X = np.column_stack([f.compute(kept) for f in feats])
    targets = [_one_hot(s) for s in SPECIES]
    Y = np.column_stack([t.compute(kept) for t in targets])
    return TitanicData("penguins", kept, feats, False, X, None, X, Y, n_train, DROPPED, raw_columns=RAW,
                       id_column="row", targets=targets, noun="penguin")
