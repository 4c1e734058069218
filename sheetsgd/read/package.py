"""Reading untrusted .xlsx files safely: the zip container, its bounds, the workbook's parts.

An .xlsx file is a zip of XML parts. Before anything is inflated, the archive's member count and
every member's declared size are checked against :class:`Limits`; a deflated member is then inflated
in one call (ISA-L where installed) that never makes more than its bound, others in chunks abandoned as
soon as they exceed it (a zip may lie about sizes); CRC-32s are checked. XML is parsed
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
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from sheetsgd.errors import SheetsgdError
from .shared_strings import SharedStrings
from .sheet import Sheet

try:  # ISA-L's inflate: the same DEFLATE, about 4× faster than zlib on a big sheet
    from isal import isal_zlib as _inflater
except ImportError:  # a platform without its wheel: zlib
    _inflater = zlib

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
        if info.compress_type == zipfile.ZIP_DEFLATED:
            return self._inflate(info, limit)
        chunks, total = [], 0
        try:
            with self.zip.open(info) as fh:
                while True:
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit or self._inflated + total > self.limits.max_total_mb * 1e6:
                        raise self._beyond_bound(name, limit)
                    chunks.append(chunk)
        except SheetsgdError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise self.error(f"corrupt zip member {name} ({exc})") from None
        except Exception as exc:  # zlib.error and friends: a damaged stream
            raise self.error(f"corrupt zip member {name} ({type(exc).__name__}: {exc})") from None
        self._inflated += total
        return b"".join(chunks)

    def _beyond_bound(self, name: str, limit: int) -> SheetsgdError:
        return self.error(f"part {name} inflates beyond its bound ({limit / 1e6:g} MB per part, "
                          f"{self.limits.max_total_mb:g} MB in all): a zip bomb?")

    def _inflate(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        """A deflated member, inflated in one call that never makes more than its bound (plus one byte, to
        tell), its CRC-32 checked: what zipfile's chunked reading checks, without its per-chunk overhead.
        The member's place and sizes are the central directory's, as zipfile read them."""
        name, room = info.filename, min(limit, int(self.limits.max_total_mb * 1e6) - self._inflated)
        fp = self.zip.fp
        try:
            fp.seek(info.header_offset)
            header = fp.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise self.error(f"corrupt zip member {name} (no local file header)")
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            if fp.read(name_length) != info.orig_filename.encode("cp437" if not info.flag_bits & 0x800 else "utf-8"):
                raise self.error(f"corrupt zip member {name} (its local header names another file)")
            fp.seek(extra_length, os.SEEK_CUR)
            raw = fp.read(info.compress_size)
            if len(raw) != info.compress_size:
                raise self.error(f"corrupt zip member {name} (truncated)")
            inflater = _inflater.decompressobj(-15)
            data = inflater.decompress(raw, max(room, 0) + 1)
        except SheetsgdError:
            raise
        except Exception as exc:  # zlib.error, IsalError, OSError: a damaged or truncated stream
            raise self.error(f"corrupt zip member {name} ({type(exc).__name__}: {exc})") from None
        if len(data) > room:
            raise self._beyond_bound(name, limit)
        if not inflater.eof:
            raise self.error(f"corrupt zip member {name} (the compressed data ends before its end marker)")
        if _inflater.crc32(data) != info.CRC:
            raise self.error(f"corrupt zip member {name} (Bad CRC-32 for file {name!r})")
        self._inflated += len(data)
        return data

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
            self._shared = SharedStrings(self, name).parse(self._read(name)) if name in self.members else []
        return self._shared

    def _check_string(self, text: str, where: str) -> None:
        if len(text) > self.limits.max_string_chars:
            raise self.error(f"a string of {len(text):,} characters in {where}, over the "
                             f"{self.limits.max_string_chars:,} limit")

    def sheet(self, name: str) -> "Sheet":
        if name not in self._sheets:
            self._sheets[name] = Sheet(self, name, self._part_of(name))
        return self._sheets[name]

    def _part_of(self, name: str) -> str:
        info = next((s for s in self.sheets if s["name"] == name), None)
        if info is None:
            raise self.error(f"no sheet named {name!r}")
        if not info["part"] or info["part"] not in self.members:
            raise self.error(f"sheet {name!r} has no worksheet part")
        return info["part"]

    def read_sheets(self) -> None:
        """Every worksheet read now, as :meth:`sheet` reads it: inflated in turn, here, then scanned (and its
        numbers converted) two at a time, the biggest here and the others in a second thread (the scanner is
        numpy over the bytes, which runs without the interpreter lock). A sheet that cannot be read is left to
        :meth:`sheet` to say why."""
        parts = {}
        for name in self.sheet_names:
            if name in self._sheets:
                continue
            try:
                part = self._part_of(name)
                parts[name] = (part, self._read(part))
            except SheetsgdError:
                continue
        if not parts:
            return
        biggest = max(parts, key=lambda n: len(parts[n][1]))

        def read(name):
            try:
                sheet = Sheet(self, name, *parts[name])
                sheet._whole_sheet_arrays()  # its numbers, which every sheet's values are read through
                return name, sheet
            except SheetsgdError:
                return name, None
        others = [n for n in parts if n != biggest]
        pool = ThreadPoolExecutor(1, thread_name_prefix="sheetsgd-read") if others else None
        try:
            try:
                later = pool.map(read, others) if pool is not None else iter(())
            except RuntimeError:  # no thread to be had (a memory cap): one at a time, here
                pool, later = None, map(read, others)
            done = [read(biggest), *later]
        finally:  # a timeout (OutOfTime) or an error here: what the thread has not started is dropped
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for name, sheet in done:
            if sheet is not None:
                self._sheets.setdefault(name, sheet)
