"""Row-local layouts (layout version 2): every per-example row carries what its formulas read.

A course student completes a blank column by writing its first cell and filling it down, so every
formula a row's quantities use must read that row only (or fixed cells). Each per-example row (a Steps
row of batch size 1, an Examples row, a Validation row) therefore holds, as given cells: its step, its
example's row on the Data sheet, the step's weights looked up by step number
(``INDEX(Steps!E$9:E$238,$A2,1)``: a row and a column, the same in every spreadsheet) and the example's features looked up by that Data row
(``INDEX(Data!Q$1:Q$893,$C2,1)``). Then z = SUMPRODUCT(this row's weights, this row's features), and
every column is one fill-down (and the lookups one fill-right too: their columns are relative).

A step's mean over its batch of one column (loss, accuracy, a bias's gradient) finds its rows by step
number, ``SUMIF(Examples!$A$2:$A$7131,$A10,Examples!$K$2:$K$7131)/$E10``, with the batch size given
on the step's row; a weight's gradient (a product, ∂loss/∂z · x) stays a SUMPRODUCT over the batch's
own rows (see ``batch_mean``). Portable: INDEX with an explicit row of a one-column range, and SUMIF
with a number criterion, compute the same in Excel, LibreOffice, Google Sheets and IronCalc (no
INDEX:INDEX range, no OFFSET or INDIRECT).

Workbooks built before (no ``layout_version`` in the manifest) read the step's Steps row and the
passenger's Data row through per-row addresses; the rebuild for the checker lays them out as built.
"""
from __future__ import annotations

from sheetsgd.sheet.layouts import LAYOUT_VERSION  # noqa: F401 (1: per-row addresses; 2: row-local lookups, as every kind)
from .layout import DATA, col

ROW_KEY = "row"  # the given column of an example's row on the Data sheet


def feature_key(feature: str) -> str:
    return f"x_{feature}"


def data_lookup(letter: str, last_data_row: int, row_letter: str) -> str:
    """Row pattern of a Data column's value in this example's Data row (the row number is in ``row_letter``)."""
    return f"INDEX({DATA}!{letter}$1:{letter}${last_data_row},${row_letter}{{r}},1)"


def step_lookup(sheet: str, letter: str, first_step_row: int, last_step_row: int, step_letter: str) -> str:
    """Row pattern of a Steps column's value at this row's step (the step number is in ``step_letter``)."""
    return f"INDEX({sheet}!{letter}${first_step_row}:{letter}${last_step_row},${step_letter}{{r}},1)"


def batch_mean(sheet: str, step_letter: str, rows: tuple[int, int], this_step: str, n_letter: str,
               *letters: str) -> str:
    """Row pattern of a step's batch mean on ``sheet`` over the batch size in column ``n_letter``.

    One column: SUMIF over the rows ``rows`` (first, last) whose step number (``step_letter``) is this
    row's (column ``this_step``): one fill-down. A product of columns (a weight's gradient, ∂loss/∂z · x):
    SUMPRODUCT of the batch's own rows ({lo}:{hi}), a given column. Its fill-down form,
    SUMPRODUCT((step=this step)*a*b), costs every recalculation steps × all rows (IronCalc: 20 s for
    1,000 such cells over 3,000 rows, SUMIF 0.6 s), so the product stays over the batch's rows."""
    first, last = rows
    if len(letters) == 1:
        x = letters[0]
        return (f"SUMIF({sheet}!${step_letter}${first}:${step_letter}${last},${this_step}{{r}},"
                f"{sheet}!${x}${first}:${x}${last})/${n_letter}{{r}}")
    return f"SUMPRODUCT({','.join(f'{sheet}!${x}${{lo}}:${x}${{hi}}' for x in letters)})/${n_letter}{{r}}"


def lookup_columns(plan_cls, start: int, step_letter: str | None, weights: dict[str, str], steps_sheet: str,
                   step_rows: tuple[int, int], features: list[str], feature_cols: list[int], last_data_row: int,
                   noun: str, note_step: str = "this row's step") -> tuple[list, dict[str, int]]:
    """The given lookup columns from column ``start``: the Data row, then (``step_letter`` given) the step's
    weights {key: its Steps column letter}, then the features. Returns (plans, {key: column})."""
    plans, at = [], {}
    c = start
    at[ROW_KEY] = c
    plans.append(plan_cls(c, ROW_KEY, "Data row", None, "int",
                          f"this {noun}'s row on the {DATA} sheet: the features below are looked up there"))
    c += 1
    row_letter = col(at[ROW_KEY])
    if step_letter is not None:
        for key, letter in weights.items():
            at[key] = c
            plans.append(plan_cls(c, key, key, step_lookup(steps_sheet, letter, *step_rows, step_letter), "param",
                                  f"{key} of {note_step}, looked up on {steps_sheet} by step number"))
            c += 1
    for f, fc in zip(features, feature_cols):
        key = feature_key(f)
        at[key] = c
        plans.append(plan_cls(c, key, f, data_lookup(col(fc), last_data_row, row_letter), "forward",
                              f"this {noun}'s {f}, looked up on {DATA} by its row"))
        c += 1
    return plans, at
