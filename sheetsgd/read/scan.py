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
from numpy.lib.stride_tricks import sliding_window_view

try:  # fast_float's correctly rounded conversion: the same doubles as Python's float(), 2.5× faster
    from fastnumbers import try_array as _try_array
except ImportError:  # a platform without its wheel: numpy's conversion
    _try_array = None

_LT, _GT, _QUOTE, _SLASH, _SPACE = 0x3C, 0x3E, 0x22, 0x2F, 0x20
MAX_REF = 10  # "XFD1048576"
MAX_NUMBER = 32  # longer values are not read as plain numbers (as the pattern path does)


class ScannedCells:
    """Cells as spans into the sheet's bytes; ``cells[i]`` is the same 7-tuple the pattern path makes:
    (column letters, row digits, attributes, ``<f …>``, formula text, value text, inline text)."""

    def __init__(self, data: bytes, spans: np.ndarray, plain_type: np.ndarray, buf: np.ndarray | None = None):
        self.data = data
        self.buf = buf if buf is not None else padded_buffer(data)  # the bytes as uint8, zeros after them
        self.spans = spans  # (14, n) int64: start, end of each of the seven parts, one row per bound
        self.plain_type = plain_type  # the type attribute says number (absent or t="n")

    def __len__(self) -> int:
        return self.spans.shape[1]

    def __getitem__(self, i: int):
        s, d = self.spans[:, i].tolist(), self.data
        return (d[s[0]:s[1]], d[s[2]:s[3]], d[s[4]:s[5]], d[s[6]:s[7]], d[s[8]:s[9]], d[s[10]:s[11]], d[s[12]:s[13]])

    def take(self, order: np.ndarray) -> "ScannedCells":
        return ScannedCells(self.data, self.spans[:, order], self.plain_type[order], self.buf)

    def has_formula(self) -> np.ndarray:
        return self.spans[7] > self.spans[6]

    def tagged_formulas(self) -> np.ndarray:
        """Cells whose formula tag has attributes and text (shared or array formula masters among them)."""
        s = self.spans
        return np.flatnonzero((s[7] - s[6] > 3) & (s[9] > s[8]))

    def numbers(self) -> tuple[np.ndarray, np.ndarray]:
        """(value as a float, NaN unless a plain number of at most MAX_NUMBER characters; plain)."""
        start, end = self.spans[10], self.spans[11]
        length = end - start
        plain = self.plain_type & (length > 0) & (length <= MAX_NUMBER)
        numbers = np.full(len(self), np.nan)
        idx = np.flatnonzero(plain)
        if len(idx):
            buf = self.buf
            width = int(length[idx].max())  # the longest value text (a double's repr: up to 24)
            chars = _window(buf, start[idx], width)  # a copy: the bytes after each value zeroed in place
            chars *= np.arange(width, dtype=np.int16) < length[idx, None]
            text = np.ascontiguousarray(chars, dtype=np.uint8).view(f"S{width}").ravel()
            numbers[idx], readable = to_floats(text)
            plain[idx[~readable]] = False
        return numbers, plain


