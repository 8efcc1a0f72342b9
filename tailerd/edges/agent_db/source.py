"""One agent database followed by the daemon: change test, session reads, cursors.

`DatabaseSource.poll` is called when the database or its `-wal` changed (inotify names either;
the daemon maps `-wal` to its database) and once a second while a session has an open turn (for
idle closing: the database is opened again only once nothing changed for `idle_close`
seconds). It stats both files first and opens nothing if neither moved; otherwise it opens
one read-only snapshot (see the package docstring), lists the sessions whose version changed
since the last read, and asks the format for each one's turns after its read cursor.

Nothing the agent writes can raise out of here: a database that cannot be opened (being created,
locked past the busy timeout, not a database) is logged once and tried again on its next change;
a session the format fails on becomes a dead letter naming the session, and is read again
when it changes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from tailerd.domain import DeadLetter, Turn
from tailerd.edges.agent_db import Signature, read_snapshot, signature
from tailerd.edges.agent_db.cursors import SessionCursors
from tailerd.edges.agent_db.protocol import DatabaseFormat, SessionRead
from tailerd.formats.base import Source
from tailerd.formats.guard import describe

log = logging.getLogger("tailerd")

TURNS_PER_POLL = 256  # turns read from one database before the daemon may deliver them


class DatabaseSource:
    """`acked`: the stored cursors (session id -> cursor) of this database."""

    def __init__(
        self,
        path: Path,
        fmt: DatabaseFormat,
        source: Source,
        acked: Mapping[str, str],
        idle_close: float,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.source = source
        self.idle_close = idle_close
        self.cursors = SessionCursors(acked)
        self.reads = 0  # snapshots opened (tests count work with it)
        self._signature: Signature | None = None
        self._changed_at = 0.0  # when (epoch seconds) the signature last moved
        self._versions: dict[str, str] = {}
        self._open: set[str] = set()  # sessions with a turn not finished yet
        self._error = ""
        self.more = False  # the last poll stopped at its turn limit: poll again to go on

    @property
    def read_signature(self) -> Signature | None:
        """The database's `signature` at the last successful read (None before one)."""
        return self._signature

    @property
    def open_sessions(self) -> frozenset[str]:
        return frozenset(self._open)

    def poll(
        self, now: float, *, idle: bool = False, limit: int = TURNS_PER_POLL
    ) -> list[tuple[str, Turn | DeadLetter]]:
        """(session id, finished turn or dead letter) for what changed since the last poll.
        `idle`: also re-read the sessions with an open turn (their quiet time grew). Sessions
        are read until `limit` turns came out (memory stays bounded on a first read of a large
        history); `more` then says the rest waits for the next poll."""
        sig = signature(self.path)
        if sig is None:
            return []
        if sig == self._signature and not self.more:
            # Unchanged: only time can close an open turn, once its quiet reaches idle_close
            # (measured from its last message, which is no later than the last change seen).
            if not (idle and self._open and now - self._changed_at >= self.idle_close):
                return []
        elif sig != self._signature:
            self._changed_at = now
        try:
            with read_snapshot(self.path) as db:
                self.reads += 1
                out = self._read(db, now, idle, limit)
        except sqlite3.Error as exc:
            if str(exc) != self._error:
                self._error = str(exc)
                # "no such table": the agent is still creating its schema (its first start)
                level = logging.INFO if "no such table" in str(exc) else logging.WARNING
                log.log(level, "cannot read agent database path=%s: %s", self.path, exc)
            return []
        self._error = ""
        self._signature = sig
        return out

    def _read(
        self, db: sqlite3.Connection, now: float, idle: bool, limit: int
    ) -> list[tuple[str, Turn | DeadLetter]]:
        try:
            versions = self.fmt.session_versions(db)
        except sqlite3.Error:
            raise
        except Exception as exc:
            return [
                ("", DeadLetter(0, 0, f"{self.fmt.name} cannot list sessions: {describe(exc)}"))
            ]
        for session_id in self.cursors.forget_missing(versions):  # deleted by the agent (or user)
            self._versions.pop(session_id, None)
            self._open.discard(session_id)
        todo = [s for s, v in versions.items() if self._versions.get(s) != v]
        if idle:
            todo += sorted(self._open - set(todo))
        out: list[tuple[str, Turn | DeadLetter]] = []
        self.more = False
        for session_id in todo:
            if len(out) >= limit:  # the sessions not read keep their old version: next poll
                self.more = True
                break
            cursor = self.cursors.read_to.get(session_id)
            try:
                read = self.fmt.read_session(
                    db, self.source, session_id, cursor, now=now, idle_close=self.idle_close
                )
            except sqlite3.Error:
                raise
            except Exception as exc:
                reason = f"{self.fmt.name} failed on session {session_id}: {describe(exc)}"
                read = SessionRead()
                out.append((session_id, DeadLetter(0, 0, reason)))
            if session_id in versions:
                self._versions[session_id] = versions[session_id]
            for item in read.turns:
                out.append((session_id, item.turn))
                self.cursors.emitted(session_id, item.turn.key, item.cursor)
            self.cursors.moved(session_id, read.cursor)
            if read.open:
                self._open.add(session_id)
            else:
                self._open.discard(session_id)
        return out

    def settled(self, key: str) -> bool:
        """Every sink is done with turn `key` (or it was never sent); False if not ours."""
        return self.cursors.settled(key)
