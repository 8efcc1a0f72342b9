"""Agent databases' session cursors (`db_cursors` in checkpoints.db) do not outlive what they
point into: a database whose checkpoint is forgotten takes its cursors along (unless a live
checkpoint still has its path), and a session deleted from a followed database loses its
cursor at the next read."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint
from tests.conftest import FIXTURES, run_tailerd

CRUSH = FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode"
WAL_ONLY_SESSION = "635c8ffb-566f-4bd6-a816-f648f33beb9d"


def stored_cursors(state: Path) -> list[tuple[str, str]]:
    """(db path, session id) rows of db_cursors, sorted."""
    db = sqlite3.connect(f"{(state / 'checkpoints.db').as_uri()}?mode=ro", uri=True)
    try:
        return sorted(db.execute("SELECT db_path, session_id FROM db_cursors").fetchall())
    finally:
        db.close()


def test_forgetting_a_database_checkpoint_deletes_its_cursors(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.load()
    old = FileCheckpoint("/p/opencode.db", 1, 10, 16, "h", format="crush", document=True)
    other = FileCheckpoint("/q/opencode.db", 1, 20, 16, "h", format="crush", document=True)
    cursors = [(old.path, "s1", "c1"), (old.path, "s2", "c2"), (other.path, "s1", "c3")]
    store.save([old, other], cursors=cursors)
    store.save([], removed=[old.key])  # the purge of a retired checkpoint (tracking.py)
    assert stored_cursors(tmp_path) == [(other.path, "s1")]
    # a database replaced under the same path (new inode): forgetting the retired generation
    # keeps the cursors the live checkpoint resumes from
    retired = FileCheckpoint(other.path, 1, -5, 16, "h", format="crush", removed_at=1.0)
    store.save([retired])
    store.save([], removed=[retired.key])
    assert stored_cursors(tmp_path) == [(other.path, "s1")]
    store.close()


def test_a_session_deleted_from_the_database_loses_its_cursor(tmp_path: Path) -> None:
    project, state = tmp_path / "utils", tmp_path / "state"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    database = project / ".opencode" / "opencode.db"
    once = ("--watch", project, "--once", "--state-dir", state, "--data-dir", state)
    first = run_tailerd(*once)
    assert first.returncode == 0, first.stderr
    # 7 sessions, each with a turn (SOURCE.txt: db + WAL = 7 sessions; test_crush's counts)
    assert len(stored_cursors(state)) == 7
    db = sqlite3.connect(database)
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("DELETE FROM messages WHERE session_id = ?", (WAL_ONLY_SESSION,))
    db.execute("DELETE FROM sessions WHERE id = ?", (WAL_ONLY_SESSION,))
    db.commit()
    db.close()
    again = run_tailerd(*once)
    assert again.returncode == 0, again.stderr
    left = stored_cursors(state)
    assert len(left) == 6 and WAL_ONLY_SESSION not in {s for _, s in left}
    assert {p for p, _ in left} == {str(database)}
