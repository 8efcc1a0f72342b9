"""An agent's SQLite database as a source (tailerd/edges/agent_db): the open mode, a live writer
that must never be blocked, the cheap change test, per-session cursors and their storage, and a
running daemon that ships a turn the agent writes into its WAL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tailerd.domain import Turn
from tailerd.edges.agent_db import read_snapshot, signature
from tailerd.edges.agent_db.cursors import SessionCursors
from tailerd.edges.agent_db.source import DatabaseSource
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.formats.base import Source
from tailerd.formats.crush import FORMAT
from tests.conftest import FIXTURES, popen_tailerd

FIXTURE = FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode"


@pytest.fixture
def dot_opencode(tmp_path: Path) -> Path:
    dest = tmp_path / "utils" / ".opencode"
    shutil.copytree(FIXTURE, dest, copy_function=shutil.copyfile)
    return dest


def digests(directory: Path) -> dict[str, str]:
    """The data files' digests. The `-shm` is left out: it is SQLite's shared-memory WAL index,
    where every reader, read-only ones too, takes its read-marks; it holds no data."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.iterdir()
        if not p.name.endswith("-shm")
    }


def counts(uri: str) -> tuple[int, int]:
    db = sqlite3.connect(uri, uri=True)
    try:
        return (
            db.execute("SELECT count(*) FROM sessions").fetchone()[0],
            db.execute("SELECT count(*) FROM messages").fetchone()[0],
        )
    finally:
        db.close()


def test_read_only_with_the_wal_sees_everything_and_changes_nothing(dot_opencode: Path) -> None:
    db_path = dot_opencode / "opencode.db"
    before = digests(dot_opencode)
    # SOURCE.txt: db alone 6 sessions / 110 messages; db + WAL 7 / 124.
    assert counts(f"{db_path.as_uri()}?immutable=1") == (6, 110)  # ignores the WAL: wrong
    with read_snapshot(db_path) as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 7
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 124
        with pytest.raises(sqlite3.OperationalError):
            db.execute("DELETE FROM messages")  # read-only
    with read_snapshot(db_path) as db, pytest.raises(sqlite3.OperationalError):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # cannot checkpoint
    # Closing as the last connection neither checkpoints nor deletes the WAL.
    assert digests(dot_opencode) == before
    assert {"opencode.db", "opencode.db-wal"} <= set(before)
    assert (dot_opencode / "opencode.db-shm").exists()


WRITER = r"""
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
# A busy handler, as an agent's SQLite setup has: any lock tailerd held for more than 1 s
# would surface as SQLITE_BUSY. With none at all (busy_timeout=0), the WAL-index locks that
# every reader takes for microseconds (recovery at first open, a read-mark update) surface as
# BUSY whenever that reader is descheduled inside one: CI saw 357 of 6,409 commits on a
# loaded 2-core machine; no agent runs its writer without a busy handler.
db.execute("PRAGMA busy_timeout=1000")
busy = written = 0
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        db.execute("COMMIT")
        written += 1
        if written % 50 == 0:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError as exc:
        busy += 1
        if db.in_transaction:
            db.execute("ROLLBACK")
print(json.dumps({"busy": busy, "written": written}))
"""


def test_a_live_writer_is_never_blocked_by_reads(tmp_path: Path) -> None:
    db_path = tmp_path / "agent.db"
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path), "3"], stdout=subprocess.PIPE, text=True
    )
    seen: list[int] = []
    slowest = 0.0
    while writer.poll() is None:
        started = time.perf_counter()
        with read_snapshot(db_path) as snapshot:
            seen.append(snapshot.execute("SELECT count(*) FROM t").fetchone()[0])
        slowest = max(slowest, time.perf_counter() - started)
    out, _ = writer.communicate(timeout=10)
    result = json.loads(out)
    assert result["busy"] == 0, result
    assert result["written"] > 100
    assert len(seen) > 100 and seen == sorted(seen)  # consistent, ever newer snapshots
    assert slowest < 1.0


