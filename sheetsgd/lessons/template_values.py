"""What a template key accepts (:class:`Value`) and the limits every template shares: the vocabulary the
template schema (:mod:`sheetsgd.lessons.schema`) describes every kind's tables in."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

CELL_MAX_CHARS = 32_767  # what one spreadsheet cell holds (Excel, LibreOffice, Google Sheets: 50,000)
TEXT_MAX_CHARS = 32_000  # a text cell, leaving room for a bullet or a prefix
NAME_MAX_CHARS = 255  # names shown as headers, labels and in the manifest
TITLE_MAX_CHARS = 1_000
MAX_EXAMPLES = 1_000_000  # a data sheet column holds 1,048,576 rows
MAX_LIST_ITEMS = 10_000  # exercise, try, features, coefficients …
MAX_SEED = 2**63 - 1
MAX_STEPS = 1_000_000_000  # epochs, steps, num_it: the size guards refuse far less; this bounds the arithmetic
MAX_BEST_FIT_STEPS = 100_000


def suggest(word: str, known) -> str:
    """' (did you mean X?)' for the closest known word, or ''."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


@dataclass(frozen=True)
class Value:
    """What one key accepts; ``check`` raises with ``what`` (the key's name) in the message."""

    kind: str  # number | int | bool | str | choice | numlist | strlist | table | batch | axis | init | runs | any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    max_len: int = TEXT_MAX_CHARS
    min_items: int = 0
    max_items: int = MAX_LIST_ITEMS
    distinct: bool = False
    keys: dict = field(default_factory=dict)  # table: its keys

    def range_text(self) -> str:
        if self.high is not None and self.high >= 2**62:  # seeds: any non-negative 64-bit integer
            return Value(self.kind, self.low, None, self.low_open).range_text()
        if self.kind == "int" and self.low is not None and self.high is not None:
            return f" from {self.low:,} to {self.high:,}"
        if self.low is not None and self.high is not None:
            return f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f" {'>' if self.low_open else '≥'} {self.low:g}"
        if self.high is not None:
            return f" {'<' if self.high_open else '≤'} {self.high:g}"
        return ""

    def in_range(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return True


def number(low=None, high=None, *, low_open=False, high_open=False) -> Value:
    return Value("number", low, high, low_open, high_open)


def integer(low=None, high=None) -> Value:
    return Value("int", low, high)


def text(max_len=TEXT_MAX_CHARS) -> Value:
    return Value("str", max_len=max_len)


def choice(*options, noun: str = "") -> Value:
    return Value("choice", choices=options, max_len=0, keys={"noun": noun} if noun else {})


def numbers(min_items=1, max_items=MAX_EXAMPLES) -> Value:
    return Value("numlist", min_items=min_items, max_items=max_items)


def texts(min_items=0, max_items=MAX_LIST_ITEMS, max_len=TEXT_MAX_CHARS, distinct=False) -> Value:
    return Value("strlist", min_items=min_items, max_items=max_items, max_len=max_len, distinct=distinct)


def table(**keys) -> Value:
    return Value("table", keys=keys)


BOOL = Value("bool")
SWITCH = Value("switch")  # 0 or 1 (a number, as the per-optimizer tables hold them)
SEED = integer(0, MAX_SEED)
NAME = text(NAME_MAX_CHARS)
FINITE = number()
POSITIVE = number(0, low_open=True)
NONNEGATIVE = number(0)
UNIT_OPEN = number(0, 1, high_open=True)  # [0, 1)
