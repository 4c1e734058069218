"""A time limit for one command run in this process (``check --timeout``).

A timer signal (SIGALRM) interrupts the check between Python operations and raises ``OutOfTime``
(a KeyboardInterrupt, so no ``except Exception`` inside the checker mistakes it for a bad file); the
command then reports "cannot check" in one line, exit 2. Work stuck inside one long C call (a
spreadsheet engine recalculating) does not see the signal, so a watchdog thread ends the process
after a grace period with the same one line. ``grade`` runs each file in a worker with its own
deadline (``--timeout``) and does not need this.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time


class OutOfTime(KeyboardInterrupt):
    """Like Ctrl-C, it passes every ``except Exception`` and the IronCalc wrapper's catch-all (which
    re-raises KeyboardInterrupt), up to the command."""


@contextlib.contextmanager
def time_limit(seconds: float, message: str, grace: float = 10.0, stdout_text: str | None = None):
    """Raise OutOfTime in the main thread after ``seconds``; print ``message`` (and ``stdout_text``, e.g. the
    JSON report, on stdout) and exit 2 after ``seconds + grace``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    state = {"armed": True, "active": True}

    def on_alarm(signum, frame):
        if state["armed"]:
            raise OutOfTime()

    def hard_stop():  # pragma: no cover - only when a C call ignores the signal
        if state["active"]:
            if stdout_text:
                sys.stdout.write(stdout_text + "\n")
                sys.stdout.flush()
            sys.stderr.write(f"Error: {message}\n")
            sys.stderr.flush()
            os._exit(2)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    _ends.append(time.monotonic() + seconds)
    watchdog = threading.Timer(seconds + max(grace, seconds), hard_stop)
    watchdog.daemon = True
    try:
        watchdog.start()
        signal.setitimer(signal.ITIMER_REAL, seconds)  # armed last: an early alarm still meets the finally
        yield
    finally:
        try:
            state["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            state["active"] = False  # the watchdog never fires once the command is past its limit
            watchdog.cancel()
            _ends.pop()
            signal.signal(signal.SIGALRM, previous)


_ends: list[float] = []  # monotonic end of each running time_limit, innermost last


def remaining() -> float | None:
    """Seconds left before the running time_limit ends (None: no limit): what a child engine may take."""
    return min(_ends) - time.monotonic() if _ends else None
