"""Files a user names as input (templates, rosters): regular files only, read with a size bound.

A FIFO would block the read until something writes to it, and a device such as ``/dev/zero`` never
ends: both are refused in one line before a byte is read (the file is opened without blocking and
judged by what it is, not by its name). A regular file larger than its bound is refused too.
"""
from __future__ import annotations

import os
import stat

from sheetsgd.errors import SheetsgdError

MAX_TEMPLATE_BYTES = 8 * 2**20  # the bundled templates are under 3 KB; data lists inside a template stay far below
MAX_ROSTER_BYTES = 16 * 2**20  # about 200,000 students with names and e-mail addresses


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def read_regular(path, what: str, max_bytes: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes`` (``what`` names it in errors)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SheetsgdError("no such file", os.fsdecode(path)) from None
    except OSError as exc:
        raise SheetsgdError(f"cannot read the {what}: {exc.strerror or exc}", os.fsdecode(path)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # judged before fdopen, which refuses a folder with its own exception
        os.close(fd)
        raise SheetsgdError(f"is {_kind(mode)}, not a regular file: the {what} must be a file", os.fsdecode(path))
    with os.fdopen(fd, "rb") as fh:
        too_big = SheetsgdError(f"the {what} is larger than {max_bytes / 2**20:g} MB, more than a {what} needs",
                                os.fsdecode(path))
        if os.fstat(fd).st_size > max_bytes:
            raise too_big
        try:
            data = fh.read(max_bytes + 1)  # the bound holds even if the file grows meanwhile
        except OSError as exc:
            raise SheetsgdError(f"cannot read the {what}: {exc.strerror or exc}", os.fsdecode(path)) from None
        if len(data) > max_bytes:
            raise too_big
    return data
