"""SIGTERM and SIGINT as a stop request, SIGHUP as a reload request, caught from the first
instant of the process.

systemd (or a test) may send SIGTERM while tailerd is still importing its modules (a second or
more on a busy host); with Python's default action that kills it mid-start (and SIGHUP's
default action is to terminate too). `catch_early` is called before the heavy imports; the
service later reads the same `STOP` event and asks `reload_requested()` at a safe point of its
loop. The SIGHUP handler only counts (no lock: a handler that took one the interrupted main
thread holds would deadlock); `wake_on_signal` wakes the loop through a pipe so that it notices
at once instead of within its tick (at most a second).

A second SIGINT while stopping does not wait for the drain: one line on stderr and exit 130 at
once (nothing is lost: what was not acknowledged was not committed, and is read again next
start). `stop_exit_code()` is what an interrupted `--once` exits with: 128 + the signal's number.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

STOP = threading.Event()
STOPPING_NOW = b"tailerd: stopping now; unacknowledged turns are read again next start\n"


class _Stop:
    signum: int | None = None  # the signal that asked to stop first (written by the handler)


class _Hangups:
    received = 0  # SIGHUPs received (written by the handler only)
    taken = 0  # of those, seen by `reload_requested` (written by the loop only)


def _handle(signum: int, _frame: FrameType | None) -> None:
    if STOP.is_set() and signum == signal.SIGINT:
        # A second Ctrl-C: stop waiting for the drain. os.write and os._exit take no lock
        # (logging's could be held by the interrupted thread); the flock goes with the process.
        os.write(2, STOPPING_NOW)
        os._exit(130)
    if _Stop.signum is None:
        _Stop.signum = signum
    STOP.set()


def stop_exit_code() -> int:
    """128 + the number of the signal that asked to stop (130 for SIGINT, 143 for SIGTERM);
    0 if none did."""
    return 0 if _Stop.signum is None else 128 + _Stop.signum


def _hangup(_signum: int, _frame: FrameType | None) -> None:
    _Hangups.received += 1


def reload_requested() -> bool:
    """True once per burst of SIGHUPs received since the last call (for the loop's thread)."""
    seen = _Hangups.received
    if seen == _Hangups.taken:
        return False
    _Hangups.taken = seen
    return True


def catch_early() -> None:
    """Turn SIGTERM/SIGINT into STOP and SIGHUP into a reload request from now on (main thread
    only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)
        signal.signal(signal.SIGHUP, _hangup)


def wake_on_signal(event: threading.Event) -> None:
    """Set `event` right after any signal arrives: Python's C-level handler writes the signal's
    number to a pipe (`signal.set_wakeup_fd`) and a thread reading that pipe sets the event, so
    no lock is ever taken in signal context. Main thread only; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(read_end, True)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def relay() -> None:
        while os.read(read_end, 64):
            event.set()

    threading.Thread(target=relay, name="tailerd-signal-wake", daemon=True).start()
