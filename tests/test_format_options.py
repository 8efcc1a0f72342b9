"""`format_options` is checked when settings are built (start, check-config, reload): a table
per known format (built-in or [[mapping]]), only keys that format reads, values of the right
type and range. Expected keys come from reading the formats' source (`options.get("...")`),
not from the schemas under test."""

from __future__ import annotations

import logging
import re
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from tailerd import sinks
from tailerd.daemon import Daemon
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.errors import ConfigError
from tailerd.settings import Settings, layered
from tests.conftest import FIXTURES, ROOT, run_tailerd
from tests.live_daemon import RunningTailerd, append, poll, turn_line

ENV_IDLE = "TAILERD_FORMAT_OPTIONS__CODEX__IDLE_CLOSE"


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tailerd.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("file_text", "env", "message"),
    [
        (
            "",
            {ENV_IDLE: "abc"},
            f"invalid setting format_options.codex.idle_close (from environment variable"
            f" {ENV_IDLE}): Input should be a valid number, got 'abc'",
        ),
        (
            '[format_options.claude-code]\nidle_close = "30s"\n',
            {},
            "invalid setting format_options.claude-code.idle_close (in {file}): Input should be"
            " a valid number, got '30s'",
        ),
        (
            "[format_options.claude-code]\nidle_close = -5\n",
            {},
            "invalid setting format_options.claude-code.idle_close (in {file}): Input should be"
            " greater than or equal to 0, got -5",
        ),
        (
            "[format_options.codex]\nbogus = 1\n",
            {},
            "invalid setting format_options.codex.bogus (in {file}): codex has no option 'bogus'",
        ),
        (
            "[format_options.nosuchformat]\nidle_close = 5\n",
            {},
            "invalid setting format_options.nosuchformat (in {file}): no format named"
            " 'nosuchformat'",
        ),
        (
            "[format_options.codex]\nnest_subagents = 1\n",
            {},
            "invalid setting format_options.codex.nest_subagents (in {file}): Input should be a"
            " valid boolean",
        ),
    ],
)
def test_a_bad_format_option_is_one_line_naming_its_source(
    tmp_path: Path, file_text: str, env: dict[str, str], message: str
) -> None:
    config = _file(tmp_path, file_text)
    with pytest.raises(ConfigError) as caught:
        layered(config, {}, env)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message.format(file=config)), text


def test_valid_options_and_mapping_tables_are_accepted(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        "[format_options.codex]\nidle_close = 5\nnest_subagents = false\nsubagent_cap = 1024\n"
        "[format_options.claude-code]\nstale_close = 2.5\n"
        "[format_options.mine]\nstale_close = 60\n",
    )
    cfg, _ = layered(config, {}, {"TAILERD_MAPPING": '[{"name": "mine"}]'})
    assert cfg.format_options["codex"] == {
        "idle_close": 5,
        "nest_subagents": False,
        "subagent_cap": 1024,
    }
    assert cfg.format_options["mine"] == {"stale_close": 60}


def _keys_read_by_formats() -> set[tuple[str, str]]:
    """(format package or module, key) for every `options.get("<key>"` in the formats and in
    edges/related_files.py (which reads `idle_close` for every rewritten-whole format)."""
    found: set[tuple[str, str]] = set()
    for path in [*(ROOT / "tailerd" / "formats").rglob("*.py")]:
        rel = path.relative_to(ROOT / "tailerd" / "formats")
        owner = rel.parts[0].removesuffix(".py")
        for key in re.findall(r"options\.get\(\s*\"(\w+)\"", path.read_text()):
            found.add((owner, key))
    return found


def test_every_key_a_format_reads_is_declared() -> None:
    from tailerd import formats

    by_package = {
        "claude_code": "claude-code",
        "copilot_cli": "copilot-cli",
        "qwen": "qwen-code",
    }
    read = _keys_read_by_formats()
    assert ("codex", "abort_grace") in read  # the scan finds what it should
    for owner, key in read:
        if owner in ("mapped",):
            from tailerd.formats.mapped import OPTIONS as MAPPED

            assert key in MAPPED, key
            continue
        name = by_package.get(owner, owner)
        assert key in formats.OPTIONS[name], (name, key)
    # edges/related_files.py and edges/agent_db read idle_close for every document and
    # database format
    for name in formats.OPTIONS:
        assert "idle_close" in formats.OPTIONS[name], name


def test_a_bad_option_stops_a_run_before_it_reads_anything(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "codex" / "madshn-localpush" / "raw" / "sessions", sessions)
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch",
        sessions,
        "--once",
        "--state-dir",
        state,
        TAILERD_FORMAT_OPTIONS__CODEX__IDLE_CLOSE="abc",
    )
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1 and ENV_IDLE in result.stderr, result.stderr
    assert not (state / "checkpoints.db").exists()


