"""Checkpoints on disk: one SQLite database, `checkpoints.db`, written incrementally.

Each `save` is one transaction (WAL, `synchronous=FULL`) that writes only the rows of the files
passed to it, so its cost grows with the number of changed files, never with all files; `kill -9`
at any instant leaves the state either before or after a transaction. Readers (`tailerd
status`) open the database read-only and never block the writer.

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

A database that is not one, fails `PRAGMA quick_check`, has an unknown schema version or a
malformed row is reported (`StateCorruptError`, exit 65) and never deleted or recreated.
Today's predecessor, `checkpoints.json` (with its `.prev` generation), is imported once in one
transaction and then renamed to `checkpoints.json.migrated`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tailerd.edges import legacy_checkpoints
from tailerd.errors import StateCorruptError

FILE_NAME = "checkpoints.db"
SCHEMA_VERSION = 3
MIGRATABLE_VERSIONS = frozenset({"1", "2"})  # older schemas this version upgrades in place
MIGRATED_SUFFIX = ".migrated"
# Turn keys kept per file and kind. Dropping keys beyond this cannot make a turn recur in
# practice: `resolved_ahead` only holds turns that start at or after the committed offset
# (core/ledger.py prunes the rest: reading resumes at the committed offset, so a turn before it is
# never read again), i.e. turns finished while an earlier turn of the same file stays open
# (at most `idle_close`) or unacknowledged (at most `max_pending_spans` in flight). `sent_keys`
# holds the turns of one whole-document session file, which is rewritten whole on every
# message; 100,000 turns would be a document of hundreds of megabytes. Were the cap ever hit,
# the dropped turns would be re-sent with the same ids (stored once by span-id keyed backends).
MAX_TURN_KEYS_PER_FILE = 100_000
BUSY_TIMEOUT_MS = 10_000

_HISTORY_SCHEMA = """
CREATE TABLE history (
    identity TEXT PRIMARY KEY, turn_key TEXT NOT NULL, file_key TEXT NOT NULL, time REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX history_time ON history (time);
"""
_DB_CURSORS_SCHEMA = """
CREATE TABLE db_cursors (
    db_path TEXT NOT NULL, session_id TEXT NOT NULL, cursor TEXT NOT NULL,
    PRIMARY KEY (db_path, session_id)
) WITHOUT ROWID;
"""
_SCHEMA = (
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
    + _HISTORY_SCHEMA
    + _DB_CURSORS_SCHEMA
)
_COLUMNS = (
    'key, path, device, inode, head_len, head_hash, "offset", format, stable_name, context, '
    "document, turns_emitted, dead_letters, removed_at"
)
_SELECT_FILES = f"SELECT {_COLUMNS} FROM files"  # noqa: S608 (constants only)
_MARKS = ", ".join("?" * len(_COLUMNS.split(",")))
_UPSERT_FILE = f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES ({_MARKS})"  # noqa: S608
_KINDS = ("sent", "ahead")
_UPSERT_HISTORY = (
    "INSERT INTO history (identity, turn_key, file_key, time) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (identity) DO UPDATE SET time = max(time, excluded.time)"
)
_SELECT_HISTORY = "SELECT identity, turn_key, file_key FROM history WHERE identity IN"
_SQL_VARIABLES = 500  # identities per lookup query (SQLite's old limit is 999 variables)
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


class CheckpointStore:
    """The checkpoints of one state directory.

    Nothing is opened before the first `load` or `save`. `readonly=True` opens the database
    with `mode=ro` and creates nothing; a missing database then reads as no checkpoints (or, if
    only a `checkpoints.json` exists, as its contents, unmigrated). Errors: `StateCorruptError`
    for a corrupt, foreign or newer database or a corrupt `checkpoints.json`; `OSError` when
    the state directory cannot be written.
    """

    def __init__(self, state_dir: Path, *, readonly: bool = False) -> None:
        self.path = state_dir / FILE_NAME
        self.readonly = readonly
        self.warnings: list[str] = []
        self._db: sqlite3.Connection | None = None
        self._finalizer: weakref.finalize[..., CheckpointStore] | None = None
        self._lock = threading.Lock()
        # What the database holds, so a save writes only what differs: key -> row, and
        # (key, kind) -> turn keys.
        self._rows: dict[str, Row] = {}
        self._turn_keys: dict[tuple[str, str], frozenset[str]] = {}

    # ---- reading ----------------------------------------------------------------------------

    def load(self) -> dict[str, FileCheckpoint]:
        """Every file's checkpoint, by `FileCheckpoint.key`. Empty if there is no state yet.
        A writer's first load creates the database (importing `checkpoints.json`)."""
        with self._lock, self._writing():
            db = self._open()
            if db is None:
                legacy = _from_legacy(self.path.parent, self.warnings)
                return legacy if legacy is not None else {}
            return self._read_all(db)

    def _read_all(self, db: sqlite3.Connection) -> dict[str, FileCheckpoint]:
        try:
            rows = db.execute(_SELECT_FILES).fetchall()
            keys = db.execute(  # the primary key's order: no sort
                "SELECT file_key, kind, turn_key FROM turn_keys ORDER BY file_key, kind, turn_key"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"unreadable ({exc})") from None
        grouped: dict[tuple[str, str], list[str]] = {}
        for file_key, kind, turn_key in keys:
            if kind not in _KINDS or not isinstance(turn_key, str):
                raise self._corrupt(f"malformed turn key row for {file_key!r}")
            grouped.setdefault((file_key, kind), []).append(turn_key)
        result: dict[str, FileCheckpoint] = {}
        for row in rows:
            try:
                cp = _from_row(row)
            except ValueError as exc:
                raise self._corrupt(str(exc)) from None
            key = row[0]
            cp.sent_keys = grouped.get((key, "sent"), [])
            cp.resolved_ahead = grouped.get((key, "ahead"), [])
            result[key] = cp
            if not self.readonly:  # what a writer's next save is diffed against
                self._rows[key] = tuple(row)
                self._turn_keys[(key, "sent")] = frozenset(cp.sent_keys)
                self._turn_keys[(key, "ahead")] = frozenset(cp.resolved_ahead)
        return result

    # ---- writing ----------------------------------------------------------------------------

    def save(
        self,
        changed: Iterable[FileCheckpoint] | Mapping[str, FileCheckpoint],
        removed: Iterable[str] = (),
        shipped: Iterable[Shipped] = (),
        cursors: Iterable[DbCursor] = (),
    ) -> None:
        """Write the checkpoints in `changed` (upserted by `.key`), delete the `removed` keys,
        add the `shipped` history rows `(identity, turn_key, file_key, epoch seconds)` and upsert
        the agent databases' session `cursors` `(db path, session id, cursor)`, in one
        durable transaction. An identity already indexed keeps its first turn and file; only
        its time moves forward (so retention counts from the latest shipment).

        Callers should pass only the checkpoints that changed: the cost is O(len(changed)).
        A Mapping is accepted (its values are taken as changed; rows equal to what is stored
        are skipped), so passing every checkpoint still works, but keys missing from it are
        *not* deleted: pass those in `removed`. A key both in `changed` and in `removed` is
        kept (upserted). A checkpoint whose key changed (new device/inode) is a new row: pass
        the old key in `removed`. Raises OSError if the write fails (the database is then
        unchanged and this store stays usable).
        """
        if self.readonly:
            raise PermissionError(f"checkpoint store opened read-only: {self.path}")
        items = list(changed.values() if isinstance(changed, Mapping) else changed)
        upserted = {cp.key for cp in items}
        gone = [k for k in removed if k not in upserted]
        rows = list(shipped)
        with self._lock, self._writing():
            db = self._open()
            assert db is not None  # a writer always has a database
            self._write(db, items, gone, shipped=rows, cursors=list(cursors))

    def db_cursors(self, db_path: str) -> dict[str, str]:
        """The stored session cursors of one agent database: session id -> cursor. Empty when
        there is no database yet (or, for a reader, an older schema). OSError if unreadable."""
        with self._lock, self._writing():
            db = self._open()
            if db is None or not self._has_table(db, "db_cursors"):
                return {}
            found = db.execute(
                "SELECT session_id, cursor FROM db_cursors WHERE db_path = ?", (db_path,)
            )
            return {str(s): str(c) for s, c in found}

    # ---- the host-wide history index ---------------------------------------------------------

    def shipped(self, identities: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Which of `identities` are indexed: identity -> (turn key, file key). Empty when there
        is no database yet (or, for a reader, a schema-1 one). OSError if it cannot be read."""
        wanted = list(dict.fromkeys(identities))
        if not wanted:
            return {}
        found: dict[str, tuple[str, str]] = {}
        with self._lock, self._writing():
            db = self._open()
            if db is None or not self._has_history(db):
                return {}
            for i in range(0, len(wanted), _SQL_VARIABLES):
                chunk = wanted[i : i + _SQL_VARIABLES]
                marks = ", ".join("?" * len(chunk))
                query = f"{_SELECT_HISTORY} ({marks})"  # placeholders only
                for identity, turn, file_key in db.execute(query, chunk):
                    found[identity] = (turn, file_key)
        return found

    def prune_history(self, before: float) -> int:
        """Delete the history rows last shipped before `before` (epoch seconds), in one
        transaction; the number deleted. OSError if the write fails."""
        if self.readonly:
            raise PermissionError(f"checkpoint store opened read-only: {self.path}")
        with self._lock, self._writing():
            db = self._open()
            assert db is not None
            with _transaction(db):
                return db.execute("DELETE FROM history WHERE time < ?", (before,)).rowcount

    def history_size(self) -> int:
        """Rows in the history index (0 without a database)."""
        with self._lock, self._writing():
            db = self._open()
            if db is None or not self._has_history(db):
                return 0
            return int(db.execute("SELECT count(*) FROM history").fetchone()[0])

    @staticmethod
    def _has_history(db: sqlite3.Connection) -> bool:
        return CheckpointStore._has_table(db, "history")

    @staticmethod
    def _has_table(db: sqlite3.Connection, name: str) -> bool:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
        return found.fetchone() is not None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:  # disk full, I/O error, locked past the busy timeout
            raise OSError(f"cannot write checkpoints {self.path}: {exc}") from None

    def _write(
        self,
        db: sqlite3.Connection,
        items: list[FileCheckpoint],
        gone: list[str],
        *,
        init: bool | None = None,
        shipped: list[Shipped] | None = None,
        cursors: list[DbCursor] | None = None,
    ) -> None:
        """One transaction; `init` (True when migrating) first creates the schema."""
        rows: dict[str, Row] = {}
        turn_keys: dict[tuple[str, str], frozenset[str]] = {}
        with _transaction(db):
            if init is not None:
                _create_schema(db, migrated=init)
            for key in gone:
                db.execute("DELETE FROM files WHERE key = ?", (key,))
                db.execute("DELETE FROM turn_keys WHERE file_key = ?", (key,))
            for cp in items:
                row = _to_row(cp)
                if self._rows.get(cp.key) != row:
                    db.execute(_UPSERT_FILE, row)
                    rows[cp.key] = row
                for kind, wanted in (("sent", cp.sent_keys), ("ahead", cp.resolved_ahead)):
                    new = frozenset(wanted)
                    if len(new) > MAX_TURN_KEYS_PER_FILE:  # see MAX_TURN_KEYS_PER_FILE
                        new = frozenset(sorted(new)[-MAX_TURN_KEYS_PER_FILE:])
                    old = self._stored_turn_keys(db, cp.key, kind)
                    if new == old:
                        continue
                    db.executemany(
                        "DELETE FROM turn_keys WHERE file_key = ? AND kind = ? AND turn_key = ?",
                        [(cp.key, kind, k) for k in old - new],
                    )
                    db.executemany(
                        "INSERT INTO turn_keys (file_key, kind, turn_key) VALUES (?, ?, ?)",
                        [(cp.key, kind, k) for k in new - old],
                    )
                    turn_keys[(cp.key, kind)] = new
            if shipped:
                db.executemany(_UPSERT_HISTORY, shipped)
            if cursors:
                db.executemany("INSERT OR REPLACE INTO db_cursors VALUES (?, ?, ?)", cursors)
        # Committed: only now does the cache describe the database.
        for key in gone:
            self._rows.pop(key, None)
            for kind in _KINDS:
                self._turn_keys.pop((key, kind), None)
        self._rows.update(rows)
        self._turn_keys.update(turn_keys)

    def _stored_turn_keys(self, db: sqlite3.Connection, key: str, kind: str) -> frozenset[str]:
        cached = self._turn_keys.get((key, kind))
        if cached is not None:
            return cached
        found = db.execute(
            "SELECT turn_key FROM turn_keys WHERE file_key = ? AND kind = ?", (key, kind)
        )
        return frozenset(k for (k,) in found)

    def close(self) -> None:
        """Close the database (also done at interpreter exit). A writer first leaves WAL mode
        (best effort), so that a reader run while no tailerd runs finds one file and creates
        no `-wal`/`-shm` files."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._db, self._finalizer = None, None

    # ---- opening ----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection | None:
        """The open database; None for a reader when there is none (or it is still empty)."""
        if self._db is not None:
            return self._db
        exists = self.path.exists()
        if self.readonly:
            if not exists:
                return None
            db = self._connect("ro")
            if not self._check(db):
                db.close()
                return None
            self._db, self._finalizer = db, weakref.finalize(self, db.close)
            return db
        legacy = None
        if not exists:
            legacy = _from_legacy(self.path.parent, self.warnings)  # refuses before creating
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            _fsync_dir(self.path.parent)
        db = self._connect("rw")
        initialised = self._check(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if not initialised:
            if legacy is None:  # an empty database left by a crash right after creating it
                legacy = _from_legacy(self.path.parent, self.warnings)
            # Schema, version and the imported checkpoints: one transaction.
            self._write(db, list((legacy or {}).values()), [], init=legacy is not None)
        self._db, self._finalizer = db, weakref.finalize(self, _close_writer, db)
        self._retire_legacy(db)
        return db

    def _connect(self, mode: str) -> sqlite3.Connection:
        uri = f"{self.path.absolute().as_uri()}?mode={mode}"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._corrupt(f"cannot be opened ({exc})") from None
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return db

    def _check(self, db: sqlite3.Connection) -> bool:
        """True if `db` holds our schema; False if it is empty. Raises if it is anything else."""
        try:
            verdict = db.execute("PRAGMA quick_check").fetchall()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return False
            version = (
                db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
                if "meta" in tables
                else None
            )
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self._corrupt(f"is not a readable database ({exc})") from None
        if verdict != [("ok",)]:
            db.close()
            raise self._corrupt(f"fails its integrity check ({verdict[0][0]})")
        found = None if version is None else version[0]
        if found == str(SCHEMA_VERSION):
            return True
        if found in MIGRATABLE_VERSIONS:
            if not self.readonly:
                self._migrate(db, found)
            return True
        db.close()
        raise self._corrupt(f"has unknown schema version {found!r}")

    def _migrate(self, db: sqlite3.Connection, found: str) -> None:
        """Schema 1 -> 2 adds the history table, 2 -> 3 the agent databases' cursors; each step
        one transaction (kill -9 leaves the database at a step)."""
        steps = {"1": ("2", _HISTORY_SCHEMA), "2": ("3", _DB_CURSORS_SCHEMA)}
        version = found
        while version in steps:
            version, script = steps[version]
            with _transaction(db):
                _run_script(db, script)
                db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (version,))
        self.warnings.append(f"upgraded {self.path} from schema {found} to {SCHEMA_VERSION}")

    def _retire_legacy(self, db: sqlite3.Connection) -> None:
        """Rename `checkpoints.json` (and `.prev`) once their contents are in the database."""
        present = [p for p in legacy_checkpoints.paths(self.path.parent) if p.exists()]
        if not present:
            return
        migrated = db.execute("SELECT 1 FROM meta WHERE name = 'migrated_from'").fetchone()
        if migrated is None:
            self.warnings.append(f"ignoring {present[0]}: checkpoints are kept in {self.path}")
            return
        for p in present:
            p.replace(p.with_name(p.name + MIGRATED_SUFFIX))
        _fsync_dir(self.path.parent)
        count = db.execute("SELECT count(*) FROM files").fetchone()[0]
        self.warnings.append(
            f"migrated {count} file checkpoints from {present[0]} to {self.path};"
            f" the old file is kept as {present[0].name}{MIGRATED_SUFFIX}"
        )

    def _corrupt(self, what: str) -> StateCorruptError:
        return StateCorruptError(
            f"checkpoint database {what}; move it aside to start over"
            f" (history is then re-sent): {self.path}"
        )


def _to_row(cp: FileCheckpoint) -> Row:
    context = orjson.dumps(cp.context, option=orjson.OPT_SORT_KEYS).decode()
    return (
        cp.key, cp.path, cp.device, cp.inode, cp.head_len, cp.head_hash, cp.offset, cp.format,
        cp.stable_name, context, int(cp.document), cp.turns_emitted, cp.dead_letters,
        cp.removed_at,
    )  # fmt: skip


def _from_row(row: Row) -> FileCheckpoint:
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


def _create_schema(db: sqlite3.Connection, migrated: bool) -> None:
    _run_script(db, _SCHEMA)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    if migrated:
        db.execute("INSERT INTO meta VALUES ('migrated_from', ?)", (legacy_checkpoints.FILE_NAME,))


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script` inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT may leave it open
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _from_legacy(state_dir: Path, warnings: list[str]) -> dict[str, FileCheckpoint] | None:
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
            _from_row(_to_row(cp))  # raises ValueError for a field of the wrong type
            loaded[cp.key] = cp
    except (TypeError, ValueError, orjson.JSONEncodeError) as exc:
        raise StateCorruptError(
            f"checkpoint entry malformed ({exc}); move it aside to start over"
            f" (history is then re-sent): {state_dir / legacy_checkpoints.FILE_NAME}"
        ) from None
    return loaded


def _close_writer(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.execute("PRAGMA busy_timeout=200")  # a reader still open: stay in WAL, don't wait
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
