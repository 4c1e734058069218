"""Reading untrusted .xlsx files safely: bounded, read-only, no code ever run.

An .xlsx file is a zip of XML parts. Before anything is inflated, the archive's member count and
every member's declared size are checked against :class:`Limits`; members are then inflated in
chunks and abandoned as soon as they exceed their bound (a zip may lie about sizes). XML is parsed
with defusedxml (no DTDs, no entity expansion, no external entities). Macro projects
(``xl/vbaProject.bin``) are noted, never read; nested archives (embedded objects) are never opened.
The file is opened read-only and never written.

Worksheets are big (a 10,000-step lesson is an 11 MB sheet), so cells are read with one compiled
pattern over the raw XML, which only matches the plain form every spreadsheet app writes; the
count of matches is verified against the count of ``<c``/``<f``/``<v`` tags, and any sheet the
pattern does not fully account for (namespace prefixes, rich text, CDATA, cells without
references) is parsed by the general defusedxml parser instead. Neither path expands entities.
"""
from __future__ import annotations

import math
import os
import posixpath
import stat
from operator import itemgetter
import re
import zipfile
from dataclasses import dataclass

import numpy as np
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from .errors import SheetsgdError

ERROR_VALUES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#CIRC!", "#SPILL!",
                "#CALC!", "#GETTING_DATA", "#ERROR!")


def megabytes(n_bytes: int) -> str:
    """A size in MB with useful precision: 0.0234, 4.56, 123, 1,234."""
    mb = n_bytes / 1e6
    return f"{mb:,.0f}" if mb >= 100 else f"{mb:.3g}"


@dataclass(frozen=True)
class Limits:
    """Bounds on what a file may make the reader do; every one can be raised from the command line."""

    max_file_mb: float = 100           # the .xlsx file itself
    max_members: int = 2000            # zip members
    max_part_mb: float = 64            # one XML part, inflated (a 10,000-step Steps sheet is about 11 MB)
    max_total_mb: float = 256          # all parts the reader inflates, together
    max_cells: int = 2_000_000         # cells of one sheet
    max_string_chars: int = 32_767     # one string (Excel's own cell limit)


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


def _sniff(head: bytes) -> str | None:
    """Why a file that is not a zip cannot be a workbook, from its first bytes."""
    if not head:
        return "empty file"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return None  # OLE2: decided by the caller (legacy .xls or an encrypted .xlsx)
    if head.startswith(b"%PDF"):
        return "a PDF document, not an .xlsx workbook"
    if head.startswith(b"\x89PNG") or head[:3] == b"\xff\xd8\xff" or head[:4] in (b"GIF8",):
        return "an image, not an .xlsx workbook"
    if head.startswith(b"PK"):
        return None
    try:
        head.decode("utf-8")
        return "a text file (CSV?), not an .xlsx workbook: open it in a spreadsheet app and save as .xlsx"
    except UnicodeDecodeError:
        return "not an .xlsx workbook (not a zip archive)"


