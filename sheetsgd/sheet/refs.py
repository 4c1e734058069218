"""A1 references: column letters and numbers, and moving a formula as filling it would."""
from __future__ import annotations

import re

def column_index(letters: str) -> int:
    """'A' -> 1, 'AB' -> 28."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def column_letters(index: int) -> str:
    out = ""
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


_A1 = re.compile(r"(\$?)([A-Z]{1,3})(\$?)([0-9]{1,7})(?![A-Za-z0-9_(])")
_STR = re.compile(r'"[^"]*"')


def translate(formula: str, d_row: int, d_col: int) -> str:
    """Move a formula by (d_row, d_col) as filling it would: relative references shift, $-anchored stay."""
    def move(m):
        col_abs, letters, row_abs, digits = m.groups()
        c = column_index(letters) + (0 if col_abs else d_col)
        r = int(digits) + (0 if row_abs else d_row)
        if c < 1 or r < 1:
            return "#REF!"
        return f"{col_abs}{column_letters(c)}{row_abs}{r}"
    parts = []
    last = 0
    for s in _STR.finditer(formula):  # leave string literals alone
        parts.append(_A1.sub(move, formula[last:s.start()]))
        parts.append(s.group(0))
        last = s.end()
    parts.append(_A1.sub(move, formula[last:]))
    return "".join(parts)
