"""The refactor guard: every bundled lesson builds to the cells its golden dump recorded (formula, cached
value, number format), unless a commit changed the dump on purpose (python tests/golden_dump.py NAME).

The hidden manifest sheet is left out: it is for the checker, not what a user sees, and its format
has a version of its own (read in every version by sheetsgd.check.submission)."""
from __future__ import annotations

import math

import pytest

from golden_dump import OPTIONS, build_and_dump, read_golden


def _same_value(a, b) -> bool:
    """Numbers equal to the project's tolerance (rel 1e-9): the Solver sheets' best fits are thousands of
    numpy steps whose last digits follow the machine's SIMD summation order (seen: 2e-12 apart)."""
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300)
    return a == b


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_workbook_matches_its_golden_dump(name):
    golden, now = read_golden(name), build_and_dump(name)
    assert now["sheets"] == golden["sheets"]
    assert now["names"] == golden["names"]
    old = {(s, c): rest for s, c, *rest in golden["cells"] if s != "_sheetsgd"}
    new = {(s, c): rest for s, c, *rest in now["cells"] if s != "_sheetsgd"}
    assert sorted(set(old) - set(new))[:5] == [] and sorted(set(new) - set(old))[:5] == []
    diffs = [(where, old[where], new[where]) for where in old
             if old[where][0] != new[where][0] or old[where][2] != new[where][2]
             or not _same_value(old[where][1], new[where][1])]
    assert diffs[:5] == [], f"{len(diffs)} cells differ"
