"""The cells of one worksheet of an untrusted .xlsx file, read without running or expanding anything.

Worksheets are big (a 10,000-step lesson is an 11 MB sheet), so cells are found by array operations
over the raw bytes (:mod:`sheetsgd.read.scan`), or else with one compiled pattern over the raw XML;
both only accept the plain form every spreadsheet app writes; the
count of matches is verified against the count of ``<c``/``<f``/``<v`` tags, and any sheet the
pattern does not fully account for (namespace prefixes, rich text, CDATA, cells without
references) is parsed by the general defusedxml parser instead. Neither path expands entities.
The zip container, its bounds and the workbook's parts: sheetsgd.read.package.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from sheetsgd.sheet.refs import column_index, column_letters, translate
from .formula_forms import join
from .scan import ScannedCells, TooManyCells, padded_buffer_of, scan, to_floats

ERROR_VALUES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#CIRC!", "#SPILL!",
                "#CALC!", "#GETTING_DATA", "#ERROR!")


@dataclass(frozen=True)
class CellError:
    """A spreadsheet error value such as #NUM!; it is never a number."""

    code: str

    def __str__(self) -> str:
        return self.code


@dataclass
class Cell:
    value: object  # float, str, bool, CellError or None (no value / no cached value)
    formula: str | None  # formula text without '=', None for a value cell
    has_cache: bool = True  # False: a formula whose result the file does not store


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"([^>]*)>'
                   rb'(?:(<f[^>]*>)(?:([^<]*)</f>)?)?'
                   rb'(?:<v>([^<]*)</v>|<v ?/>|<is><t[^>]*>([^<]*)</t></is>)?')
# a raw cell is the pattern's groups: 0 column, 1 row, 2 attributes, 3 <f ...> or <f .../>, 4 formula text,
# 5 value text, 6 inline string text
_ATTRS, _F_OPEN, _F_TEXT, _V, _IS_TEXT = range(2, 7)
# constructs the pattern does not read: any of them sends the sheet to the general parser
# CDATA would hide formula or string text from the fast pattern: such sheets go to the general parser.
# (Comments between tags are harmless: a formula the pattern misses is caught by the <f count, a
# missed value only means "no cached value", so the cell is recalculated.)
_F_TAG = re.compile(rb"<f[ />]")
_UNEXPECTED = b"<![CDATA["
_ATTR = re.compile(r'\b(\w+)="([^"]*)"')
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(text: str) -> str:
    """The five predefined XML entities and character references: nothing else is ever expanded."""
    if "&" not in text:
        return text

    def one(m):
        name = m.group(1)
        if name[0] == "#":
            code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
            return chr(code) if 0 < code < 0x110000 else "\ufffd"
        return _NAMED[name]
    return _ENTITY.sub(one, text)


def _escape(text: str) -> str:  # the general parser has unescaped already; raw cells hold escaped text
    return text.replace("&", "&amp;").replace("<", "&lt;")


