"""Life signs: a backfill's progress bar on a pseudo-terminal and its log lines without one,
one line per delivered batch in the live daemon, a retrying sink's next attempt, and what a
stop committed.

Hand counts on the shipped examples (examples/logs): 2 files; 6 turns (ra-0001: t1, t2, t3 —
t3 closed as interrupted once quiet for the native idle_close of 600 s, hence the copies' mtimes
an hour back; weather-bot: 3 one-line turns), counted with `grep -c '"type":"turn' ...`:
`turn_start` 3 + `"type":"turn"` 3.
"""

from __future__ import annotations

import logging
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tailerd import progress, service
from tailerd.settings import Settings
from tests.conftest import EXAMPLES, run_tailerd, tailerd_env
from tests.live_daemon import RunningTailerd, append, poll, turn_line, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _old_examples(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    shutil.copytree(EXAMPLES, logs)
    hour_ago = time.time() - 3600
    for path in logs.rglob("*.jsonl"):
        os.utime(path, (hour_ago, hour_ago))
    return logs


def _on_a_pty(*args: str | Path) -> tuple[int, str]:
    leader, follower = pty.openpty()
    cmd = [sys.executable, "-m", "tailerd", *map(str, args)]
    env = tailerd_env(COLUMNS="160", LINES="40")
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(timeout=60), ANSI.sub("", out.decode(errors="replace"))


def test_a_backfill_on_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    logs = _old_examples(tmp_path)
    state = tmp_path / "s"
    code, text = _on_a_pty("--watch", logs, "--once", "--state-dir", state, "--data-dir", state)
    assert code == 0, text
    bar = [line for line in text.splitlines() if line.startswith("backfill")]
    assert bar, text
    assert "2/2 files" in bar[-1] and "6 turns" in bar[-1] and "MB/s" in bar[-1]
    assert "100%" in bar[-1]
    assert "INFO backfill:" not in text  # the bar, not log lines
    quiet_code, quiet = _on_a_pty("--watch", logs, "--once", "--state-dir", state, "-q")
    assert quiet_code == 0 and "backfill" not in quiet


def test_an_import_on_a_terminal_shows_a_progress_bar(tmp_path: Path) -> None:
    logs = _old_examples(tmp_path)
    state = tmp_path / "s"
    code, text = _on_a_pty("import", logs, "--state-dir", state, "--data-dir", state)
    assert code == 0, text
    bar = [line for line in text.splitlines() if line.startswith("import")]
    assert bar and "2/2 files" in bar[-1] and "6 turns" in bar[-1] and "100%" in bar[-1], text


def test_without_a_terminal_a_backfill_logs_a_line_every_few_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process, with the 5-second pace made 0 so even a backfill faster than a sample logs."""
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)  # a line at every sample: never too fast
    logs = _old_examples(tmp_path)
    state = tmp_path / "s"
    tailerd_log = logging.getLogger("tailerd")
    tailerd_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="tailerd")  # setLevel: clears the enabled-for cache
    try:
        settings = Settings(watch=(logs,), once=True, state_dir=state, data_dir=state)
        assert service.run(settings) == 0
    finally:
        tailerd_log.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backfill:")]
    assert lines, [r.getMessage() for r in caplog.records]
    size = sum(p.stat().st_size for p in logs.rglob("*.jsonl"))
    assert lines[-1].startswith(f"backfill: 2/2 files, {size / 1e6:,.1f}/{size / 1e6:,.1f} MB")
    assert "(100%), 6 turns" in lines[-1]
    batches = [r for r in caplog.records if r.getMessage().startswith("delivered ")]
    assert all(r.levelno == logging.DEBUG for r in batches)  # a backfill: the progress says it


def test_the_live_daemon_logs_each_batch_and_what_a_stop_committed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    state = tmp_path / "s"
    daemon = RunningTailerd("--watch", logs, "--state-dir", state, "--data-dir", state)
    try:
        assert poll(lambda: "watching" in daemon.log, 60) is not None, daemon.log
        append(logs / "a.jsonl", turn_line("s1", "t1") + turn_line("s2", "t2"))
        wanted = "delivered 2 turns (2 sessions, 1 files) to local"
        assert poll(lambda: wanted in daemon.log, 30) is not None, daemon.log
        daemon.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.stop()
    assert "stopping: finishing what is being sent" in daemon.log
    assert "committed: turns delivered per sink: local 2;" in daemon.log


def test_a_retrying_sink_says_when_it_tries_next(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t1"))
    state = tmp_path / "s"
    config = write_config(tmp_path / "c.toml", once_timeout=3)
    result = run_tailerd(
        "--watch", logs, "--once", "--state-dir", state, "--config", config,
        "--sink", "otlp", "--otlp-endpoint", "http://127.0.0.1:9/v1/traces",
    )  # fmt: skip
    assert result.returncode == 75, result.stderr
    first = next(line for line in result.stderr.splitlines() if "sink otlp failed" in line)
    assert re.search(r"next attempt in \d+\.\d s", first), first


def test_the_live_summary_says_what_happened_since_the_last(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real daemon (local store) reads 3 turns written by hand in 2 sessions; the summary,
    due at once, says 3 turns read, 3 delivered to local; the next, nothing new."""
    from tailerd import sinks
    from tailerd.daemon import Daemon

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t1") + turn_line("s1", "t2"))
    (logs / "b.jsonl").write_bytes(turn_line("s2", "t3"))
    state = tmp_path / "s"
    state.mkdir()
    settings = Settings(watch=(logs,), once=True, state_dir=state, data_dir=state)
    daemon = Daemon(settings, state, sinks.build(settings, state))
    tailerd_log = logging.getLogger("tailerd")
    tailerd_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="tailerd")  # setLevel: clears the enabled-for cache
    try:
        daemon.start(watch=False)
        assert daemon.run_once()
        summary = progress.LiveSummary(every=0.0)
        summary.tick(daemon)
        summary.tick(daemon)
    finally:
        tailerd_log.removeHandler(caplog.handler)
        daemon.drain(0)
    records = {id(r): r for r in caplog.records}.values()  # root's copy of each record too
    lines = [r.getMessage() for r in records if r.getMessage().startswith("last ")]
    assert len(lines) == 2, lines
    assert "3 turns read, 0 waiting; 2 files followed; local 3 delivered" in lines[0]
    assert "0 turns read, 0 waiting; 2 files followed; local 0 delivered" in lines[1]


