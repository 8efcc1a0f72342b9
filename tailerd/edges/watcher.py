"""inotify (via watchdog) as per-file hints. The handler only records *which* path changed;
the daemon reads that file. Nothing here is ever O(watched files):

* a file modified, created, closed after writing, moved or deleted → a path hint for that file;
* a directory created or moved in → a hint to walk that directory only;
* the kernel's event queue overflowed → one full rescan;
* a directory's own "modified" event (sent on every create/delete in it) is ignored.

A periodic walk in the daemon remains the slow safety net for anything else.

Running out of inotify watches (`fs.inotify.max_user_watches`) is reported as `Taken.exhausted`:
at start `inotify_add_watch` fails on a root and `Watcher.start` raises; midway, watchdog 7
swallows the `OSError(ENOSPC, "inotify watch limit reached")` raised for a new directory below a
root (watchdog/observers/inotify.py `InotifyWatchGroup._add_callback` re-raises only for the
root itself), so tailerd wraps the one place every watch of its observer is added,
`InotifyFD.add_callback` (watchdog/observers/inotify_c.py), to hear of it. The daemon then polls.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

log = logging.getLogger("tailerd")

_IGNORED = frozenset({"opened", "closed_no_write"})
# watchdog 7 rebuilds its watches after IN_Q_OVERFLOW but tells no handler, only this logger.
_WATCHDOG_INOTIFY_LOGGER = "watchdog.observers.inotify_c"


@dataclass(slots=True)
class Taken:
    paths: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    rescan: bool = False
    exhausted: str = ""  # why inotify can no longer watch everything (then: poll)


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

    def exhausted(self, why: str) -> None:
        with self._lock:
            self._taken.exhausted = why
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
    def __init__(self, hints: Hints, roots: Sequence[Path]) -> None:
        self._hints = hints
        self._roots = {str(r) for r in roots}

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in _IGNORED:
            return
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.is_directory:
            if kind in {"created", "moved"}:
                self._hints.add_dir(dest or src)
            if kind in {"deleted", "moved"} and src in self._roots:
                self._hints.rescan()  # a root went: waited for again (tracking.py), re-watched
            return  # "modified" on a directory: a create/delete in it, reported per file too
        if src:
            self._hints.add(src)
        if dest:
            self._hints.add(dest)


_LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE})


def _hear_watch_limit(observer: object, exhausted: Callable[[str], None]) -> None:
    """Wrap the observer's inotify instance's `add_callback` (watchdog 7: every
    inotify_add_watch of that observer goes through `InotifyObserver._inotify_fd`) so that
    ENOSPC/EMFILE reach tailerd even where watchdog swallows them. A no-op with a watchdog
    laid out otherwise (then only a failure at start is heard)."""
    shared = getattr(observer, "_inotify_fd", None)
    original = getattr(shared, "add_callback", None)
    if original is None:  # pragma: no cover - another watchdog layout
        return

    def add_callback(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except OSError as exc:
            if exc.errno in _LIMIT_ERRNOS:
                exhausted(exc.strerror or str(exc))
            raise

    shared.add_callback = add_callback  # type: ignore[union-attr]


class Watcher:
    """Recursive inotify watches on the roots that exist. `start` raises OSError when inotify
    cannot be used (watch or instance limit reached, unsupported filesystem); a root that does
    not exist yet is skipped and `add`ed when it appears."""

    def __init__(self, roots: Sequence[Path], hints: Hints) -> None:
        self._observer = Observer()
        self._observer.daemon = True
        self._roots = list(roots)
        self._hints = hints
        self._handler = _Handler(hints, roots)
        self._overflow = _OverflowListener(hints)
        self._watched: dict[Path, ObservedWatch] = {}

    def start(self) -> None:
        _hear_watch_limit(self._observer, self._hints.exhausted)
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).addHandler(self._overflow)
        for root in self._roots:
            if root.is_dir():
                self._schedule(root)
        self._observer.start()

    def add(self, directory: Path) -> None:
        """Watch a directory (a root that appeared, again after it was deleted; a subdirectory
        readable again). Never raises: gone again or unreadable, the file table waits and
        warns; the watch limit reached, the hints say so (`Taken.exhausted`) and the daemon
        polls."""
        old = self._watched.pop(directory, None)
        if old is not None:  # its inotify watch went with the directory it watched
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(old)
        try:
            self._schedule(directory)
        except OSError as exc:
            log.debug("cannot watch %s: %s", directory, exc.strerror or exc)

    def _schedule(self, directory: Path) -> None:
        watch = self._observer.schedule(self._handler, str(directory), recursive=True)
        self._watched[directory] = watch

    def stop(self) -> None:
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).removeHandler(self._overflow)
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)


class Watching:
    """How the daemon learns of changes: inotify (a `Watcher` on the roots) or polling (the
    daemon walks every poll_interval). It falls back to polling, with one warning, when inotify
    cannot be used at start or runs out of watches later (`Taken.exhausted`)."""

    def __init__(self, hints: Hints) -> None:
        self._hints = hints
        self._watcher: Watcher | None = None

    @property
    def inotify(self) -> bool:
        return self._watcher is not None

    def start(self, roots: Sequence[Path], mode: str, poll_interval: float) -> None:
        """(Re)start watching `roots`: mode "inotify" or "poll"."""
        self.stop()
        if mode == "poll":
            log.info("polling: a walk every %.1f s (watch_mode = poll)", poll_interval)
            return
        watcher = Watcher(roots, self._hints)
        try:
            watcher.start()
        except OSError as exc:
            watcher.stop()
            _lost(exc.strerror or str(exc), poll_interval)
            return
        self._watcher = watcher

    def exhausted(self, why: str, poll_interval: float) -> bool:
        """inotify ran out of watches midway: stop it and poll. True if that changed the mode
        (then walk everything now: events may have been missed)."""
        if self._watcher is None:
            return False
        self.stop()
        _lost(why, poll_interval)
        return True

    def add(self, directories: Iterable[Path]) -> None:
        """Watch these directories too (roots that appeared, directories readable again)."""
        if self._watcher is not None:
            for directory in directories:
                self._watcher.add(directory)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None


def _lost(why: str, poll_interval: float) -> None:
    log.warning(
        "inotify unavailable (%s; see fs.inotify.max_user_watches); polling: a walk every %.1f s",
        why,
        poll_interval,
    )
