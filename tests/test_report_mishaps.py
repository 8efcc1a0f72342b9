"""User mishaps in reports, doctor and settings get one line that says what to do: a watch
root given with a typo, a non-positive `--alive`, an unknown setting, an agent name with a
typo; and doctor's project-database note only where it applies. Real CLI runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_cline import cline_home

CLAUDE = FIXTURES / "claude-code" / "Mai0313-VibeCodingTracker" / "claude_code-1.0.95.jsonl"


def test_doctor_warns_of_a_watch_root_that_does_not_exist(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    where = ("--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s", "--json")
    done = run_tailerd("doctor", "--watch", typo, *where, HOME=str(tmp_path))
    (root,) = [c for c in json.loads(done.stdout) if c["check"] == f"watch {typo}"]
    assert root["level"] == "warn" and "does not exist" in root["detail"]
    assert "check the path" in root["detail"]
    assert done.returncode == 0  # README: doctor exits 1 only when a check failed


def test_doctor_notes_project_databases_only_with_opencode_among_the_agents(
    tmp_path: Path,
) -> None:
    where = ("--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s", "--json")
    goose = json.loads(
        run_tailerd("doctor", "--agents", "goose", *where, HOME=str(tmp_path)).stdout
    )
    assert not any(c["check"] == "project databases" for c in goose)
    every = json.loads(run_tailerd("doctor", *where, HOME=str(tmp_path)).stdout)
    assert any(c["check"] == "project databases" for c in every)


def test_status_alive_takes_only_seconds_above_zero(tmp_path: Path) -> None:
    for value in ("-5", "0"):
        done = run_tailerd("status", "--alive", value, "--state-dir", tmp_path)
        assert done.returncode == 78, (value, done.stderr)
        assert "above 0" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_setting_names_the_closest_one(tmp_path: Path) -> None:
    config = tmp_path / "tailerd.toml"
    config.write_text("heartbeat = 5\n")
    done = run_tailerd("status", "--config", config, "--state-dir", tmp_path)
    assert done.returncode == 78
    assert "unknown setting `heartbeat` (did you mean heartbeat_interval?)" in done.stderr
    assert "Extra inputs" not in done.stderr


def test_usage_of_an_agent_not_in_the_store_names_those_there(tmp_path: Path) -> None:
    logs = tmp_path / "home" / ".claude" / "projects" / "-work-app"
    logs.mkdir(parents=True)
    shutil.copyfile(CLAUDE, logs / "s1.jsonl")
    state = tmp_path / "state"
    done = run_tailerd(
        "--watch", tmp_path / "home", "--once", "--state-dir", state, "--data-dir", state
    )
    assert done.returncode == 0, done.stderr
    typo = run_tailerd("usage", "--data-dir", state, "--agent", "claude-cod")
    assert typo.returncode == 66
    assert "no agent claude-cod in the store" in typo.stderr and "claude-code" in typo.stderr
    right = run_tailerd("usage", "--data-dir", state, "--agent", "claude-code")
    assert right.returncode == 0 and "claude" not in right.stderr


def test_status_shows_a_document_replaced_by_rename_once(tmp_path: Path) -> None:
    """Cline rewrites its session document through a temp file renamed over it: the old
    inode's checkpoint stays in checkpoints.db, but status lists the path once, the live one."""
    messages = cline_home(tmp_path / "home")
    state = tmp_path / "state"
    where = ("--state-dir", state, "--data-dir", state)
    first = run_tailerd("--watch", tmp_path / "home", "--once", *where)
    assert first.returncode == 0, first.stderr
    temp = messages.with_name(messages.name + ".tmp")
    shutil.copyfile(messages, temp)  # a new inode with the same content
    os.replace(temp, messages)
    again = run_tailerd("--watch", tmp_path / "home", "--once", *where)
    assert again.returncode == 0, again.stderr
    done = run_tailerd("status", "--state-dir", state, "--json")
    assert done.returncode == 0, done.stderr
    rows = [f for f in json.loads(done.stdout)["files"] if f["path"] == str(messages)]
    assert len(rows) == 1 and rows[0]["whole_read"] == "up to date"
