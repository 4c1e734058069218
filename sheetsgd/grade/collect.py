"""Which files ``grade`` reads, under one link policy, with every skipped entry reported, and unique ids.

Policy (README, "grade"):

* A folder given on the command line contributes the regular files directly inside it; nothing is
  searched below it.
* A symbolic link (given, or inside a given folder) is followed only when it ends at a regular file in
  the same folder as the link: links never lead out of the folders given. A link elsewhere, a dangling
  or looping link, a link to a folder or device is skipped.
* FIFOs, sockets and devices are never opened (a FIFO would block the grader); subfolders (a folder
  named ``x.xlsx`` too), hidden files and Office lock files (``~$…``) are skipped.
* The same file named twice (directly, by a link, or through two folders) is graded once.

Every skipped entry comes back with its reason, so ``grade`` can say so instead of letting it vanish.
Ids are the file names without extension, made unique regardless of case (``same``, ``same-2``, …):
a CSV or a Gradescope upload on a case-insensitive file system would otherwise merge them.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sheetsgd.errors import SheetsgdError
from sheetsgd.runtime.safetext import shown_path


@dataclass
class Collected:
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe): never opened"
    if stat.S_ISSOCK(mode):
        return "a socket: never opened"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device: never opened"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _link_target(path: Path) -> tuple[Path | None, str]:
    """(the regular file a link ends at, '') or (None, why it is not followed)."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return None, "a dangling link (its target does not exist): not followed"
    except (RuntimeError, OSError) as exc:  # a loop: ELOOP, or RuntimeError on older Pythons
        return None, f"a link that cannot be resolved ({getattr(exc, 'strerror', None) or 'a loop'}): not followed"
    folder = path.parent.resolve()
    if target.parent != folder:
        return None, f"a link out of its folder (to {target}): links are never followed out of the folders given"
    mode = target.stat().st_mode
    if not stat.S_ISREG(mode):
        return None, f"a link to {_kind(mode).split(':')[0]}: not followed"
    return target, ""


def _entry(path: Path, out: Collected, seen: dict, in_folder: bool) -> None:
    name = path.name
    if in_folder and name.startswith((".", "~$")):
        out.skipped.append((str(path), "a hidden file or an Office lock file"))
        return
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        out.skipped.append((str(path), f"cannot be read: {exc.strerror}"))
        return
    real = path
    if stat.S_ISLNK(mode):
        real, why = _link_target(path)
        if real is None:
            out.skipped.append((str(path), why))
            return
    elif stat.S_ISDIR(mode):
        out.skipped.append((str(path), "a subfolder: folders are not searched below the one given (give it as its own PATH)"
                            if in_folder else "a folder"))
        return
    elif not stat.S_ISREG(mode):
        out.skipped.append((str(path), _kind(mode)))
        return
    st = real.stat()
    key = (st.st_dev, st.st_ino)
    if key in seen:
        out.skipped.append((str(path), f"the same file as {seen[key]}: graded once"))
        return
    seen[key] = str(path)
    out.files.append(path)


def collect(paths: list[str]) -> Collected:
    out, seen = Collected(), {}
    for p in map(Path, paths):
        try:
            mode = p.lstat().st_mode
        except FileNotFoundError:
            raise SheetsgdError("no such file or folder", str(p)) from None
        except OSError as exc:
            raise SheetsgdError(f"cannot read: {exc.strerror}", str(p)) from None
        if stat.S_ISDIR(mode):  # a folder given (a link to a folder is an entry, below)
            try:
                entries = sorted(p.iterdir())
            except OSError as exc:
                raise SheetsgdError(f"cannot list the folder: {exc.strerror}", str(p)) from None
            for f in entries:
                _entry(f, out, seen, in_folder=True)
        else:
            _entry(p, out, seen, in_folder=False)
    if not out.files:
        why = f" ({len(out.skipped)} entr{'y' if len(out.skipped) == 1 else 'ies'} skipped: " \
              f"{out.skipped[0][0]}: {out.skipped[0][1]})" if out.skipped else ""
        raise SheetsgdError(f"no files to grade in {', '.join(paths)}{why}")
    return out


def unique_ids(files: list[Path]) -> list[str]:
    """File stems, made unique ignoring case: the second 'same' (or 'SAME') becomes 'same-2'. A stem is
    text (:func:`sheetsgd.runtime.safetext.shown_path`): bytes that are not UTF-8 and control characters escaped."""
    taken: set[str] = set()
    ids = []
    for f in files:
        stem = candidate = shown_path(f.stem)
        n = 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate.casefold())
        ids.append(candidate)
    return ids


def check_writable(path: str) -> None:
    """Fail now (one line) if ``path`` cannot be written, rather than after grading every file."""
    target = Path(path)
    existed = target.exists()
    if target.is_dir():
        raise SheetsgdError("is a folder, not a file to write", path)
    try:
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise SheetsgdError(f"cannot write: {exc.strerror or exc}", path) from None
    if not existed:
        try:
            os.unlink(target)
        except OSError:  # pragma: no cover
            pass
