"""`local`: the embedded default. Every span, exactly as emitted, in an SQLite database (WAL),
keyed by span id so a re-sent turn is stored once. Read back by `tailerd sessions` / `show`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Delivered, Outcome, Retry
from tailerd.sinks.base import span_record

DB_FILE = "tailerd.db"  # in the data dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    operation TEXT,
    session_id TEXT,
    agent_name TEXT,
    start_ns INTEGER,
    end_ns INTEGER,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id, start_ns);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
"""


def connect(path: Path, readonly: bool = False, shared: bool = False) -> sqlite3.Connection:
    """Open the store (creating it unless `readonly`). `shared`: the connection may be used
    from a thread other than the one that made it (one thread at a time; the caller ensures it)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(path, timeout=30, check_same_thread=not shared)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        path.chmod(0o600)
    return db


def _row(span: ReadableSpan) -> tuple[Any, ...]:
    rec = span_record(span)
    attrs = rec["attributes"]
    return (
        rec["span_id"],
        rec["trace_id"],
        rec["parent_span_id"],
        rec["name"],
        attrs.get("gen_ai.operation.name"),
        attrs.get("gen_ai.conversation.id"),
        attrs.get("gen_ai.agent.name"),
        rec["start_ns"],
        rec["end_ns"],
        orjson.dumps(attrs).decode(),
    )


class LocalSink:
    """The store as a sink. The connection is made here (so a bad data dir fails at start) and
    then used by one thread at a time: delivery's worker for this sink calls `send`, and
    `close` runs after that worker was stopped (or abandoned in a hung write: sqlite3 serialises
    the close behind it)."""

    name = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, shared=True)

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR IGNORE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [_row(s) for s in spans],
                )
        except sqlite3.Error as exc:
            return Retry(f"sqlite: {exc}")
        return Delivered()

    def close(self) -> None:
        self._db.close()
