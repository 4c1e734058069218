"""An author's CSV → a tabular lesson's data: chosen numeric and categorical features, a target, a
missing-value policy and a train/validation split, in numpy and as Data-sheet formulas, side by side.

The Data sheet holds the used CSV columns as values (an id first, the target second, then the feature
columns) and every feature as a formula over them, as the Titanic and penguins lessons do:

numeric      ``scale = "standardize"`` (default): (x − AVERAGE(training rows)) / STDEVP(training rows), the
             statistics of the column's present training values; ``"max"``: x / MAX(x) (a MAX row above the
             data, as notebook 05); ``"none"``: x as it is.
categorical  one 0/1 column per level (every level: together they act as an intercept), IF(x=level,1,0).
constant     ``constant = true`` (default) adds a column of ones: its weight is the intercept.
target       the sigmoid models (linear, logistic, relu2, mlp) predict a 0/1 column; the softmax model
             predicts any classes (``classes`` orders them; default: sorted), one-hot columns on Data.
missing      per column or for all (``missing = "drop"`` or ``{ age = "mean", port = "mode" }``):
             ``drop`` (default) leaves the row out; ``mean`` fills a blank number with
             AVERAGE(the column's training rows) in the feature's formula; ``mode`` fills a blank with the
             most common present training value (the smallest on a tie), a constant in the formula. A row
             without a target is always left out.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from sheetsgd.errors import SheetsgdError
from .author_csv import MISSING, Table, parse
from .features import Feature, Passengers, TitanicData, first_rows, split_order
from .layout import col

POLICIES = ("drop", "mean", "mode")
SCALES = ("standardize", "max", "none")
MAX_LEVELS = 200  # 0/1 columns one categorical column (or a softmax target: 20 classes) may make
MAX_LEVEL_CHARS = 100  # a level is a text literal in formulas (Excel takes at most 255 characters there)
RESERVED = {"r", "p", "sr", "dr", "lo", "hi", "dlo", "dhi", "n", "set"}  # the sheet's row fields, its set column


def key_of(name: str) -> str:
    """A column or level as a name the sheet's parameters can carry: letters, digits and _, a letter first."""
    key = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "c"
    return key if key[0].isalpha() else "c" + key


def literal(value) -> str:
    """A level as a formula literal: a number as the sheet stores it, a text quoted ("" for a quote)."""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return f"{value:.15g}"


def mode(values: list):
    counts = Counter(values)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def policies(spec, columns: list[str], numeric: set[str], where: str) -> dict[str, str]:
    """{column: policy} from ``missing`` (a text for every column, or a table per column; unnamed: drop)."""
    if spec is None:
        spec = "drop"
    if isinstance(spec, str):
        given = {c: spec for c in columns}
    elif isinstance(spec, dict):
        unknown = [c for c in spec if c not in columns]
        if unknown:
            raise SheetsgdError(f"missing names column {unknown[0]!r}, which is not a feature; features: "
                                f"{', '.join(columns)}", where)
        given = {c: spec.get(c, "drop") for c in columns}
    else:
        raise SheetsgdError(f"missing must be one of {', '.join(POLICIES)} or a table of them per column, got "
                            f"{spec!r:.60}", where)
    for column, policy in given.items():
        if policy not in POLICIES:
            raise SheetsgdError(f"unknown missing-value policy {policy!r:.40} for {column!r}; known: "
                                f"{', '.join(POLICIES)}", where)
        if policy == "mean" and column not in numeric:
            raise SheetsgdError(f"missing = \"mean\" needs a numeric column; {column!r} is categorical (use "
                                "\"mode\" or \"drop\" for it" + (", in a table per column: missing = { "
                                f"{column} = \"mode\", … }}" if isinstance(spec, str) else "") + ")", where)
    return given