def test_an_unchanged_database_is_not_opened(dot_opencode: Path) -> None:
    db_path = dot_opencode / "opencode.db"
    source = DatabaseSource(db_path, FORMAT, Source(str(db_path)), {}, idle_close=600)
    first = source.poll(time.time())
    assert len(first) == 18 and source.reads == 1  # 18 turns: tests/formats/test_crush.py
    assert source.poll(time.time()) == [] and source.reads == 1  # stat unchanged: no open
    sig = signature(db_path)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("UPDATE sessions SET title = 'renamed' WHERE id LIKE '635c8ffb%'")
    db.close()
    assert signature(db_path) != sig  # the WAL grew
    assert source.poll(time.time()) == [] and source.reads == 2  # read; nothing new finished


def test_cursors_move_over_the_settled_prefix_of_each_session_only() -> None:
    cursors = SessionCursors({"s1": "c0"})
    for key, cursor in (("a", "c1"), ("b", "c2"), ("c", "c3")):
        cursors.emitted("s1", key, cursor)
    cursors.emitted("s2", "x", "d1")
    assert cursors.read_to == {"s1": "c3", "s2": "d1"}  # reading goes on past turns in flight
    assert cursors.settled("b") and cursors.changed() == []  # "a" still in flight: no move
    assert cursors.settled("a") and cursors.changed() == [("s1", "c2")]  # a and b
    cursors.committed()
    assert not cursors.settled("unknown")
    assert cursors.settled("x") and cursors.settled("c")
    assert cursors.changed() == [("s1", "c3"), ("s2", "d1")]
    assert cursors.in_flight == 0


def test_cursors_are_stored_with_the_checkpoints_and_a_schema_2_store_is_upgraded(
    tmp_path: Path,
) -> None:
    store = CheckpointStore(tmp_path)
    store.save([], cursors=[("/p/.opencode/opencode.db", "s1", "10|m1")])
    store.save(
        [], cursors=[("/p/.opencode/opencode.db", "s1", "12|m3"), ("/q/crush.db", "s", "1|a")]
    )
    store.close()
    store = CheckpointStore(tmp_path)
    assert store.db_cursors("/p/.opencode/opencode.db") == {"s1": "12|m3"}
    assert store.db_cursors("/nowhere.db") == {}
    store.close()
    # Back to what schema 2 was (no db_cursors table), then open: upgraded in place.
    db = sqlite3.connect(tmp_path / "checkpoints.db", isolation_level=None)
    db.execute("DROP TABLE db_cursors")
    db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    db.close()
    assert CheckpointStore(tmp_path, readonly=True).db_cursors("/q/crush.db") == {}
    store = CheckpointStore(tmp_path)
    store.load()
    assert any("schema 2 to 3" in w for w in store.warnings)
    store.save([], cursors=[("/q/crush.db", "s", "2|b")])
    assert store.db_cursors("/q/crush.db") == {"s": "2|b"}
    store.close()


def stored_roots(data: Path) -> int:
    path = data / "tailerd.db"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM spans WHERE parent_span_id IS NULL").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def wait_for(check, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_the_daemon_ships_a_turn_written_into_the_wal_while_it_runs(
    dot_opencode: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    proc = popen_tailerd("--watch", dot_opencode.parent, "--state-dir", state, "--data-dir", state)
    try:
        assert wait_for(lambda: stored_roots(state) == 18, 90.0), proc.stderr
        agent = sqlite3.connect(dot_opencode / "opencode.db", isolation_level=None)
        agent.execute("PRAGMA busy_timeout=0")
        now = int(time.time())
        for i, (role, reason) in enumerate((("user", None), ("assistant", "end_turn"))):
            parts = [{"type": "text", "data": {"text": f"{role} {i}"}}]
            if reason:
                parts.append({"type": "finish", "data": {"reason": reason, "time": now}})
            agent.execute(
                "INSERT INTO messages (id, session_id, role, parts, model, created_at,"
                " updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (f"live-{i}", "635c8ffb-566f-4bd6-a816-f648f33beb9d", role, json.dumps(parts),
                 "gpt-4o-mini", now + i, now + i, now + i),
            )  # fmt: skip
        agent.close()
        assert wait_for(lambda: stored_roots(state) == 19, 60.0)  # returns at once when there
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


