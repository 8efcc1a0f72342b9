"""inotify (via watchdog) as wake-up hints. The handler only records which paths changed; the
daemon loop reads those files to their end. A periodic full rescan in the loop is the safety net
for dropped or coalesced events (inotify can overflow) and is requested early when a directory
appears or something moves."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

_IGNORED = frozenset({"opened", "closed_no_write"})


class Hints:
    """Thread-safe mailbox between watchdog's thread and the daemon loop."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._rescan = False

    def add(self, path: str, rescan: bool = False) -> None:
        with self._lock:
            self._paths.add(path)
            self._rescan = self._rescan or rescan
        self.wake.set()

    def take(self) -> tuple[set[str], bool]:
        with self._lock:
            paths, rescan = self._paths, self._rescan
            self._paths, self._rescan = set(), False
            self.wake.clear()
        return paths, rescan


class _Handler(FileSystemEventHandler):
    def __init__(self, hints: Hints) -> None:
        self._hints = hints

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED:
            return
        structural = event.is_directory or event.event_type in {"created", "moved", "deleted"}
        self._hints.add(os.fsdecode(event.src_path), rescan=structural)
        dest = getattr(event, "dest_path", "")
        if dest:
            self._hints.add(os.fsdecode(dest), rescan=True)


class Watcher:
    def __init__(self, roots: Sequence[Path], hints: Hints) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        handler = _Handler(hints)
        for root in roots:
            self._observer.schedule(handler, str(root), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
