"""`tailerd` with no --watch: every supported agent's home, found by itself.

A home holding Claude Code, Codex (moved by CODEX_HOME), Copilot CLI and Gemini CLI sessions,
copied from the shared real fixtures; the agents that are not installed are no error. Expected
session ids are read off the fixture files (the ids their records carry, noted per file).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import run_tailerd

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "agents"
HOUR_AGO = 3600.0


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def _home(tmp_path: Path) -> tuple[Path, Path]:
    home, codex_home = tmp_path / "home", tmp_path / "codex-elsewhere"
    _place(
        FIXTURES / "claude-code/Mai0313-VibeCodingTracker/claude_code-1.0.95.jsonl",
        home / ".claude/projects/-work-app/b162b1ae-97bc-475f-9b5f-ffbf55ca5b3f.jsonl",
    )
    rollouts = FIXTURES / "codex/madshn-localpush/raw/sessions"
    first = sorted(rollouts.iterdir())[0]
    _place(first, codex_home / "sessions/2026/02/23" / first.name)
    _place(
        FIXTURES / "copilot-cli/Mai0313-VibeCodingTracker/copilot-1.0.34.events.jsonl",
        home / ".copilot/session-state/96ef38f0-9d09-45c3-8124-6448c36090ed/events.jsonl",
    )
    _place(
        FIXTURES / "gemini/Mai0313-VibeCodingTracker/gemini-session-2026-04.jsonl",
        home / ".gemini/tmp/9da8b3df/chats/session-2026-04-23T12-52-0ab84937.jsonl",
    )
    old = os.path.getmtime(first) - HOUR_AGO  # every turn's quiet time has passed
    for path in (*home.rglob("*.jsonl"), *codex_home.rglob("*.jsonl")):
        os.utime(path, (old, old))
    return home, codex_home


def _sessions(store: Path) -> dict[str, set[str]]:
    with sqlite3.connect(store / "tailerd.db") as db:
        rows = db.execute(
            "SELECT DISTINCT agent_name, session_id FROM spans WHERE parent_span_id IS NULL"
        ).fetchall()
    by_agent: dict[str, set[str]] = {}
    for agent, session in rows:
        by_agent.setdefault(agent, set()).add(session)
    return by_agent


def test_once_with_no_watch_ships_every_agent_in_the_home(tmp_path: Path) -> None:
    home, codex_home = _home(tmp_path)
    state = tmp_path / "state"
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home)}
    result = run_tailerd("--once", "--state-dir", state, "--data-dir", state, **env)
    assert result.returncode == 0, result.stderr
    assert "does not exist" not in result.stderr  # agents not installed are no warning
    sessions = _sessions(state)
    # The session ids the fixture records carry (codex: the rollout's file name uuid).
    rollout = next(codex_home.rglob("rollout-*.jsonl")).stem
    assert sessions["codex"] == {rollout.removeprefix("rollout-")[20:]}
    assert sessions["copilot-cli"] == {"96ef38f0-9d09-45c3-8124-6448c36090ed"}
    assert sessions["gemini"] == {"0ab84937-9fe7-4284-986a-33c832af0b6a"}
    # Claude Code's file carries two sessionIds (b162b1ae…, e9f146fa…).
    assert sessions["claude-code"] <= {
        "b162b1ae-97bc-475f-9b5f-ffbf55ca5b3f",
        "e9f146fa-3b20-48d0-9be4-d99ca901cae4",
    }
    assert sessions["claude-code"]
    assert set(sessions) == {"claude-code", "codex", "copilot-cli", "gemini"}

    again = run_tailerd("--once", "--state-dir", state, "--data-dir", state, **env)
    assert again.returncode == 0 and _sessions(state) == sessions  # nothing twice


def test_agents_narrows_the_homes_and_an_unknown_agent_is_one_line(tmp_path: Path) -> None:
    home, codex_home = _home(tmp_path)
    state = tmp_path / "state"
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home)}
    result = run_tailerd(
        "--once", "--agents", "codex,gemini", "--state-dir", state, "--data-dir", state, **env
    )
    assert result.returncode == 0, result.stderr
    assert set(_sessions(state)) == {"codex", "gemini"}
    bad = run_tailerd("--once", "--agents", "claude", "--state-dir", state, **env)
    assert bad.returncode == 78
    assert bad.stderr.count("\n") == 1 and "unknown agent 'claude'" in bad.stderr


def test_doctor_lists_what_it_found(tmp_path: Path) -> None:
    home, codex_home = _home(tmp_path)
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home)}
    result = run_tailerd("doctor", "--state-dir", tmp_path / "state", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    claude = next(line for line in lines if "claude-code" in line and ".claude/projects" in line)
    assert "1 file," in claude and "format claude-code" in claude
    codex = next(line for line in lines if f"codex {codex_home}/sessions" in line)
    assert "(from $CODEX_HOME)" in codex and "format codex" in codex
    assert any(line.startswith("ok") and "cline" in line and "not here" in line for line in lines)
