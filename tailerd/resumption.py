"""Which checkpoint a followed file continues, and the generations a file leaves behind when it
is truncated or rewritten (FileTable's identity half; discovery and retirement: tracking.py).

A file continues a checkpoint with the same inode and the same first bytes (core/identity.py's
fingerprint), or one with the same content under another name (a rename or rotation while
tailerd was away); otherwise it starts fresh at offset 0. A truncated or rewritten file's old
checkpoint is kept as a retired generation, so that a rotated copy of it (copytruncate) that
shows up later resumes where it was instead of being read again.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from tailerd.core.identity import HEAD_BYTES, IdentityIndex, head_hash, matches
from tailerd.core.ledger import DeliveryLedger
from tailerd.edges.checkpoint_store import FileCheckpoint
from tailerd.edges.source_file import SourceFile
from tailerd.pipeline import FilePipeline
from tailerd.settings import Settings

log = logging.getLogger("tailerd")

# A new file named like a rotated copy of a followed file, still shorter than the fingerprint,
# is probably a copy being written (copytruncate): wait this long (seconds) for its first KiB.
COPY_SETTLE = 2.0


class Resumption:
    """The identity methods of `tracking.FileTable`, which sets the attributes below."""

    settings: Settings
    index: IdentityIndex[FileCheckpoint]
    changed: set[str]  # checkpoint keys to save
    _postponed: dict[str, tuple[SourceFile, float]]  # key -> (file, first look, monotonic s)

    def _forget(self, f: SourceFile, seen: tuple[int, float]) -> None:
        raise NotImplementedError  # FileTable's: stop following a file that is no copy

    def _resolve(self, f: SourceFile) -> bool:
        """Which checkpoint this file continues: the same inode with the same first bytes, or
        the same content under another name; else a fresh start at 0. False: not yet (a
        rotated copy still being written; see COPY_SETTLE)."""
        head = f.head()
        st_size = len(head) if f.reader is None else f.reader.stat().st_size
        path = str(f.path)
        if len(head) < HEAD_BYTES and self.index.rotation_of(path, full_head=True) is not None:
            first = self._postponed.setdefault(f.key, (f, time.monotonic()))[1]
            if time.monotonic() - first < COPY_SETTLE:
                return False
        self._postponed.pop(f.key, None)
        cp, resumed = self._resume_point(path, f.checkpoint, head, st_size)
        # A copy of a document read whole (Cline's `<id>.messages.json.tmp`, written and renamed
        # over the session file) has no unread tail to save: the document itself is read whole
        # again. Followed under its temporary name it would be read as lines (its format reads
        # only the document's own name whole: "could not start", and the file, once renamed
        # over the document, never read again). It is followed when renamed to a wanted name.
        if f.copy_only and (not resumed or cp.document):
            assert f.reader is not None
            st = f.reader.stat()
            self._forget(f, (st.st_size, st.st_mtime))
            return False
        f.checkpoint = cp
        self.index.add(cp)
        self.changed.add(cp.key)
        f.pipe = FilePipeline.at(f.path, self.settings, cp.offset)
        f.ledger = DeliveryLedger.restore(cp.offset, cp.resolved_ahead)
        f.sent_keys = set(cp.sent_keys)
        return True

    def _resume_point(
        self, path: str, fresh: FileCheckpoint, head: bytes, size: int
    ) -> tuple[FileCheckpoint, bool]:
        """The checkpoint to continue, and whether it continues one (else a fresh start)."""

        def here(cp: FileCheckpoint) -> tuple[FileCheckpoint, bool]:
            moved = dataclasses.replace(
                cp, path=path, device=fresh.device, inode=fresh.inode, removed_at=None
            )
            return moved, True

        docs = self.index.documents_at(path)
        if docs:
            # A document rewritten by a rename leaves a checkpoint per inode, each with the
            # turns acknowledged while it was followed: continue this inode's own (else the
            # best), knowing every turn any of them shipped.
            doc = next((cp for cp in docs if cp.key == fresh.key), docs[0])
            moved, _ = here(doc)
            moved.sent_keys = sorted({k for cp in docs for k in cp.sent_keys})
            return moved, True
        own = self.index.get(fresh.key)
        if own is not None and not matches(own, head, size):
            self._retire_generation(own)  # truncated or replaced while tailerd was away
        for cp in self.index.resume_candidates(fresh.key, fresh.stable_name, path):
            if matches(cp, head, size):
                if cp.key != fresh.key:
                    log.info("same content as path=%s; resuming at offset=%d", cp.path, cp.offset)
                return here(cp)
        return dataclasses.replace(fresh, head_len=len(head), head_hash=head_hash(head)), False

    def restart(self, f: SourceFile, why: str) -> None:
        """The file was truncated or rewritten: read it again from its first byte. What it was
        is kept as a retired generation, so a rotated copy of it (copytruncate) that shows up
        later resumes where it was instead of being read again."""
        log.warning("%s; reading again from the start path=%s", why, f.path)
        head = f.head()
        cp = f.checkpoint
        self._retire_generation(cp)
        old_hash = cp.head_hash
        f.pipe = FilePipeline.at(f.path, self.settings)
        f.ledger = DeliveryLedger()
        cp.offset, cp.context, cp.resolved_ahead = 0, {}, []
        cp.head_len, cp.head_hash = len(head), head_hash(head)
        self.index.reindex(cp, cp.path, old_hash)
        self.changed.add(cp.key)

    def _retire_generation(self, cp: FileCheckpoint) -> None:
        """Keep what a truncated or replaced file was, for a rotated copy of it to resume."""
        if cp.head_len > 0 and cp.offset > 0:
            # A retired generation has no inode of its own: a negative, unique one keys it.
            retired = dataclasses.replace(cp, inode=-time.time_ns() // 1000, removed_at=time.time())
            self.index.add(retired)
            self.changed.add(retired.key)

    def head_changed(self, f: SourceFile) -> bool:
        cp = f.checkpoint
        return head_hash(f.head(cp.head_len)) != cp.head_hash

    def grow_head(self, f: SourceFile) -> None:
        """A file first seen shorter than HEAD_BYTES gets its fingerprint extended as it grows."""
        cp = f.checkpoint
        if cp.head_len < HEAD_BYTES and f.size > cp.head_len:
            head = f.head()
            if head_hash(head[: cp.head_len]) != cp.head_hash:
                self.restart(f, "first bytes changed (file rewritten)")
                return
            old_hash = cp.head_hash
            cp.head_len, cp.head_hash = len(head), head_hash(head)
            self.index.reindex(cp, cp.path, old_hash)
            self.changed.add(cp.key)
