"""What an agent-database format implements (Crush, OpenCode): sessions in, finished turns out.

Like a line format it is pure: it is handed an open read-only connection (inside one read
transaction, see `read_snapshot`) and never opens anything itself. It reports, per session, the
turns finished after the session's cursor, each with the cursor that passes it; tailerd stores
a cursor only once every sink acknowledged its turn.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from tailerd.domain import Turn
from tailerd.edges.agent_db import is_database

if TYPE_CHECKING:  # formats import this module: no import of tailerd.formats at run time
    from tailerd.formats.base import Source, TurnParser

DEFAULT_IDLE_CLOSE = 600.0  # seconds a session's last turn may stay quiet before it is closed


@dataclass(frozen=True, slots=True)
class SessionTurn:
    """A finished turn and the cursor that passes it (format-defined text, e.g. the last
    message's time and id)."""

    turn: Turn
    cursor: str


@dataclass(frozen=True, slots=True)
class SessionRead:
    """One session read after a cursor: its finished turns in order, and whether a turn is
    still open (not finished and not idle long enough); `cursor`, a cursor the session moves to
    after its turns, with or without any (a format's bookkeeping, e.g. Crush's cost baseline)."""

    turns: tuple[SessionTurn, ...] = ()
    open: bool = False
    attributes: Mapping[str, object] = field(default_factory=dict)
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """One `read_session` call's arguments: the open connection, the file's source, the
    session's id, its cursor (None: from its start), `now` (epoch seconds) and `idle_close`
    (seconds a turn may stay quiet before it is closed)."""

    db: sqlite3.Connection
    source: Source
    session_id: str
    cursor: str | None
    now: float
    idle_close: float


class DatabaseFormat:
    """A format read by session from an agent's SQLite database (Crush, OpenCode). A subclass
    sets `name` and `reads_database`, and implements `session_versions` and `read_query`; the
    line-format methods (`claims`, `new_parser`, ...) are given here once."""

    name: str

    def claims(self, path: PurePath, head: bytes) -> bool:
        return self.reads_database(path) and is_database(head)

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def reads_whole(self, path: PurePath) -> bool:
        return self.reads_database(path)

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        """Never used: the daemon reads a database by session (tailerd/edges/agent_db)."""
        return []

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        """Raises TypeError: a database is never read by line."""
        raise TypeError(f"{self.name} databases are read by session, not by line")

    def reads_database(self, path: PurePath) -> bool:
        """True for this format's database files (the daemon then reads them by session)."""
        raise NotImplementedError

    def session_versions(self, db: sqlite3.Connection) -> dict[str, str]:
        """Every top-level session's id -> a text that changes whenever the session does
        (e.g. its update time and message count). Sub-agent sessions are read through their
        parent and not listed. A session no longer listed counts as deleted: its stored cursor
        is dropped (edges/agent_db/cursors.py `forget_missing`)."""
        raise NotImplementedError

    def read_query(self, query: SessionQuery) -> SessionRead:
        """`read_session` with its arguments in one `SessionQuery`."""
        raise NotImplementedError

    def read_session(
        self,
        db: sqlite3.Connection,
        source: Source,
        session_id: str,
        cursor: str | None,
        *,
        now: float,
        idle_close: float,
    ) -> SessionRead:
        """The turns of one session finished after `cursor` (None: from its start). A turn is
        finished when the next user message exists, when the agent marked its last answer
        final, or when its last message is older than `idle_close` seconds at `now` (epoch
        seconds). Raises on a schema it does not know (the caller dead-letters the session)."""
        return self.read_query(SessionQuery(db, source, session_id, cursor, now, idle_close))


def as_database(fmt: object, path: PurePath) -> DatabaseFormat | None:
    """`fmt` (a format, guarded or not) if it reads `path` as an agent database, else None."""
    reads = getattr(fmt, "reads_database", None)
    if reads is None or not reads(path):
        return None
    return fmt  # type: ignore[return-value]  # it has reads_database


def idle_close_of(options: Mapping[str, object]) -> float:
    """Seconds a session's last turn may stay quiet before it is closed: the format's
    `idle_close` option (a number, checked by the settings), else DEFAULT_IDLE_CLOSE."""
    value = options.get("idle_close", DEFAULT_IDLE_CLOSE)
    return float(value) if isinstance(value, (int, float, str)) else DEFAULT_IDLE_CLOSE
