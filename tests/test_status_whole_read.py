"""`tailerd status` on files read whole (an agent database, a rewritten JSON document), where a
byte offset and a byte lag mean nothing: it shows whether the file is unchanged since its last
read whose every turn was acknowledged ("up to date"), or changed since."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_cline import cline_home

CRUSH = FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode"
WAL_ONLY_SESSION = "635c8ffb-566f-4bd6-a816-f648f33beb9d"


def status(state: Path) -> dict[str, Any]:
    shown = run_tailerd("status", "--state-dir", state, "--json")
    assert shown.returncode == 0, shown.stderr
    return {Path(f["path"]).name: f for f in json.loads(shown.stdout)["files"]}


def once(watch: Path, state: Path) -> None:
    done = run_tailerd("--watch", watch, "--once", "--state-dir", state, "--data-dir", state)
    assert done.returncode == 0, done.stderr


def test_a_shipped_agent_database_is_up_to_date_until_the_agent_writes(tmp_path: Path) -> None:
    project, state = tmp_path / "utils", tmp_path / "state"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    once(project, state)
    db_status = status(state)["opencode.db"]
    # before: offset 0 and a lag of the whole database (585,728 bytes: `stat -c %s`)
    assert db_status["lag_bytes"] is None
    assert db_status["whole_read"] == "up to date"
    text = run_tailerd("status", "--state-dir", state).stdout
    [line] = [x for x in text.splitlines() if x.endswith("opencode.db")]
    assert line.split()[:3] == ["-", "585728", "current"], line
    db = sqlite3.connect(project / ".opencode" / "opencode.db")
    parts = json.dumps([{"type": "text", "data": {"text": "and rebase?"}}])
    now = int(time.time())
    db.execute(
        "INSERT INTO messages (id, session_id, role, parts, created_at, updated_at)"
        " VALUES ('added-1', ?, 'user', ?, ?, ?)",
        (WAL_ONLY_SESSION, parts, now, now),
    )
    db.commit()
    db.close()
    assert status(state)["opencode.db"]["whole_read"] == "changed since the last shipped read"
    once(project, state)  # the new prompt is an open turn: nothing to acknowledge, all read
    assert status(state)["opencode.db"]["whole_read"] == "up to date"


def test_a_shipped_cline_document_is_up_to_date_until_rewritten(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    messages = cline_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: the last turn is finished
    once(home / ".cline", state)
    doc = status(state)[messages.name]
    assert (doc["lag_bytes"], doc["whole_read"]) == (None, "up to date")
    os.utime(messages, (1_700_000_100, 1_700_000_100))  # rewritten (same size, new mtime)
    assert status(state)[messages.name]["whole_read"] == "changed since the last shipped read"


def test_a_database_shipped_before_read_states_were_recorded_is_read_not_unread(
    tmp_path: Path,
) -> None:
    """After an upgrade: a checkpoint written by a version that did not record the read's
    signature (its context without `read_signature`) but with turns emitted shows "read; state
    not recorded yet" (LAG `read`), never "unread"; the next run records it: up to date."""
    project, state = tmp_path / "utils", tmp_path / "state"
    shutil.copytree(CRUSH, project / ".opencode", copy_function=shutil.copyfile)
    once(project, state)
    with sqlite3.connect(state / "checkpoints.db") as db:  # as the older version left it
        db.execute("UPDATE files SET context = json_remove(context, '$.read_signature')")
        turns = db.execute("SELECT turns_emitted FROM files WHERE path LIKE '%opencode.db'")
        assert turns.fetchone()[0] > 0
    assert status(state)["opencode.db"]["whole_read"] == "read; state not recorded yet"
    text = run_tailerd("status", "--state-dir", state).stdout
    [line] = [x for x in text.splitlines() if x.endswith("opencode.db")]
    assert line.split()[:3] == ["-", "585728", "read"], line
    once(project, state)
    assert status(state)["opencode.db"]["whole_read"] == "up to date"