class _Reader:
    """The template's [data] keys for a CSV, checked against the CSV's header."""

    def __init__(self, data: dict, where: str):
        self.where = where
        self.name = str(data.get("csv", "csv_text"))
        text = data.get("csv_text")
        if not isinstance(text, str):
            raise SheetsgdError("csv_text must be the CSV's text", where)
        for key in ("preset", "features"):
            if key in data:
                raise SheetsgdError(f"{key} belongs to the bundled datasets; with csv, choose columns with numeric "
                                    "and categorical", where)
        self.table: Table = parse(text, self.name)
        header = self.table.header
        target = data.get("target")
        if not isinstance(target, str):
            raise SheetsgdError("target must name the CSV column to predict", where)
        self.numeric = list(data.get("numeric", []))
        self.categorical = list(data.get("categorical", []))
        if not self.numeric and not self.categorical:
            raise SheetsgdError("give feature columns: numeric = [...] and/or categorical = [...]", where)
        self.id = data.get("id")
        named = [target] + self.numeric + self.categorical + ([self.id] if self.id is not None else [])
        unknown = [c for c in named if c not in header]
        if unknown:
            raise SheetsgdError(f"column {unknown[0]!r} is not in {self.name}; its columns: "
                                f"{', '.join(header)[:300]}", where)
        twice = [c for c in named if named.count(c) > 1]
        if twice:
            raise SheetsgdError(f"column {twice[0]!r} is named twice (target, id, numeric and categorical "
                                "columns must differ)", where)
        self.target = target
        for c in self.numeric:
            self.table.numbers(c)  # a value that is not a number: one line naming the row
        if self.id is not None and not self.table.is_numeric(self.id):
            raise SheetsgdError(f"the id column {self.id!r} must hold numbers (the sheets show it as a number)",
                                where)
        self.text_columns = {c for c in self.categorical + [target] if not self.table.is_numeric(c)}


