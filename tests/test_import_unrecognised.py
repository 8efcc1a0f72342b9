"""`import`/`preview` given a file no format recognises say so in one line and exit 66 (README
exit table), creating nothing; one such file among readable ones is a warning and is skipped.

Before: `preview /etc/hostname` printed nothing with exit 0, and `import /etc/hostname` said
"imported 0 sessions, 0 turns", exit 0, and created a tailerd.db.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_tailerd
from tests.live_daemon import turn_line
from tests.test_mishaps import _as_nobody, _one_line, _shared_dir


def _hostname(tmp_path: Path) -> Path:
    path = tmp_path / "hostname"  # what /etc/hostname holds: one word, no agent's format
    path.write_text("myhost\n")
    return path


def test_a_file_no_format_recognises_is_said_in_one_line_with_66(tmp_path: Path) -> None:
    path = _hostname(tmp_path)
    state = tmp_path / "state"
    for command in ("preview", "import"):
        result = run_tailerd(command, path, "--state-dir", state, "--data-dir", state)
        assert result.returncode == 66, (command, result.stderr)
        assert result.stdout == ""
        assert result.stderr.strip().splitlines() == [f"tailerd: no format recognises {path}"], (
            result.stderr
        )
        assert not state.exists()  # no state dir, no tailerd.db


def test_one_unrecognised_file_among_readable_ones_is_skipped(tmp_path: Path) -> None:
    path = _hostname(tmp_path)
    log = tmp_path / "a.jsonl"
    log.write_bytes(turn_line("s1", "t1"))  # by hand: 1 native turn, 1 session
    state = tmp_path / "state"
    result = run_tailerd("import", path, log, "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    assert f"no format recognises {path}; skipped" in result.stderr, result.stderr
    assert "imported 1 sessions, 1 turns" in result.stderr, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        roots = "SELECT COUNT(*) FROM spans WHERE parent_span_id IS NULL"
        assert db.execute(roots).fetchone() == (1,)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_a_file_that_cannot_be_read_is_said_in_one_line_with_66() -> None:
    top = _shared_dir()
    try:
        log = top / "a.jsonl"
        log.write_bytes(turn_line("s1", "t1"))
        log.chmod(0o600)  # root's: nobody may not read it
        state = top / "state"
        for command in ("preview", "import"):
            result = _as_nobody(command, log, "--state-dir", state, "--data-dir", state)
            _one_line(result, 66, f"cannot read {log}: Permission denied")
            assert not state.exists()
    finally:
        shutil.rmtree(top)
