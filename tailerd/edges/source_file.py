"""One watched file: its identity, an open descriptor, and the per-file pipeline state.

Identity is (device, inode) plus a hash of the first bytes, so inode reuse and replacement
are told apart. The descriptor stays open after the path is renamed or deleted, so a rotated
file is drained to its end before it is let go.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tailerd.core.framing import LineFramer
from tailerd.core.ledger import DeliveryLedger
from tailerd.domain import DeadLetter, Line
from tailerd.edges.checkpoint_store import FileCheckpoint
from tailerd.formats.base import Format, TurnParser

HEAD_BYTES = 1024
COMPRESSED = (".zst",)


def head_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class PlainReader:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        os.close(self.fd)


class ZstdReader:
    """A compressed rollout is immutable: decompress it once, then serve reads from memory."""

    def __init__(self, path: Path) -> None:
        import zstandard

        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        with os.fdopen(os.dup(self.fd), "rb") as raw:
            self._data = zstandard.ZstdDecompressor().stream_reader(raw).read()

    def stat(self) -> os.stat_result:
        st = os.fstat(self.fd)
        return os.stat_result((*st[:6], len(self._data), *st[7:10]))

    def read(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def close(self) -> None:
        os.close(self.fd)


Reader = PlainReader | ZstdReader


def open_reader(path: Path) -> Reader:
    return ZstdReader(path) if path.name.endswith(COMPRESSED) else PlainReader(path)


@dataclass(slots=True)
class SourceFile:
    path: Path
    reader: Reader
    checkpoint: FileCheckpoint
    framer: LineFramer
    ledger: DeliveryLedger
    fmt: Format | None = None
    parser: TurnParser | None = None
    size: int = 0
    mtime: float = 0.0
    gone: bool = False  # the path no longer leads here (renamed away or deleted)
    unrecognised: bool = False
    dirty: bool = True  # more bytes may be waiting
    document: bool = False  # rewritten whole (see formats.base.DocumentFormat)
    document_final: bool = False  # the quiet-time pass over the current content was done
    sent_keys: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.checkpoint.key

    def refresh(self) -> os.stat_result:
        st = self.reader.stat()
        self.size, self.mtime = st.st_size, st.st_mtime
        return st

    def head(self, length: int = HEAD_BYTES) -> bytes:
        return self.reader.read(0, length)

    def read_lines(self, budget: int) -> list[Line | DeadLetter]:
        """Read up to `budget` new bytes and frame them; sets `dirty` if more remain."""
        out: list[Line | DeadLetter] = []
        pos = self.framer.consumed + self.framer.buffered
        remaining = budget
        while remaining > 0:
            data = self.reader.read(pos, min(remaining, 1 << 20))
            if not data:
                break
            out.extend(self.framer.feed(data))
            pos += len(data)
            remaining -= len(data)
        self.dirty = remaining <= 0
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
