"""The report's lines never mislead: two different numbers never print alike, a typed right value says so,
an expected error is not shown as an empty cell, and the summary leads with the grading policy's figure."""
from __future__ import annotations

from sheetsgd.check.report import ColumnResult, Report, show_pair


def test_two_different_numbers_never_print_alike():
    expected, found = 1.133869122, 1.1338691220000003
    e, f = show_pair(expected, found, "=A1")
    assert e != f and float(e) == expected and float(f) == found


def test_a_pair_reads_in_one_format():
    assert show_pair(0.25, 0.25, "=A1") == ("0.250000", "0.250000")
    assert show_pair(1 / 3, 0.5, "=A1") == ("0.333333", "0.500000")  # the expected value's magnitude decides


def test_a_typed_right_value_says_so():
    e, f = show_pair(1.0086, 1.0086, None)
    assert e == "1.00860" and "typed" in f


def test_an_expected_error_is_not_an_empty_cell():
    assert show_pair(None, 0.0, "=1/(1+EXP(-D9))")[0] == "an error value"
    assert show_pair(3.0, None, None)[1] == "(empty)"


def test_the_summary_leads_with_the_grade():
    col = ColumnResult("new_a", "new a", "O", True, correct=4, total=290, status="root cause", local_correct=232)
    report = Report("s.xlsx", "mistakes", lesson={"name": "linear", "steps": 29, "exercise": ["new_a"]},
                    columns=[col], mistakes=[])
    last = report.to_text().splitlines()[-1]
    assert last.startswith("Grade: 232/290 exercise cells (80.0%)"), last
    assert "strict score 4/290 (1.4%)" in last


def test_cell_ranges_are_the_runs_of_consecutive_rows():
    """The report's root/knock-on/correct cells: ranges over runs, as a written-out scan of the rows makes them."""
    import random

    from sheetsgd.check.cellmarks import expand, runs

    def scanned(letters, rows):
        out, rows = [], sorted(rows)
        i = 0
        while i < len(rows):
            j = i
            while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
                j += 1
            out.append(f"{letters}{rows[i]}" if i == j else f"{letters}{rows[i]}:{letters}{rows[j]}")
            i = j + 1
        return out

    assert runs("D", [9, 5, 6, 7, 12, 8]) == ["D5:D9", "D12"] and runs("AB", []) == []
    rng = random.Random(7)
    for _ in range(500):
        rows = rng.sample(range(1, 80), rng.randint(0, 40))
        assert runs("C", rows) == scanned("C", rows)
        assert expand(runs("C", rows)) == [f"C{r}" for r in sorted(rows)]