def to_floats(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each byte string of ``text`` as Python's float() reads it, NaN where it cannot; which it can). One C
    pass (fastnumbers, else numpy); where that finds no number (NaN), float() itself decides, one by one:
    it also reads what the fast pass does not ("1_0") and tells the text "nan" from an unreadable one."""
    readable = np.ones(len(text), bool)
    if _try_array is not None:
        values = _try_array(text, on_fail=np.nan, on_type_error=np.nan)
        doubtful = np.flatnonzero(np.isnan(values))
    else:
        try:
            return text.astype(float), readable
        except ValueError:
            values, doubtful = np.full(len(text), np.nan), np.arange(len(text))
    for i, t in zip(doubtful.tolist(), text[doubtful].tolist()):
        try:
            values[i] = float(t)
        except ValueError:
            readable[i] = False
    return values, readable


def _window(buf: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from each start (0 past the end), one row per start: rows of a sliding view
    of the buffer padded with zeros (one gather, no index arithmetic per byte)."""
    padded = _padded(buf, width)
    return sliding_window_view(padded, width)[np.clip(start, 0, len(padded) - width)]


_PAD = 128


def _padded(buf: np.ndarray, width: int) -> np.ndarray:
    """The buffer followed by at least ``width`` zeros: the array a :func:`padded_buffer` view starts, or
    a padded copy."""
    base = buf.base
    if (isinstance(base, np.ndarray) and base.dtype == np.uint8 and base.ndim == 1 and len(base) - len(buf) >= width
            and base.__array_interface__["data"][0] == buf.__array_interface__["data"][0]):
        return base
    return np.concatenate([buf, np.zeros(max(width, _PAD), np.uint8)])


def padded_buffer_of(buf: np.ndarray) -> np.ndarray:
    """The buffer and the zeros after it (``padded[len(buf)]`` is 0)."""
    return _padded(buf, 1)


def padded_buffer(data: bytes) -> np.ndarray:
    """The bytes as a uint8 array, stored with zeros after them (windows past the end read 0, made once)."""
    return np.frombuffer(data + bytes(_PAD), np.uint8)[:len(data)]  # one copy (read only: nothing writes it)


def _first(window: np.ndarray, start: np.ndarray, ch: int) -> np.ndarray:
    """Position of the first ``ch`` in each window row (-1 where there is none)."""
    eq = window == ch
    return np.where(eq.any(axis=1), start + eq.argmax(axis=1), -1)


def _bytes_at(buf: np.ndarray, at: np.ndarray, text: bytes) -> np.ndarray:
    """Whether ``text`` starts at each position."""
    if not len(at):
        return np.zeros(0, bool)
    window = _window(buf, at, len(text))
    return (at >= 0) & (at + len(text) <= len(buf)) & (window == np.frombuffer(text, np.uint8)).all(axis=1)


def _find(data: bytes, buf: np.ndarray, pattern: bytes) -> np.ndarray:
    """Every position of ``pattern`` (≥ 2 bytes): its first two bytes compared as 16-bit words in both
    alignments, the rest checked at the (few) hits."""
    key = pattern[0] | pattern[1] << 8
    hits = [np.flatnonzero(np.frombuffer(data, "<u2", count=(len(data) - k) // 2, offset=k) == key) * 2 + k
            for k in (0, 1) if len(data) - k >= 2]
    pos = np.sort(np.concatenate(hits)) if hits else np.zeros(0, np.int64)
    return pos[_bytes_at(buf, pos + 2, pattern[2:])] if len(pattern) > 2 else pos


class TooManyCells(Exception):
    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def scan(data: bytes, max_cells: int | None = None):
    """(cells, rows, cols) of the sheet, or None when it is not in the plain form (see the module).
    Raises TooManyCells before anything is allocated per cell when the sheet holds more than ``max_cells``
    (every ``<c `` counted).

    With comments and CDATA excluded, every ``<`` of well-formed XML starts a tag: the tags are found in
    one pass and told apart by their next three bytes, and each cell's parts are the tags that follow its
    open tag (by tag index, not by search)."""
    buf = padded_buffer(data)
    n = len(buf)
    lt = np.append(np.flatnonzero(buf == _LT), n)  # tag starts, and a sentinel: "the next tag" of the last
    padded = _padded(buf, 4)
    c1, c2, c3 = padded[1:][lt], padded[2:][lt], padded[3:][lt]  # past the end (the sentinel's): zeros
    cell_k = np.flatnonzero((c1 == ord("c")) & (c2 == _SPACE))  # every <c …> open tag, by tag index
    if max_cells is not None and len(cell_k) > max_cells:
        raise TooManyCells(len(cell_k))
    if (c1 == ord("!")).any():  # a comment, CDATA or a declaration
        return None
    cpos = lt[cell_k]
    head = _window(buf, cpos + 3, 3 + MAX_REF + 1)  # r=" and the reference's bytes
    if not (head[:, :3] == np.frombuffer(b'r="', np.uint8)).all():  # reference not first
        return None
    if not len(cpos):
        return ScannedCells(data, np.zeros((14, 0), np.int64), np.zeros(0, bool)), np.zeros(0, np.int64), \
            np.zeros(0, np.int64)
    ref0 = cpos + 6
    ref_chars = head[:, 3:]
    ref1 = _first(ref_chars, ref0, _QUOTE)
    if (ref1 < 0).any():
        return None
    rows, cols, letters = _parse_refs(buf, ref_chars, ref0, ref1)
    if rows is None:
        return None
    # the open tag ends just before the next tag (a child or the next cell)
    open_end = lt[cell_k + 1] - 1
    if ((open_end < ref1) | (buf[open_end] != _GT)).any():
        return None
    self_closing = buf[open_end - 1] == _SLASH
    attrs0, attrs1 = ref1 + 1, open_end
    plain_type = _plain_types(data, buf, attrs0, attrs1)

    def tag(k, a, b, c=None):  # whether the tags at indices k begin <ab (and c)
        found = (c1[k] == a) & (c2[k] == b)
        return found if c is None else found & (c3[k] == c)

    last = len(lt) - 1
    # formulas: <f>, <f …>, <f/> (not <formula>), only as a cell's first child
    is_f = (c1 == ord("f")) & ((c2 == _SPACE) | (c2 == _GT) | (c2 == _SLASH))
    child = cell_k + 1  # the tag index of each cell's first child (or of what follows it)
    has_f = ~self_closing & is_f[child]
    if int(has_f.sum()) != int(is_f.sum()):
        return None
    f_at = lt[child]
    plain_f = has_f & (c2[child] == _GT)  # <f>: most formulas
    f_open_end = np.where(plain_f, f_at + 2, 0)
    other = np.flatnonzero(has_f & ~plain_f)
    if len(other):  # <f t="shared" …> or <f …/>: the tag's first '>' (before the next tag)
        f_open_end[other] = _last_gt_before(buf, f_at[other], lt[child[other] + 1])
        if (f_open_end[other] < 0).any():
            return None
    f_closed = has_f & (buf[np.maximum(f_open_end - 1, 0)] == _SLASH)
    with_text = has_f & ~f_closed
    text_k = np.minimum(child + 1, last)
    text0 = np.where(with_text, f_open_end + 1, 0)
    text1 = np.where(with_text, lt[text_k], 0)
    if not tag(text_k[with_text], _SLASH, ord("f"), _GT).all():
        return None
    after_k = child + np.where(has_f, np.where(f_closed, 1, 2), 0)  # tag index after the formula
    after_f = lt[after_k]
    # the value: <v>text</v>, <v/> or <v />
    has_v = ~self_closing & tag(after_k, ord("v"), _GT)
    close_v = np.minimum(after_k + 1, last)
    v0 = np.where(has_v, after_f + 3, 0)
    v1 = np.where(has_v, lt[close_v], 0)
    if not tag(close_v[has_v], _SLASH, ord("v"), _GT).all():
        return None
    empty_v = ~self_closing & ~has_v & (tag(after_k, ord("v"), _SLASH) | tag(after_k, ord("v"), _SPACE, _SLASH))
    # an inline string (xlsxwriter's constant-memory mode writes text so): <is><t …>text</t></is>
    has_is = ~self_closing & ~has_v & tag(after_k, ord("i"), ord("s"), _GT)
    has_is[has_is] = _bytes_at(buf, after_f[has_is], b"<is><t")
    is0 = np.zeros(len(cpos), np.int64)
    is1 = np.zeros(len(cpos), np.int64)
    if has_is.any():
        k = after_k[has_is] + 1  # the <t …> tag
        is1[has_is] = lt[np.minimum(k + 1, last)]
        is0[has_is] = _last_gt_before(buf, lt[k], is1[has_is]) + 1
        if not (_bytes_at(buf, is1[has_is], b"</t></is>").all() and (buf[is0[has_is] - 2] != _SLASH).all()
                and (is0[has_is] > 0).all()):
            return None
    end = np.where(has_v, v1 + 4, after_f)
    end = np.where(empty_v, after_f + np.where(c2[after_k] == _SLASH, 4, 5), end)
    end = np.where(has_is, is1 + 9, end)
    end_k = after_k + np.where(has_v, 2, 0) + empty_v + np.where(has_is, 4, 0)
    closed = (lt[np.minimum(end_k, last)] == end) & tag(np.minimum(end_k, last), _SLASH, ord("c"), _GT)
    if not (self_closing | closed).all():  # no stray tag inside a cell
        return None
    spans = np.empty((14, len(cpos)), np.int32 if n < 1 << 31 else np.int64)  # offsets: half the memory
    for row, part in enumerate((ref0, ref0 + letters, ref0 + letters, ref1, attrs0, attrs1,
                                np.where(has_f, f_at, 0), np.where(has_f, f_open_end + 1, 0), text0, text1,
                                v0, v1, is0, is1)):
        spans[row] = part
    return ScannedCells(data, spans, plain_type, buf), rows, cols


def _last_gt_before(buf: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The first '>' at or after each start and before its stop (the next tag's '<'), -1 where none:
    a tag ends at its first '>' (as the pattern reads it)."""
    out = np.full(len(start), -1, np.int64)
    for i, (a, b) in enumerate(zip(start.tolist(), stop.tolist())):  # few: shared formulas, inline texts
        j = bytes(buf[a:b]).find(b">")
        if j >= 0:
            out[i] = a + j
    return out


def _plain_types(data: bytes, buf: np.ndarray, attrs0: np.ndarray, attrs1: np.ndarray) -> np.ndarray:
    """Per cell: the type attribute ' t="…"' between its reference and the open tag's end is absent or
    t="n" (a plain number). The buffer is searched for ' t="' (few: text cells), each hit given to its cell."""
    t_at = _find(data, buf, b' t="')
    owner = np.searchsorted(attrs0, t_at, side="right") - 1
    mine = (owner >= 0) & (t_at < attrs1[np.maximum(owner, 0)])
    owner, t_at = owner[mine], t_at[mine]
    first = np.ones(len(owner), bool)  # a cell's first type attribute decides
    first[1:] = owner[1:] != owner[:-1]
    plain = np.ones(len(attrs0), bool)
    plain[owner[first]] = _bytes_at(buf, t_at[first] + 4, b'n"')
    return plain


def _parse_refs(buf: np.ndarray, chars: np.ndarray, ref0: np.ndarray, ref1: np.ndarray):
    """(rows, cols, number of letters) of references such as B7 (``chars``: each reference's bytes from
    ``ref0``, one row each; ``ref1``: its closing quote), or (None, None, None) if any is malformed: letters
    (1 to 3), then digits (1 to 7), nothing else."""
    length = ref1 - ref0
    width = chars.shape[1]
    cls = ((chars - np.uint8(0x41)) < 26).view(np.uint8) | (((chars - np.uint8(0x30)) < 10).view(np.uint8) << 1)
    cls[np.arange(width) >= length[:, None]] = 4  # past the end; 0: neither a letter nor a digit
    letters = (cls[:, 0] == 1).astype(np.int64) + (cls[:, 1] == 1) + (cls[:, 2] == 1)
    digits = length - letters
    # letters, then digits, then the end: classes never decrease, no 0, at most 3 letters (the 4th byte none)
    if not ((cls[:, 0] == 1) & (cls[:, 3] != 1) & (digits >= 1) & (digits <= 7)).all() \
            or (cls == 0).any() or (cls[:, 1:] < cls[:, :-1]).any():
        return None, None, None
    cols = buf[ref0].astype(np.int64) - 64
    for k in range(1, int(letters.max())):
        cols = np.where(k < letters, cols * 26 + (buf[ref0 + k].astype(np.int64) - 64), cols)
    rows = buf[ref1 - 1].astype(np.int64) - 48  # the digits read from the last, each weighted by its power of ten
    for k in range(1, int(digits.max())):
        rows += (buf[ref1 - 1 - k].astype(np.int64) - 48) * np.where(k < digits, 10 ** k, 0)
    if (rows < 1).any():
        return None, None, None
    return rows, cols, letters
