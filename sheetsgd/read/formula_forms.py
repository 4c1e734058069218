"""Formula texts grouped by form with array operations over their bytes, not one string per cell.

A 3,565-step Titanic lesson holds 260,000 formula cells (5 MB of text), and each is verified against its
own formula (:mod:`sheetsgd.check.own_formulas`). Filling down makes texts equal but for the row numbers of
their references: such cells are one *form*, parsed once, each reference's row a per-cell number. Here
the texts are copied from the sheet's bytes into matrices, one row per text (texts of similar length
together: widths 16, 32, 64 …, zeros after each text), the digit runs read as rows are found and
converted for every cell at once, and each text is compared with the one above it in its column, its
rows' digits masked: a filled-down column is one run of equal forms, and only the first text of each
run is looked at as a string (:meth:`Forms.key`, exact).

Digits after a capital or ``$`` and before no identifier character are taken for rows (``LOG10(`` is
not, nor ``1E5``'s exponent). A form's parse must find exactly these as its references' rows, else its
cells are evaluated one by one (:mod:`sheetsgd.check.own_formulas`).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_AFTER = np.ones(256, bool)  # what may follow a reference's row (a1's tokens: no letter, digit, _, ( or !)
_AFTER[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_(!"]] = False
_BEFORE = np.zeros(256, bool)  # what precedes it: a column letter or a $
_BEFORE[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ$"]] = True
MAX_ROW_DIGITS = 7
PAD = 128  # zeros the texts' buffer holds after its last text: rows up to this wide are views into it
MIN_POWER = 4  # rows at least 16 bytes wide (a multiple of 8: compared as 64-bit words)


def join(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buffer, starts, ends) of texts given as bytes, as :class:`Forms` reads them."""
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.cumsum(lengths + 1) - 1
    buffer = np.frombuffer(b"\x00".join(texts) + bytes(PAD + 1), np.uint8)
    return buffer, ends - lengths, ends


