"""`tailerd import` and `preview` read agents' SQLite databases (Crush's .opencode/opencode.db,
OpenCode's opencode.db) through the daemon's own reader (edges/agent_db), read-only, writing no
cursors, with the daemon's span ids: `import` and then `--once` over the same home store each
span once.

Expected values are hand counts, not tailerd's:
* Crush / opencode-go (../shared/fixtures/agents/opencode-go, SOURCE.txt; the sqlite3 counts
  are in tests/formats/test_crush.py's docstring): 18 user messages = 18 turns, 61 assistant
  messages = 61 chat spans, 80 tool_call parts = 80 tool spans, plus one chat span per session
  (7) carrying its cost (`select count(*) from sessions`); 166 spans in all.
* OpenCode (tests/data/opencode-storage/migrated/opencode.db, written by the real opencode-ai
  1.2.1, SOURCE.txt): 2 turns, 7 LLM calls, 3 bash calls (`ls`, `cat notes.txt`, and the
  sub-agent's `wc -l notes.txt`; the `task` call is the sub-agent span, not a tool span).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

from tests.conftest import FIXTURES, ROOT, run_tailerd

CRUSH = FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode"
OPENCODE_DB = ROOT / "tests" / "data" / "opencode-storage" / "migrated" / "opencode.db"


def spans(data: Path) -> dict[str, str]:
    """span id -> span name, from the local store."""
    db = sqlite3.connect(data / "tailerd.db")
    try:
        return dict(db.execute("SELECT span_id, name FROM spans").fetchall())
    finally:
        db.close()


def totals(found: dict[str, str], roots: int) -> tuple[int, int, int]:
    chats = sum(n == "chat" or n.startswith("chat ") for n in found.values())
    tools = sum(n.startswith("execute_tool ") for n in found.values())
    return roots, chats, tools


def roots(data: Path) -> int:
    db = sqlite3.connect(data / "tailerd.db")
    try:
        found = db.execute("SELECT count(*) FROM spans WHERE parent_span_id IS NULL").fetchone()
        return int(found[0])
    finally:
        db.close()


def digests(directory: Path) -> dict[str, str]:
    """The database and its WAL (not the -shm: SQLite's wal-index, where any reader, read-only
    too, takes read-marks)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.name.endswith((".db", ".db-wal"))
    }


def cursors(state: Path) -> int:
    """db_cursors rows in the state dir's checkpoints.db (0 if there is none)."""
    path = state / "checkpoints.db"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM db_cursors").fetchone()[0])
    finally:
        db.close()


def import_then_once(home: Path, watch: Path, tmp_path: Path) -> tuple[dict[str, str], int]:
    """`import home`, then `--once --watch watch` into the same store: the spans after each
    must be the same (same ids), and import wrote no cursor. The spans and root count."""
    state, data = tmp_path / "state", tmp_path / "data"
    imported = run_tailerd("import", home, "--state-dir", state, "--data-dir", data)
    assert imported.returncode == 0, imported.stderr
    assert cursors(state) == 0  # import keeps no checkpoints
    after_import = spans(data)
    once = run_tailerd("--watch", watch, "--once", "--state-dir", state, "--data-dir", data)
    assert once.returncode == 0, once.stderr
    assert cursors(state) > 0  # the daemon did read it, and stored its cursors
    assert spans(data) == after_import  # nothing new: the daemon minted the same span ids
    return after_import, roots(data)


def test_import_reads_a_crush_database_with_the_daemons_span_ids(tmp_path: Path) -> None:
    project = tmp_path / "utils"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    before = digests(project / ".opencode")
    found, root_count = import_then_once(project, project, tmp_path)
    assert totals(found, root_count) == (18, 61 + 7, 80)
    assert digests(project / ".opencode") == before  # the agent's files were not written


def test_preview_shows_every_span_of_a_crush_database(tmp_path: Path) -> None:
    project = tmp_path / "utils"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    db = project / ".opencode" / "opencode.db"
    shown = run_tailerd("preview", db, "--state-dir", tmp_path / "state")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(records) == 18 + 61 + 7 + 80
    assert not (tmp_path / "state" / "checkpoints.db").exists()


def test_import_reads_an_opencode_database_with_the_daemons_span_ids(tmp_path: Path) -> None:
    data_home = tmp_path / "home" / ".local" / "share" / "opencode"
    data_home.mkdir(parents=True)
    shutil.copyfile(OPENCODE_DB, data_home / "opencode.db")
    found, root_count = import_then_once(data_home / "opencode.db", data_home, tmp_path)
    assert totals(found, root_count) == (2, 7, 3)
    assert (
        sorted(n for n in found.values() if n.startswith("execute_tool "))
        == ["execute_tool bash"] * 3
    )


def test_preview_lists_a_database_session_whose_turn_is_open(tmp_path: Path) -> None:
    project = tmp_path / "utils"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    db_path = project / ".opencode" / "opencode.db"
    session = "635c8ffb-566f-4bd6-a816-f648f33beb9d"  # the session only in the WAL
    db = sqlite3.connect(db_path)
    parts = json.dumps([{"type": "text", "data": {"text": "and rebase?"}}])
    now = int(time.time())
    db.execute(
        "INSERT INTO messages (id, session_id, role, parts, created_at, updated_at)"
        " VALUES ('added-1', ?, 'user', ?, ?, ?)",
        (session, parts, now, now),
    )
    db.commit()
    db.close()
    shown = run_tailerd("preview", db_path, "--state-dir", tmp_path / "state")
    assert shown.returncode == 0, shown.stderr
    # the new prompt is not sent, nor its session's cost (it waits for the open turn): 6 costs
    assert len(shown.stdout.splitlines()) == 18 + 61 + 6 + 80
    assert "1 turns still open in 1 files (not shown" in shown.stderr, shown.stderr
    [line] = [x for x in shown.stderr.splitlines() if "open: " in x]
    assert f"session {session}: the next prompt or the agent's final answer" in line, line