def test_check_config_refuses_a_bad_option(tmp_path: Path) -> None:
    config = _file(tmp_path, '[format_options.claude-code]\nidle_close = "30s"\n')
    result = run_tailerd("check-config", "--config", config)
    assert result.returncode == 78
    assert f"format_options.claude-code.idle_close (in {config})" in result.stderr


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        (
            {},
            {"agents": ["codex"], "watch": ["/tmp"]},
            "--agents chooses agent homes; with --watch DIR it has nothing to choose: drop one",
        ),
        (
            {"TAILERD_AGENTS": "codex", "TAILERD_WATCH": "/tmp"},
            {},
            "agents (from environment variable TAILERD_AGENTS) chooses agent homes; with watch"
            " (from environment variable TAILERD_WATCH) it has nothing to choose: drop one",
        ),
        (
            {"TAILERD_WATCH": '["/a",'},
            {},
            "environment variable TAILERD_WATCH is not valid JSON: '[\"/a\",'",
        ),
    ],
)
def test_agents_with_watch_and_broken_json_lists_are_errors(
    env: dict[str, str], flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        layered(None, flags, env)
    assert str(caught.value) == message


CODEX_SESSIONS = FIXTURES / "codex" / "madshn-localpush" / "raw" / "sessions"


def _run_once(watch: Path, state: Path, options: dict[str, dict[str, object]]) -> Daemon:
    settings = Settings(watch=(watch,), format_options=options, once_timeout=0.5, once=True)
    daemon = Daemon(settings, state, sinks.build(settings, state), threaded_delivery=False)
    daemon.start(watch=False)
    try:
        daemon.run_once()
    finally:
        daemon.drain(5)
    return daemon


def test_a_format_that_cannot_start_leaves_its_files_unread_for_a_fixed_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Settings built directly skip the layered check: the guard is the second line of defence.
    sessions = tmp_path / "sessions"
    shutil.copytree(CODEX_SESSIONS, sessions)
    state = tmp_path / "state"
    state.mkdir()
    caplog.set_level(logging.ERROR, logger="tailerd")
    broken = _run_once(sessions, state, {"codex": {"idle_close": "abc"}})
    # before: 3,860 dead letters (`wc -l` of the 4 rollouts) and checkpoints at each file's end
    assert (broken.counters.dead_letters, broken.counters.turns) == (0, 0)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(set(errors)) == 1, errors  # one line for the format, not one per file (4 files)
    assert errors[0].startswith("codex could not start: ValueError"), errors
    assert all(cp.offset == 0 for cp in CheckpointStore(state).load().values())
    unread = [f.quarantined for f in broken.files.values()]  # status.json's `quarantined`
    assert len(unread) == 4 and all("codex could not start" in why for why in unread), unread
    fixed = _run_once(sessions, state, {"codex": {"idle_close": 5}})
    # 39 finished turns: `grep -c '"type":"task_complete"'` over the rollouts gives 5 + 1 + 33
    # + 0 (the 13-19-38 rollout's one task_started never completes: still open)
    assert fixed.counters.turns == 39


def test_sighup_refuses_a_bad_format_option_and_keeps_reading(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    config = _file(tmp_path, f'watch = ["{logs}"]\n[format_options.native]\nidle_close = 5\n')
    append(logs / "a.jsonl", turn_line("s1", "a1"))
    daemon = RunningTailerd("--config", config, "--state-dir", state, "--data-dir", state)
    try:
        assert poll(lambda: _stored(state) == ["a1"], timeout=30), daemon.log
        config.write_text(config.read_text().replace("idle_close = 5", 'idle_close = "30s"'))
        daemon.proc.send_signal(signal.SIGHUP)
        assert poll(lambda: "reload refused" in daemon.log, timeout=30), daemon.log
        [refused] = [x for x in daemon.log.splitlines() if "reload refused" in x]
        assert f"invalid setting format_options.native.idle_close (in {config})" in refused
        append(logs / "a.jsonl", turn_line("s1", "a2"))  # the running configuration goes on
        assert poll(lambda: _stored(state) == ["a1", "a2"], timeout=30), daemon.log
        assert "dead letter" not in daemon.log
    finally:
        daemon.stop()


def _stored(data_dir: Path) -> list[str]:
    """The test_turn labels of the root spans in the local store (turn_line writes them)."""
    if not (data_dir / "tailerd.db").exists():
        return []
    with sqlite3.connect(data_dir / "tailerd.db") as db:
        try:
            rows = db.execute(
                "SELECT json_extract(attributes, '$.test_turn') FROM spans"
                " WHERE parent_span_id IS NULL"
            ).fetchall()
        except sqlite3.OperationalError:  # the store is being created
            return []
    return sorted(str(r[0]) for r in rows)
