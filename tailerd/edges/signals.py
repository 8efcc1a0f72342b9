"""SIGTERM and SIGINT as a stop request, caught from the first instant of the process.

systemd (or a test) may send SIGTERM while tailerd is still importing its modules (a second or
more on a busy host); with Python's default action that kills it mid-start. `catch_early` is
called before the heavy imports; the service later reads the same `STOP` event.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP = threading.Event()


def _handle(signum: int, _frame: FrameType | None) -> None:
    if STOP.is_set() and signum == signal.SIGINT:
        raise SystemExit(130)  # a second Ctrl-C: stop waiting for the drain
    STOP.set()


def catch_early() -> None:
    """Turn SIGTERM/SIGINT into STOP from now on (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)
