"""One file's pipeline, bytes -> lines -> records -> turns, the same for the live daemon,
`--once`, `import`, `preview` and `retry`.

It holds the line framer and the format's parser; it never opens files (the caller hands it
bytes), so the daemon can read through its descriptor pool and the whole-file commands can
stream. A file rewritten whole (formats.base.DocumentFormat) is handed over whole instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Turn
from tailerd.edges.agent_db import SQLITE_MAGIC
from tailerd.edges.agent_db.protocol import DatabaseFormat, as_database, idle_close_of
from tailerd.edges.agent_db.whole import WholeDatabase
from tailerd.edges.readers import Reader, open_reader
from tailerd.edges.related_files import as_document, document_idle_close, source_for
from tailerd.file_times import with_file_time
from tailerd.formats.base import DocumentFormat, Format, TurnParser
from tailerd.settings import Settings

FORMAT_HEAD = 64 * 1024  # bytes a format may look at to claim a file
READ_CHUNK = 4 << 20


@dataclass(slots=True)
class FilePipeline:
    path: Path
    settings: Settings
    framer: LineFramer
    fmt: Format | None = None
    parser: TurnParser | None = None
    document: DocumentFormat | None = None
    mtime: float | None = None  # the file's st_mtime at the last read (file_times.py)
    open_sessions: tuple[str, ...] = ()  # an agent database's sessions with a turn still open

    @classmethod
    def at(cls, path: Path, settings: Settings, offset: int = 0) -> FilePipeline:
        return cls(path, settings, LineFramer(offset=offset, max_line=settings.max_line_bytes))

    def choose(
        self,
        head: bytes,
        mapped: tuple[Format, ...],
        context: Mapping[str, Any] | None = None,
        saved_format: str = "",
        whole: bool = False,
    ) -> bool | None:
        """Pick the format from the path and first bytes. True: chosen; None: wait for a whole
        first line (unless the file is `whole`, read to its end); False: no format recognises it."""
        whole = whole or head.startswith(SQLITE_MAGIC)  # an agent's database: no lines to wait for
        whole = whole or formats.reads_whole(PurePath(self.path))  # a one-line JSON document
        if b"\n" not in head and not self.settings.format and not whole:
            return None
        fmt = formats.choose(PurePath(self.path), head, self.settings.format, mapped)
        if fmt is None and saved_format:
            # A rotated copy (`a.jsonl.1`) resumes its original's checkpoint, and its format.
            fmt = next((f for f in (*mapped, *formats.FORMATS) if f.name == saved_format), None)
        if fmt is None:
            return False
        self.fmt = fmt
        self.document = as_document(fmt, self.path)
        if self.document is None:
            # A parser context saved by another format (the file was replaced) means nothing here.
            kept = context if saved_format == fmt.name else None
            self.parser = fmt.new_parser(source_for(self.path, fmt, self.settings), kept)
        return True

    def feed(self, data: bytes) -> Iterator[Turn | DeadLetter]:
        """Frame new bytes and parse every complete line; finished turns and dead letters out."""
        parser = self.parser
        assert parser is not None
        for item in self.framer.feed(data):
            if isinstance(item, DeadLetter):
                yield item
            else:
                yield from with_file_time(parser.feed(item), self.mtime)

    def document_turns(self, data: bytes, final: bool) -> list[Turn | DeadLetter]:
        """The finished turns of a whole document; a DeadLetter over it if the format failed."""
        assert self.document is not None and self.fmt is not None
        source = source_for(self.path, self.fmt, self.settings)
        items = getattr(self.document, "document_items", None)  # the guarded registry's
        if items is not None:
            return list(items(data, source, final=final))
        return list(self.document.document_turns(data, source, final=final))

    def document_idle_close(self) -> float:
        assert self.fmt is not None
        return document_idle_close(self.fmt, self.settings)

    def close_idle(self, quiet_for: float) -> list[Turn | DeadLetter]:
        """Turns the format closes after `quiet_for` seconds of quiet, and dead letters for
        any open turn the format lost while failing."""
        if self.parser is None:
            return []
        out = with_file_time(list(self.parser.close_idle(quiet_for)), self.mtime)
        take = getattr(self.parser, "take_dead_letters", None)  # the guarded registry's
        if take is not None:
            out.extend(take())
        return out

    def pending_from(self) -> int | None:
        return self.parser.pending_from() if self.parser else None

    def snapshot(self) -> dict[str, Any]:
        return self.parser.snapshot() if self.parser else {}

    def format_name(self) -> str | None:
        return self.fmt.name if self.fmt else None


def format_head(reader: Reader, limit: int) -> bytes:
    """The bytes a format is chosen by: FORMAT_HEAD, or more when the first line is longer
    (a first prompt with a large paste), up to its newline or `limit` bytes."""
    head = reader.read(0, FORMAT_HEAD)
    while b"\n" not in head and len(head) < limit:
        more = reader.read(len(head), min(FORMAT_HEAD * 16, limit - len(head)))
        if not more:
            break
        head += more
    return head


def whole_file(
    path: Path,
    settings: Settings,
    mapped: tuple[Format, ...],
    quiet_for: float,
    on_end: Callable[[FilePipeline], None] | None = None,
    *,
    db_cursors: Mapping[str, str] | None = None,
) -> Iterator[Turn | DeadLetter]:
    """Every turn of one file, streamed in chunks (whole-document files are read whole), with
    the turns still open closed as the format would after `quiet_for` seconds of quiet.
    `on_end(pipe)` then sees the pipeline with the turns that stay open (to report them).
    `db_cursors` (session id -> cursor, as stored): an agent database's sessions are read from
    there, not from their start."""
    reader: Reader = open_reader(path)
    try:
        pipe = FilePipeline.at(path, settings)
        head = format_head(reader, settings.max_line_bytes)
        if not pipe.choose(head, mapped, whole=True):
            return
        database = as_database(pipe.fmt, PurePath(path))
        if database is not None:
            yield from _database_turns(pipe, database, on_end, db_cursors or {})
            return
        if pipe.document is not None:
            size = reader.stat().st_size
            data = reader.read(0, size)
            final = quiet_for >= pipe.document_idle_close()
            yield from pipe.document_turns(data, final=final)
            if on_end is not None and not final:
                on_end(pipe)
            return
        offset, pipe.mtime = 0, reader.stat().st_mtime
        while chunk := reader.read(offset, READ_CHUNK):
            offset += len(chunk)
            yield from pipe.feed(chunk)
        yield from pipe.close_idle(quiet_for)
        if on_end is not None:
            on_end(pipe)
    finally:
        reader.close()


def _database_turns(
    pipe: FilePipeline,
    fmt: DatabaseFormat,
    on_end: Callable[[FilePipeline], None] | None,
    acked: Mapping[str, str],
) -> Iterator[Turn | DeadLetter]:
    """An agent database's finished turns, read by session as the daemon reads it (edges/
    agent_db/whole.py); `on_end` then sees the pipeline if some session's turn is still open."""
    options = pipe.settings.format_options.get(fmt.name, {})
    source = source_for(pipe.path, fmt, pipe.settings)
    whole = WholeDatabase(pipe.path, fmt, source, idle_close_of(options), acked)
    yield from whole.turns(time.time())
    pipe.open_sessions = whole.open_sessions
    if on_end is not None and pipe.open_sessions:
        on_end(pipe)
