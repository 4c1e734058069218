"""Titanic passengers → a feature matrix, in numpy and as Data-sheet formulas, side by side.

The Data sheet holds the raw columns as values and every feature as a formula over them, so a
student sees how each feature is made; the engine computes the same numbers from the same raw
values. Two presets, named after their source (see shared/reference/lesson-sources.md §4–5):

``lesson3-sheet``  course22's titanic.xlsx: rows missing Age or Embarked dropped (712 left, file
                   order); SibSp, Parch, Age/80, LOG10(Fare+1), Pclass_1, Pclass_2, Embark_S,
                   Embark_C, Male and a column of ones.
``from-scratch``   course22 notebook 05: all 891 rows, blanks filled with the column's mode;
                   LogFare = ln(Fare+1); dummies with all levels; 12 features, each divided by its
                   column maximum; no constant.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sheetsgd.lessons.sgd.data import sheet_float
from sheetsgd.lessons.datasets import TITANIC_CSV
from sheetsgd.errors import SheetsgdError

# raw columns written as values on the Data sheet, in this order (column A onwards)
RAW_COLUMNS = ("PassengerId", "Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked")
TEXT_COLUMNS = ("Sex", "Embarked")


@dataclass
class Passengers:
    """Raw columns, one entry per passenger; a missing Age is NaN, a missing Embarked is ''."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def take(self, index) -> "Passengers":
        return Passengers({k: v[index] for k, v in self.columns.items()})


def read_passengers(path=TITANIC_CSV) -> Passengers:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, np.ndarray] = {}
    for name in RAW_COLUMNS:
        values = [r[name] for r in rows]
        if name in TEXT_COLUMNS:
            cols[name] = np.array(values, dtype=object)
        else:  # numbers as the sheet stores them; a blank is NaN
            cols[name] = np.array([sheet_float(v) if v != "" else np.nan for v in values], dtype=float)
    return Passengers(cols)


def mode(values: np.ndarray):
    """The most common non-missing value (the smallest on a tie, as pandas' mode()[0])."""
    present = [v for v in values if v == v and v != ""]  # NaN != NaN
    counts = Counter(present)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


@dataclass(frozen=True)
class Feature:
    """One derived column: its key, its header, its formula over raw cells, and the same in numpy.

    In ``formula`` a raw column name in braces, e.g. ``{Age}``, stands for this row's cell of it.
    """

    key: str
    header: str
    formula: str
    compute: Callable[[Passengers], np.ndarray]
    note: str = ""


def _dummy(column: str, level, key: str, fill=None) -> Feature:
    raw = f'IF({{{column}}}="","{fill}",{{{column}}})' if fill is not None else f"{{{column}}}"
    lit = f'"{level}"' if isinstance(level, str) else str(level)

    def compute(p: Passengers) -> np.ndarray:
        values = p[column]
        if fill is not None:
            values = np.where(values == "", fill, values)
        return (values == level).astype(float)

    return Feature(key, key, f"IF({raw}={lit},1,0)", compute, f"1 when {column} is {level}, else 0")


def _lesson3_features(p: Passengers) -> list[Feature]:
    return [
        Feature("SibSp", "SibSp", "{SibSp}", lambda p: p["SibSp"], "siblings and spouses aboard"),
        Feature("Parch", "Parch", "{Parch}", lambda p: p["Parch"], "parents and children aboard"),
        Feature("Age", "Age/80", "{Age}/80", lambda p: p["Age"] / 80, "age divided by 80 (the oldest passenger)"),
        Feature("LogFare", "LOG10(Fare+1)", "LOG10({Fare}+1)", lambda p: np.log10(p["Fare"] + 1),
                "base-10 log of the fare plus 1, as the lesson's sheet"),
        _dummy("Pclass", 1, "Pclass_1"),
        _dummy("Pclass", 2, "Pclass_2"),
        _dummy("Embarked", "S", "Embark_S"),
        _dummy("Embarked", "C", "Embark_C"),
        _dummy("Sex", "male", "Male"),
        Feature("Ones", "Ones", "1", lambda p: np.ones(len(p)), "a constant 1: its weight is the intercept"),
    ]


