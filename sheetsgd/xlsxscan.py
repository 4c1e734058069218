"""The cells of a worksheet's XML found by array operations over its bytes, not one regex match per cell.

A 3,565-step Titanic lesson is an 11 MB sheet of 170,000 cells: a compiled pattern takes most of a
check's time making seven byte strings per cell. Here the positions of the few characters that shape
a cell (``<``, ``>``, ``"``) are found by numpy over the whole buffer, each cell's parts are spans
between them, and a part becomes bytes only when a cell is looked at (:class:`ScannedCells`). Numbers
are converted for the whole sheet at once.

Only the plain form spreadsheet apps write is accepted (``<c r="B7" …>`` with its reference first,
then an optional ``<f …>…</f>`` or ``<f …/>``, then an optional ``<v>…</v>`` or ``<is><t>…</t></is>``,
then ``</c>``); every structural
assumption is verified, and anything else (rich text, CDATA, comments, other attribute orders, stray tags
inside a cell) returns None, so the pattern or the general parser reads the sheet instead. Nothing is
expanded or evaluated: these are byte offsets.
"""
from __future__ import annotations

import numpy as np

_LT, _GT, _QUOTE, _SLASH, _SPACE = 0x3C, 0x3E, 0x22, 0x2F, 0x20
MAX_REF = 10  # "XFD1048576"
MAX_NUMBER = 32  # longer values are not read as plain numbers (as the pattern path does)


class ScannedCells:
    """Cells as spans into the sheet's bytes; ``cells[i]`` is the same 7-tuple the pattern path makes:
    (column letters, row digits, attributes, ``<f …>``, formula text, value text, inline text)."""

    def __init__(self, data: bytes, spans: np.ndarray, plain_type: np.ndarray):
        self.data = data
        self.spans = spans  # (n, 14) int64: start, end of each part but the last
        self.plain_type = plain_type  # the type attribute says number (absent or t="n")

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int):
        s, d = self.spans[i].tolist(), self.data
        return (d[s[0]:s[1]], d[s[2]:s[3]], d[s[4]:s[5]], d[s[6]:s[7]], d[s[8]:s[9]], d[s[10]:s[11]], d[s[12]:s[13]])

    def take(self, order: np.ndarray) -> "ScannedCells":
        return ScannedCells(self.data, self.spans[order], self.plain_type[order])

    def has_formula(self) -> np.ndarray:
        return self.spans[:, 7] > self.spans[:, 6]

    def tagged_formulas(self) -> np.ndarray:
        """Cells whose formula tag has attributes and text (shared or array formula masters among them)."""
        s = self.spans
        return np.flatnonzero((s[:, 7] - s[:, 6] > 3) & (s[:, 9] > s[:, 8]))

    def numbers(self) -> tuple[np.ndarray, np.ndarray]:
        """(value as a float, NaN unless a plain number of at most MAX_NUMBER characters; plain)."""
        start, end = self.spans[:, 10], self.spans[:, 11]
        length = end - start
        plain = self.plain_type & (length > 0) & (length <= MAX_NUMBER)
        numbers = np.full(len(self.spans), np.nan)
        idx = np.flatnonzero(plain)
        if len(idx):
            buf = np.frombuffer(self.data, np.uint8)
            width = int(length[idx].max())  # the longest value text (a double's repr: up to 24)
            offsets = start[idx, None] + np.arange(width)
            chars = np.where(np.arange(width) < length[idx, None], buf[np.minimum(offsets, len(buf) - 1)], 0)
            text = np.ascontiguousarray(chars, dtype=np.uint8).view(f"S{width}").ravel()
            try:
                numbers[idx] = text.astype(float)
            except ValueError:  # something odd among them: one by one, the odd ones are not plain
                for i, t in zip(idx.tolist(), text.tolist()):
                    try:
                        numbers[i] = float(t)
                    except ValueError:
                        plain[i] = False
        return numbers, plain


