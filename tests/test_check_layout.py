"""The checker rebuilds a lesson's blocks from a dry run (its layout, not its numbers): those blocks must
be the trained run's in everything the checker reads — where each block lies, its columns and formula
patterns, each row's fields and step, and the values of the columns it compares as given."""
from __future__ import annotations

import numpy as np
import pytest

from sheetsgd.lessons import kinds

CASES = [(name, {}) for name in [
    "linear", "quadratic", "too-high", "optimizers", "optimizers-classic", "one-cycle", "lr-finder", "lr-finder-titanic",
    "titanic-linear", "titanic-logistic", "titanic-relu2", "titanic-mlp", "collab-filter", "weight-decay", "penguins-softmax", "dropout", "attention"]] + [
    ("linear", {"batch_size": 5, "shuffle": True, "seed": 3, "epochs": 2}),
    ("linear", {"batch_size": 29, "epochs": 4}),
    ("quadratic", {"batch_size": 1, "optimizer": "adam", "epochs": 2}),
    ("titanic-logistic", {"batch_size": 1, "epochs": 1}),
    ("titanic-mlp", {"batch_size": 100, "shuffle": True, "seed": 7, "epochs": 2}),
    ("titanic-relu2", {"batch_size": "full", "epochs": 2}),
]


def _blocks(lesson, trace):
    return kinds.kind_of(lesson).build(lesson, None, trace=trace).blocks


@pytest.mark.parametrize("name,options", CASES, ids=lambda x: x if isinstance(x, str) else
                         ",".join(f"{k}={v}" for k, v in x.items()) or "defaults")
def test_dry_layout_equals_the_trained_one(name, options):
    lesson = kinds.load(name, **{"epochs": 2, **options} if name.startswith("titanic") else options)
    kind = kinds.kind_of(lesson)
    trained = _blocks(lesson, kind.train(lesson))
    dry = _blocks(lesson, kind.layout(lesson))
    assert [b.manifest() for b in dry] == [b.manifest() for b in trained]
    for d, t in zip(dry, trained):
        where = f"{name} {t.sheet}:{t.name}"
        # (number formats are presentation, chosen from the numbers a dry run lacks; the checker reads none)
        assert [(c.key, c.pattern, c.role, c.reveals) for c in d.columns] == \
               [(c.key, c.pattern, c.role, c.reveals) for c in t.columns], where
        assert d.fields.keys() == t.fields.keys(), where
        for k in t.fields:
            np.testing.assert_array_equal(d.fields[k], t.fields[k], err_msg=f"{where} field {k}")
        np.testing.assert_array_equal(d.step, t.step, err_msg=f"{where} steps")
        for c in t.columns:  # what the checker compares as given: value columns that are not inputs
            if not c.is_formula and c.role != "input" and c.key in t.values:
                assert list(d.values[c.key]) == list(t.values[c.key]), f"{where} column {c.key}"
