"""Reading a file's bytes by offset: plain files through `pread`, `.zst` archives streamed.

A reader holds one open descriptor. The descriptor pool (edges/fd_pool.py) decides how long;
a reader never reads a whole file into memory: a compressed rollout is decompressed as a
stream, restarted only when asked for an offset behind its position.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

COMPRESSED = (".zst", ".gz")
_SKIP_CHUNK = 1 << 20
T = TypeVar("T")


class Reader(Protocol):
    fd: int

    def stat(self) -> os.stat_result:
        """fstat of the open file; st_size is the readable (decompressed) length."""
        ...

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset`; b"" at the end."""
        ...

    def close(self) -> None: ...


class PlainReader:
    def __init__(self, path: Path) -> None:
        # O_NONBLOCK: a FIFO named like a log must not block the open (regular files ignore it)
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.close(self.fd)
            raise OSError(errno.EINVAL, "not a regular file", str(path))

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        os.close(self.fd)


class ZstdReader:
    """A compressed file (a Codex rollout archived as `.zst`, a log rotated to `.gz`) is
    immutable: decompress it as a stream, holding only a window.

    Its length is the frame's declared content size, or is counted once by streaming."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._size: int | None = None
        self._stream: Any = None
        self._raw: io.FileIO | None = None
        self._pos = 0

    def _restart(self) -> Any:
        self._close_stream()
        raw = self._raw = io.FileIO(os.dup(self.fd), "rb")
        raw.seek(0)  # a duplicate shares the file offset, which an earlier stream moved
        self._stream = self._decompressing(raw)
        self._pos = 0
        return self._stream

    def _decompressing(self, raw: io.FileIO) -> Any:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)

    def _declared_size(self) -> int:
        import zstandard

        try:
            return int(zstandard.frame_content_size(os.pread(self.fd, 18, 0)))
        except zstandard.ZstdError:
            return -1

    def stat(self) -> os.stat_result:
        st = os.fstat(self.fd)
        if self._size is None:
            self._size = _as_os_error(self._content_size)
        return os.stat_result((*st[:6], self._size, *st[7:10]))

    def _content_size(self) -> int:
        declared = self._declared_size()
        if declared >= 0:
            return declared
        stream, total = self._restart(), 0
        while chunk := stream.read(_SKIP_CHUNK):
            total += len(chunk)
        self._restart()
        return total

    def read(self, offset: int, size: int) -> bytes:
        return _as_os_error(lambda: self._read(offset, size))

    def _read(self, offset: int, size: int) -> bytes:
        stream = self._stream
        if stream is None or offset < self._pos:
            stream = self._restart()
        while self._pos < offset:
            skipped = stream.read(min(_SKIP_CHUNK, offset - self._pos))
            if not skipped:
                return b""
            self._pos += len(skipped)
        data: bytes = stream.read(size)
        self._pos += len(data)
        return data

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._raw is not None:
            self._raw.close()  # a GzipFile leaves the file it reads open
            self._raw = None

    def close(self) -> None:
        self._close_stream()
        os.close(self.fd)


class GzipReader(ZstdReader):
    """A log rotated and compressed by logrotate (`a.jsonl.1.gz`); its length is counted once
    (gzip's own size field is modulo 4 GiB)."""

    def _decompressing(self, raw: io.FileIO) -> Any:
        return gzip.GzipFile(fileobj=raw, mode="rb")

    def _declared_size(self) -> int:
        return -1


def _as_os_error(call: Callable[[], T]) -> T:
    """A corrupt archive is an unreadable file (EIO), like any other read error."""
    import zstandard

    try:
        return call()
    except (zstandard.ZstdError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise OSError(errno.EIO, f"corrupt compressed file: {exc}") from None


def open_reader(path: Path) -> Reader:
    """Open `path` for reading. Raises OSError (ENOENT, EACCES, EMFILE...) as `os.open` does."""
    if path.name.endswith(".zst"):
        return ZstdReader(path)
    if path.name.endswith(".gz"):
        return GzipReader(path)
    return PlainReader(path)


def read_all(path: Path, chunk: int = 8 << 20) -> Iterator[bytes]:
    """Yield a file's bytes in chunks of at most `chunk` bytes (decompressing `.zst`)."""
    reader = open_reader(path)
    try:
        offset = 0
        while data := reader.read(offset, chunk):
            offset += len(data)
            yield data
    finally:
        reader.close()