def _next(positions: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The first position ≥ ``after`` (-1 where there is none)."""
    if not len(positions):
        return np.full(len(after), -1, np.int64)
    k = np.searchsorted(positions, after)
    return np.where(k < len(positions), positions[np.minimum(k, len(positions) - 1)], -1)


def _window(buf: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from each start (0 past the end), one row per start."""
    at = start[:, None] + np.arange(width)
    return np.where(at < len(buf), buf[np.minimum(at, len(buf) - 1)], 0)


def _first(window: np.ndarray, start: np.ndarray, ch: int) -> np.ndarray:
    """Position of the first ``ch`` in each window row (-1 where there is none)."""
    eq = window == ch
    return np.where(eq.any(axis=1), start + eq.argmax(axis=1), -1)


def _bytes_at(buf: np.ndarray, at: np.ndarray, text: bytes) -> np.ndarray:
    """Whether ``text`` starts at each position."""
    out = (at >= 0) & (at + len(text) <= len(buf))
    for j, ch in enumerate(text):
        out &= buf[np.clip(at + j, 0, len(buf) - 1)] == ch
    return out


def _find(data: bytes, buf: np.ndarray, pattern: bytes) -> np.ndarray:
    """Every position of ``pattern`` (≥ 2 bytes): its first two bytes compared as 16-bit words in both
    alignments, the rest checked at the (few) hits."""
    key = pattern[0] | pattern[1] << 8
    hits = [np.flatnonzero(np.frombuffer(data, "<u2", count=(len(data) - k) // 2, offset=k) == key) * 2 + k
            for k in (0, 1) if len(data) - k >= 2]
    pos = np.sort(np.concatenate(hits)) if hits else np.zeros(0, np.int64)
    return pos[_bytes_at(buf, pos + 2, pattern[2:])] if len(pattern) > 2 else pos


def _formula_tags(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether a formula tag (``<f>``, ``<f …>``, ``<f/>``; not ``<formula>``) starts at each position."""
    third = buf[np.clip(at + 2, 0, len(buf) - 1)]
    return _bytes_at(buf, at, b"<f") & ((third == _SPACE) | (third == _GT) | (third == _SLASH))


def scan(data: bytes):
    """(cells, rows, cols) of the sheet, or None when it is not in the plain form (see the module)."""
    if b"<![CDATA[" in data or b"<!--" in data:
        return None
    buf = np.frombuffer(data, np.uint8)
    n = len(buf)
    cpos = _find(data, buf, b'<c r="')
    if len(cpos) != data.count(b"<c "):  # a cell whose reference is not its first attribute
        return None
    if not len(cpos):
        return (ScannedCells(data, np.zeros((0, 14), np.int64), np.zeros(0, bool)), np.zeros(0, np.int64),
                np.zeros(0, np.int64))
    lt = np.flatnonzero(buf == _LT)
    ref0 = cpos + 6
    ref_chars = _window(buf, ref0, MAX_REF + 1)
    ref1 = _first(ref_chars, ref0, _QUOTE)
    if (ref1 < 0).any():
        return None
    rows, cols, letters = _parse_refs(ref_chars, ref1 - ref0)
    if rows is None:
        return None
    # the open tag ends just before the next '<' (a child or the next cell): no '<' inside a tag
    open_end = _next(lt, ref1) - 1
    if ((open_end < ref1) | (buf[open_end] != _GT)).any():
        return None
    self_closing = buf[open_end - 1] == _SLASH
    attrs0, attrs1 = ref1 + 1, open_end
    # the type attribute ' t="…"' inside the open tag; plain numbers have none or t="n"
    t_at = _find(data, buf, b' t="')
    owner = np.searchsorted(cpos, t_at, side="right") - 1
    mine = (owner >= 0) & (t_at > ref1[np.maximum(owner, 0)]) & (t_at < open_end[np.maximum(owner, 0)])
    plain_type = np.ones(len(cpos), bool)
    plain_type[owner[mine]] = _bytes_at(buf, t_at[mine] + 4, b'n"')
    # children: an optional <f …>text</f> or <f …/>, then an optional <v>text</v>, <v/> or <is><t>text</t></is>
    child = open_end + 1
    has_f = ~self_closing & _formula_tags(buf, child)
    if int(has_f.sum()) != int(_formula_tags(buf, _find(data, buf, b"<f")).sum()):  # a formula tag elsewhere
        return None
    plain_f = has_f & (buf[np.minimum(child + 2, n - 1)] == _GT)  # <f>: most formulas
    f_open_end = np.where(plain_f, child + 2, 0)
    other = np.flatnonzero(has_f & ~plain_f)
    if len(other):
        f_open_end[other] = _next(np.flatnonzero(buf == _GT), child[other])
    f_closed = has_f & (buf[np.maximum(f_open_end - 1, 0)] == _SLASH)
    with_text = has_f & ~f_closed
    text0 = np.where(with_text, f_open_end + 1, 0)
    text1 = np.where(with_text, _next(lt, text0), 0)
    if not _bytes_at(buf, text1[with_text], b"</f>").all():
        return None
    after_f = np.where(has_f, np.where(f_closed, f_open_end + 1, text1 + 4), child)
    has_v = ~self_closing & _bytes_at(buf, after_f, b"<v>")
    v0 = np.where(has_v, after_f + 3, 0)
    v1 = np.where(has_v, _next(lt, v0), 0)
    if not _bytes_at(buf, v1[has_v], b"</v>").all():
        return None
    # an inline string (xlsxwriter's constant-memory mode writes text so)
    has_is = ~self_closing & ~has_v & _bytes_at(buf, after_f, b"<is><t")
    is0 = np.zeros(len(cpos), np.int64)
    is1 = np.zeros(len(cpos), np.int64)
    if has_is.any():
        is0[has_is] = _next(np.flatnonzero(buf == _GT), after_f[has_is] + 4) + 1
        is1[has_is] = _next(lt, is0[has_is])
        if not (_bytes_at(buf, is1[has_is], b"</t></is>").all() and (buf[is0[has_is] - 2] != _SLASH).all()):
            return None
    empty_v = ~self_closing & ~has_v & (_bytes_at(buf, after_f, b"<v/>") | _bytes_at(buf, after_f, b"<v />"))
    end = np.where(has_v, v1 + 4, after_f)
    end = np.where(empty_v, after_f + np.where(buf[np.minimum(after_f + 2, n - 1)] == _SLASH, 4, 5), end)
    end = np.where(has_is, is1 + 9, end)
    if not (self_closing | _bytes_at(buf, end, b"</c>")).all():  # no stray tag inside a cell
        return None
    spans = np.stack([ref0, ref0 + letters, ref0 + letters, ref1, attrs0, attrs1,
                      np.where(has_f, child, 0), np.where(has_f, f_open_end + 1, 0), text0, text1, v0, v1, is0, is1],
                     axis=1).astype(np.int64)
    return ScannedCells(data, spans, plain_type), rows, cols


def _parse_refs(chars: np.ndarray, length: np.ndarray):
    """(rows, cols, number of letters) of references such as B7 (``chars``: each reference's bytes, one row
    each), or (None, None, None) if any is malformed."""
    j = np.arange(chars.shape[1])
    inside = j < length[:, None]
    is_letter = (chars >= ord("A")) & (chars <= ord("Z")) & inside
    is_digit = (chars >= ord("0")) & (chars <= ord("9")) & inside
    letters = is_letter.sum(axis=1)
    digits = length - letters
    # letters first (1 to 3), then only digits (1 to 7)
    prefix = np.cumprod(is_letter, axis=1).sum(axis=1)
    if not ((prefix == letters) & (letters >= 1) & (letters <= 3) & (is_digit.sum(axis=1) == digits)
            & (digits >= 1) & (digits <= 7)).all():
        return None, None, None
    cols = np.zeros(len(chars), np.int64)
    for k in range(3):
        cols = np.where(k < letters, cols * 26 + (chars[:, k].astype(np.int64) - 64), cols)
    rows = np.zeros(len(chars), np.int64)
    for k in range(1, chars.shape[1]):
        use = (k >= letters) & (k < length)
        rows = np.where(use, rows * 10 + (chars[:, k].astype(np.int64) - 48), rows)
    if (rows < 1).any():
        return None, None, None
    return rows, cols, letters