def prepare_csv(data: dict, multiclass: bool, where: str, first_row: int) -> TitanicData:
    """The lesson's data from ``[data]`` with a CSV: rows kept by the missing-value policy (optionally the
    first ``rows`` of them), a seeded or pinned split (training rows first, each part in file order),
    features and targets. ``first_row``: the 1-based Data-sheet row of the first example."""
    r = _Reader(data, where)
    table, features_in = r.table, r.numeric + r.categorical
    policy = policies(data.get("missing"), features_in, set(r.numeric), where)
    scale = data.get("scale", "standardize")
    if scale not in SCALES:
        raise SheetsgdError(f"unknown scale {scale!r:.40}; known: {', '.join(SCALES)}", where)

    raw_names = ([r.id] if r.id is not None else []) + [r.target] + features_in
    columns = {}
    for name in raw_names:
        if name in r.text_columns:
            columns[name] = np.array(["" if v in MISSING else v for v in table.column(name)], dtype=object)
        else:
            columns[name] = np.array(table.numbers(name), dtype=float)
    row_key = "row" if "row" not in raw_names else "csv_row"
    csv_rows = np.arange(len(table.rows))

    def missing(name):
        v = columns[name]
        return v == "" if v.dtype == object else np.isnan(v)

    keep = ~missing(r.target)
    for name in features_in:
        if policy[name] == "drop":
            keep &= ~missing(name)
    if r.id is not None and np.any(missing(r.id) & keep):
        raise SheetsgdError(f"the id column {r.id!r} has a missing value", table.where(int(np.flatnonzero(missing(r.id) & keep)[0])))
    csv_rows = csv_rows[keep]
    dropped = len(table.rows) - len(csv_rows)
    if "rows" in data:
        csv_rows = csv_rows[:first_rows(data["rows"], len(csv_rows), where)]
    if len(csv_rows) < 2:
        raise SheetsgdError(f"{len(csv_rows)} row(s) are left after leaving out rows with missing values "
                            "(see missing): a lesson needs at least 2", where)
    pinned = _pinned(data.get("valid_idx"), csv_rows, where)
    order, n_valid = split_order(len(csv_rows), data.get("valid_fraction", 0.0), data.get("split_seed", 0), where,
                                 pinned=pinned, min_train=2)
    csv_rows = csv_rows[order]
    n, n_train = len(csv_rows), len(csv_rows) - n_valid

    # raw columns on the sheet: keys the formulas can name ({key}), headers as the CSV spells them
    keys, used = {}, set()
    for name in [row_key] * (r.id is None) + raw_names:
        key = key_of(name)
        key = key + "_" if key in RESERVED else key
        while key in used:
            key += "_"
        used.add(key)
        keys[name] = key
    raw = {keys[row_key]: (csv_rows + 1).astype(float)} if r.id is None else {}
    raw.update({keys[name]: columns[name][csv_rows] for name in raw_names})
    rows = Passengers(raw)
    letter = {name: col(i) for i, name in enumerate(keys)}
    train_span = {name: f"{letter[name]}${first_row}:{letter[name]}${first_row + n_train - 1}" for name in keys}

    feats: list[Feature] = []
    for name in r.numeric:
        feats.append(_numeric(name, keys[name], rows, n_train, policy[name], scale, train_span[name], where,
                              table.where))
    for name in r.categorical:
        feats += _dummies(name, keys[name], rows, n_train, policy[name], where)
    if data.get("constant", True):
        feats.append(Feature("Ones", "Ones", "1", lambda p: np.ones(len(p)), "a constant 1: its weight is the intercept"))
    names = [f.key for f in feats]
    twice = sorted({k for k in names if names.count(k) > 1})
    if twice:
        raise SheetsgdError(f"two features would be named {twice[0]!r}: rename a column or a level", where)

    target = rows[keys[r.target]]
    classes, targets = _targets(r, keys[r.target], target, data.get("classes"), multiclass, where)
    y_of = np.column_stack([t.compute(rows) for t in targets]) if targets else target.astype(float)
    if len(np.unique(y_of[:n_train], axis=0)) < 2:
        raise SheetsgdError(f"the target {r.target!r} has one class only in the training rows: a classifier "
                            "needs at least two", where)
    unscaled = np.column_stack([np.asarray(f.compute(rows), dtype=float) for f in feats])
    column_max = unscaled.max(axis=0) if scale == "max" else None
    if column_max is not None and np.any(column_max == 0):
        zero = [feats[i].key for i in np.flatnonzero(column_max == 0)]
        raise SheetsgdError(f"feature(s) {', '.join(zero)} are 0 in every row: cannot divide by their maximum", where)
    X = unscaled / column_max if column_max is not None else unscaled
    noun = data.get("noun", "example")
    out = TitanicData("csv", rows, feats, scale == "max", unscaled, column_max, X, y_of, n_train, dropped,
                      raw_columns=tuple(keys.values()), id_column=keys[r.id if r.id is not None else row_key],
                      targets=targets, noun=noun, classes=classes, raw_headers=tuple(keys),
                      about=f"{r.name}: {n} {noun}s on the Data sheet"
                      + (f" ({dropped} left out for a missing value)" if dropped else ""),
                      features_note={"standardize": " — each number standardised by its training rows' AVERAGE "
                                     "and STDEVP", "max": " — each divided by its column maximum (Data row 2)",
                                     "none": ""}[scale])
    return out


def _pinned(valid_idx, csv_rows: np.ndarray, where: str):
    """``valid_idx``: 0-based data rows of the CSV → positions among the rows kept, sorted."""
    if valid_idx is None:
        return None
    position = {int(r): i for i, r in enumerate(csv_rows)}
    missing = [r for r in valid_idx if r not in position]
    if missing:
        raise SheetsgdError(f"valid_idx names CSV row {missing[0]}, which the lesson does not keep (rows are "
                            "0-based, the header not counted; rows with a missing value may be left out)", where)
    return np.sort(np.array([position[r] for r in valid_idx], dtype=int))


