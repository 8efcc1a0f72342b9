"""Second fresh-user review of the CLI: each mishap is one line naming the path and what to
do, with the exit code README's table gives."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from tests.conftest import ROOT, run_tailerd
from tests.formats.test_cline import SESSION as CLINE_SESSION
from tests.formats.test_cline import cline_home
from tests.formats.test_droid import SESSION as DROID_SESSION
from tests.formats.test_droid import TITLE as DROID_TITLE
from tests.formats.test_droid import droid_home
from tests.formats.test_openhands import CONVERSATION, openhands_home
from tests.formats.test_wrong_types import once_into_store
from tests.live_daemon import RunningTailerd, poll, turn_line
from tests.test_mishaps import _one_line


def test_a_mistyped_state_dir_is_said_not_the_default_store_shown(tmp_path: Path) -> None:
    """`sessions|show|usage --state-dir TYPO` printed the home's default store with rc 0."""
    logs, home = tmp_path / "logs", tmp_path / "home"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "d"), "XDG_STATE_HOME": str(home / "s")}
    filled = run_tailerd("--watch", logs, "--once", **env)  # fills the home's default store
    assert filled.returncode == 0, filled.stderr
    assert run_tailerd("sessions", "--json", **env).stdout.count('"s1"') == 1
    typo = tmp_path / "typo"
    for command in (["sessions"], ["show", "s1"], ["usage"], ["status"]):
        result = run_tailerd(*command, "--state-dir", typo, **env)
        _one_line(result, 66, f"no tailerd state in {typo}")
        assert result.stdout == ""


def test_heartbeats_are_on_by_default_and_alive_says_when_they_are_off(tmp_path: Path) -> None:
    """`status --alive 30` failed on a healthy daemon with the default config: heartbeats were
    off (0). Default now 15 s, under the 30 s a probe gives; off, --alive says so (exit 78)."""
    shown = run_tailerd("check-config", "--json")
    assert json.loads(shown.stdout)["settings"]["heartbeat_interval"] == 15.0
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    config = tmp_path / "off.toml"
    config.write_text("heartbeat_interval = 0\n")
    where = ("--state-dir", state, "--data-dir", state)
    daemon = RunningTailerd("--watch", logs, *where, "--config", config)
    try:
        assert poll((state / "status.json").exists, timeout=60) is not None
        alive = run_tailerd("status", "--alive", "30", "--state-dir", state)
        assert alive.returncode == 0, alive.stderr  # the default config: heartbeats on
        off = run_tailerd("status", "--alive", "30", "--state-dir", state, "--config", config)
        _one_line(off, 78, "heartbeats are off (heartbeat_interval = 0)")
    finally:
        daemon.terminate(timeout=30)


def test_the_shipped_config_reads_every_agent_and_a_narrow_include_is_warned(
    tmp_path: Path,
) -> None:
    """config/tailerd.toml set include = ["*.jsonl", "*.jsonl.zst", "session-*.json"], which
    replaced the default globs: Cline's <id>.messages.json and OpenHands' base_state.json were
    never read. With the shipped file, a home holding one session of each ships both."""
    shipped = ROOT / "config" / "tailerd.toml"
    home, state = tmp_path / "home", tmp_path / "s"
    cline_home(home)
    openhands_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: last turns are finished
    done = run_tailerd(
        "--config", shipped, "--watch", home, "--once", "--state-dir", state, "--data-dir", state
    )
    assert done.returncode == 0, done.stderr
    assert "matches no file of" not in done.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        sessions = {row[0] for row in db.execute("SELECT DISTINCT session_id FROM spans")}
    assert sessions == {CLINE_SESSION, CONVERSATION}
    checked = run_tailerd("check-config", "--config", shipped)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    narrow = tmp_path / "narrow.toml"
    narrow.write_text('include = ["*.jsonl", "*.jsonl.zst", "session-*.json"]\n')
    warned = run_tailerd("check-config", "--config", narrow)
    assert warned.returncode == 0, warned.stderr
    # the formats whose files end otherwise (README's agents table): .messages.json, T-*.json,
    # base_state.json, crush.db, opencode.db, storage/session/*/ses_*.json, sessions.db
    lost = "cline, amp, openhands, crush, opencode, opencode-storage, goose"
    assert f"matches no file of {lost}:" in warned.stderr, warned.stderr
    once = run_tailerd("--config", narrow, "--watch", home, "--once", "--state-dir", state)
    assert f"matches no file of {lost}:" in once.stderr, once.stderr


