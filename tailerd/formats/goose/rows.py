"""Reading a goose `sessions.db`: the schema this reader knows, one session's row, its messages
in order, and the cursor (`Position`). See the package docstring for the schema and its source.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tailerd.edges.agent_db import table_columns
from tailerd.formats.goose.content import Row, content_items, inference_of, model_of, user_visible
from tailerd.formats.json_values import as_int, as_str

SESSION_COLUMNS = frozenset({"id", "working_dir", "updated_at"})
MESSAGE_COLUMNS = frozenset({"id", "session_id", "role", "content_json", "created_timestamp"})
# Read when the database has them (schema 4: name; 5: session_type; 6: provider_name and
# model_config_json; 7: messages.message_id), else their default.
OPTIONAL_SESSION = (
    ("name", "''"),
    ("description", "''"),
    ("session_type", "'user'"),
    ("schedule_id", "NULL"),
    ("provider_name", "''"),
    ("model_config_json", "NULL"),
    ("accumulated_input_tokens", "NULL"),
    ("accumulated_output_tokens", "NULL"),
    ("accumulated_total_tokens", "NULL"),
    ("created_at", "NULL"),
    ("parent_session_id", "''"),
)


class UnknownSchema(ValueError):
    """The database lacks a column every goose schema since version 1 has."""


@dataclass(frozen=True, slots=True)
class Position:
    """A parsed cursor: the last message passed, the token totals already shipped and the
    last `usage_ledger` row shipped."""

    index: int = -1
    key: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    ledger: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> Position:
        parts = (cursor or "").split("|", 4)
        if len(parts) != 5:
            return cls()
        index, seen_in, seen_out, ledger_id, key = parts
        try:
            return cls(int(index), key, int(seen_in), int(seen_out), int(ledger_id))
        except ValueError:
            return cls()

    def text(self) -> str:
        return f"{self.index}|{self.input_tokens}|{self.output_tokens}|{self.ledger}|{self.key}"


def check(db: sqlite3.Connection) -> None:
    missing = sorted(SESSION_COLUMNS - table_columns(db, "sessions")) + sorted(
        MESSAGE_COLUMNS - table_columns(db, "messages")
    )
    if missing:
        raise UnknownSchema(f"not a goose sessions.db this reader knows: no {', '.join(missing)}")


def session_row(db: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    columns = table_columns(db, "sessions")
    chosen = [name if name in columns else default for name, default in OPTIONAL_SESSION]
    found = db.execute(
        f"SELECT id, working_dir, updated_at, {', '.join(chosen)} FROM sessions"  # noqa: S608
        " WHERE id = ?",
        (session_id,),
    ).fetchone()
    if found is None:
        return None
    sid, cwd, updated, name, description, kind, schedule, provider, model, t_in, t_out, t_all = (
        found[:12]
    )
    return {
        "id": str(sid),
        "cwd": as_str(cwd),
        "updated_at": as_str(updated),
        "name": as_str(name) or as_str(description),
        "type": as_str(kind) or "user",
        "schedule_id": as_str(schedule),
        "provider": as_str(provider),
        "model": model_of(model),
        "input_tokens": as_int(t_in),
        "output_tokens": as_int(t_out),
        "total_tokens": as_int(t_all),
        "parent": as_str(found[13]),
    }


def messages(db: sqlite3.Connection, session_id: str) -> list[Row]:
    columns = table_columns(db, "messages")
    message_id = "message_id" if "message_id" in columns else "NULL"
    metadata = "metadata_json" if "metadata_json" in columns else "NULL"
    found = db.execute(
        f"SELECT id, {message_id}, role, content_json, created_timestamp, {metadata}"  # noqa: S608
        " FROM messages WHERE session_id = ? ORDER BY id",
        (session_id,),
    )
    rows = []
    for index, (rowid, mid, role, content, created, meta) in enumerate(found):
        model, provider = inference_of(meta)
        rows.append(
            Row(
                key=as_str(mid) or f"msg_{session_id}_{rowid}",
                index=index,
                role=as_str(role),
                items=content_items(content),
                created=seconds(created),
                user_visible=user_visible(meta),
                model=model,
                provider=provider,
            )
        )
    return rows


def after(rows: list[Row], position: Position) -> list[Row]:
    """The rows after the cursor's message; should that message be gone (goose rewrote the
    conversation), the rows up to its position are taken as read (never sent twice)."""
    if position.index < 0:
        return rows
    for i, row in enumerate(rows):
        if row.key == position.key:
            return rows[i + 1 :]
    return rows[position.index + 1 :]


def seconds(value: object) -> float:
    """Epoch seconds from `created_timestamp` (goose writes `Utc::now().timestamp()`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    number = float(value)
    return number / 1000 if number > 1e11 else number
