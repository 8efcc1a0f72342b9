"""One watched file: its identity, its (pooled) descriptor, and its pipeline state.

Identity is (device, inode) plus a fingerprint of the first bytes (core/identity.py), so inode
reuse and replacement are told apart. The descriptor comes from the pool (edges/fd_pool.py);
a file renamed or deleted with bytes still unread keeps it until drained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tailerd.core.identity import HEAD_BYTES
from tailerd.core.ledger import DeliveryLedger
from tailerd.domain import DeadLetter, Turn
from tailerd.edges.checkpoint_store import FileCheckpoint
from tailerd.edges.readers import Reader
from tailerd.pipeline import FilePipeline


@dataclass(slots=True, eq=False)
class SourceFile:
    path: Path
    checkpoint: FileCheckpoint
    pipe: FilePipeline
    ledger: DeliveryLedger
    reader: Reader | None = None
    size: int = 0
    mtime: float = 0.0
    gone: bool = False  # the path no longer leads here (renamed away or deleted)
    unrecognised: bool = False
    dirty: bool = True  # more bytes may be waiting
    copy_only: bool = False  # followed only as a rotated copy: read it only if it resumes one
    quarantined: str = ""  # why tailerd stopped reading this file (an internal error)
    document_final: bool = False  # the quiet-time pass over the current content was done
    sent_keys: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.checkpoint.key

    @property
    def device(self) -> int:
        return self.checkpoint.device

    @property
    def inode(self) -> int:
        return self.checkpoint.inode

    @property
    def document(self) -> bool:
        return self.checkpoint.document

    def refresh(self) -> None:
        assert self.reader is not None
        st = self.reader.stat()
        self.size, self.mtime = st.st_size, st.st_mtime

    def head(self, length: int = HEAD_BYTES) -> bytes:
        assert self.reader is not None
        return self.reader.read(0, length)

    def read_turns(self, budget: int) -> list[Turn | DeadLetter]:
        """Read up to `budget` new bytes through the pipeline; sets `dirty` if more remain."""
        assert self.reader is not None
        out: list[Turn | DeadLetter] = []
        self.pipe.mtime = self.mtime  # times for turns the agent did not stamp
        framer = self.pipe.framer
        pos = framer.consumed + framer.buffered
        remaining = budget
        while remaining > 0:
            data = self.reader.read(pos, min(remaining, 1 << 20))
            if not data:
                break
            out.extend(self.pipe.feed(data))
            pos += len(data)
            remaining -= len(data)
        self.dirty = remaining <= 0
        return out
