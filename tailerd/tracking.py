"""The files tailerd follows: found by walking or by inotify hints, identified, given a
descriptor from the pool when they have bytes to read, and retired once drained.

Per-file work only: a hint about one path looks at that path; a full walk happens at start, on
inotify overflow, on a new directory (that directory only) and as the slow safety net.
Parsing and delivery are the daemon's; this module only says which files need reading.
Which checkpoint a file continues, and the generations it leaves: resumption.py.
"""

from __future__ import annotations

import logging
import os
import resource
import stat
import time
from pathlib import Path, PurePath

from tailerd import agent_homes, formats
from tailerd.core.identity import IdentityIndex
from tailerd.core.ledger import DeliveryLedger
from tailerd.edges.agent_db import WAL_SUFFIX
from tailerd.edges.checkpoint_store import FileCheckpoint
from tailerd.edges.discovery import DirectoryMtimes, Globs, Roots, changed_directories, walk
from tailerd.edges.fd_pool import DescriptorPool, IdentityChanged
from tailerd.edges.source_file import SourceFile
from tailerd.formats.base import Source
from tailerd.pipeline import FilePipeline
from tailerd.resumption import Resumption
from tailerd.settings import Settings

log = logging.getLogger("tailerd")

REMOVED_RETENTION = 7 * 24 * 3600.0  # seconds a retired file's checkpoint is kept for resumption
PURGE_INTERVAL = 3600.0  # seconds between sweeps for retired checkpoints to forget


def pool_size(wanted: int) -> int:
    """Descriptors the pool may hold: the setting, but at most half the process's soft limit
    (RLIMIT_NOFILE), the rest being for sockets, the stores, inotify and weave."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    allowed = max(4, soft // 2)
    if wanted > allowed:
        log.info("descriptor limit %d: reading at most %d files at once", soft, allowed)
    return min(wanted, allowed)


def _utf8(text: str) -> bool:
    """False for a name with undecodable bytes: it could be neither stored nor sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_wal(path: Path) -> bool:
    """An agent database with a write-ahead log: a walk cannot tell from the database's own
    stat whether the agent wrote (edges/agent_db checks both at the cost of two stats)."""
    return path.suffix == ".db" and Path(f"{path}{WAL_SUFFIX}").exists()


