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


class OutOfTime(KeyboardInterrupt):
    """Like Ctrl-C, it passes every ``except Exception`` and the IronCalc wrapper's catch-all (which
    re-raises KeyboardInterrupt), up to the command."""


@contextlib.contextmanager
def time_limit(seconds: float, message: str, grace: float = 10.0):
    """Raise OutOfTime in the main thread after ``seconds``; print ``message`` and exit 2 after ``seconds + grace``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    state = {"armed": True, "active": True}

    def on_alarm(signum, frame):
        if state["armed"]:
            raise OutOfTime()

    def hard_stop():  # pragma: no cover - only when a C call ignores the signal
        if state["active"]:
            sys.stderr.write(f"Error: {message}\n")
            sys.stderr.flush()
            os._exit(2)

    previous = signal.signal(signal.SIGALRM, on_alarm)
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
            signal.signal(signal.SIGALRM, previous)
