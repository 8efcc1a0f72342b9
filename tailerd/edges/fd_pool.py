"""A bounded pool of open descriptors, so any number of files works under the default limit.

A file is opened when it has bytes to read and closed when the pool needs the slot (least
recently used first, files with nothing left to read before the others) or the file has been
idle for `idle_close` seconds. A file with unread bytes is held open while there is room
(`hold`), so that renaming or deleting it does not lose them; one whose path no longer leads to
it (renamed away or deleted) and which still has unread bytes is never evicted: its descriptor
is the only way left to drain it. Reopening checks identity: the path must still
lead to the same (device, inode); the caller checks the head fingerprint.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from tailerd.edges.readers import Reader, open_reader

log = logging.getLogger("tailerd")


class Pooled(Protocol):
    path: Path
    reader: Reader | None
    gone: bool
    dirty: bool
    size: int  # as last read
    mtime: float

    @property
    def key(self) -> str: ...

    @property
    def device(self) -> int: ...

    @property
    def inode(self) -> int: ...


class IdentityChanged(Exception):
    """The path now leads to another file (or none): the tracked file was renamed or deleted."""


class DescriptorPool:
    """At most `limit` readers open at once (plus pinned ones: gone files not yet drained)."""

    def __init__(self, limit: int, idle_close: float = 30.0) -> None:
        self.limit = limit
        self.idle_close = idle_close
        self.opens = 0  # descriptors opened so far (tests count reads with it, not a clock)
        self._open: OrderedDict[str, tuple[Pooled, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def hold(self, f: Pooled) -> bool:
        """Open `f` if a slot is free or held by a file with nothing to read; never evicts a
        file with unread bytes. True if `f` is open now. Never raises."""
        if f.reader is not None:
            return True
        if (
            not self._make_room(self.limit - 1, evict_unread=False)
            and len(self._open) >= self.limit
        ):
            return False
        try:
            self.acquire(f)
        except (OSError, IdentityChanged):
            return False
        return True

    def acquire(self, f: Pooled) -> Reader:
        """The file's reader, opened if needed. Raises IdentityChanged or OSError."""
        if f.reader is not None:
            self._open[f.key] = (f, time.monotonic())
            self._open.move_to_end(f.key)
            return f.reader
        if not self._make_room(self.limit - 1, evict_unread=False):
            self._make_room(self.limit - 1, evict_unread=True)
        try:
            reader = open_reader(f.path)
        except OSError as exc:
            if exc.errno == errno.EMFILE:
                self._make_room(len(self._open) // 2)
                reader = open_reader(f.path)  # the process holds more descriptors than we think
            elif exc.errno == errno.ENOENT:
                raise IdentityChanged(str(f.path)) from None
            else:
                raise
        st = reader.stat()
        if (st.st_dev, st.st_ino) != (f.device, f.inode):
            reader.close()
            raise IdentityChanged(str(f.path))
        self.opens += 1
        f.reader = reader
        self._open[f.key] = (f, time.monotonic())
        return reader

    def release(self, f: Pooled) -> None:
        """Close the file's descriptor now (retired, or restarted)."""
        self._open.pop(f.key, None)
        if f.reader is not None:
            with contextlib.suppress(OSError):
                f.reader.close()
            f.reader = None

    def close_idle(self) -> list[Pooled]:
        """Close descriptors of files with nothing to read that were idle longer than
        `idle_close`. A file that changed since it was last read (grown, rewritten, unlinked —
        an inotify event not yet handled) is kept open and returned: read it first."""
        cutoff = time.monotonic() - self.idle_close
        changed: list[Pooled] = []
        for f, used in list(self._open.values()):
            if used >= cutoff or f.dirty or f.reader is None:
                continue
            try:
                st = f.reader.stat()
            except OSError:
                st = None
            if st is None or st.st_nlink == 0 or (st.st_size, st.st_mtime) != (f.size, f.mtime):
                changed.append(f)
            else:
                self.release(f)
        return changed

    def close_all(self) -> None:
        for f, _ in list(self._open.values()):
            self.release(f)

    def _make_room(self, target: int, evict_unread: bool = True) -> bool:
        """Evict least recently used readers until at most `target` are open; True if that
        many are open now. Files with unread bytes are evicted only if `evict_unread`, and
        gone files with unread bytes never."""
        for f, _ in list(self._open.values()):
            if len(self._open) <= max(0, target):
                break
            if not f.dirty or (evict_unread and not f.gone):
                self.release(f)
        return len(self._open) <= max(0, target)
