"""The checker's SUMIFS, COUNTIFS and INDEX(range, n, 0) (collab-filter's row-local layout) against a written-out
loop over the cells, as a spreadsheet computes them: a range is stored row by row, one block row per cell."""
from __future__ import annotations

import numpy as np
import pytest

from sheetsgd.sheet.evaluate import FUNCTIONS, EvalError, Val

RNG = np.random.default_rng(3)
STEP = np.repeat([1.0, 2.0, 3.0], 4)  # a step column (4 rows a step)
USER = np.tile([1.0, 2.0, 1.0, 3.0], 3)
VALUE = RNG.normal(size=12)


def col(x) -> Val:  # an absolute one-column range: one row, its cells
    x = np.asarray(x, dtype=float).reshape(1, -1)
    return Val(x, np.abs(x), rows=np.array([[x.shape[1]]], dtype=float))


def cells(x) -> Val:  # one cell per block row
    x = np.asarray(x, dtype=float).reshape(-1, 1)
    return Val(x, np.abs(x))


def test_sumifs_and_countifs_pick_the_rows_of_a_step_and_a_user():
    steps, users = [1, 1, 2, 3, 3, 2], [1, 3, 2, 1, 2, 9]
    got = FUNCTIONS["SUMIFS"]([col(VALUE), col(STEP), cells(steps), col(USER), cells(users)]).v.ravel()
    count = FUNCTIONS["COUNTIFS"]([col(STEP), cells(steps), col(USER), cells(users)]).v.ravel()
    for i, (s, u) in enumerate(zip(steps, users)):
        want = 0.0
        n = 0
        for row in range(12):
            if STEP[row] == s and USER[row] == u:
                want += VALUE[row]
                n += 1
        assert got[i] == pytest.approx(want, abs=1e-15) and count[i] == n
    assert count[-1] == 0 and got[-1] == 0.0  # user 9 has no row: SUMIFS of nothing is 0


def test_index_with_column_0_is_the_whole_row():
    grid = RNG.normal(size=(5, 3))
    flat = grid.reshape(1, -1)
    table = Val(flat, np.abs(flat), rows=np.array([[5.0]]))
    picked = FUNCTIONS["INDEX"]([table, cells([2, 5, 1, 6]), cells([0, 0, 0, 0])]).v
    assert np.array_equal(picked[:3], grid[[1, 4, 0]])
    assert np.isnan(picked[3]).all()  # row 6 of 5: #REF!
    user = RNG.normal(size=(4, 3))
    dot = FUNCTIONS["SUMPRODUCT"]([Val(user, np.abs(user)), Val(picked, np.abs(picked))]).v.ravel()
    assert dot[:3] == pytest.approx([sum(user[i, j] * grid[r, j] for j in range(3)) for i, r in enumerate([1, 4, 0])])


def test_sumifs_refuses_what_it_does_not_compute():
    text = Val(np.full((1, 1), np.nan), np.zeros((1, 1)), s=np.full((1, 1), ">2", object))
    with pytest.raises(EvalError):
        FUNCTIONS["SUMIFS"]([col(VALUE), col(STEP), text])  # a criterion as text (">2"): not the form written
    with pytest.raises(EvalError):
        FUNCTIONS["SUMIFS"]([col(VALUE), col(STEP[:5]), cells([1])])  # ranges of different sizes
