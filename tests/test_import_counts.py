"""`tailerd import`'s summary counts distinct sessions, not (file, session) pairs: a session split
over several files (a resumed session, sub-agent files) is one session, as the store holds it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import run_tailerd
from tests.live_daemon import turn_line


def test_import_counts_a_session_split_over_files_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # By hand: a.jsonl holds s1 (2 turns) and s2 (1); b.jsonl holds s1 again (1 turn: the same
    # session continued in another file); c.jsonl holds s3 (1). Sessions {s1, s2, s3} = 3,
    # turns 2 + 1 + 1 + 1 = 5 (before: "imported 4 sessions", one per file and session).
    (logs / "a.jsonl").write_bytes(
        turn_line("s1", "t1") + turn_line("s2", "u1") + turn_line("s1", "t2")
    )
    (logs / "b.jsonl").write_bytes(turn_line("s1", "t3"))
    (logs / "c.jsonl").write_bytes(turn_line("s3", "v1"))
    state = tmp_path / "state"
    result = run_tailerd("import", logs, "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    assert "imported 3 sessions, 5 turns" in result.stderr, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        query = (
            "SELECT COUNT(DISTINCT session_id), COUNT(*) FROM spans WHERE parent_span_id IS NULL"
        )
        assert db.execute(query).fetchone() == (3, 5)  # the store agrees
