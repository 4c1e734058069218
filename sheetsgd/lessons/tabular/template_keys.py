"""The tabular kind's template keys that need more than a type: ``[model] init`` (seeded uniform draws, or
numbers per parameter group) and ``[data] missing`` (one policy, or a table of them per column); the one
template schema (sheetsgd.lessons.schema) hands them here."""
from __future__ import annotations

from sheetsgd.lessons.schema import FINITE, KIND_CHECKS, SEED, _show, choice, numbers, table

POLICY = choice("drop", "mean", "mode", noun="missing-value policy")


def check_missing(checker, value, where: str, what: str) -> None:
    if isinstance(value, dict):  # the columns are checked against the CSV when it is read
        checker.table(value, table(**{str(k): POLICY for k in value}), where, "missing", "missing.")
    else:
        checker.value(value, POLICY, where, what)


def check_init(checker, value, where: str, what: str) -> None:
    if not isinstance(value, dict):
        checker.fail(f"init must be a table, got {_show(value)}", where)
    if "random" in value:
        checker.table(value, table(random=choice("uniform"), seed=SEED, scale=FINITE), where, "init", "init.")
        return
    for key, item in value.items():
        if isinstance(item, list):
            checker.value(item, numbers(1, 10_000), where, f"init.{key}")
        else:
            checker.number(item, FINITE, where, f"init.{key}")



KIND_CHECKS.update(titanic_init=check_init, missing=check_missing)