def _backfill_lines(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> tuple[int, list[str]]:
    """`--once` in-process with a progress line at every sample: its exit code and lines."""
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    tailerd_log = logging.getLogger("tailerd")
    tailerd_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="tailerd")
    try:
        code = service.run(settings)
    finally:
        tailerd_log.removeHandler(caplog.handler)
    messages = [r.getMessage() for r in caplog.records]
    return code, [m for m in messages if m.startswith("backfill:")]


def test_while_the_sink_is_down_the_backfill_says_it_waits_for_it_not_an_eta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on port 9: otlp fails and retries; the line says so (before: a growing
    ETA), and --once gives up after once_timeout with 75."""
    logs = _old_examples(tmp_path)
    state = tmp_path / "s"
    settings = Settings(
        watch=(logs,), once=True, state_dir=state, data_dir=state, once_timeout=3,
        sinks=("otlp",), otlp_endpoint="http://127.0.0.1:9/v1/traces",
    )  # fmt: skip
    code, lines = _backfill_lines(settings, monkeypatch, caplog)
    assert code == 75
    waiting = [line for line in lines if "waiting for otlp (next attempt in " in line]
    assert waiting, lines
    assert not any("ETA" in line for line in waiting)


def test_a_document_read_whole_counts_as_a_file_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Cline session (messages.json read whole: its byte offset never moves) is 1 of 1 files
    done, all its bytes read (before: "0/1 files, 0.0/0.3 MB (0%)")."""
    from tests.formats.test_cline import cline_home

    home = tmp_path / "home"
    messages = cline_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))
    state = tmp_path / "s"
    settings = Settings(watch=(home / ".cline",), once=True, state_dir=state, data_dir=state)
    code, lines = _backfill_lines(settings, monkeypatch, caplog)
    assert code == 0
    size = messages.stat().st_size  # the only file followed (the manifest is read through it)
    assert lines and lines[-1].startswith(f"backfill: 1/1 files, {size / 1e6:,.1f}/"), lines
    assert "(100%), 5 turns" in lines[-1]  # 5 turns: test_cline's hand count
