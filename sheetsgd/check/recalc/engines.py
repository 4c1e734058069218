"""Where IronCalc computes a student's formula differently from LibreOffice, Excel and Google Sheets.

Found by experiment (``tests/test_engines.py`` builds tiny workbooks and recalculates them in both
engines; the README lists every difference). The checker only needs IronCalc for files saved without
computed values; for those, the student's formulas are scanned for the constructs below before
recalculating:

* when LibreOffice is installed and the engine was not forced (``--recalc``), LibreOffice recalculates
  instead (a note says why);
* otherwise the cells are judged with IronCalc, and a root cause at such a cell is reported as
  ``cannot_judge`` ("IronCalc computes … differently"), not as the student's mistake; a file whose only
  problems are such cells cannot be checked (exit 2) rather than failed.

Differences in *which* error value (``#NUM!`` against ``#VALUE!``) do not matter: the checker never
compares error kinds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_RANGE = re.compile(r"\$?[A-Z]{1,3}\$?[0-9]+:\$?[A-Z]{1,3}\$?[0-9]+|[A-Za-z_][\w.]*!\$?[A-Z]{1,3}\$?[0-9]+:\$?[A-Z]{1,3}\$?[0-9]+")


@dataclass(frozen=True)
class Difference:
    key: str
    what: str  # "SUMXMY2 of single cells"
    ironcalc: str
    others: str  # LibreOffice, Excel, Google Sheets


SUMX_SINGLE = Difference("sumx_single_cells", "SUMXMY2/SUMX2MY2/SUMX2PY2 of single cells or numbers",
                         "#VALUE!", "a number (LibreOffice, Excel, Google Sheets)")
ARRAY_ARITHMETIC = Difference("array_arithmetic", "arithmetic on ranges inside SUM, SUMSQ, AVERAGE, MAX, MIN, PRODUCT "
                              "(e.g. SUM((B2:B9-C2:C9)^2)) without array entry",
                              "the element-wise result (as Excel 365)",
                              "#VALUE! in LibreOffice and Excel 2019 and earlier unless entered as an array "
                              "formula; use SUMPRODUCT")
INDEX_RANGE = Difference("index_range", "a range built from INDEX (INDEX(…):INDEX(…), as in SUM(INDEX(B2:B9,3):INDEX(B2:B9,5)))",
                         "#VALUE!", "the cells between the two (LibreOffice, Excel, Google Sheets)")
EXP_OVERFLOW = Difference("exp_overflow", "an EXP that overflows inside a formula (1/(1+EXP(1000)))",
                          "goes on with +∞ (1/(1+EXP(1000)) = 0)", "#NUM! (LibreOffice, Excel)")
DIFFERENCES = (SUMX_SINGLE, ARRAY_ARITHMETIC, INDEX_RANGE, EXP_OVERFLOW)
_INDEX_RANGE = re.compile(r"\bINDEX\s*\([^:]*?\)\s*:|:\s*INDEX\s*\(", re.I)  # INDEX( … ): or :INDEX(

_SUMX = re.compile(r"\bSUMX(?:MY2|2MY2|2PY2)\s*\(", re.I)
_AGGREGATE = re.compile(r"\b(SUM|SUMSQ|AVERAGE|MAX|MIN|PRODUCT|COUNT)\s*\(", re.I)


def _args(formula: str, open_paren: int) -> list[str]:
    """The top-level arguments of the call whose '(' is at ``open_paren``."""
    depth, start, out = 0, open_paren + 1, []
    for i in range(open_paren, len(formula)):
        ch = formula[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                out.append(formula[start:i])
                return out
        elif ch == "," and depth == 1:
            out.append(formula[start:i])
            start = i + 1
    return out


def differences_in(formula: str) -> list[Difference]:
    """The constructs of this formula that IronCalc computes differently."""
    text = re.sub(r'"[^"]*"', '""', formula)
    found = []
    for m in _SUMX.finditer(text):
        if any(not _RANGE.fullmatch(a.strip()) for a in _args(text, m.end() - 1)):
            found.append(SUMX_SINGLE)
            break
    for m in _AGGREGATE.finditer(text):
        for arg in _args(text, m.end() - 1):
            arg = arg.strip()
            if _RANGE.search(arg) and not _RANGE.fullmatch(arg):
                found.append(ARRAY_ARITHMETIC)
                break
        if ARRAY_ARITHMETIC in found:
            break
    if _INDEX_RANGE.search(text):
        found.append(INDEX_RANGE)
    return found


@dataclass(frozen=True)
class Finding:
    key: str  # the step column
    step: int  # 1-based
    cell: str
    difference: Difference


def scan(sub, max_findings: int = 1000) -> list[Finding]:
    """Student-written cells (exercise columns) whose formulas IronCalc computes differently."""
    out = []
    for key in sub.exercise:
        col = sub.col_of.get(key)
        if col is None:
            continue
        for i, row in enumerate(sub.step_rows):
            formula = sub.sheet.formula(row, col)
            if not formula or ("SUMX" not in formula.upper() and ":" not in formula):
                continue
            for diff in differences_in(formula):
                out.append(Finding(key, i + 1, sub.cell_ref(key, i), diff))
                if len(out) >= max_findings:
                    return out
    return out


def choose_engine(sub, recalc: str, missing_cache: bool, libreoffice_available) -> tuple[str, list[Finding], str | None]:
    """(the recalculation to use: 'cached', 'ironcalc' or 'libreoffice'; IronCalc findings; a note)."""
    if recalc == "libreoffice":
        return "libreoffice", [], None
    if recalc == "auto" and not missing_cache:
        return "cached", [], None
    findings = scan(sub)
    if findings and recalc == "auto" and libreoffice_available():
        first = findings[0]
        return "libreoffice", [], (f"recalculated by LibreOffice: IronCalc computes {first.difference.what} differently "
                                   f"({first.cell})")
    return "ironcalc", findings, None


def mark_cannot_judge(report, findings: list[Finding]) -> None:
    """Root causes at cells IronCalc computes differently: 'cannot judge', not the student's mistake."""
    if not findings:
        return
    at = {(f.key, f.step): f for f in findings}
    by_column = {}
    for f in findings:
        by_column.setdefault(f.key, f)
    for m in report.mistakes:
        f = at.get((m.get("column"), m.get("step"))) or (
            by_column.get(m.get("column")) if by_column.get(m.get("column")) and
            by_column[m["column"]].step <= m.get("step", 0) else None)
        if f is None:
            continue
        m.update(mistake="cannot_judge", title=f"cannot judge: IronCalc computes {f.difference.what} differently "
                 f"({f.difference.ironcalc}; {f.difference.others})",
                 hint="Save the file in a spreadsheet app (it then stores computed values), or check it with "
                      "--recalc libreoffice.")
    first = findings[0]
    report.notes.append(f"IronCalc computes {first.difference.what} differently from LibreOffice, Excel and Google "
                        f"Sheets ({first.cell}, {len(findings)} cell(s)); such cells cannot be judged with IronCalc")
    if report.mistakes and all(m["mistake"] == "cannot_judge" for m in report.mistakes):
        report.status = "error"
        report.message = (f"cannot judge {first.cell}: IronCalc computes {first.difference.what} differently "
                          f"({first.difference.ironcalc}; {first.difference.others}); save the file with computed "
                          "values or use --recalc libreoffice")


def mark_exp_overflow(report) -> bool:
    """Root causes of an IronCalc recalculation whose first cell should be an error (an EXP overflowing, as
    LibreOffice and Excel compute it) where IronCalc went on with +∞ to a number: ``cannot_judge``, not the
    student's mistake. Returns whether any was marked (LibreOffice then recalculates, where installed)."""
    marked = False
    for m in report.mistakes:
        found = m.get("found")
        if m.get("expected") is None and isinstance(found, float) and "EXP(" in (m.get("formula") or "").upper():
            m.update(mistake="cannot_judge", title=f"cannot judge: IronCalc computes {EXP_OVERFLOW.what} differently "
                     f"({EXP_OVERFLOW.ironcalc}; {EXP_OVERFLOW.others})",
                     hint="Save the file in a spreadsheet app (it then stores computed values), or check it with "
                          "--recalc libreoffice.")
            marked = True
    return marked