def _from_scratch_features(p: Passengers) -> list[Feature]:
    age_mode, port_mode = mode(p["Age"]), mode(p["Embarked"])
    age = f"{age_mode:g}"
    return [
        Feature("Age", f"Age (blank→{age})", f'IF({{Age}}="",{age},{{Age}})',
                lambda p: np.where(np.isnan(p["Age"]), age_mode, p["Age"]), f"age, a blank filled with the mode {age}"),
        Feature("SibSp", "SibSp", "{SibSp}", lambda p: p["SibSp"], "siblings and spouses aboard"),
        Feature("Parch", "Parch", "{Parch}", lambda p: p["Parch"], "parents and children aboard"),
        Feature("LogFare", "LN(Fare+1)", "LN({Fare}+1)", lambda p: np.log(p["Fare"] + 1), "natural log of fare + 1"),
        _dummy("Sex", "male", "Sex_male"),
        _dummy("Sex", "female", "Sex_female"),
        _dummy("Pclass", 1, "Pclass_1"),
        _dummy("Pclass", 2, "Pclass_2"),
        _dummy("Pclass", 3, "Pclass_3"),
        _dummy("Embarked", "C", "Embarked_C", fill=port_mode),
        _dummy("Embarked", "Q", "Embarked_Q", fill=port_mode),
        _dummy("Embarked", "S", "Embarked_S", fill=port_mode),
    ]


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    keep: Callable[[Passengers], np.ndarray]  # which rows stay (boolean mask)
    features: Callable[[Passengers], list[Feature]]
    scale_by_max: bool  # divide every feature by its column maximum (a MAX row on the sheet)


PRESETS = {
    "lesson3-sheet": Preset("lesson3-sheet", "course22 lesson 3 spreadsheet (titanic.xlsx)",
                            lambda p: ~np.isnan(p["Age"]) & (p["Embarked"] != ""), _lesson3_features, False),
    "from-scratch": Preset("from-scratch", "course22 notebook 05, “Linear model and neural net from scratch”",
                           lambda p: np.ones(len(p), dtype=bool), _from_scratch_features, True),
}


@dataclass
class TitanicData:
    """What a Titanic lesson trains on, in Data-sheet row order (training rows first, then validation)."""

    preset: str
    passengers: Passengers  # raw values of the rows on the sheet
    features: list[Feature]
    scale_by_max: bool
    unscaled: np.ndarray  # derived columns before any max division (n × F)
    column_max: np.ndarray | None  # the MAX row (from-scratch), else None
    X: np.ndarray  # the feature matrix the model sees (n × F)
    y: np.ndarray  # Survived
    n_train: int  # rows [0, n_train) train, [n_train, n) validation
    dropped: int = 0
    raw_columns: tuple = RAW_COLUMNS  # the CSV's columns on the Data sheet (values), in order
    id_column: str = "PassengerId"  # the raw column that names an example on Steps and Examples
    targets: list = field(default_factory=list)  # one-hot target columns (formulas on Data); empty: y is raw B
    noun: str = "passenger"
    classes: tuple = ()  # the softmax model's class names, in target-column order (empty: the penguins' species)
    raw_headers: tuple = ()  # the raw columns' headers where they differ from their keys (an author's CSV)
    about: str = ""  # an author CSV's description on the Introduction (empty: the bundled data's)
    features_note: str = ""

    @property
    def ids(self) -> np.ndarray:
        return self.passengers[self.id_column]

    def __len__(self) -> int:  # the examples training visits (lesson code sizes batches by this)
        return self.n_train

    @property
    def n_valid(self) -> int:
        return len(self.y) - self.n_train

    @property
    def feature_keys(self) -> list[str]:
        return [f.key for f in self.features]


def pinned_split(valid_idx: list[int], csv_rows: np.ndarray, preset: str, where: str) -> np.ndarray:
    """``valid_idx``: 0-based rows of the CSV (as pandas numbers them: fastai's RandomSplitter, sklearn's
    train_test_split, a published split) → positions among the rows the preset keeps, sorted."""
    position = {int(r): i for i, r in enumerate(csv_rows)}
    missing = [r for r in valid_idx if r not in position]
    if missing:
        raise SheetsgdError(f"valid_idx names CSV row {missing[0]}, which preset {preset} does not keep "
                            f"({len(missing)} such row(s); rows are 0-based, the header not counted)", where)
    return np.sort(np.array([position[r] for r in valid_idx], dtype=int))


