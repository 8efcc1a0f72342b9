"""A whole document reports an open turn only when its format holds one back (a turn started and
not finished), never merely because the document might be rewritten later.

Before: every document read not yet quiet for its idle time (30 s) was "1 turns still open …
waiting for the last turn of the rewritten document", even an OpenHands conversation with
execution_status finished, a Cline session whose manifest has ended_at and status completed,
a finished Amp thread or OpenCode storage session (the reviewer's /tmp/u-oh3, /tmp/u-clive).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_tailerd
from tests.formats.test_amp import THREADS
from tests.formats.test_amp import A as AMP_THREAD
from tests.formats.test_cline import cline_home
from tests.formats.test_opencode_storage import home_with
from tests.formats.test_openhands import openhands_home


def _once(tmp_path: Path, *roots: Path) -> tuple[str, dict[str, object]]:
    """`tailerd --once` over `roots` (files written just now: none is quiet yet): its stderr
    and status.json's files."""
    state = tmp_path / "state"
    watch = [arg for root in roots for arg in ("--watch", root)]
    result = run_tailerd(*watch, "--once", "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    files: dict[str, object] = json.loads((state / "status.json").read_text())["files"]
    return result.stderr, files


def test_finished_documents_hold_no_open_turn(tmp_path: Path) -> None:
    home = tmp_path / "home"
    openhands_home(home, status="finished")  # the sample's own status: finished
    cline_home(home)  # the sample's manifest: ended_at set, status completed
    threads = home / "amp" / "threads"
    threads.mkdir(parents=True)
    shutil.copyfile(THREADS / f"{AMP_THREAD}.json", threads / f"{AMP_THREAD}.json")
    opencode = home_with(tmp_path / "oc", storage=True, database=False)
    err, files = _once(tmp_path, home / ".openhands", home / ".cline", home / "amp", opencode)
    # 2 OpenHands turns (test_openhands' hand count), 5 Cline turns (test_cline's), Amp's and
    # OpenCode's, all finished (before the fix: "3 turns still open in 3 files", the first
    # three's documents)
    assert "0 turns still open in 0 files" in err, err
    assert "waiting for the last turn" not in err, err
    assert not [p for p, d in files.items() if isinstance(d, dict) and d.get("open_turns")]


def test_a_running_conversation_still_holds_its_last_turn(tmp_path: Path) -> None:
    """The other side: execution_status running, its last turn (event 06's prompt, 07's answer)
    may still grow: open, and said so."""
    home = tmp_path / "home"
    base = openhands_home(home, status="running")
    err, files = _once(tmp_path, home / ".openhands")
    assert "1 turns still open in 1 files" in err, err
    detail = files[str(base)]
    assert isinstance(detail, dict) and len(detail["open_turns"]) == 1
