"""Reading untrusted .xlsx files safely: the zip container, its bounds, the workbook's parts.

An .xlsx file is a zip of XML parts. Before anything is inflated, the archive's member count and
every member's declared size are checked against :class:`Limits`; members are then inflated in
chunks and abandoned as soon as they exceed their bound (a zip may lie about sizes). XML is parsed
with defusedxml (no DTDs, no entity expansion, no external entities). Macro projects
(``xl/vbaProject.bin``) are noted, never read; nested archives (embedded objects) are never opened.
The file is opened read-only and never written. One worksheet's cells: sheetsgd.read.sheet.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass
from xml.parsers import expat

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from sheetsgd.errors import SheetsgdError
from .sheet import Sheet

def is_part_name(name: str) -> bool:
    """A zip member name a package part can have: relative, no ``..`` or empty segment, no backslash,
    drive or control character. Anything else (``../../x``, ``/abs/x``) is never copied into a file
    sheetsgd writes: unzip would place it outside the folder it extracts to."""
    if not name or name.startswith("/") or "\\" in name or ":" in name.split("/", 1)[0]:
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return False
    segments = name.rstrip("/").split("/")
    return all(s not in ("", ".", "..") for s in segments)


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
    max_shared_strings: int = 1_000_000  # entries of the shared-string table
    max_shared_chars: int = 32_000_000   # their characters, together
    max_string_runs: int = 1_000       # formatted runs in one shared string


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


_PINNED: dict[str, bytes] = {}


@contextlib.contextmanager
def pinned(path, limits: Limits = Limits()):
    """Read ``path`` once; every :class:`Workbook` of that path opened inside the block reads these bytes
    (the check and the annotated copy of one file see the same bytes, even if the file is replaced
    meanwhile). Yields the bytes, or None when the file is not a regular file within ``--max-file-mb``
    (the Workbook then says why in its own words)."""
    path = str(path)
    data = None
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode) and st.st_size <= limits.max_file_mb * 1e6:
            with open(path, "rb") as fh:
                data = fh.read(int(limits.max_file_mb * 1e6) + 1)
            if len(data) > limits.max_file_mb * 1e6:
                data = None
    except OSError:
        data = None
    previous = _PINNED.get(path)
    if data is not None:
        _PINNED[path] = data
    try:
        yield data
    finally:
        if data is not None:
            if previous is None:
                _PINNED.pop(path, None)
            else:
                _PINNED[path] = previous


def input_bytes(path) -> bytes:
    """The file's bytes: the pinned copy when there is one (sheetsgd.check.checker hands them to LibreOffice)."""
    data = _PINNED.get(str(path))
    if data is None:
        with open(path, "rb") as fh:
            data = fh.read()
    return data


class Workbook:
    """A read-only view of one .xlsx file: sheets, defined names, cells. Every problem is a SheetsgdError."""

    def __init__(self, path: str, limits: Limits = Limits()):
        self.path, self.limits = str(path), limits
        self._inflated = 0
        self._sheets: dict[str, Sheet] = {}
        data = _PINNED.get(self.path)
        try:
            if data is not None:  # the bytes read once for this run (``pinned``): checked and annotated alike
                head, size = data[:8], len(data)
            elif not stat.S_ISREG(os.stat(self.path).st_mode):  # a FIFO or device would block or never end
                raise SheetsgdError("not a regular file", self.path)
            else:
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
            self.zip = zipfile.ZipFile(self.path if data is None else io.BytesIO(data))
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
        blob = _PINNED.get(self.path)
        if blob is None:
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
            name = "xl/sharedStrings.xml"
            self._shared = _SharedStrings(self, name).parse(self._read(name)) if name in self.members else []
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


class _SharedStrings:
    """The shared-string table, streamed (expat, no tree: linear time, memory for the strings only) and
    bounded: entries, their characters together, and runs per string (``Limits``); East-Asian reading
    hints (``<rPh>``) are not part of the text. A DTD or entity declaration is refused."""

    def __init__(self, book: "Workbook", name: str):
        self.book, self.name, self.limits = book, name, book.limits
        self.out: list[str] = []
        self.text: list[str] | None = None
        self.length = self.total = self.runs = self.phonetic = 0
        self.in_t = False

    def parse(self, data: bytes) -> list[str]:
        if data.count(b"<si>") + data.count(b"<si ") > self.limits.max_shared_strings:  # the plain form, at C speed
            self._too_many()
        parser = expat.ParserCreate(namespace_separator="}")
        parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = self._refuse_dtd
        parser.StartElementHandler, parser.EndElementHandler = self._start, self._end
        parser.CharacterDataHandler = self._chars
        parser.buffer_text = True
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            raise self.book.error(f"part {self.name} is not well-formed XML ({exc})") from None
        return self.out

    def _too_many(self):
        raise self.book.error(f"more than {self.limits.max_shared_strings:,} shared strings in {self.name}: refused")

    def _refuse_dtd(self, *_):
        raise self.book.error(f"part {self.name} declares a DTD or entities, refused")

    def _start(self, tag, attrs):
        local = tag.rsplit("}", 1)[-1]
        if local == "si":
            if len(self.out) >= self.limits.max_shared_strings:
                self._too_many()
            self.text, self.length, self.runs, self.phonetic = [], 0, 0, 0
        elif self.text is None:
            return
        elif local == "r":
            self.runs += 1
            if self.runs > self.limits.max_string_runs:
                raise self.book.error(f"a shared string of more than {self.limits.max_string_runs:,} formatted runs "
                                      f"in {self.name}: refused")
        elif local == "rPh":
            self.phonetic += 1
        elif local == "t":
            self.in_t = not self.phonetic

    def _end(self, tag):
        local = tag.rsplit("}", 1)[-1]
        if local == "si" and self.text is not None:
            self.out.append("".join(self.text))
            self.text = None
        elif local == "rPh":
            self.phonetic -= 1
        elif local == "t":
            self.in_t = False

    def _chars(self, data):
        if self.in_t and self.text is not None:
            self.text.append(data)
            self.length += len(data)
            self.total += len(data)
            if self.length > self.limits.max_string_chars:
                self.book._check_string("".join(self.text), self.name)
            if self.total > self.limits.max_shared_chars:
                raise self.book.error(f"shared strings of more than {self.limits.max_shared_chars:,} characters "
                                      f"together in {self.name}: refused")
