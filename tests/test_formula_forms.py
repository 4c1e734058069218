"""Formula texts grouped by form (sheetsgd.read.formula_forms) against a plain reading, one text and one
character at a time, of the same rule: digits after a capital or $ and before no identifier character
(nor an exponent's) are a row."""
from __future__ import annotations

import random
import re

import numpy as np

from sheetsgd.read.formula_forms import Forms, join

_ROW = re.compile(rb"[0-9]+")


def _plain_reading(text: bytes):
    """(row numbers, the pieces between them) of one text, by the rule written out."""
    rows, pieces, after = [], [], 0
    for m in _ROW.finditer(text):
        a, b = m.span()
        before = a > 0 and (chr(text[a - 1]).isupper() and chr(text[a - 1]).isascii() or text[a - 1:a] == b"$")
        exponent = a > 1 and text[a - 1:a] == b"E" and (text[a - 2:a - 1].isdigit() or text[a - 2:a - 1] == b".")
        follows = b == len(text) or not re.match(rb"[A-Za-z0-9_(!]", text[b:b + 1])
        if before and not exponent and follows and b - a <= 7:
            rows.append(int(text[a:b]))
            pieces.append(text[after:a])
            after = b
    pieces.append(text[after:])
    return rows, tuple(pieces)


def _random_texts(rng: random.Random, n: int) -> list[bytes]:
    forms = [b"H{}-lr*K{}", b"SUM(A{}:A{})/1E5", b"LOG10(B${})+Data!$C${}*A7", b"E{}+1E5+B.E5*C{}",
             b"IF(A{}>0,B{},0)" + b"+X1" * 60, b"A{}B+{}", b"\xff{}C{}", b"'My sheet'!B{}*B{}1",
             b"{}*A{}", b"2.E{}+$A${}"]
    out = []
    for _ in range(n):
        f = rng.choice(forms)
        out.append(f.replace(b"{}", str(rng.choice([1, 9, 10, 99, 100, 12345, 123456789])).encode(), 1)
                    .replace(b"{}", str(rng.randint(1, 2000)).encode(), 1))
        if rng.random() < 0.3 and out[-1:]:
            out.append(out[-1])
    return out


def test_forms_agree_with_a_plain_reading():
    rng = random.Random(7)
    for _ in range(20):
        texts = _random_texts(rng, rng.randint(1, 300))
        forms = Forms(*join(texts))
        readings = [_plain_reading(t) for t in texts]
        assert forms.values.tolist() == [r for rows, _ in readings for r in rows]
        assert np.diff(forms.first).tolist() == [len(rows) for rows, _ in readings]
        assert [forms.text(i) for i in range(len(texts))] == texts
        assert [forms.key(i) for i in range(len(texts))] == [key for _, key in readings]
        for i in range(1, len(texts)):  # the cheap test never calls two forms one
            if forms.same_as_previous[i]:
                assert readings[i][1] == readings[i - 1][1]
        lo = rng.randint(0, len(texts) - 1)
        groups = forms.groups(lo, len(texts))
        expected: dict = {}
        for i in range(lo, len(texts)):
            expected.setdefault(readings[i][1], []).append(i)
        assert [g.tolist() for g in groups] == list(expected.values())