def test_once_over_a_missing_or_unreadable_watch_root(tmp_path: Path) -> None:
    """`--once --watch TYPO` said "waiting for it" and exited 0 with "0 files". Now: a root
    that cannot be read is skipped (one line); none readable at all exits 66."""
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    typo = tmp_path / "typo"
    where = ("--once", "--state-dir", state, "--data-dir", state)
    alone = run_tailerd("--watch", typo, *where)
    _one_line(alone, 66, f"no watch directory could be read: {typo} (No such file or directory)")
    both = run_tailerd("--watch", typo, "--watch", logs, *where)
    assert both.returncode == 0, both.stderr
    assert f"watch directory {typo} does not exist: skipped" in both.stderr
    assert "waiting for it" not in both.stderr
    assert "1 turns emitted" in both.stderr or "1 turn emitted" in both.stderr, both.stderr


def test_unusable_data_dirs_name_the_path_and_what_to_do(tmp_path: Path) -> None:
    """Were "File exists" (a data dir that is a file) and "No such file or directory"
    (--data-dir /proc/x: /proc holds no new directories): neither said what to do."""
    logs, a_file = tmp_path / "logs", tmp_path / "f"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    a_file.write_text("x")
    where = ("--watch", logs, "--once", "--state-dir", tmp_path / "s")
    _one_line(
        run_tailerd(*where, "--data-dir", a_file),
        78,
        f"cannot use data dir {a_file}: it is a file, not a directory (give --data-dir a",
    )
    _one_line(
        run_tailerd(*where, "--data-dir", "/proc/x"),
        78,
        "cannot use data dir /proc/x: No such file or directory; it cannot be created in /proc",
        "give --data-dir a directory",
    )


def test_the_stop_line_says_the_configured_bound(tmp_path: Path) -> None:
    """ "stopping … (at most 12 s)" with shutdown_timeout = 10: the line now names the setting."""
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    config = tmp_path / "c.toml"
    config.write_text("shutdown_timeout = 4\n")
    daemon = RunningTailerd(
        "--watch", logs, "--state-dir", state, "--data-dir", state, "--config", config
    )
    assert poll(lambda: "watching" in daemon.log, timeout=60) is not None, daemon.log
    code, _ = daemon.terminate(timeout=30)
    assert code == 0, daemon.log
    assert "shutdown_timeout 4 s" in daemon.log, daemon.log


def test_show_says_usage_not_recorded_and_sessions_caps_titles(tmp_path: Path) -> None:
    """`show` printed "in 0, out 0, unpriced" for calls the agent kept no counts of; `sessions`
    piped printed whole titles (a ~330-column table). The Droid fixture: 5 assistant messages
    (`jq -c 'select(.message.role=="assistant")' droid-session.jsonl | wc -l`), the session's
    token totals given to the last one only (formats/droid/usage.py), so 4 carry none."""
    home = tmp_path / "home"
    droid_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: the turn is finished
    state = once_into_store(home / ".factory", tmp_path).parent
    where = ("--state-dir", state, "--data-dir", state)
    shown = run_tailerd("show", DROID_SESSION, *where)
    assert shown.returncode == 0, shown.stderr
    llm = [line for line in shown.stdout.splitlines() if line.lstrip().startswith("llm:")]
    assert len(llm) == 5
    assert sum("usage not recorded" in line for line in llm) == 4, shown.stdout
    assert "in 0, out 0" not in shown.stdout
    assert f"'{DROID_TITLE}'" in " ".join(shown.stdout.split())  # whole, wrapped at 100
    listed = run_tailerd("sessions", *where)
    # 49 characters (test_droid.TITLE) cut to 40: 39 and an ellipsis
    assert DROID_TITLE[:39] + "…" in listed.stdout and DROID_TITLE not in listed.stdout
    as_json = json.loads(run_tailerd("sessions", *where, "--json").stdout)
    assert [s["title"] for s in as_json] == [DROID_TITLE]


def test_import_of_missing_paths(tmp_path: Path) -> None:
    """Like `--once`: a missing path is skipped (one line), none readable exits 66."""
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    typo = tmp_path / "typo"
    where = ("--state-dir", state, "--data-dir", state)
    _one_line(run_tailerd("import", typo, *where), 66, f"{typo}: No such file or directory")
    both = run_tailerd("import", typo, logs, *where)
    assert both.returncode == 0, both.stderr
    assert f"{typo}: No such file or directory: skipped" in both.stderr
    assert "imported 1 sessions, 1 turns" in both.stderr, both.stderr
