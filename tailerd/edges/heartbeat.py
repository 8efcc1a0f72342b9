"""Liveness for supervisors that are not systemd (a Kubernetes exec probe): the daemon's loop
refreshes the status file's mtime every `heartbeat_interval` seconds, and
`tailerd status --alive SECONDS` checks that a daemon holds the state dir and beat recently.

On by default every 15 s (settings.heartbeat_interval; one utime of a file that exists, no
data written), so `status --alive 30` holds on a healthy daemon with the default config. 0 turns
it off: a caught-up daemon then writes nothing at all to its state dir, and `--alive` says so
(HEARTBEATS_OFF). systemd has its own watchdog (WATCHDOG=1 pings, tailerd/edges/systemd.py).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from tailerd.status import STATUS

HEARTBEATS_OFF = (
    "heartbeats are off (heartbeat_interval = 0): `status --alive` cannot tell a live daemon;"
    " set heartbeat_interval (e.g. 15) in the daemon's config and give --alive twice that"
)


class Heartbeat:
    """Refresh `<state>/status.json`'s mtime at most every `interval` seconds (0: never)."""

    def __init__(self, state_dir: Path, interval: float) -> None:
        self.path = state_dir / STATUS
        self.interval = interval
        self._last = 0.0

    def beat(self) -> None:
        if self.interval <= 0:
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        try:
            os.utime(self.path)
        except FileNotFoundError:  # not written yet: the first status write will be recent
            return


def alive(state_dir: Path, within: float) -> str | None:
    """None when a daemon holds `state_dir`'s lock and its status file changed within `within`
    seconds; otherwise why not, in one line."""
    lock = state_dir / "lock"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return f"no tailerd has used {state_dir} ({exc.strerror})"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            return f"cannot check the lock {lock}: {exc.strerror}"
    else:
        return f"no tailerd is running on {state_dir} (its lock is free)"
    finally:
        os.close(fd)
    try:
        age = time.time() - (state_dir / STATUS).stat().st_mtime
    except OSError:
        return f"tailerd holds {state_dir} but has written no status yet"
    if age > within:
        return f"tailerd's last heartbeat was {age:.0f} s ago (more than {within:.0f} s)"
    return None
