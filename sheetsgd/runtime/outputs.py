"""The one policy for every file sheetsgd writes (README, "Threat model").

* Never through a symbolic link: a link at the output's name is refused, never followed or replaced.
* Never over an input: the output's existing file is compared with every input of the run by device
  and inode (a hard link to a submission is the submission), and an output folder that holds inputs
  of the run is refused.
* Written to a temporary file in the target folder, then renamed into place: a reader never sees
  half a file, an interrupted run leaves the old file (or none).
* Created with the usual mode: 0666 less the umask (0644 under the common umask 022), as ``open``
  would make it (``mkstemp``'s 0600 is not kept).

Every writer calls :func:`staged` (or :func:`write_bytes` / :func:`write_text`) with the run's
:class:`Inputs`; refusals are one-line :class:`~sheetsgd.errors.SheetsgdError`\\ s.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from sheetsgd.errors import SheetsgdError


class Inputs:
    """The files (device, inode) and their folders that a run reads; outputs may never replace them."""

    def __init__(self, paths=()):
        self.files: set[tuple[int, int]] = set()
        self.folders: set[tuple[int, int]] = set()
        for p in paths:
            self.add(p)

    def add(self, path) -> None:
        if path is None:
            return
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return  # not a file (a bundled lesson's name): nothing to protect
        if stat.S_ISREG(st.st_mode):
            self.files.add((st.st_dev, st.st_ino))
            try:
                folder = os.stat(os.path.dirname(os.path.abspath(path)) or ".")
                self.folders.add((folder.st_dev, folder.st_ino))
            except OSError:  # pragma: no cover
                pass

    def holds(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) in self.files


NO_INPUTS = Inputs()


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path, inputs: Inputs = NO_INPUTS, what: str = "output") -> None:
    """Refuse (one line) an output that is a symbolic link, a folder or one of the run's inputs."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SheetsgdError(f"cannot write: {exc.strerror or exc}", path) from None
    if stat.S_ISLNK(st.st_mode):
        raise SheetsgdError(f"the {what} is a symbolic link: outputs are never written through links", path)
    if stat.S_ISDIR(st.st_mode):
        raise SheetsgdError(f"the {what} is a folder, not a file to write", path)
    if not stat.S_ISREG(st.st_mode):
        raise SheetsgdError(f"the {what} is not a regular file (a FIFO or device): refused", path)
    if inputs.holds(st):
        raise SheetsgdError(f"the {what} would overwrite an input of this run (the same file, maybe by a "
                            "hard link): choose another file", path)


def check_folder(folder, inputs: Inputs = NO_INPUTS, what: str = "output folder") -> None:
    """Refuse an output folder that holds inputs of the run (its pages or copies would replace them)."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SheetsgdError(f"cannot use the folder: {exc.strerror or exc}", os.fspath(folder)) from None
    if (st.st_dev, st.st_ino) in inputs.folders:
        raise SheetsgdError(f"the {what} holds inputs of this run (submissions, a template): choose another folder",
                            os.fspath(folder))


def make_folder(folder, inputs: Inputs = NO_INPUTS, what: str = "output folder") -> None:
    check_folder(folder, inputs, what)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise SheetsgdError(f"cannot make the folder: {exc.strerror or exc}", os.fspath(folder)) from None
    if not os.path.isdir(folder):
        raise SheetsgdError("is not a folder", os.fspath(folder))


def distinct(paths: dict[str, str | None]) -> None:
    """Refuse two outputs of one run that name the same file ({option: path})."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise SheetsgdError(f"{seen[key]} and {option} name the same file", path)
        seen[key] = option


class Staged:
    """A temporary file beside ``path`` (``self.tmp``), renamed over ``path`` by :meth:`commit`."""

    def __init__(self, path, inputs: Inputs = NO_INPUTS, what: str = "output", suffix: str = ""):
        self.path, self.inputs, self.what = os.fspath(path), inputs, what
        check_target(self.path, inputs, what)
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)[:60]}.", suffix=".part" + suffix,
                                            dir=folder)
        except OSError as exc:
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", self.path) from None
        os.close(fd)
        self.done = False

    def commit(self) -> None:
        if self.done:
            return
        check_target(self.path, self.inputs, self.what)  # again: a link planted while the file was written
        try:
            os.chmod(self.tmp, 0o666 & ~umask())
            os.replace(self.tmp, self.path)  # replaces the name, never writes through it
        except OSError as exc:
            self.discard()
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", self.path) from None
        self.done = True

    def discard(self) -> None:
        if not self.done:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.done = True


def remove_leftovers(path) -> None:
    """The temporary files a killed writer of ``path`` left beside it (a grade worker past its time limit)."""
    import glob

    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    for left in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name[:60])}.*.part*")):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(left).st_mode):
                os.unlink(left)


@contextlib.contextmanager
def staged(path, inputs: Inputs = NO_INPUTS, what: str = "output", suffix: str = ""):
    """``with staged(out) as tmp: write tmp``: the file appears at ``out`` only when the block ends well."""
    stage = Staged(path, inputs, what, suffix)
    try:
        yield stage.tmp
        stage.commit()
    except BaseException:
        stage.discard()
        raise


def write_bytes(path, data: bytes, inputs: Inputs = NO_INPUTS, what: str = "output") -> None:
    with staged(path, inputs, what) as tmp:
        try:
            Path(tmp).write_bytes(data)
        except OSError as exc:
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", os.fspath(path)) from None


def write_text(path, text: str, inputs: Inputs = NO_INPUTS, what: str = "output", newline: str | None = None) -> None:
    with staged(path, inputs, what) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
                fh.write(text)
        except OSError as exc:
            raise SheetsgdError(f"cannot write: {exc.strerror or exc}", os.fspath(path)) from None
