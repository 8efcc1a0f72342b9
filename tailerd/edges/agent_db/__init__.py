"""An SQLite database owned by a running agent (OpenCode, Crush): opened read-only together
with its write-ahead log, never written, never checkpointed, never holding a lock between reads.

The rest of tailerd tails byte ranges of files; an agent database holds sessions and messages,
so it is read as such: `DatabaseSource` (source.py) asks the agent's format (`DatabaseFormat`,
protocol.py) for the finished turns of the sessions that changed, after a per-session cursor
that moves only once every sink acknowledged (cursors.py; stored in `checkpoints.db`).

Opening (measured on the real Crush/opencode-go fixture and against a live writer in
tests/test_agent_db.py):

* `mode=ro` (URI) reads the database *and* its `-wal`: the fixture's newest session (7 sessions,
  124 messages) lives only in the WAL; `immutable=1` ignores the WAL (6 sessions, 110 messages)
  and would miss it, and any copy of the `.db` alone loses it too. A `mode=ro` connection takes
  the same shared read-marks in the `-shm` as any reader (in WAL mode a writer waits on them
  only for the microseconds a reader updates one, absorbed by the agent's busy handler),
  cannot checkpoint (`PRAGMA wal_checkpoint` fails on it) and, being read-only, never truncates
  or deletes the WAL when it closes, even as the last connection. Like any SQLite reader it
  does create an empty `-wal` and the `-shm` when the agent's last connection removed them
  (and the directory is writable); the agent's next connection uses them as its own.
* Another user's database (tailerd may read, not write, the files and their directory): with a
  read-only `-shm` `mode=ro` still reads the WAL (SQLite's read-only wal-index); with no `-shm`
  at all (the agent stopped; it removes the `-shm` only when no process has the database open)
  `mode=ro` cannot open it ("unable to open database file", measured as `nobody`), so the
  database and its WAL are copied together into a private temporary directory and read there.
* One connection per read, closed right after, inside one read transaction (a consistent
  snapshot of sessions and messages): between reads tailerd holds nothing open on the database,
  so it never pins an old WAL snapshot (which would stop the agent's checkpoints from resetting
  the WAL and let it grow) and never keeps the agent from deleting its WAL at exit.
  `PRAGMA data_version` only tells a *held* connection about other writers, so instead the
  cheap test is the stat of the database and its `-wal` (size and mtime in ns): unchanged
  means nothing to read, and no connection is opened at all.
* `query_only` is set on every connection, and `busy_timeout` is short: a reader in WAL mode
  waits only while the agent's process recovers the WAL index after a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_MS = 200
SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_SUFFIX = "-wal"

Signature = tuple[int, int, int, int]  # db size, db mtime ns, wal size, wal mtime ns


def signature(path: Path) -> Signature | None:
    """What changes when the agent writes: the stat of the database and of its `-wal`
    (size, mtime in ns; zeros for a missing WAL). None if the database cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    try:
        wal = Path(f"{path}{WAL_SUFFIX}").stat()
        # An empty WAL is no WAL: a reader recreates one after the agent's last connection
        # removed it (and a checkpoint that empties the WAL moves the database's own stat).
        wal_part = (wal.st_size, wal.st_mtime_ns) if wal.st_size else (0, 0)
    except OSError:
        wal_part = (0, 0)
    return (st.st_size, st.st_mtime_ns, *wal_part)


@contextlib.contextmanager
def read_snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to `path` (with its WAL) inside one read transaction, closed on
    exit. Raises sqlite3.Error when the database cannot be opened or read (not a database,
    locked past BUSY_TIMEOUT_MS, unreadable).

    One case needs a private copy: a `-wal` without its `-shm` in a directory tailerd may not
    write (another user's agent, stopped: no process has the database open, else the `-shm`
    would exist). SQLite cannot read the WAL without creating the `-shm` there, so the database
    and its WAL are copied together into a private temporary directory and read from there."""
    with contextlib.ExitStack() as stack:
        try:
            db = _snapshot(path)
        except sqlite3.OperationalError:
            if not _needs_private_copy(path):
                raise
            db = _snapshot(_private_copy(path, stack))
        try:
            yield db
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("COMMIT")
            db.close()


def _private_copy(path: Path, stack: contextlib.ExitStack) -> Path:
    """The database and its WAL copied together into a temporary directory removed on exit."""
    private = stack.enter_context(tempfile.TemporaryDirectory(prefix="tailerd-agent-db-"))
    copy = Path(private) / path.name
    shutil.copyfile(path, copy)
    with contextlib.suppress(FileNotFoundError):  # checkpointed and removed meanwhile
        shutil.copyfile(f"{path}{WAL_SUFFIX}", f"{copy}{WAL_SUFFIX}")
    return copy


def _snapshot(path: Path) -> sqlite3.Connection:
    uri = f"{path.absolute().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA query_only=1")
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL now
    except sqlite3.Error:
        db.close()
        raise
    return db


def _needs_private_copy(path: Path) -> bool:
    shm, wal = Path(f"{path}-shm"), Path(f"{path}{WAL_SUFFIX}")
    return wal.exists() and not shm.exists() and not os.access(path.parent, os.W_OK)


def is_database(head: bytes) -> bool:
    """True if these first bytes are an SQLite database's header (or the file is still empty)."""
    return head.startswith(SQLITE_MAGIC) or not head


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    """The column names of `table` ({} when it does not exist): formats check the schema they
    know before querying it, so a newer agent release is a counted dead letter, not a crash."""
    return {row[1] for row in db.execute("SELECT * FROM pragma_table_info(?)", (table,))}
