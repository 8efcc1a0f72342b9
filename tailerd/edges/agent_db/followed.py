"""The agent databases the daemon follows, keyed like its files (device:inode).

The daemon tracks a database like any file (discovery, identity, format choice: a database
format is a whole-document format whose `reads_database` says so) and hands it here instead of
reading its bytes. Acknowledgements come back through `settled`; the moved cursors are written
by the daemon's commit in the same transaction as the checkpoints (`pending_cursors`, then
`committed`). Restart: cursors are loaded by database path (`CheckpointStore.db_cursors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Protocol

from tailerd.domain import DeadLetter, Turn
from tailerd.edges.agent_db import Signature
from tailerd.edges.agent_db.protocol import DatabaseFormat, as_database, idle_close_of
from tailerd.edges.agent_db.source import DatabaseSource
from tailerd.edges.related_files import source_for
from tailerd.edges.source_file import SourceFile
from tailerd.settings import Settings

Cursor = tuple[str, str, str]  # database path, session id, cursor


class CursorStore(Protocol):
    def db_cursors(self, db_path: str) -> dict[str, str]: ...


def database_format(f: SourceFile) -> DatabaseFormat | None:
    """The file's format if it reads this file as an agent database."""
    return as_database(f.pipe.fmt, PurePath(f.path))


class DatabaseFiles:
    def __init__(self, store: CursorStore, settings: Callable[[], Settings]) -> None:
        """`settings`: the daemon's current settings (a reload replaces them)."""
        self.store = store
        self.settings = settings
        self.sources: dict[str, tuple[SourceFile, DatabaseSource]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.sources

    def pump(
        self, f: SourceFile, accept: Callable[[SourceFile, Turn | DeadLetter], None], idle: bool
    ) -> bool | None:
        """Read what changed in `f`'s database and `accept` each turn or dead letter. None if
        `f` is not an agent database; else whether some session still has an open turn."""
        found = self.sources.get(f.key)
        fmt = database_format(f) if found is None else found[1].fmt
        if fmt is None:
            return None
        settings = self.settings()
        idle_close = idle_close_of(settings.format_options.get(fmt.name, {}))
        if found is None:
            acked = self.store.db_cursors(str(f.path))
            source = source_for(f.path, f.pipe.fmt, settings)  # type: ignore[arg-type]
            found = (f, DatabaseSource(f.path, fmt, source, acked, idle_close))
            self.sources[f.key] = found
        found[1].idle_close = idle_close
        db = found[1]
        for _session, item in db.poll(time.time(), idle=idle):
            accept(f, item)
            if isinstance(item, Turn) and not f.ledger.is_pending(item.key):
                db.settled(item.key)  # not sent (could not build its spans): do not wait for it
        f.dirty = db.more  # stopped at its turn limit: read on once delivery allows
        f.document_final = not db.open_sessions
        f.pipe.open_sessions = tuple(sorted(db.open_sessions))  # for status and --once's summary
        return bool(db.open_sessions)

    def settled(self, f: SourceFile, key: str) -> bool:
        """Every sink is done with turn `key` of `f`; False if `f` is not an agent database."""
        found = self.sources.get(f.key)
        return found is not None and found[1].settled(key)

    def read_signature(self, f: SourceFile) -> Signature | None:
        """`f`'s database signature at its last successful read; None if none (or no database)."""
        found = self.sources.get(f.key)
        return None if found is None else found[1].read_signature

    def pending_cursors(self) -> list[Cursor]:
        """Acknowledged cursors not yet written."""
        return [
            (str(f.path), s, c) for f, db in self.sources.values() for s, c in db.cursors.changed()
        ]

    def forgotten_cursors(self) -> list[tuple[str, str]]:
        """(database path, session id) of stored cursors to delete: sessions gone from their
        database."""
        return [(str(f.path), s) for f, db in self.sources.values() for s in db.cursors.forgotten()]

    def committed(self) -> None:
        for _f, db in self.sources.values():
            db.cursors.committed()

    def __iter__(self) -> Iterator[DatabaseSource]:
        return (db for _f, db in self.sources.values())
