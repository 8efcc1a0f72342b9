"""sd_notify (READY, RELOADING, STATUS, WATCHDOG, STOPPING) and logging to the journal.

libsystemd's own calls (systemd-python) are used when installed (`pip install tailerd[systemd]`);
otherwise a datagram to $NOTIFY_SOCKET, which is all sd_notify does, and `<N>`-prefixed stderr
lines, which journald reads as priorities. Outside systemd every call is a cheap no-op."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar


def _libsystemd() -> Any:
    try:
        from systemd import daemon, journal
    except ImportError:
        return None
    return daemon, journal


class Notifier:
    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        native = _libsystemd()
        self._native: Callable[[str], object] | None = native[0].notify if native else None
        usec = os.environ.get("WATCHDOG_USEC", "")
        self._watchdog_every = int(usec) / 2e6 if usec.isdigit() else None
        self._last_ping = 0.0

    @property
    def watchdog_interval(self) -> float | None:
        """How often to ping: half of WatchdogSec, as sd_watchdog_enabled(3) advises."""
        return self._watchdog_every

    def notify(self, message: str) -> None:
        if not self._address:
            return
        if self._native is not None:
            self._native(message)
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(message.encode(), self._address)
            except OSError:
                return

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def reloading(self, status: str = "reloading the configuration") -> None:
        """RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC in µs), as sd_notify(3) asks of a
        reload (Type=notify-reload checks it); READY=1 (`ready`) must follow when done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        if self._watchdog_every is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self._watchdog_every:
            self._last_ping = now
            self.notify("WATCHDOG=1")


class _JournalFormatter(logging.Formatter):
    """journald adds its own timestamps; `<N>` sets the priority of each line."""

    _PRIORITY: ClassVar[dict[str, int]] = {
        "DEBUG": 7,
        "INFO": 6,
        "WARNING": 4,
        "ERROR": 3,
        "CRITICAL": 2,
    }

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self._PRIORITY.get(record.levelname, 6)}>{record.getMessage()}"


def configure_logging(verbose: bool) -> None:
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    native = _libsystemd()
    if os.environ.get("JOURNAL_STREAM") and native:
        # stderr is connected to journald, so its socket is there: native fields, priorities.
        handler = native[1].JournalHandler(SYSLOG_IDENTIFIER="tailerd")
    elif os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("tailerd %(levelname)s %(message)s"))
    root = logging.getLogger("tailerd")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