def _numeric(name, key, rows, n_train, policy, scale, span, where, line_of) -> Feature:
    values = rows[key]
    present = values[:n_train][~np.isnan(values[:n_train])]
    if len(present) == 0:
        raise SheetsgdError(f"numeric column {name!r} has no value in the training rows", where)
    cell = f"{{{key}}}"
    fill = None
    if not np.any(np.isnan(values)):
        policy = "drop"  # nothing to fill: the formula stays plain
    if policy == "mean":
        fill, cell = float(np.mean(present)), f'IF({cell}="",AVERAGE({span}),{cell})'
    elif policy == "mode":
        fill = mode(present.tolist())
        cell = f'IF({cell}="",{literal(fill)},{cell})'
    note = f"{name}" + {"mean": ", a blank filled with its training rows' mean",
                        "mode": f", a blank filled with its training rows' most common value {fill:g}" if fill is not None
                        else "", "drop": ""}[policy]

    def filled(p):
        v = p[key]
        return np.where(np.isnan(v), fill, v) if fill is not None else v

    if scale == "standardize":
        mean, sd = float(np.mean(present)), float(np.std(present))
        if sd == 0:
            raise SheetsgdError(f"{name!r} is the same in every training row: it cannot be standardised", where)
        return Feature(key, f"{name} (std)", f"({cell}-AVERAGE({span}))/STDEVP({span})",
                       lambda p: (filled(p) - mean) / sd,
                       note + "; minus the mean of its training values, over their standard deviation (population)")
    return Feature(key, name, cell, filled, note)


def _dummies(name, key, rows, n_train, policy, where) -> list[Feature]:
    values = rows[key]
    text = values.dtype == object
    present = [v for v in values.tolist() if (v != "" if text else v == v)]
    levels = sorted(set(present))
    _check_levels(name, levels, MAX_LEVELS, where)
    blank = len(present) < len(values)
    fill = mode([v for v in values[:n_train].tolist() if (v != "" if text else v == v)] or present) \
        if policy == "mode" and blank else None
    cell = f"{{{key}}}" if fill is None else f'IF({{{key}}}="",{literal(fill)},{{{key}}})'
    out = []
    for level in levels:
        def compute(p, level=level):
            v = p[key]
            if fill is not None:
                v = np.where(v == "", fill, v) if text else np.where(np.isnan(v), fill, v)
            return (v == level).astype(float)

        shown = level if text else f"{level:g}"
        out.append(Feature(f"{key}_{key_of(str(shown))}", f"{name}={shown}", f"IF({cell}={literal(level)},1,0)",
                           compute, f"1 when {name} is {shown}, else 0"
                           + (f" (a blank counts as the mode {fill})" if fill is not None else "")))
    return out


def _targets(r, key, target, given, multiclass: bool, where: str):
    """(class names, one-hot target Features): none for a 0/1 target of a sigmoid model."""
    text = target.dtype == object
    present = sorted(set(target.tolist()))
    if not multiclass:
        if text or not set(present) <= {0.0, 1.0}:
            raise SheetsgdError(f"the target {r.target!r} must hold 0 and 1 for this model (its values: "
                                f"{', '.join(map(str, present[:5]))}); for classes use model kind \"softmax\"", where)
        return (), []
    if given is not None:  # the author's order of the classes: exactly the target's values
        wanted = [str(c) for c in given]
        shown = [v if text else f"{v:g}" for v in present]
        extra = [s for s in shown if s not in wanted] + [c for c in wanted if c not in shown]
        if extra:
            raise SheetsgdError(f"classes must list the target's values exactly ({', '.join(shown)[:200]}); "
                                f"{extra[0]!r} differs", where)
        levels = [present[shown.index(c)] for c in wanted]
    else:
        levels = present
    _check_levels(r.target, levels, 20, where)
    if len(levels) < 2:
        raise SheetsgdError(f"the target {r.target!r} has {len(levels)} class(es): softmax takes 2 to 20", where)
    names = tuple(v if text else f"{v:g}" for v in levels)
    feats = [Feature(f"y_{key_of(n)}", f"y {n}", f"IF({{{key}}}={literal(v)},1,0)",
                     lambda p, v=v: (p[key] == v).astype(float), f"1 when {r.target} is {n}, else 0")
             for n, v in zip(names, levels)]
    return names, feats


def _check_levels(name: str, levels: list, most: int, where: str) -> None:
    if len(levels) > most:
        raise SheetsgdError(f"column {name!r} has {len(levels):,} different values: at most {most} make 0/1 columns",
                            where)
    for level in levels:
        if isinstance(level, str) and (len(level) > MAX_LEVEL_CHARS or any(ord(ch) < 32 for ch in level)):
            raise SheetsgdError(f"column {name!r} has the value {level[:40]!r}…, too long (at most {MAX_LEVEL_CHARS} "
                                "characters) or with control characters, for a formula's text", where)
