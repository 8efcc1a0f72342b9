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
from typing import TYPE_CHECKING, Protocol

from tailerd.domain import Turn

if TYPE_CHECKING:  # formats import this module: no import of tailerd.formats at run time
    from tailerd.formats.base import Source

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
    still open (not finished and not idle long enough)."""

    turns: tuple[SessionTurn, ...] = ()
    open: bool = False
    attributes: Mapping[str, object] = field(default_factory=dict)


class DatabaseFormat(Protocol):
    name: str

    def reads_database(self, path: PurePath) -> bool:
        """True for this format's database files (the daemon then reads them by session)."""
        ...

    def session_versions(self, db: sqlite3.Connection) -> dict[str, str]:
        """Every top-level session's id -> a text that changes whenever the session does
        (e.g. its update time and message count). Sub-agent sessions are read through their
        parent and not listed."""
        ...

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
        ...
