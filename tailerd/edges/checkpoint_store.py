"""Checkpoints on disk: one SQLite database, `checkpoints.db`, written incrementally.

Each `save` is one transaction (WAL, `synchronous=FULL`) that writes only the rows of the files
passed to it, so its cost grows with the number of changed files, never with all files; `kill -9`
at any instant leaves the state either before or after a transaction. Readers (`tailerd
status`) open the database read-only and never block the writer.

The tables and their migrations are in `checkpoint_schema.py`.

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
from pathlib import Path

from tailerd.edges.checkpoint_schema import (
    KINDS,
    MIGRATABLE_VERSIONS,
    SCHEMA_VERSION,
    SELECT_FILES,
    SELECT_HISTORY,
    SQL_VARIABLES,
    UPSERT_FILE,
    UPSERT_HISTORY,
    DbCursor,
    FileCheckpoint,
    Row,
    Shipped,
    close_writer,
    create_schema,
    forget_cursors,
    from_legacy,
    from_row,
    fsync_dir,
    migrate,
    paths_of,
    retire_legacy,
    to_row,
    transaction,
)
from tailerd.errors import StateCorruptError

__all__ = ["FILE_NAME", "SCHEMA_VERSION", "CheckpointStore", "FileCheckpoint", "Shipped"]

FILE_NAME = "checkpoints.db"
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
                legacy = from_legacy(self.path.parent, self.warnings)
                return legacy if legacy is not None else {}
            return self._read_all(db)

    def _read_all(self, db: sqlite3.Connection) -> dict[str, FileCheckpoint]:
        try:
            rows = db.execute(SELECT_FILES).fetchall()
            keys = db.execute(  # the primary key's order: no sort
                "SELECT file_key, kind, turn_key FROM turn_keys ORDER BY file_key, kind, turn_key"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"unreadable ({exc})") from None
        grouped: dict[tuple[str, str], list[str]] = {}
        for file_key, kind, turn_key in keys:
            if kind not in KINDS or not isinstance(turn_key, str):
                raise self._corrupt(f"malformed turn key row for {file_key!r}")
            grouped.setdefault((file_key, kind), []).append(turn_key)
        result: dict[str, FileCheckpoint] = {}
        for row in rows:
            try:
                cp = from_row(row)
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
        forgotten: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Write the checkpoints in `changed` (upserted by `.key`), delete the `removed` keys,
        add the `shipped` history rows `(identity, turn_key, file_key, epoch seconds)`, upsert
        the agent databases' session `cursors` `(db path, session id, cursor)` and delete the
        `forgotten` ones `(db path, session id)`, in one durable transaction. A removed
        checkpoint takes its path's session cursors with it unless a checkpoint not retired
        still has that path (checkpoint_schema.forget_cursors). An identity already indexed
        keeps its first turn and file; only its time moves forward (so retention counts from
        the latest shipment).

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
            cursor_rows = (list(cursors), list(forgotten))
            self._write(db, items, gone, shipped=rows, cursors=cursor_rows)

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
            for i in range(0, len(wanted), SQL_VARIABLES):
                chunk = wanted[i : i + SQL_VARIABLES]
                marks = ", ".join("?" * len(chunk))
                query = f"{SELECT_HISTORY} ({marks})"  # placeholders only
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
            with transaction(db):
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
        cursors: tuple[list[DbCursor], list[tuple[str, str]]] = ([], []),
    ) -> None:
        """One transaction; `init` (True when migrating) first creates the schema.
        `cursors`: the session cursors to upsert and the (db path, session id) to delete."""
        rows: dict[str, Row] = {}
        turn_keys: dict[tuple[str, str], frozenset[str]] = {}
        with transaction(db):
            if init is not None:
                create_schema(db, migrated=init)
            gone_paths = paths_of(db, gone)
            for key in gone:
                db.execute("DELETE FROM files WHERE key = ?", (key,))
                db.execute("DELETE FROM turn_keys WHERE file_key = ?", (key,))
            for cp in items:
                row = to_row(cp)
                if self._rows.get(cp.key) != row:
                    db.execute(UPSERT_FILE, row)
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
                db.executemany(UPSERT_HISTORY, shipped)
            if cursors[0]:
                db.executemany("INSERT OR REPLACE INTO db_cursors VALUES (?, ?, ?)", cursors[0])
            forget_cursors(db, gone_paths, cursors[1])
        # Committed: only now does the cache describe the database.
        for key in gone:
            self._rows.pop(key, None)
            for kind in KINDS:
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
            legacy = from_legacy(self.path.parent, self.warnings)  # refuses before creating
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            fsync_dir(self.path.parent)
        db = self._connect("rw")
        initialised = self._check(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if not initialised:
            if legacy is None:  # an empty database left by a crash right after creating it
                legacy = from_legacy(self.path.parent, self.warnings)
            # Schema, version and the imported checkpoints: one transaction.
            self._write(db, list((legacy or {}).values()), [], init=legacy is not None)
        self._db, self._finalizer = db, weakref.finalize(self, close_writer, db)
        self.warnings.extend(retire_legacy(db, self.path))
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
                migrate(db, found)
                self.warnings.append(
                    f"upgraded {self.path} from schema {found} to {SCHEMA_VERSION}"
                )
            return True
        db.close()
        raise self._corrupt(f"has unknown schema version {found!r}")

    def _corrupt(self, what: str) -> StateCorruptError:
        return StateCorruptError(
            f"checkpoint database {what}; move it aside to start over"
            f" (history is then re-sent): {self.path}"
        )
