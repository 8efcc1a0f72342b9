"""The test session never touches the machine's default tailerd dirs: tests/conftest.py points
the XDG dirs at a session temp dir, so a run given neither --state-dir nor --data-dir lands
there, and a test that gives its own HOME gets that home's default dirs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import platformdirs

from tests.conftest import SESSION_XDG, run_tailerd, tailerd_env

# examples/logs/session-r1.jsonl, counted by hand: sessions wb-7f3a (2 finished turns) and
# wb-91c2 (1); examples/logs/2026-11-24.jsonl: ra-0001 (2 finished, t3 still open).
EXAMPLE_SESSIONS = {"wb-7f3a", "wb-91c2", "ra-0001"}


def test_a_run_without_dirs_writes_the_session_temp_dir_not_the_home(logs: Path) -> None:
    real_home = Path(os.path.expanduser("~"))
    assert not SESSION_XDG.is_relative_to(real_home)
    ran = run_tailerd("--once", "--watch", logs)
    assert ran.returncode == 0, ran.stderr
    store = SESSION_XDG / "data" / "tailerd" / "tailerd.db"
    assert (SESSION_XDG / "state" / "tailerd" / "checkpoints.db").is_file()
    with sqlite3.connect(store) as db:
        found = {row[0] for row in db.execute("SELECT DISTINCT session_id FROM spans")}
    assert found >= EXAMPLE_SESSIONS
    # in-process code (reports, doctor, service_install) resolves the same dirs
    assert Path(platformdirs.user_data_dir("tailerd")) == SESSION_XDG / "data" / "tailerd"
    assert Path(platformdirs.user_state_dir("tailerd")) == SESSION_XDG / "state" / "tailerd"


def test_a_test_home_brings_its_own_default_dirs_unless_it_names_them(tmp_path: Path) -> None:
    env = tailerd_env(HOME=str(tmp_path))
    assert not {"XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"} & set(env)
    named = tailerd_env(HOME=str(tmp_path), XDG_DATA_HOME="/d")
    assert named["XDG_DATA_HOME"] == "/d" and "XDG_STATE_HOME" not in named
