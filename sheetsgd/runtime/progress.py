"""Progress of long builds on stderr: which stage or sheet, rows written of total, time elapsed.

The command line (and the Python API) installs a reporter around a build; the writers report
through this module's functions without being handed anything::

    progress.stage("training")                      # a stage without rows
    for s in progress.rows(range(n_steps), "Steps"):  # a sheet's rows: its stage, counted coarsely
        ...

Without a reporter installed (or with a quiet one: stderr is not a terminal, ``--quiet``) these
calls do nothing and ``rows`` hands back the very iterable it was given, so writers pay nothing.
An enabled reporter redraws one line in place, at most ten times a second, from a small thread
(so the elapsed time moves during a stage that has no rows, e.g. training or saving), and shows
nothing at all for work that ends within ``DELAY`` seconds.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import sys
import threading
import time

from .safetext import shown

# seconds before anything is shown: short commands stay silent (SHEETSGD_PROGRESS_DELAY: tests show it at once)
DELAY = float(os.environ.get("SHEETSGD_PROGRESS_DELAY") or 0.5)
INTERVAL = 0.1  # seconds between redraws
CHUNK = 16  # rows between counts (rows() reports every CHUNK items, not every row)


class Quiet:
    """The reporter when nothing is shown: every call is a no-op."""

    enabled = False

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


QUIET = Quiet()


class Reporter(Quiet):
    """One line on ``stream`` (``label: stage rows done/total · elapsed``), redrawn in place."""

    enabled = True

    def __init__(self, stream=None, label: str = "sheetsgd", delay: float | None = None,
                 interval: float | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.delay = DELAY if delay is None else delay
        self.interval = INTERVAL if interval is None else interval
        self.start = time.monotonic()
        self.name, self.total, self.done = "", None, 0
        self._width = 0  # characters of the line on screen, to blank it out
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_draw = 0.0
        self.columns = shutil.get_terminal_size((100, 24)).columns - 1  # a longer line would wrap

    # ------------------------------------------------------------------------ what the writers call

    def stage(self, name: str, total: int | None = None) -> None:
        self.name, self.total, self.done = name, total, 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="sheetsgd-progress", daemon=True)
            self._thread.start()
        self._draw()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._last_draw >= self.interval:
            self._draw()

    def close(self) -> None:
        """Stop redrawing and blank the line (the command's own output follows)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._width:
                self._write("\r" + " " * self._width + "\r")
                self._width = 0
        self._stop, self._thread = threading.Event(), None  # ready for another build

    # ------------------------------------------------------------------------ drawing

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rows = ""
        if self.total:
            rows = f" {min(self.done, self.total):,}/{self.total:,} rows"
        return shown(f"{self.label}: {self.name}{rows} · {elapsed:.1f} s")

    def _draw(self) -> None:
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        with self._lock:
            if self._stop.is_set():
                return
            self._last_draw = now
            text = self.line()[: max(20, self.columns)]
            self._write("\r" + text + " " * max(0, self._width - len(text)))
            self._width = len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not break a build
            self._stop.set()

    def _tick(self) -> None:
        stop = self._stop
        while not stop.wait(max(self.interval, 0.05)):
            self._draw()


_current: contextvars.ContextVar[Quiet] = contextvars.ContextVar("sheetsgd_progress", default=QUIET)


def current() -> Quiet:
    return _current.get()


def stage(name: str, total: int | None = None) -> None:
    """Start a stage (a sheet, training, saving); ``total`` rows if it counts them."""
    _current.get().stage(name, total)


def advance(n: int = 1) -> None:
    """``n`` more rows of the current stage done."""
    _current.get().advance(n)


def rows(iterable, name: str, total: int | None = None):
    """``iterable`` as the rows of stage ``name``, counted every CHUNK items; itself when quiet."""
    reporter = _current.get()
    if not reporter.enabled:
        return iterable
    reporter.stage(name, len(iterable) if total is None else total)
    return _counted(iterable, reporter)


def _counted(iterable, reporter):
    n = 0
    for n, item in enumerate(iterable, start=1):
        yield item
        if n % CHUNK == 0:
            reporter.advance(CHUNK)
    reporter.advance(n % CHUNK)


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def reporter_for(show: bool | None = None, stream=None, label: str = "sheetsgd") -> Quiet:
    """A reporter on ``stream`` (stderr): shown when ``show`` is True, or None and it is a terminal."""
    stream = stream if stream is not None else sys.stderr
    if show is None:
        show = is_terminal(stream)
    return Reporter(stream, label) if show else QUIET


@contextlib.contextmanager
def reporting(reporter: Quiet | bool | None = None, label: str = "sheetsgd"):
    """Install ``reporter`` (or one made by :func:`reporter_for` from True/False/None) for the block."""
    if not isinstance(reporter, Quiet):
        reporter = reporter_for(reporter, label=label)
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)
        reporter.close()