class Sheet:
    """The cells of one worksheet, addressed by (row, column), both 1-based.

    Cells are kept as the parser found them, in row order, with numpy arrays of their rows and
    columns: whole columns are then picked out by array operations, not one lookup per cell.
    """

    def __init__(self, book, name: str, part: str, data: bytes | None = None):
        """``book``: the sheetsgd.read.package.Workbook it belongs to; ``data``: the part, if inflated already."""
        self.book, self.name, self.part = book, name, part
        data = book._read(part) if data is None else data
        head = data[:4096]
        root = head.find(b"<worksheet")
        if b"<!" in (head[:root] if root >= 0 else head):  # a DTD can only sit before the root element
            raise book.error("the sheet declares a DTD or entities, refused (entity expansion)", name)
        if root < 0 and b"<!ENTITY" in data:
            raise book.error("the sheet declares a DTD or entities, refused (entity expansion)", name)
        try:  # the cells counted before anything is allocated per cell
            parsed = scan(data, book.limits.max_cells) if b"<worksheet" in head else None
        except TooManyCells as exc:
            parsed, count = None, exc.count
        else:
            count = data.count(b"<c ") if parsed is None else 0
        if count > book.limits.max_cells:
            raise book.error(f"{count:,} cells, over the {book.limits.max_cells:,} limit (--max-cells)", name)
        if parsed is None and b"<worksheet" in head:
            parsed = self._fast(data)
        if parsed is None:
            parsed = self._general(data)
        cells, rows, cols = parsed
        if len(cells) > book.limits.max_cells:
            raise book.error(f"{len(cells):,} cells, over the {book.limits.max_cells:,} limit (--max-cells)", name)
        if len(rows) and (rows.max() > 1_048_576 or cols.max() > 16_384):
            raise book.error("a cell lies beyond the largest sheet a spreadsheet app allows", name)
        if len(rows) > 1 and not np.all(np.diff(rows) >= 0):  # keep row order for binary search
            order = np.argsort(rows, kind="stable")
            cells = cells.take(order) if isinstance(cells, ScannedCells) else [cells[i] for i in order.tolist()]
            rows, cols = rows[order], cols[order]
        self._cells, self._rows, self._cols = cells, rows, cols
        self._by_col: dict[int, np.ndarray] = {}
        self._arrays = None  # whole-sheet value/formula arrays, made on first use by numbers()
        self._shared_masters: dict[str, tuple[int, int, str]] | None = None

    # the fast path: one pattern, verified against tag counts
    @staticmethod
    def _fast(data: bytes):
        if _UNEXPECTED in data:
            return None
        found = _CELL.findall(data)

        def present(i):
            return sum(map(bool, map(itemgetter(i), found)))
        # every cell and every formula must be accounted for (a missed formula would look like a typed
        # constant); a missed value is harmless: the cell then has no cached value and gets recalculated
        # formula tags only (<f>, <f …>, <f/>): a conditional format's <formula> is no cell's formula
        if len(found) != data.count(b"<c ") or present(_F_OPEN) != len(_F_TAG.findall(data)):
            return None  # something the pattern does not account for: the general parser decides
        letters = {col: column_index(col.decode()) for col in set(map(itemgetter(0), found))}
        rows = np.array(list(map(itemgetter(1), found)), dtype="S7").astype(np.int64)
        cols = np.array(list(map(letters.__getitem__, map(itemgetter(0), found))), dtype=np.int64)
        return found, rows, cols

    # the general path: namespace-aware, any layout, still defused
    def _general(self, data: bytes):
        try:
            root = SafeET.fromstring(data, forbid_dtd=True)
        except DefusedXmlException:
            raise self.book.error("the sheet declares a DTD or entities, refused", self.name) from None
        except SafeET.ParseError as exc:
            raise self.book.error(f"the sheet is not well-formed XML ({exc})", self.name) from None
        cells, rows, cols = [], [], []
        row_no = 0
        for row in root.iter():
            if row.tag.rsplit("}", 1)[-1] != "row":
                continue
            try:
                row_no = int(row.get("r", row_no + 1))
            except ValueError:
                raise self.book.error(f"malformed row number {row.get('r')[:20]!r}", self.name) from None
            col_no = 0
            for c in row:
                if c.tag.rsplit("}", 1)[-1] != "c":
                    continue
                ref = c.get("r")
                if ref:
                    m = re.fullmatch(r"([A-Z]{1,3})([0-9]{1,7})", ref)
                    if not m:
                        raise self.book.error(f"malformed cell reference {ref[:20]!r}", self.name)
                    col_no, row_no = column_index(m.group(1)), int(m.group(2))
                else:
                    col_no += 1
                attrs = "".join(f' {k}="{val}"' for k, val in c.attrib.items() if k == "t").encode()
                f_open, f_text, v, inline = b"", b"", b"", b""
                for child in c:
                    tag = child.tag.rsplit("}", 1)[-1]
                    if tag == "f":
                        f_open = ("<f" + "".join(f' {k}="{val}"' for k, val in child.attrib.items()) + ">").encode()
                        f_text = _escape(child.text or "").encode()
                    elif tag == "v":
                        v = _escape(child.text or "").encode()
                    elif tag == "is":
                        inline = _escape("".join(x.text or "" for x in child.iter()
                                                 if x.tag.rsplit("}", 1)[-1] == "t")).encode()
                cells.append((b"", b"", attrs, f_open, f_text, v, inline))
                rows.append(row_no)
                cols.append(col_no)
                if len(cells) > self.book.limits.max_cells:
                    raise self.book.error(f"over {self.book.limits.max_cells:,} cells (--max-cells)", self.name)
        return cells, np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

    # --- access --------------------------------------------------------------------------------
    def _raw(self, row: int, col: int):
        lo, hi = np.searchsorted(self._rows, (row, row + 1))
        for i in range(int(lo), int(hi)):
            if self._cols[i] == col:
                return self._cells[i]
        return None

    def max_row(self) -> int:
        return int(self._rows.max()) if len(self._rows) else 0

    def texts(self, max_row: int) -> dict[int, dict[str, int]]:
        """{row: {text: column}} of the text cells in the first ``max_row`` rows (header search)."""
        out: dict[int, dict[str, int]] = {}
        n = int(np.searchsorted(self._rows, max_row + 1))
        _, _, plain = self._whole_sheet_arrays()  # plain numbers are no text: only the others are looked at
        for i in np.flatnonzero(~plain[:n]).tolist():
            raw = self._cells[i]
            attrs = raw[_ATTRS]
            if b't="s"' in attrs or b't="inlineStr"' in attrs or b't="str"' in attrs:
                value, _ = self._decode(raw)
                if isinstance(value, str):
                    out.setdefault(int(self._rows[i]), {}).setdefault(value.strip(), int(self._cols[i]))
        return out

    def value(self, row: int, col: int):
        raw = self._raw(row, col)
        return None if raw is None else self._decode(raw)[0]

    def cell(self, row: int, col: int) -> Cell | None:
        raw = self._raw(row, col)
        if raw is None:
            return None
        value, has_cache = self._decode(raw)
        formula = self._formula(row, col, raw) if raw[_F_OPEN] else None
        return Cell(value, formula, has_cache)

    def has_formula(self, row: int, col: int) -> bool:
        raw = self._raw(row, col)
        return bool(raw and raw[_F_OPEN])

    def formula(self, row: int, col: int) -> str | None:
        raw = self._raw(row, col)
        return self._formula(row, col, raw) if raw and raw[_F_OPEN] else None

    def raw_formulas(self, positions) -> list[bytes]:
        """Formula texts of the cells at ``positions`` (indices into the sheet's cells) as stored, XML-escaped;
        a shared formula's follower gets its master's text moved to it; b"" for a cell without one."""
        cells, pos = self._cells, np.asarray(positions, np.int64)
        if isinstance(cells, ScannedCells):
            d = cells.data
            texts = [d[a:b] for a, b in zip(cells.spans[8, pos].tolist(), cells.spans[9, pos].tolist())]
        else:
            texts = [cells[i][_F_TEXT] for i in pos.tolist()]
        for k in [k for k, t in enumerate(texts) if not t]:
            i = int(pos[k])
            raw = cells[i]
            text = self._formula(int(self._rows[i]), int(self._cols[i]), raw) if raw[_F_OPEN] else None
            texts[k] = _escape(text).encode() if text else b""
        return texts

    def formula_spans(self, positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`raw_formulas` as (buffer, starts, ends) for :class:`sheetsgd.read.formula_forms.Forms`: spans of the
        sheet's own bytes when they are all stored as text (no per-cell work), else joined."""
        cells, pos = self._cells, np.asarray(positions, np.int64)
        if isinstance(cells, ScannedCells):
            start, end = cells.spans[8, pos], cells.spans[9, pos]
            if (end > start).all():  # no shared formula's follower (their text is their master's, moved)
                return padded_buffer_of(cells.buf), start, end
        return join(self.raw_formulas(pos))

    def numbers(self, col: int, rows) -> tuple[list | np.ndarray, np.ndarray, np.ndarray]:
        """Values of column ``col`` at ``rows`` (a float array when every cell holds a number, else a list
        of floats / text / CellError / None), which hold a formula, and which are formulas without a
        cached value. The checker's fast path: a 10,000-step column is picked out and converted in C."""
        if col not in self._by_col:
            self._by_col[col] = np.flatnonzero(self._cols == col)
        at = self._by_col[col]
        want = np.asarray(list(rows), dtype=np.int64)
        if len(at) == 0 or len(want) == 0:
            n = len(want)
            return [None] * n, np.zeros(n, bool), np.zeros(n, bool)
        col_rows = self._rows[at]
        p = np.minimum(np.searchsorted(col_rows, want), len(at) - 1)
        hit = col_rows[p] == want
        pos = at[p]
        if hit.all():
            numbers, has_f, plain = self._whole_sheet_arrays()
            if plain[pos].all():
                return numbers[pos], has_f[pos], np.zeros(len(pos), bool)
        raws = [self._cells[i] if h else None for i, h in zip(pos.tolist(), hit.tolist())]
        values, formulas, uncached = [], [], []
        for raw in raws:
            if raw is None:
                values.append(None)
                formulas.append(False)
                uncached.append(False)
                continue
            has = bool(raw[_F_OPEN])
            value, has_cache = self._decode(raw)
            values.append(value)
            formulas.append(has)
            uncached.append(has and not has_cache)
        return values, np.array(formulas, bool), np.array(uncached, bool)

    def _whole_sheet_arrays(self):
        """Every cell's value as a float (NaN unless a plain number of at most 32 characters) and whether it
        holds a formula: columns are then picked out of these arrays, converted by numpy in one go."""
        if self._arrays is None and isinstance(self._cells, ScannedCells):
            numbers, plain = self._cells.numbers()
            self._arrays = (numbers, self._cells.has_formula(), plain)
        if self._arrays is None:
            cells = self._cells
            values = list(map(itemgetter(_V), cells))
            attrs = list(map(itemgetter(_ATTRS), cells))
            numeric = {a: b't="' not in a or b't="n"' in a for a in set(attrs)}
            plain = np.fromiter(map(numeric.__getitem__, attrs), bool, len(cells))
            lengths = np.fromiter(map(len, values), np.int64, len(cells))
            plain &= (lengths > 0) & (lengths <= 32)  # S32 below must not truncate
            numbers = np.full(len(cells), np.nan)
            at = np.flatnonzero(plain)
            numbers[at], readable = to_floats(np.array(values, dtype="S32")[at])
            plain[at[~readable]] = False  # something odd: not a plain number
            self._arrays = (numbers, np.fromiter(map(bool, map(itemgetter(_F_OPEN), cells)), bool, len(cells)),
                            plain)
        return self._arrays

    def _decode(self, raw) -> tuple[object, bool]:
        """(value, has_cache)."""
        attrs = raw[_ATTRS]
        i = attrs.find(b't="')
        t = attrs[i + 3:attrs.find(b'"', i + 3)].decode("utf-8", "replace") if i >= 0 else "n"
        has_f = bool(raw[_F_OPEN])
        v = raw[_IS_TEXT] if t == "inlineStr" else raw[_V]
        if v == b"" and t not in ("inlineStr", "str"):
            return None, not has_f
        text = v.decode("utf-8", "replace")
        if t == "n":
            try:
                return float(text), True
            except ValueError:
                return CellError("#VALUE!"), True
        if t == "s":
            strings = self.book.shared_strings()
            try:
                return strings[int(text)], True
            except (ValueError, IndexError):
                raise self.book.error(f"a cell refers to shared string {text[:20]!r}, which does not exist",
                                      self.name) from None
        if t in ("str", "inlineStr"):
            text = _unescape(text)
            self.book._check_string(text, self.name)
            return text, True
        if t == "b":
            return text.strip() in ("1", "true"), True
        if t == "e":
            return CellError(text.strip()), True
        return text, True

    def _formula(self, row: int, col: int, raw) -> str | None:
        attrs = dict(_ATTR.findall(raw[_F_OPEN].decode("utf-8", "replace")))
        text = _unescape(raw[_F_TEXT].decode("utf-8", "replace"))
        if len(text) > self.book.limits.max_string_chars:
            raise self.book.error(f"a formula of {len(text):,} characters", f"{self.name}!{column_letters(col)}{row}")
        if attrs.get("t") == "shared" and not text:  # a follower: the master's formula moved here
            master = self._shared_master(attrs.get("si", ""))
            if master is None:
                return None
            return translate(master[2], row - master[0], col - master[1])
        return text.lstrip("=")

    def _shared_master(self, si: str):
        if self._shared_masters is None:
            self._shared_masters = {}
            cells = self._cells
            candidates = cells.tagged_formulas().tolist() if isinstance(cells, ScannedCells) else range(len(cells))
            for i in candidates:
                raw = cells[i]
                if raw[_F_OPEN] and b'"shared"' in raw[_F_OPEN] and raw[_F_TEXT]:
                    attrs = dict(_ATTR.findall(raw[_F_OPEN].decode("utf-8", "replace")))
                    self._shared_masters[attrs.get("si", "")] = (int(self._rows[i]), int(self._cols[i]),
                                                                 _unescape(raw[_F_TEXT].decode("utf-8", "replace")))
        return self._shared_masters.get(si)


def is_finite_number(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)