class Workbook:
    """A read-only view of one .xlsx file: sheets, defined names, cells. Every problem is a SheetsgdError."""

    def __init__(self, path: str, limits: Limits = Limits()):
        self.path, self.limits = str(path), limits
        self._inflated = 0
        self._sheets: dict[str, Sheet] = {}
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):  # a FIFO or device would block or never end
                raise SheetsgdError("not a regular file", self.path)
            with open(self.path, "rb") as fh:  # read-only, never written
                head = fh.read(8)
                fh.seek(0, 2)
                size = fh.tell()
        except FileNotFoundError:
            raise SheetsgdError("no such file", self.path) from None
        except IsADirectoryError:
            raise SheetsgdError("is a folder, not a file", self.path) from None
        except OSError as exc:
            raise SheetsgdError(f"cannot read: {exc.strerror or exc}", self.path) from None
        reason = _sniff(head)
        if reason:
            raise self.error(reason)
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise self.error(self._ole_reason())
        if size > limits.max_file_mb * 1e6:
            raise self.error(f"file is {megabytes(size)} MB, over the {limits.max_file_mb:g} MB limit (--max-file-mb)")
        try:
            self.zip = zipfile.ZipFile(self.path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise self.error(f"corrupt or truncated zip archive ({exc})") from None
        if len(infos) > limits.max_members:
            raise self.error(f"zip holds {len(infos)} members, over the {limits.max_members} limit (--max-members)")
        self.members = {i.filename: i for i in infos}
        if "mimetype" in self.members and b"opendocument" in self._read("mimetype", 200):
            raise self.error("an OpenDocument spreadsheet (.ods): save it as .xlsx to check it")
        if "xl/workbook.xml" not in self.members:
            raise self.error("a zip archive without xl/workbook.xml: not an .xlsx workbook")
        self.has_macros = any(n.lower().endswith("vbaproject.bin") for n in self.members)
        self._read_workbook()
        self._shared: list[str] | None = None

    def error(self, message: str, where: str | None = None) -> SheetsgdError:
        return SheetsgdError(message, f"{self.path}{'!' + where if where else ''}")

    def _ole_reason(self) -> str:
        with open(self.path, "rb") as fh:
            blob = fh.read(1 << 20)
        if "EncryptionInfo".encode("utf-16-le") in blob or "EncryptedPackage".encode("utf-16-le") in blob:
            return "a password-encrypted workbook: remove the password (save without encryption) to check it"
        return "a legacy .xls (BIFF) workbook: save it as .xlsx to check it"

    # --- bounded inflation -------------------------------------------------------------------
    def _read(self, name: str, limit: int | None = None) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise self.error(f"the archive has no part {name}")
        limit = int(self.limits.max_part_mb * 1e6) if limit is None else limit
        if info.file_size > limit:
            raise self.error(f"part {name} declares {megabytes(info.file_size)} MB inflated, over the "
                             f"{limit / 1e6:g} MB limit (--max-part-mb): refused before inflating")
        if info.flag_bits & 0x1:
            raise self.error(f"part {name} is encrypted")
        chunks, total = [], 0
        try:
            with self.zip.open(info) as fh:
                while True:
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit or self._inflated + total > self.limits.max_total_mb * 1e6:
                        raise self.error(f"part {name} inflates beyond its bound ({limit / 1e6:g} MB per part, "
                                         f"{self.limits.max_total_mb:g} MB in all): a zip bomb?")
                    chunks.append(chunk)
        except SheetsgdError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise self.error(f"corrupt zip member {name} ({exc})") from None
        except Exception as exc:  # zlib.error and friends: a damaged stream
            raise self.error(f"corrupt zip member {name} ({type(exc).__name__}: {exc})") from None
        self._inflated += total
        return b"".join(chunks)

    def _xml(self, name: str):
        data = self._read(name)
        try:
            return SafeET.fromstring(data, forbid_dtd=True)
        except DefusedXmlException as exc:
            raise self.error(f"part {name} declares a DTD or entities, refused ({type(exc).__name__})") from None
        except SafeET.ParseError as exc:
            raise self.error(f"part {name} is not well-formed XML ({exc})") from None

    # --- workbook structure ------------------------------------------------------------------
    def _read_workbook(self) -> None:
        root = self._xml("xl/workbook.xml")
        rels = self._rels("xl/workbook.xml")
        self.sheets: list[dict] = []  # in workbook order: name, state, part
        self.defined_names: dict[str, str] = {}
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "sheet":
                rid = next((v for k, v in el.attrib.items() if k.rsplit("}", 1)[-1] == "id"), None)
                self.sheets.append({"name": el.get("name", ""), "state": el.get("state", "visible"),
                                    "part": rels.get(rid)})
            elif tag == "definedName" and el.get("localSheetId") is None and el.text:
                self.defined_names[el.get("name", "")] = el.text.strip()
        if not self.sheets:
            raise self.error("the workbook lists no sheets")

    def _rels(self, part: str) -> dict[str, str]:
        folder, base = posixpath.split(part)
        name = posixpath.join(folder, "_rels", base + ".rels")
        if name not in self.members:
            return {}
        out = {}
        for el in self._xml(name).iter():
            if el.tag.rsplit("}", 1)[-1] == "Relationship" and el.get("TargetMode") != "External":
                target = el.get("Target", "")
                path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
                out[el.get("Id")] = path
        return out

    @property
    def sheet_names(self) -> list[str]:
        return [s["name"] for s in self.sheets]

    def shared_strings(self) -> list[str]:
        if self._shared is None:
            self._shared = []
            name = "xl/sharedStrings.xml"
            if name in self.members:
                for si in self._xml(name):
                    if si.tag.rsplit("}", 1)[-1] != "si":
                        continue
                    text = "".join(t.text or "" for t in si.iter() if t.tag.rsplit("}", 1)[-1] == "t"
                                   and not _inside_phonetic(si, t))
                    self._check_string(text, name)
                    self._shared.append(text)
        return self._shared

    def _check_string(self, text: str, where: str) -> None:
        if len(text) > self.limits.max_string_chars:
            raise self.error(f"a string of {len(text):,} characters in {where}, over the "
                             f"{self.limits.max_string_chars:,} limit")

    def sheet(self, name: str) -> "Sheet":
        if name not in self._sheets:
            info = next((s for s in self.sheets if s["name"] == name), None)
            if info is None:
                raise self.error(f"no sheet named {name!r}")
            if not info["part"] or info["part"] not in self.members:
                raise self.error(f"sheet {name!r} has no worksheet part")
            self._sheets[name] = Sheet(self, name, info["part"])
        return self._sheets[name]


def _escape(text: str) -> str:  # the general parser has unescaped already; raw cells hold escaped text
    return text.replace("&", "&amp;").replace("<", "&lt;")


def _inside_phonetic(si, t) -> bool:  # East-Asian reading hints (<rPh>) are not part of the text
    for rph in si.iter():
        if rph.tag.rsplit("}", 1)[-1] == "rPh" and any(x is t for x in rph.iter()):
            return True
    return False


class Sheet:
    """The cells of one worksheet, addressed by (row, column), both 1-based.

    Cells are kept as the parser found them, in row order, with numpy arrays of their rows and
    columns: whole columns are then picked out by array operations, not one lookup per cell.
    """

    def __init__(self, book: Workbook, name: str, part: str):
        self.book, self.name, self.part = book, name, part
        data = book._read(part)
        head = data[:4096]
        root = head.find(b"<worksheet")
        if b"<!" in (head[:root] if root >= 0 else head):  # a DTD can only sit before the root element
            raise book.error("the sheet declares a DTD or entities, refused (entity expansion)", name)
        if root < 0 and b"<!ENTITY" in data:
            raise book.error("the sheet declares a DTD or entities, refused (entity expansion)", name)
        parsed = self._fast(data) if b"<worksheet" in head else None
        if parsed is None:
            parsed = self._general(data)
        cells, rows, cols = parsed
        if len(cells) > book.limits.max_cells:
            raise book.error(f"{len(cells):,} cells, over the {book.limits.max_cells:,} limit (--max-cells)", name)
        if len(rows) and (rows.max() > 1_048_576 or cols.max() > 16_384):
            raise book.error("a cell lies beyond the largest sheet a spreadsheet app allows", name)
        if len(rows) > 1 and not np.all(np.diff(rows) >= 0):  # keep row order for binary search
            order = np.argsort(rows, kind="stable")
            cells, rows, cols = [cells[i] for i in order.tolist()], rows[order], cols[order]
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
        if len(found) != data.count(b"<c ") or present(_F_OPEN) != data.count(b"<f"):
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
        for i in range(n):
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
        if self._arrays is None:
            cells = self._cells
            values = list(map(itemgetter(_V), cells))
            attrs = list(map(itemgetter(_ATTRS), cells))
            numeric = {a: b't="' not in a or b't="n"' in a for a in set(attrs)}
            plain = np.fromiter(map(numeric.__getitem__, attrs), bool, len(cells))
            lengths = np.fromiter(map(len, values), np.int64, len(cells))
            plain &= (lengths > 0) & (lengths <= 32)  # S32 below must not truncate
            numbers = np.full(len(cells), np.nan)
            text = np.array(values, dtype="S32")[plain]
            try:
                numbers[plain] = text.astype(float)
            except ValueError:  # something odd among them: convert one by one, odd ones are not plain
                for i in np.flatnonzero(plain).tolist():
                    try:
                        numbers[i] = float(values[i])
                    except ValueError:
                        plain[i] = False
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
            for i, raw in enumerate(self._cells):
                if raw[_F_OPEN] and b'"shared"' in raw[_F_OPEN] and raw[_F_TEXT]:
                    attrs = dict(_ATTR.findall(raw[_F_OPEN].decode("utf-8", "replace")))
                    self._shared_masters[attrs.get("si", "")] = (int(self._rows[i]), int(self._cols[i]),
                                                                 _unescape(raw[_F_TEXT].decode("utf-8", "replace")))
        return self._shared_masters.get(si)


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


def is_finite_number(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)
