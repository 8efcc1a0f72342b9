"""inotify (via watchdog) as per-file hints. The handler only records *which* path changed;
the daemon reads that file. Nothing here is ever O(watched files):

* a file modified, created, closed after writing, moved or deleted → a path hint for that file;
* a directory created or moved in → a hint to walk that directory only;
* the kernel's event queue overflowed → one full rescan;
* a directory's own "modified" event (sent on every create/delete in it) is ignored.

A periodic walk in the daemon remains the slow safety net for anything else.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("tailerd")

_IGNORED = frozenset({"opened", "closed_no_write"})
# watchdog 7 rebuilds its watches after IN_Q_OVERFLOW but tells no handler, only this logger.
_WATCHDOG_INOTIFY_LOGGER = "watchdog.observers.inotify_c"


@dataclass(slots=True)
class Taken:
    paths: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    rescan: bool = False


class Hints:
    """Thread-safe mailbox between watchdog's thread and the daemon loop."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._taken = Taken()

    def add(self, path: str) -> None:
        with self._lock:
            self._taken.paths.add(path)
        self.wake.set()

    def add_dir(self, path: str) -> None:
        with self._lock:
            self._taken.dirs.add(path)
        self.wake.set()

    def rescan(self) -> None:
        with self._lock:
            self._taken.rescan = True
        self.wake.set()

    def take(self) -> Taken:
        with self._lock:
            taken, self._taken = self._taken, Taken()
            self.wake.clear()
        return taken


class _OverflowListener(logging.Handler):
    def __init__(self, hints: Hints) -> None:
        super().__init__(logging.WARNING)
        self._hints = hints

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage():
            log.warning("inotify queue overflowed; rescanning the watched directories")
            self._hints.rescan()


class _Handler(FileSystemEventHandler):
    def __init__(self, hints: Hints) -> None:
        self._hints = hints

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in _IGNORED:
            return
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.is_directory:
            if kind in {"created", "moved"}:
                self._hints.add_dir(dest or src)
            return  # "modified" on a directory: a create/delete in it, reported per file too
        if src:
            self._hints.add(src)
        if dest:
            self._hints.add(dest)


class Watcher:
    """Recursive inotify watches on the roots. `start` raises OSError when inotify cannot be
    used (watch or instance limit reached, unsupported filesystem)."""

    def __init__(self, roots: Sequence[Path], hints: Hints) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._roots = list(roots)
        self._handler = _Handler(hints)
        self._overflow = _OverflowListener(hints)

    def start(self) -> None:
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).addHandler(self._overflow)
        for root in self._roots:
            self._observer.schedule(self._handler, str(root), recursive=True)
        self._observer.start()

    def stop(self) -> None:
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).removeHandler(self._overflow)
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)
