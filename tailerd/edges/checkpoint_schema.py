"""The schema of `checkpoints.db` and its rows: tables, migrations, row <-> `FileCheckpoint`,
the import of `checkpoints.json`, and the transaction helper. The store's API (what is read and
written when) is `checkpoint_store.CheckpointStore`.

Tables (schema version `SCHEMA_VERSION`, kept in `meta`):

* `files` — one row per file checkpoint (`FileCheckpoint` fields; `context` as JSON);
* `turn_keys` — a file's `sent_keys` (kind `sent`) and `resolved_ahead` keys (kind `ahead`),
  one row per key, so a save of one file adds and deletes only that file's changed keys;
* `history` (schema 2) — the host-wide index of what was shipped: one row per identity of a
  turn every sink acknowledged (`identity -> turn_key, file_key, time`), written in the same
  transaction as the checkpoints that pass those turns (see tailerd/history.py for its rules).
  A schema-1 database is migrated in place by one transaction that adds the table.
* `db_cursors` (schema 3) — for an agent's SQLite database (tailerd/edges/agent_db), one row
  per session: how far every sink acknowledged it (`db path, session id -> cursor`), written in
  the same transaction as the checkpoints. Older schemas are migrated in place, one transaction
  per step.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tailerd.edges import legacy_checkpoints
from tailerd.errors import StateCorruptError

SCHEMA_VERSION = 3
MIGRATABLE_VERSIONS = frozenset({"1", "2"})  # older schemas this version upgrades in place
MIGRATED_SUFFIX = ".migrated"

HISTORY_SCHEMA = """
CREATE TABLE history (
    identity TEXT PRIMARY KEY, turn_key TEXT NOT NULL, file_key TEXT NOT NULL, time REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX history_time ON history (time);
"""
DB_CURSORS_SCHEMA = """
CREATE TABLE db_cursors (
    db_path TEXT NOT NULL, session_id TEXT NOT NULL, cursor TEXT NOT NULL,
    PRIMARY KEY (db_path, session_id)
) WITHOUT ROWID;
"""
SCHEMA = (
    """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    key TEXT PRIMARY KEY, path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
    head_len INTEGER NOT NULL, head_hash TEXT NOT NULL, "offset" INTEGER NOT NULL,
    format TEXT NOT NULL, stable_name TEXT NOT NULL, context TEXT NOT NULL,
    document INTEGER NOT NULL, turns_emitted INTEGER NOT NULL, dead_letters INTEGER NOT NULL,
    removed_at REAL
);
CREATE TABLE turn_keys (
    file_key TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('sent', 'ahead')),
    turn_key TEXT NOT NULL, PRIMARY KEY (file_key, kind, turn_key)
) WITHOUT ROWID;
"""
    + HISTORY_SCHEMA
    + DB_CURSORS_SCHEMA
)
COLUMNS = (
    'key, path, device, inode, head_len, head_hash, "offset", format, stable_name, context, '
    "document, turns_emitted, dead_letters, removed_at"
)
SELECT_FILES = f"SELECT {COLUMNS} FROM files"  # noqa: S608 (constants only)
_MARKS = ", ".join("?" * len(COLUMNS.split(",")))
UPSERT_FILE = f"INSERT OR REPLACE INTO files ({COLUMNS}) VALUES ({_MARKS})"  # noqa: S608
KINDS = ("sent", "ahead")
UPSERT_HISTORY = (
    "INSERT INTO history (identity, turn_key, file_key, time) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (identity) DO UPDATE SET time = max(time, excluded.time)"
)
SELECT_HISTORY = "SELECT identity, turn_key, file_key FROM history WHERE identity IN"
SQL_VARIABLES = 500  # identities per lookup query (SQLite's old limit is 999 variables)
Row = tuple[Any, ...]
Shipped = tuple[str, str, str, float]  # identity, turn key, file key, epoch seconds
DbCursor = tuple[str, str, str]  # agent database path, session id, cursor


@dataclass(slots=True)
class FileCheckpoint:
    """Everything needed to resume one file: identity, committed offset, parser context."""

    path: str
    device: int
    inode: int
    head_len: int
    head_hash: str
    offset: int = 0
    format: str = ""
    stable_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    resolved_ahead: list[str] = field(default_factory=list)
    document: bool = False  # rewritten whole: resumed by path, turns diffed by key
    sent_keys: list[str] = field(default_factory=list)  # whole-document files only
    turns_emitted: int = 0
    dead_letters: int = 0
    removed_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.device}:{self.inode}"


def to_row(cp: FileCheckpoint) -> Row:
    context = orjson.dumps(cp.context, option=orjson.OPT_SORT_KEYS).decode()
    return (
        cp.key, cp.path, cp.device, cp.inode, cp.head_len, cp.head_hash, cp.offset, cp.format,
        cp.stable_name, context, int(cp.document), cp.turns_emitted, cp.dead_letters,
        cp.removed_at,
    )  # fmt: skip


def from_row(row: Row) -> FileCheckpoint:
    """A `files` row back to a checkpoint; ValueError if any column has the wrong type."""
    key, path, device, inode, head_len, head_hash, offset, fmt, stable = row[:9]
    context_json, document, turns, dead, removed_at = row[9:]
    ints = (device, inode, head_len, offset, document, turns, dead)
    texts = (key, path, head_hash, fmt, stable, context_json)
    context = None
    if all(type(v) is int for v in ints) and all(isinstance(v, str) for v in texts):
        with contextlib.suppress(orjson.JSONDecodeError):
            context = orjson.loads(context_json)
    if (
        not isinstance(context, dict)
        or key != f"{device}:{inode}"
        or not (removed_at is None or type(removed_at) in (int, float))
    ):
        raise ValueError(f"malformed checkpoint row {key!r}")
    return FileCheckpoint(
        path, device, inode, head_len, head_hash, offset, fmt, stable, context,
        document=bool(document), turns_emitted=turns, dead_letters=dead,
        removed_at=None if removed_at is None else float(removed_at),
    )  # fmt: skip


def migrate(db: sqlite3.Connection, found: str) -> None:
    """Upgrade a database of schema `found` (one of MIGRATABLE_VERSIONS) in place: 1 -> 2 adds
    the history table, 2 -> 3 the agent databases' cursors; each step one transaction (kill -9
    leaves the database at a step)."""
    steps = {"1": ("2", HISTORY_SCHEMA), "2": ("3", DB_CURSORS_SCHEMA)}
    version = found
    while version in steps:
        version, script = steps[version]
        with transaction(db):
            run_script(db, script)
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (version,))


def paths_of(db: sqlite3.Connection, keys: list[str]) -> set[str]:
    """The paths of the `files` rows with these keys."""
    found = (db.execute("SELECT path FROM files WHERE key = ?", (k,)).fetchone() for k in keys)
    return {str(row[0]) for row in found if row is not None}


def forget_cursors(
    db: sqlite3.Connection, gone_paths: set[str], sessions: list[tuple[str, str]]
) -> None:
    """Inside the caller's transaction, after its checkpoint rows were written: delete the
    session cursors of the agent databases at `gone_paths` (checkpoints forgotten) unless a
    checkpoint not retired still has that path (the database came back under a new inode), and
    the `sessions` (db path, session id) gone from a database that is still followed."""
    if gone_paths:
        db.executemany(
            "DELETE FROM db_cursors WHERE db_path = ?1 AND NOT EXISTS"
            " (SELECT 1 FROM files WHERE path = ?1 AND removed_at IS NULL)",
            [(path,) for path in sorted(gone_paths)],
        )
    if sessions:
        db.executemany("DELETE FROM db_cursors WHERE db_path = ? AND session_id = ?", sessions)


def retire_legacy(db: sqlite3.Connection, path: Path) -> list[str]:
    """Rename `checkpoints.json` (and `.prev`) beside the database at `path` once their
    contents are in it; the warnings to give (none when there is no such file)."""
    present = [p for p in legacy_checkpoints.paths(path.parent) if p.exists()]
    if not present:
        return []
    migrated = db.execute("SELECT 1 FROM meta WHERE name = 'migrated_from'").fetchone()
    if migrated is None:
        return [f"ignoring {present[0]}: checkpoints are kept in {path}"]
    for p in present:
        p.replace(p.with_name(p.name + MIGRATED_SUFFIX))
    fsync_dir(path.parent)
    count = db.execute("SELECT count(*) FROM files").fetchone()[0]
    return [
        f"migrated {count} file checkpoints from {present[0]} to {path};"
        f" the old file is kept as {present[0].name}{MIGRATED_SUFFIX}"
    ]


def create_schema(db: sqlite3.Connection, migrated: bool) -> None:
    run_script(db, SCHEMA)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    if migrated:
        db.execute("INSERT INTO meta VALUES ('migrated_from', ?)", (legacy_checkpoints.FILE_NAME,))


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT may leave it open
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def from_legacy(state_dir: Path, warnings: list[str]) -> dict[str, FileCheckpoint] | None:
    """`checkpoints.json` (see legacy_checkpoints) as checkpoints, each checked as the database
    will hold it; None if there is none; StateCorruptError if it is corrupt or malformed."""
    entries = legacy_checkpoints.read(state_dir, warnings)
    if entries is None:
        return None
    loaded: dict[str, FileCheckpoint] = {}
    try:
        for fields in entries.values():
            cp = FileCheckpoint(**fields)
            keys = (cp.sent_keys, cp.resolved_ahead)
            if not all(isinstance(ks, list) and all(isinstance(k, str) for k in ks) for ks in keys):
                raise ValueError(f"malformed turn keys in {cp.key!r}")
            from_row(to_row(cp))  # raises ValueError for a field of the wrong type
            loaded[cp.key] = cp
    except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
        raise StateCorruptError(
            f"checkpoint entry malformed ({exc}); move it aside to start over"
            f" (history is then re-sent): {state_dir / legacy_checkpoints.FILE_NAME}"
        ) from None
    return loaded


def close_writer(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.execute("PRAGMA busy_timeout=200")  # a reader still open: stay in WAL, don't wait
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
