"""Which files under the watched directories are ours: include/exclude globs, recursive.

`walk` is the only place tailerd lists directories. It runs at start, after an inotify
overflow, for a new directory, and (polling mode) as the periodic scan; the inotify safety net
only stats the directories it recorded (`DirectoryMtimes`) and lists those that changed.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_INCLUDE = (
    "*.jsonl",
    "*.jsonl.zst",
    "session-*.json",
    "*.messages.json",
    "base_state.json",  # OpenHands conversations (formats/openhands)
    "*session/*/ses_*.json",  # OpenCode's storage/ tree (formats/opencode/storage.py)
    "T-*.json",  # Amp threads (formats/amp: claimed only in a threads/ directory)
    # agents' SQLite databases (edges/agent_db): Crush, opencode-go, OpenCode and its channels
    "crush.db",
    "opencode.db",
    "opencode-*.db",
    "sessions.db",  # goose (formats/goose): <data dir>/goose/sessions/sessions.db
)

log = logging.getLogger("tailerd")


def _compile(patterns: Sequence[str]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One regex for the name-only patterns, one for those with a `/` (matched on the path
    relative to the watched root)."""
    by_name = [fnmatch.translate(p) for p in patterns if "/" not in p]
    by_rel = [fnmatch.translate(p) for p in patterns if "/" in p]
    return (
        re.compile("|".join(by_name)) if by_name else None,
        re.compile("|".join(by_rel)) if by_rel else None,
    )


@dataclass(frozen=True, slots=True)
class Globs:
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    _inc: tuple[re.Pattern[str] | None, re.Pattern[str] | None] = field(
        init=False, repr=False, compare=False
    )
    _exc: tuple[re.Pattern[str] | None, re.Pattern[str] | None] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inc", _compile(self.include))
        object.__setattr__(self, "_exc", _compile(self.exclude))

    def matches(self, root: Path, path: Path) -> bool:
        return self.match(str(root), str(path))

    def excludes(self, root: Path, path: Path) -> bool:
        return _any(self._exc, str(root), str(path))

    def match(self, root: str, path: str) -> bool:
        """`matches` on plain strings (the walk's hot path)."""
        return _any(self._inc, root, path) and not _any(self._exc, root, path)


def _any(
    compiled: tuple[re.Pattern[str] | None, re.Pattern[str] | None], root: str, path: str
) -> bool:
    by_name, by_rel = compiled
    if by_name is not None and by_name.match(path.rpartition("/")[2]):
        return True
    if by_rel is None:
        return False
    rel = path[len(root) + 1 :] if path.startswith(root + "/") else path
    return by_rel.match(rel) is not None


DirectoryMtimes = dict[str, int]  # directory -> st_mtime_ns when last listed


def walk(
    roots: Sequence[Path],
    globs: Globs,
    also: Callable[[Path, Path], bool] | None = None,
    dirs: DirectoryMtimes | None = None,
    on_error: Callable[[str, OSError], None] | None = None,
) -> Iterator[tuple[Path, os.stat_result]]:
    """Every matching regular file under the roots (and any other for which `also(root, path)`
    is true), with its stat; vanished and unreadable entries are skipped (a directory that
    cannot be listed is passed to `on_error`). Each directory listed is recorded in `dirs`
    with its mtime."""
    for root in roots:
        base = str(root)
        stack = [base]
        while stack:
            directory = stack.pop()
            try:
                mtime = os.stat(directory).st_mtime_ns  # noqa: PTH116 - a hot loop of strings
                entries = list(os.scandir(directory))
            except OSError as exc:
                if on_error is not None:
                    on_error(directory, exc)
                continue
            if dirs is not None:
                dirs[directory] = mtime
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if not entry.is_file():
                        continue
                    if not globs.match(base, entry.path) and not (
                        also and also(root, Path(entry.path))
                    ):
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                yield Path(entry.path), st


def changed_directories(dirs: DirectoryMtimes) -> Iterator[str]:
    """The recorded directories whose mtime moved (a file or directory was created, renamed or
    deleted in them) or that vanished: one stat each, no listing."""
    for directory, mtime in list(dirs.items()):
        try:
            now = os.stat(directory).st_mtime_ns  # noqa: PTH116
        except OSError:
            del dirs[directory]
            yield directory
            continue
        if now != mtime:
            yield directory


class Roots:
    """The watched roots as they are now. A root that does not exist yet is waited for (one
    warning, then an INFO line when it appears); a directory that cannot be listed is warned
    about once and retried (an INFO line when it can be read again). Costs one stat per
    missing root per `check`, one listing per unreadable directory per `retry`."""

    def __init__(
        self, roots: Sequence[Path], quiet: Collection[Path] = (), once: bool = False
    ) -> None:
        self.roots = tuple(roots)
        self.quiet = frozenset(quiet)  # waited for without a warning (agent homes not installed)
        self.once = once  # `--once`: nothing is waited for or retried, a root is skipped
        self.missing: set[Path] = set()
        self.unreadable: dict[str, str] = {}  # directory -> why

    def present(self) -> list[Path]:
        return [r for r in self.roots if r not in self.missing]

    def check(self) -> list[Path]:
        """Stat the roots; the ones that appeared since the last check (read them now)."""
        appeared = []
        for root in self.roots:
            try:
                exists = root.is_dir()
            except OSError as exc:  # its parent is unreadable: warned about like a subdir
                self.failed(str(root), exc)
                exists = False
            if not exists and root not in self.missing:
                self.missing.add(root)
                if root in self.quiet:
                    log.debug("agent home %s does not exist (yet); waiting for it", root)
                elif str(root) not in self.unreadable:
                    wait = ": skipped" if self.once else " (yet); waiting for it"
                    log.warning("watch directory %s does not exist%s", root, wait)
            elif exists and root in self.missing:
                self.missing.discard(root)
                log.info("watch directory %s appeared; reading it", root)
                appeared.append(root)
        return appeared

    def failed(self, directory: str, exc: OSError) -> None:
        """`walk`'s on_error: a directory that could not be listed."""
        if exc.errno == errno.ENOENT:
            return  # vanished while walked (a root that vanished is `check`'s)
        if directory not in self.unreadable:
            log.warning(
                "cannot read directory %s (%s)%s",
                directory,
                exc.strerror or exc,
                ": skipped" if self.once else "; retrying at every rescan",
            )
        self.unreadable[directory] = exc.strerror or str(exc)

    def recovered(self, dirs: DirectoryMtimes) -> list[Path]:
        """Unreadable directories listed since (they are in `dirs` now)."""
        back = [d for d in self.unreadable if d in dirs]
        for directory in back:
            del self.unreadable[directory]
            log.info("can read directory %s again; reading it", directory)
        return [Path(d) for d in back]
