"""OpenCode's SQLite database as `Rows` for the turn builder (opencode/turns.py): the tables
`session`, `message` and `part` (see the package docstring), read inside the connection's one
read transaction (tailerd/edges/agent_db)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tailerd.edges.agent_db import table_columns
from tailerd.edges.agent_db.protocol import SessionQuery, SessionRead
from tailerd.formats.opencode.turns import Row, json_object, number, session_turns

_IN_CHUNK = 500  # ids per `IN (...)` query


def session_versions(db: sqlite3.Connection) -> dict[str, str]:
    """Top-level session id -> "<time_updated>|<last message id>|<its time_updated>"."""
    rows = db.execute(
        "SELECT s.id, s.time_updated,"
        " (SELECT m.id || '|' || m.time_updated FROM message m WHERE m.session_id = s.id"
        "  ORDER BY m.time_created DESC, m.id DESC LIMIT 1)"
        " FROM session s WHERE s.parent_id IS NULL OR s.parent_id = ''"
    )
    return {str(i): f"{u}|{last}" for i, u, last in rows}


def read_session(query: SessionQuery) -> SessionRead:
    """The finished turns of one session of the database after its cursor."""
    return session_turns(
        DatabaseRows(query.db),
        query.source,
        query.session_id,
        query.cursor,
        now=query.now,
        idle_close=query.idle_close,
    )


class DatabaseRows:
    """`Rows` from an open OpenCode database connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def session(self, session_id: str) -> dict[str, str] | None:
        db = self._db
        directory = "directory" if "directory" in table_columns(db, "session") else "''"
        found = db.execute(
            f"SELECT id, title, {directory} FROM session WHERE id = ?",  # noqa: S608
            (session_id,),
        ).fetchone()
        if found is None:
            return None
        return {"id": str(found[0]), "title": _text(found[1]), "directory": _text(found[2])}

    def messages(self, session_id: str, cursor: str | None) -> list[Row]:
        after_time, after_id = -1, ""
        if cursor:
            time_text, _, after_id = cursor.partition("|")
            try:
                after_time = int(time_text)
            except ValueError:
                after_time, after_id = -1, ""
        found = self._db.execute(
            "SELECT id, time_created, time_updated, data FROM message WHERE session_id = ?"
            " AND (time_created > ? OR (time_created = ? AND id > ?))"
            " ORDER BY time_created, id",
            (session_id, after_time, after_time, after_id),
        ).fetchall()
        parts = self._parts([str(r[0]) for r in found])
        return [
            Row(
                str(mid),
                number(created),
                number(updated) or number(created),
                json_object(data),
                parts.get(str(mid), ()),
            )
            for mid, created, updated, data in found
        ]

    def _parts(self, message_ids: list[str]) -> dict[str, tuple[dict[str, Any], ...]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(message_ids), _IN_CHUNK):
            chunk = message_ids[i : i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = (
                f"SELECT message_id, data FROM part WHERE message_id IN ({marks})"  # noqa: S608
                " ORDER BY message_id, id"
            )
            for mid, data in self._db.execute(query, chunk):
                out.setdefault(str(mid), []).append(json_object(data))
        return {k: tuple(v) for k, v in out.items()}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