class Forms:
    """The texts ``buffer[starts[i]:ends[i]]`` (the buffer holds :data:`PAD` zeros after the last): their
    rows and their forms. ``values``: every row number, cell by cell in text order; ``first[i]``: cell i's
    first index into them (``first[n]``: their count); ``same_as_previous[i]``: cell i's text equals cell
    i − 1's but for the digits of its rows (rows of equal widths at equal places)."""

    def __init__(self, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        n = len(starts)
        self.buffer, self.starts, self.ends = buffer, starts, ends
        lengths = ends - starts
        power = np.maximum(MIN_POWER, np.ceil(np.log2(lengths + 1)).astype(np.int64))  # widths ≥ one 0 after
        self.same_as_previous = np.zeros(n, bool)
        parts = []
        for p in np.flatnonzero(np.bincount(power)).tolist():
            w, cells = 1 << p, np.flatnonzero(power == p)
            parts.append((cells, *self._rows(self._matrix(cells, lengths[cells], w), cells, lengths[cells], w)))
        counts = np.zeros(n, np.int64)
        for cells, local, *_ in parts:
            counts += np.bincount(cells[local], minlength=n)
        self.first = np.concatenate([[0], np.cumsum(counts)])
        total = int(self.first[-1])
        self.values, self._offset, self._end = (np.zeros(total, np.int64) for _ in range(3))
        for cells, local, values, offset, end in parts:  # each cell's rows in text order, cell after cell
            owner = cells[local]
            k = np.arange(len(owner))
            new = np.ones(len(owner), bool)
            new[1:] = owner[1:] != owner[:-1]
            dest = self.first[owner] + k - np.maximum.accumulate(np.where(new, k, 0))
            self.values[dest], self._offset[dest], self._end[dest] = values, offset, end

    def _matrix(self, cells: np.ndarray, lengths: np.ndarray, w: int) -> np.ndarray:
        """The texts of ``cells``, one row each, ``w`` wide, zeros after each."""
        starts = self.starts[cells]
        fits = starts <= len(self.buffer) - w  # always where w ≤ PAD
        if fits.all():  # rows of a sliding view: one copy
            m = sliding_window_view(self.buffer, w)[starts]
        else:  # long texts near the buffer's end: those one at a time
            m = np.zeros((len(cells), w), np.uint8)
            m[fits] = sliding_window_view(self.buffer, w)[starts[fits]] if len(self.buffer) >= w else 0
            for k in np.flatnonzero(~fits).tolist():
                m[k, :lengths[k]] = self.buffer[starts[k]:starts[k] + lengths[k]]
        m *= np.arange(w, dtype=np.int32) < lengths[:, None]  # zeros after each text
        return m

    def _rows(self, m: np.ndarray, cells: np.ndarray, lengths: np.ndarray, w: int):
        """(each row number's text (row of ``m``), value, offset and end in its text), and each text against
        the one above it: ``same_as_previous``."""
        flat = m.reshape(-1)
        digit = (flat - np.uint8(0x30) < 10).view(np.int8)
        change = np.flatnonzero(digit[1:] != digit[:-1]) + 1  # where runs of digits start and end, in turns
        if digit[0]:
            change = np.concatenate([[0], change])
        starts, ends = change[0::2], change[1::2]  # every text ends in a 0: every run ends
        offset = starts & (w - 1)
        before = _BEFORE[flat[starts - 1]] & (offset > 0)
        prior = flat[np.maximum(starts - 2, 0)]  # 1E5, 2.E3: an exponent, not a row
        before &= ~((flat[starts - 1] == 0x45) & (offset > 1) & ((prior - np.uint8(0x30) < 10) | (prior == 0x2E)))
        rows = before & _AFTER[flat[ends]] & (ends - starts <= MAX_ROW_DIGITS)
        starts, ends, offset = starts[rows], ends[rows], offset[rows]
        digits = ends - starts
        literal_ff = bool((flat == 0xFF).any())  # 0xFF marks a row's digit, unless a text holds that byte
        masked = m.astype(np.uint16) if literal_ff else m
        mark = 0x100 if literal_ff else 0xFF
        values = flat[starts].astype(np.int64) - 0x30  # Horner's rule, digit by digit; each digit then masked
        masked.reshape(-1)[starts] = mark
        for d in range(1, MAX_ROW_DIGITS):
            more = np.flatnonzero(digits > d)
            if not len(more):
                break
            at = starts[more] + d
            values[more] = values[more] * 10 + flat[at] - 0x30
            masked.reshape(-1)[at] = mark
        if len(cells) > 1:
            words = masked.view(np.uint64)  # rows are multiples of 8 bytes wide
            same = (words[1:] == words[:-1]).all(axis=1) & (cells[1:] == cells[:-1] + 1) & (lengths[1:] == lengths[:-1])
            self.same_as_previous[cells[1:]] = same
        return starts >> (w.bit_length() - 1), values, offset, offset + digits

    def text(self, i: int) -> bytes:
        return self.buffer[int(self.starts[i]):int(self.ends[i])].tobytes()

    def length(self, cells: np.ndarray) -> np.ndarray:
        return self.ends[cells] - self.starts[cells]

    def key(self, i: int) -> tuple[bytes, ...]:
        """Cell i's text in pieces between its rows: texts equal but for their rows have equal keys."""
        text, lo, hi = self.text(i), int(self.first[i]), int(self.first[i + 1])
        pieces, after = [], 0
        for start, end in zip(self._offset[lo:hi].tolist(), self._end[lo:hi].tolist()):
            pieces.append(text[after:start])
            after = end
        pieces.append(text[after:])
        return tuple(pieces)

    def rows_of(self, cells: np.ndarray) -> np.ndarray:
        """(cells × rows) the row numbers of cells of one form (each has as many)."""
        k = int(self.first[cells[0] + 1] - self.first[cells[0]])
        return self.values[self.first[cells][:, None] + np.arange(k)]

    def groups(self, lo: int, hi: int) -> list[np.ndarray]:
        """Cells lo … hi − 1 (one column, top to bottom) grouped by form, each group's cells as indices."""
        if hi <= lo:
            return []
        new = ~self.same_as_previous[lo:hi]
        new[0] = True
        run_starts = np.flatnonzero(new)
        if len(run_starts) == 1:
            return [np.arange(lo, hi)]
        label_of: dict[tuple, int] = {}
        run_label = np.array([label_of.setdefault(self.key(lo + int(s)), len(label_of)) for s in run_starts])
        label = run_label[np.cumsum(new) - 1]
        order = np.argsort(label, kind="stable")
        bounds = np.searchsorted(label[order], np.arange(len(label_of) + 1))
        return [lo + order[bounds[j]:bounds[j + 1]] for j in range(len(label_of))]