READER = r"""
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from tailerd.edges.agent_db import read_snapshot
with read_snapshot(Path(sys.argv[1])) as db:
    print(db.execute("SELECT count(*) FROM sessions").fetchone()[0],
          db.execute("SELECT count(*) FROM messages").fetchone()[0])
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="reading as another user needs root (to switch to nobody) and setpriv",
)
def test_another_users_database_in_a_directory_tailerd_cannot_write() -> None:
    """As `nobody`, the fixture owned by root with mode 0644 in a 0755 directory: with its
    read-only `-shm` SQLite reads the WAL through it; without one (the agent stopped and its
    `-shm` is gone) the database and WAL are read from a private copy. 7 sessions, 124
    messages either way (SOURCE.txt), and the agent's files are not changed."""
    base = Path(tempfile.mkdtemp(prefix="tailerd-ro-"))
    try:
        base.chmod(0o755)
        shutil.copytree(FIXTURE, base / ".opencode", copy_function=shutil.copyfile)
        (base / ".opencode").chmod(0o755)
        for f in (base / ".opencode").iterdir():
            f.chmod(0o644)
        before = digests(base / ".opencode")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        args = ["-c", READER, str(base / ".opencode" / "opencode.db"), str(Path.cwd())]
        for _ in ("with its -shm", "without"):
            done = subprocess.run([*nobody, *args], capture_output=True, text=True, check=False)
            assert (done.returncode, done.stdout.split()) == (0, ["7", "124"]), done.stderr
            (base / ".opencode" / "opencode.db-shm").unlink(missing_ok=True)
        assert digests(base / ".opencode") == before
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_an_open_turn_is_read_again_only_once_it_can_have_gone_idle(dot_opencode: Path) -> None:
    db_path = dot_opencode / "opencode.db"
    source = DatabaseSource(db_path, FORMAT, Source(str(db_path)), {}, idle_close=600)
    now = time.time()
    assert len(source.poll(now)) == 18  # tests/formats/test_crush.py
    db = sqlite3.connect(db_path, isolation_level=None)
    parts = json.dumps([{"type": "text", "data": {"text": "still thinking?"}}])
    db.execute(
        "INSERT INTO messages (id, session_id, role, parts, created_at, updated_at)"
        " VALUES ('open-1', '635c8ffb-566f-4bd6-a816-f648f33beb9d', 'user', ?, ?, ?)",
        (parts, int(now), int(now)),
    )
    db.close()
    assert source.poll(now + 1) == [] and source.reads == 2  # changed: read; the turn is open
    assert source.open_sessions == {"635c8ffb-566f-4bd6-a816-f648f33beb9d"}
    assert source.poll(now + 2, idle=True) == [] and source.reads == 2  # unchanged: no open
    (closed,) = source.poll(now + 602, idle=True)  # quiet for idle_close: read, closed
    assert source.reads == 3 and isinstance(closed[1], Turn) and closed[1].interrupted
    assert source.open_sessions == frozenset()


def test_a_large_history_comes_out_a_few_sessions_per_poll(dot_opencode: Path) -> None:
    """Turns per session (tests/formats/test_crush.py): 2, 6, 1, 2, 1, 5, 1 = 18. With a limit
    of 5 turns a poll stops after the session that reaches it; every turn comes out once."""
    db_path = dot_opencode / "opencode.db"
    source = DatabaseSource(db_path, FORMAT, Source(str(db_path)), {}, idle_close=600)
    polls = []
    while not polls or source.more:
        polls.append([item for _, item in source.poll(time.time(), limit=5)])
        assert len(polls) < 10
    assert all(len(p) < 5 + 6 for p in polls) and len(polls) > 1
    keys = [t.key for p in polls for t in p if isinstance(t, Turn)]
    assert len(keys) == len(set(keys)) == 18
    assert source.poll(time.time()) == []  # then nothing
