"""What the daemon already shipped, as the state dir's checkpoints say, for `import`/`preview`.

`import` and `preview` read the checkpoint store read-only (they never write it) and leave out
the turns a daemon (or `--once`) on the same state dir already delivered to every sink, so an
OTLP pipeline that counts spans (tokens, cost) does not count them twice:

* a file read line by line whose checkpoint has the same (device, inode) and the same
  fingerprint (`head_hash` of its first `head_len` bytes, core/identity.py): the turns ending at
  or before its committed offset, and those acknowledged ahead of it (`resolved_ahead`);
* a document rewritten whole (Cline, OpenHands state, Amp: checkpoint `document`), found by
  (device, inode) or, as the daemon resumes documents, by path: the turns in its `sent_keys`;
* an agent database: the turns at or before its sessions' stored cursors (`db_cursors`); the
  caller passes the keys a read from those cursors yields (`unshipped`).

`resend=True` leaves nothing out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

from tailerd.core.identity import head_hash
from tailerd.domain import Turn
from tailerd.edges.agent_db import SQLITE_MAGIC
from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint

Shipped = Callable[[Turn], bool]


def _nothing(_turn: Turn) -> bool:
    return False


class ShippedByDaemon:
    """The checkpoints of one state dir, loaded once, read-only. `left_out` counts the turns
    `of_file`'s predicates said were shipped. Errors: those of `CheckpointStore.load`
    (StateCorruptError for a corrupt store)."""

    def __init__(self, store: CheckpointStore, *, resend: bool = False) -> None:
        self._store = store
        self._resend = resend
        self._checkpoints: dict[str, FileCheckpoint] = {} if resend else store.load()
        self._documents = {
            cp.path: cp
            for cp in self._checkpoints.values()
            if cp.document and cp.removed_at is None
        }
        self.left_out = 0

    def db_cursors(self, path: Path) -> dict[str, str]:
        """The stored session cursors of an agent database at `path` (empty with `resend`)."""
        if self._resend:
            return {}
        for name in dict.fromkeys((str(path), str(path.absolute()), str(path.resolve()))):
            if found := self._store.db_cursors(name):
                return found
        return {}

    def of_file(
        self, path: Path, st: os.stat_result, unshipped: Collection[str] | None = None
    ) -> Shipped:
        """A predicate: was this turn of the file at `path` (stat `st`) shipped by the daemon?
        `unshipped`: for an agent database with stored cursors, the keys of the turns after
        them (every other turn of it was shipped). Counts what it says yes to in `left_out`."""
        if self._resend:
            return _nothing
        if unshipped is not None:
            return self._counted(lambda t: t.key not in unshipped)
        cp = self._checkpoints.get(f"{st.st_dev}:{st.st_ino}")
        if cp is None or not cp.document:
            by_path = (str(path), str(path.absolute()), str(path.resolve()))
            cp = next((self._documents[p] for p in by_path if p in self._documents), cp)
        if cp is None:
            return _nothing
        if cp.document:
            sent = frozenset(cp.sent_keys)
            return self._counted(lambda t: t.key in sent)
        if not _same_head(path, cp):
            return _nothing
        offset, ahead = cp.offset, frozenset(cp.resolved_ahead)
        return self._counted(lambda t: t.end <= offset or t.key in ahead)

    def _counted(self, shipped: Shipped) -> Shipped:
        def counted(turn: Turn) -> bool:
            if shipped(turn):
                self.left_out += 1
                return True
            return False

        return counted


def _same_head(path: Path, cp: FileCheckpoint) -> bool:
    """The file still starts as the checkpointed one did (not a new file on a reused inode),
    and is read by offset (an agent database is not: its cursors say what was shipped)."""
    try:
        with path.open("rb") as f:
            head = f.read(max(cp.head_len, len(SQLITE_MAGIC)))
    except OSError:
        return False
    return not head.startswith(SQLITE_MAGIC) and head_hash(head[: cp.head_len]) == cp.head_hash
