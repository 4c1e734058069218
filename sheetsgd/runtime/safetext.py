"""Text from files (file, sheet and column names, formulas, cell text) made safe to show anywhere.

Every report, CSV cell, Markdown and HTML page, JSON document and progress line passes such text
through here, so nothing a submission holds can drive a terminal or forge a line:

* control characters — C0 (newline and tab among them), DEL, C1 (U+009B, the one-byte CSI, among
  them), the line and paragraph separators and the bidirectional overrides — become visible escapes
  (``\\x1b``, ``\\n``, ``\\u009b``), so a name with a newline stays on its line;
* bytes of a file name that are not UTF-8 (Python hands them over as lone surrogates, e.g. from
  ``stud\\xff\\xfeent.xlsx`` as unzip makes from a legacy archive) are shown as ``\\xff``, so ids, CSV,
  JSON and HTML can be written in UTF-8.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile

_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CONTROLS}{_SURROGATES}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text, keep: str = "") -> str:
    """``text`` on one line with every control character escaped (but those in ``keep``, e.g. ``"\\n"``
    for a whole multi-line report made of escaped parts) and undecodable bytes shown as ``\\xNN``."""
    text = text if isinstance(text, str) else os.fsdecode(text) if isinstance(text, bytes) else str(text)
    if keep:
        return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return _UNSAFE.sub(_escape, text)


def shown_path(path) -> str:
    """A file name or path as text: what :func:`shown` makes of it."""
    return shown(os.fsdecode(os.fspath(path)))


def encodable(text: str) -> str:
    """``text`` with only the undecodable bytes of file names escaped (the format escapes the rest)."""
    return re.sub(f"[{_SURROGATES}]", _escape, text)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_JSON_SURROGATE = re.compile(f"[{_SURROGATES}]")


def json_text(data, **dumps) -> str:
    """``json.dumps(data, ensure_ascii=False, **dumps)`` safe to print and to write in UTF-8: DEL, C1 and
    the other invisible controls JSON leaves raw become ``\\uXXXX`` (the same text, decoded); a file
    name's undecodable byte becomes the text ``\\xff`` (surrogates occur only inside JSON strings)."""
    text = json.dumps(data, ensure_ascii=False, **dumps)
    text = _JSON_SURROGATE.sub(lambda m: "\\" + _escape(m), text)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@contextlib.contextmanager
def utf8_named(path: str):
    """``path``, or a temporary copy of the file when its name is not UTF-8 (for a library, such as
    IronCalc, that takes file names as UTF-8 text)."""
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:
        with tempfile.TemporaryDirectory(prefix="sheetsgd-") as tmp:
            copy = os.path.join(tmp, "submission" + os.path.splitext(encodable(os.fsdecode(path)))[1])
            shutil.copyfile(path, copy)
            yield copy
        return
    yield path


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A CSV cell a spreadsheet will not run as a formula: text starting with = + - @ (or tab/CR) gets a
    leading apostrophe. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_DANGEROUS):
        return "'" + value
    return value