class FileTable(Resumption):
    def __init__(self, settings: Settings, checkpoints: dict[str, FileCheckpoint]) -> None:
        self.settings = settings
        self.globs, self.roots = self._discovery(settings)
        self.index: IdentityIndex[FileCheckpoint] = IdentityIndex(checkpoints.values())
        self.pool = DescriptorPool(pool_size(settings.max_open_files), settings.idle_fd_close)
        self.files: dict[str, SourceFile] = {}
        self.by_path: dict[str, str] = {}
        self.dirty: dict[str, SourceFile] = {}  # insertion-ordered: first come, first read
        self.changed: set[str] = set()  # checkpoint keys to save
        self.removed: set[str] = set()  # checkpoint keys to delete
        self.stats = 0  # stat calls made for hints and walks (tests count work with it)
        self._unreadable: set[str] = set()
        self._postponed: dict[str, tuple[SourceFile, float]] = {}
        self._not_copies: dict[str, tuple[int, float]] = {}  # key -> (size, mtime) looked at
        self._next_purge = 0.0
        self._gone_keys: set[str] = set()  # files whose path no longer leads to them
        self._dropped: set[str] = set()  # let go by a reload: still there, no longer wanted
        self.dirs: DirectoryMtimes = {}  # what the safety net stats
        self.watchable: list[Path] = []  # directories to give inotify watches (appeared, readable)

    def reconfigure(self, settings: Settings) -> list[Path]:
        """New settings (a reload): globs and roots; files under roots no longer watched are
        drained and let go (their checkpoints kept for a return). The roots to walk now."""
        old, self.settings = self.roots, settings
        self.globs, self.roots = self._discovery(settings)
        self.roots.missing = {r for r in old.missing if r in settings.watch}
        dropped: dict[str, list[str]] = {}
        for f in list(self.files.values()):
            if f.gone:
                continue
            if not any(f.path.is_relative_to(r) for r in settings.watch):
                dropped.setdefault("no longer under a watched directory", []).append(str(f.path))
            elif not f.copy_only and not self._wanted(f.path):
                dropped.setdefault("no longer matched by include", []).append(str(f.path))
            else:
                continue
            self._dropped.add(f.key)
            self._gone(f)
        for why, paths in dropped.items():
            log.info(
                "%d file(s) %s; draining what is left, then letting go: %s",
                len(paths), why, ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else ""),
            )  # fmt: skip
        return [r for r in settings.watch if r not in old.roots]

    @staticmethod
    def _discovery(settings: Settings) -> tuple[Globs, Roots]:
        """What a walk matches and where it starts: the watched roots, the agent homes among
        them waited for without a warning."""
        return Globs(settings.include, settings.exclude), Roots(
            settings.watch, agent_homes.home_paths(), settings.once
        )

    def look_for_roots(self) -> None:
        """Roots waited for: read the ones that appeared."""
        for root in self.roots.check():
            self.scan([root])
            self.watchable.append(root)

    # ---- discovery ---------------------------------------------------------------------------

    def scan(self, roots: list[Path] | None = None) -> None:
        """Walk the roots (default: every watched root): new files are tracked, known ones
        checked for growth, and — on a full walk — files no longer found are marked gone."""
        full = roots is None
        seen: set[str] = set()
        if roots is None:
            self.watchable += self.roots.check()
        trees = self.roots.present() if roots is None else roots
        failed = self.roots.failed
        for path, st in walk(trees, self.globs, self._rotated_copy, self.dirs, failed):
            self.stats += 1
            key = f"{st.st_dev}:{st.st_ino}"
            seen.add(key)
            known = self.files.get(key)
            if known is not None:
                self._moved(known, path)
                if st.st_size != known.size or st.st_mtime != known.mtime or _has_wal(path):
                    self.mark_dirty(known)
            elif not formats.is_auxiliary(PurePath(path)):
                self._track(path, st, copy_only=self._copy_only(path))
        self.watchable += self.roots.recovered(self.dirs)
        if full:
            for f in list(self.files.values()):
                if f.key not in seen and not f.gone:
                    self._gone(f)

    def safety_net(self) -> None:
        """Under inotify, the slow safety net: one stat per directory seen; a directory whose
        mtime moved is listed again for files and directories not followed yet (deletions and
        appends are inotify's to report; an overflow brings a full `scan`). Roots waited for
        and unreadable directories are tried again."""
        self.look_for_roots()
        for unreadable in list(self.roots.unreadable):
            self.scan([Path(unreadable)])
        for directory in changed_directories(self.dirs):
            try:
                entries = list(os.scandir(directory))
                self.dirs[directory] = os.stat(directory).st_mtime_ns  # noqa: PTH116
            except OSError:
                continue  # vanished: its files' deletions were reported one by one
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.path not in self.dirs:
                            self.scan([Path(entry.path)])
                    elif entry.path not in self.by_path:
                        self.look_at(entry.path)
                except OSError:
                    continue

    def look_at(self, path: str) -> None:
        """An inotify hint: something happened to this path."""
        if path.endswith(WAL_SUFFIX) and path[: -len(WAL_SUFFIX)] in self.by_path:
            path = path[: -len(WAL_SUFFIX)]  # an agent database's write-ahead log: the database
        key = self.by_path.get(path)
        try:
            st: os.stat_result | None = Path(path).stat()
            self.stats += 1
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            st = None
        if key is not None:
            f = self.files[key]
            if st is not None and (st.st_dev, st.st_ino) == (f.device, f.inode):
                self.mark_dirty(f)
                return
            self._gone(f)  # renamed away, deleted, or replaced by another file
        if st is None:
            return
        known = self.files.get(f"{st.st_dev}:{st.st_ino}")
        if known is not None and known.key in self._dropped and not self._wanted(Path(path)):
            return  # let go by a reload (`reconfigure`): draining, not followed again
        if known is not None:
            self._moved(known, Path(path))
            self.mark_dirty(known)
        elif self._wanted(Path(path)):
            self._track(Path(path), st, copy_only=self._copy_only(Path(path)))
        else:
            self._reader_changed(path)

    def _reader_changed(self, path: str) -> None:
        """An auxiliary file changed (an OpenHands event file): re-read the followed file
        whose format reads it (its conversation's base_state.json), if there is one."""
        reader = formats.reader_of(PurePath(path))
        key = self.by_path.get(str(reader)) if reader is not None else None
        if key is not None and key in self.files:
            self.mark_dirty(self.files[key])

    def _copy_only(self, path: Path) -> bool:
        root = next((r for r in self.settings.watch if path.is_relative_to(r)), None)
        return root is not None and not self.globs.matches(root, path)

    def _rotated_copy(self, root: Path, path: Path) -> bool:
        return not self.globs.excludes(root, path) and self.index.rotation_of(str(path)) is not None

    def _wanted(self, path: Path) -> bool:
        """Matched by the include globs, or a rotated copy of a followed file (logrotate's
        `a.jsonl.1`, `a.jsonl-20260906`, `a.jsonl.1.gz`): its unread tail may be the only copy
        of a turn written just before the rotation."""
        root = next((r for r in self.settings.watch if path.is_relative_to(r)), None)
        if root is None or formats.is_auxiliary(PurePath(path)):
            return False
        return self.globs.matches(root, path) or self._rotated_copy(root, path)

    def mark_dirty(self, f: SourceFile) -> None:
        if f.quarantined:
            return
        f.dirty = True
        self.dirty[f.key] = f

    def close_idle_descriptors(self) -> None:
        for f in self.pool.close_idle():
            self.mark_dirty(f)  # type: ignore[arg-type]  # the pool holds only SourceFiles

    def hold_unread(self) -> None:
        """Give files with unread bytes a descriptor while the pool has room, so that a rename
        or delete before they are read (a sink is down, say) loses nothing. Files whose
        identity was postponed are looked at again."""
        for f, _ in list(self._postponed.values()):
            if f.key in self.files:
                self.mark_dirty(f)
            else:
                self._postponed.pop(f.key, None)
        for f in self.dirty.values():
            if f.reader is None and not f.gone and not self.pool.hold(f):
                break

    def _moved(self, f: SourceFile, path: Path) -> None:
        if f.path != path:
            if self.by_path.get(str(f.path)) == f.key:
                del self.by_path[str(f.path)]
            old_path = f.checkpoint.path
            f.path = f.pipe.path = path
            f.checkpoint.path = str(path)
            self.index.reindex(f.checkpoint, old_path, f.checkpoint.head_hash)
            self.changed.add(f.key)
        f.gone = False
        self._dropped.discard(f.key)
        # a file renamed to a name the globs want is followed for itself, not only as a
        # possible rotated copy (Amp writes `T-<id>.json.amptmp`, renamed to `T-<id>.json`)
        f.copy_only = f.copy_only and self._copy_only(path)
        self._gone_keys.discard(f.key)
        self.by_path[str(path)] = f.key

    def _gone(self, f: SourceFile) -> None:
        if self.by_path.get(str(f.path)) == f.key:
            del self.by_path[str(f.path)]
        if not f.gone:
            f.gone = True
            if f.key in self._dropped:
                log.debug("no longer wanted; draining what is left path=%s", f.path)
            elif f.copy_only or os.path.lexists(f.path):
                # a temporary name (Amp's X.amptmp, Cline's X.tmp) renamed away, or the old
                # inode of X after such a rename over it: the path X is still there
                log.debug("replaced or renamed away; draining what is left path=%s", f.path)
            else:
                log.info("file gone; draining what is left path=%s", f.path)
        self._gone_keys.add(f.key)
        self.mark_dirty(f)

    def _track(self, path: Path, st: os.stat_result, copy_only: bool = False) -> None:
        """Follow a new file. Its checkpoint is resolved when it is first read (`resolve`)."""
        key = f"{st.st_dev}:{st.st_ino}"
        if copy_only and self._not_copies.get(key) == (st.st_size, st.st_mtime):
            return  # looked at before: named like a rotated copy, but not one
        if not _utf8(str(path)):
            if key not in self._unreadable:
                self._unreadable.add(key)
                log.warning("cannot follow a file whose name is not UTF-8 (rename it): %r", path)
            return
        cp = FileCheckpoint(
            path=str(path),
            device=st.st_dev,
            inode=st.st_ino,
            head_len=-1,  # not resolved yet
            head_hash="",
            stable_name=Source(str(path)).stable_name,
        )
        f = SourceFile(
            path=path,
            checkpoint=cp,
            pipe=FilePipeline.at(path, self.settings),
            ledger=DeliveryLedger(),
            copy_only=copy_only,
        )
        self.files[cp.key] = f
        self.by_path[str(path)] = cp.key
        self.mark_dirty(f)

    # ---- identity ----------------------------------------------------------------------------

    def open(self, f: SourceFile) -> bool:
        """Give `f` a descriptor (resolving its checkpoint on first use). False when it cannot
        be read now: the path leads elsewhere (then it is marked gone) or is unreadable."""
        try:
            self.pool.acquire(f)
            if f.checkpoint.head_len < 0 and not self._resolve(f):
                f.dirty = False
                return False
            f.refresh()
        except IdentityChanged:
            self._gone(f)
            f.dirty = False
            return False
        except OSError as exc:
            if f.key not in self._unreadable:
                self._unreadable.add(f.key)
                log.warning("cannot read path=%s error=%s", f.path, exc.strerror or exc)
            f.dirty = False
            return False
        self._unreadable.discard(f.key)
        return True

    def _forget(self, f: SourceFile, seen: tuple[int, float]) -> None:
        """Stop following a file named like a rotated copy whose content is no copy."""
        log.debug("not a rotated copy of a followed file; ignoring path=%s", f.path)
        self._not_copies[f.key] = seen
        self.pool.release(f)
        self.files.pop(f.key, None)
        self.dirty.pop(f.key, None)
        if self.by_path.get(str(f.path)) == f.key:
            del self.by_path[str(f.path)]

    # ---- retirement --------------------------------------------------------------------------

    def retire_drained(self) -> None:
        """Let go of gone files with nothing left to read, send or close (only gone files are
        visited: this runs every tick)."""
        now = time.time()
        for key in list(self._gone_keys):
            f = self.files.get(key)
            if f is None or not f.gone:
                self._gone_keys.discard(key)
                continue
            if not f.dirty and f.ledger.unresolved == 0 and f.pipe.pending_from() is None:
                self._gone_keys.discard(key)
                self._dropped.discard(key)
                self.pool.release(f)
                del self.files[f.key]
                self.dirty.pop(f.key, None)
                if f.checkpoint.head_len >= 0:
                    f.checkpoint.removed_at = now
                    self.changed.add(f.key)

    def purge_retired(self) -> None:
        """Forget checkpoints of files retired longer than REMOVED_RETENTION ago. It visits
        every checkpoint, so it runs at most once per PURGE_INTERVAL whatever the caller asks."""
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL
        cutoff = time.time() - REMOVED_RETENTION
        for cp in self.index:
            if cp.removed_at is not None and cp.removed_at < cutoff and cp.key not in self.files:
                self.index.remove(cp.key)
                self.removed.add(cp.key)
                self.changed.discard(cp.key)