def prepare(preset: str, features: list[str] | None = None, rows: int | None = None,
            valid_fraction: float = 0.0, split_seed: int = 0, where: str = "[data]",
            valid_idx: list[int] | None = None) -> TitanicData:
    """Apply a preset: keep rows, optionally the first ``rows`` of them, pick features, split train/validation.

    Modes and column maxima are taken over the rows on the sheet (all 891 for the full from-scratch
    preset, as the notebook does), so the sheet's formulas and the engine agree for any subset.
    """
    if preset not in PRESETS:
        raise SheetsgdError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}", where)
    spec = PRESETS[preset]
    everyone = read_passengers()
    csv_rows = np.flatnonzero(spec.keep(everyone))  # 0-based rows of the CSV that the preset keeps
    kept = everyone.take(csv_rows)
    dropped = len(everyone) - len(kept)
    if rows is not None:
        kept = kept.take(np.arange(first_rows(rows, len(kept), where)))
        csv_rows = csv_rows[:rows]
    available = spec.features(kept)
    by_key = {f.key: f for f in available}
    if features is not None:
        available = [by_key[k] for k in chosen_features(features, list(by_key), f"preset {preset}", where)]
    pinned = pinned_split(valid_idx, csv_rows, preset, where) if valid_idx is not None else None
    order, n_valid = split_order(len(kept), valid_fraction, split_seed, where, pinned=pinned)
    n = len(kept)
    # mode/max are properties of the whole sheet, not of the order: compute on `kept`, then reorder
    unscaled = np.column_stack([np.asarray(f.compute(kept), dtype=float) for f in available])[order]
    column_max = unscaled.max(axis=0) if spec.scale_by_max else None
    if column_max is not None and np.any(column_max == 0):
        zero = [available[i].key for i in np.flatnonzero(column_max == 0)]
        raise SheetsgdError(f"feature(s) {', '.join(zero)} are 0 in every row: cannot divide by their maximum", where)
    X = unscaled / column_max if column_max is not None else unscaled
    passengers = kept.take(order)
    return TitanicData(preset, passengers, available, spec.scale_by_max, unscaled, column_max, X,
                       passengers["Survived"].astype(float), n - n_valid, dropped)


def first_rows(rows, available: int, where: str) -> int:
    """A template's ``rows`` (keep the first N rows of the data), checked."""
    if isinstance(rows, bool) or not isinstance(rows, int) or not 2 <= rows <= available:
        raise SheetsgdError(f"rows must be an integer from 2 to {available}, got {rows!r}", where)
    return rows


def chosen_features(features, known: list[str], what: str, where: str) -> list[str]:
    """A template's ``features`` list, checked against the names ``what`` (a preset, a dataset) knows."""
    if not isinstance(features, list) or not features or len(set(features)) != len(features):
        raise SheetsgdError("features must be a non-empty list of distinct names", where)
    unknown = [k for k in features if k not in known]
    if unknown:
        raise SheetsgdError(f"unknown feature(s) {', '.join(map(str, unknown))} for {what}; "
                            f"known: {', '.join(known)}", where)
    return features


def split_order(n: int, valid_fraction, split_seed, where: str, pinned=None, min_train: int = 1):
    """(row order, number of validation rows): a seeded random split (or the pinned validation rows),
    training rows first on the sheet, each part in file order."""
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float)) or not 0 <= valid_fraction < 1:
        raise SheetsgdError(f"valid_fraction must be a number in [0, 1), got {valid_fraction!r}", where)
    n_valid = int(n * valid_fraction) if pinned is None else len(pinned)
    if n - n_valid < min_train:
        raise SheetsgdError("no training rows left after the validation split" if min_train == 1 else
                            f"fewer than {min_train} training rows left after the validation split", where)
    order = np.arange(n)
    if n_valid:
        valid = pinned if pinned is not None else np.sort(np.random.default_rng(split_seed).permutation(n)[:n_valid])
        order = np.concatenate([np.setdiff1d(order, valid), valid])
    return order, n_valid
