"""Stopping a `--once` backfill: Ctrl-C/SIGTERM stop the reading at once, what is in flight is
drained (at most shutdown_timeout) and committed, the exit code is 128 + the signal's number, a
second Ctrl-C exits at once with one line, and the next `--once` sends exactly the rest. Also:
the weave warm-up thread never prints a traceback (a corrupt checkpoint database used to show
one, cut off, after the right one-line error).

Every turn here is one native line written by the test (tests/live_daemon.py `turn_line`:
a root span labelled `test_turn` plus one chat span), so the expected labels are the test's own:
FILES files x TURNS turns, labelled `f<i>-t<j>`.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tailerd import daemon as daemon_module
from tailerd.daemon import Daemon
from tailerd.settings import Settings
from tests.conftest import run_tailerd
from tests.live_daemon import (
    RunningTailerd,
    duplicate_span_ids,
    labels,
    poll,
    turn_line,
    write_config,
)
from tests.otlp_receiver import Receiver

FILES, TURNS = 30, 200  # 6,000 turns: a backfill of several seconds, stopped in its first
STOPPING = "stopping: finishing what is being sent"
STOPPING_NOW = "tailerd: stopping now; unacknowledged turns are read again next start"
UNREACHABLE = "http://127.0.0.1:9/v1/traces"  # the discard port: nothing listens, refused


def _logs(tmp_path: Path, files: int, turns: int) -> tuple[Path, list[str]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    written = []
    for i in range(files):
        names = [f"f{i}-t{j}" for j in range(turns)]
        (logs / f"f{i:02}.jsonl").write_bytes(b"".join(turn_line(f"s{i}", n) for n in names))
        written += names
    return logs, written


def _stored_labels(state: Path) -> list[str]:
    """The label of every root span in the local store (one row per span id)."""
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute(
            "SELECT json_extract(attributes, '$.test_turn') FROM spans WHERE parent_span_id IS NULL"
        ).fetchall()
    return [str(label) for (label,) in rows]


def test_ctrl_c_stops_a_backfill_commits_and_the_next_run_sends_exactly_the_rest(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs, written = _logs(tmp_path, FILES, TURNS)
    state = tmp_path / "s"
    args = ("--once", "--watch", logs, "--state-dir", state, "--data-dir", state)
    sinks = ("--sink", "local", "--sink", "otlp", "--otlp-endpoint", receiver.url)
    first = RunningTailerd(*args, *sinks)
    try:
        assert poll(lambda: bool(receiver.roots()), 90, every=0.01) is not None, first.log
        first.proc.send_signal(signal.SIGINT)  # Ctrl-C, a first batch in
        began = time.monotonic()
        code = first.proc.wait(timeout=30)
        took = time.monotonic() - began
    finally:
        first.stop()
    assert code == 130, first.log
    assert took < 10 + 1.5, first.log  # shutdown_timeout (default 10 s) + the stop's grace
    assert STOPPING in first.log and "committed: turns delivered per sink: local " in first.log
    sent_first = labels(receiver)
    assert 0 < len(sent_first) < len(written), f"not stopped early: {len(sent_first)} sent"
    assert sorted(_stored_labels(state)) == sorted(sent_first)  # both sinks acknowledged them

    rest = run_tailerd(*args, *sinks)
    assert rest.returncode == 0, rest.stderr
    assert Counter(labels(receiver)) == Counter(written)  # every turn once over the two runs
    assert duplicate_span_ids(receiver) == 0
    assert Counter(_stored_labels(state)) == Counter(written)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_with_a_sink_unreachable_drains_at_most_shutdown_timeout(
    tmp_path: Path, signum: int, code: int
) -> None:
    logs, _ = _logs(tmp_path, 5, 20)
    state = tmp_path / "s"
    config = write_config(tmp_path / "tailerd.toml", shutdown_timeout=3)
    run = RunningTailerd(
        *("--once", "--watch", logs, "--state-dir", state, "--data-dir", state),
        *("--sink", "otlp", "--otlp-endpoint", UNREACHABLE, "--config", config),
    )
    try:
        assert poll(lambda: "sink otlp failed" in run.log, 90, every=0.01) is not None, run.log
        run.proc.send_signal(signum)
        began = time.monotonic()
        assert run.proc.wait(timeout=30) == code, run.log
        took = time.monotonic() - began
    finally:
        run.stop()
    assert took < 3 + 1.5 + 1.0, run.log  # shutdown_timeout + grace, not once_timeout (60 s)
    assert STOPPING in run.log
    assert "committed: turns delivered per sink: otlp 0;" in run.log
    done = re.search(r"done: \d+ files, (\d+) turns emitted, .* (\d+) unacknowledged", run.log)
    assert done is not None, run.log
    emitted, unacknowledged = map(int, done.groups())
    assert 0 < emitted == unacknowledged <= 100, run.log  # none acknowledged; 5 x 20 written


def test_a_second_ctrl_c_exits_at_once_with_one_line(tmp_path: Path) -> None:
    logs, _ = _logs(tmp_path, 5, 20)
    state = tmp_path / "s"
    run = RunningTailerd(
        *("--once", "--watch", logs, "--state-dir", state, "--data-dir", state),
        *("--sink", "otlp", "--otlp-endpoint", UNREACHABLE),
    )
    try:
        assert poll(lambda: "sink otlp failed" in run.log, 90, every=0.01) is not None, run.log
        run.proc.send_signal(signal.SIGINT)
        assert poll(lambda: STOPPING in run.log, 10, every=0.01) is not None, run.log
        run.proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert run.proc.wait(timeout=30) == 130, run.log
        took = time.monotonic() - began
    finally:
        run.stop()
    assert took < 1.0, run.log  # not the 10 s drain
    assert run.log.splitlines()[-1] == STOPPING_NOW
    assert "Traceback" not in run.log


def test_the_warm_up_thread_never_prints_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure a warm-up meets when the interpreter exits under it (concurrent.futures
    refuses new work after its atexit hook ran), raised on purpose: no thread traceback."""

    def refuse(**_kwargs: Any) -> Any:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    hooked: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    monkeypatch.setattr(daemon_module, "Emitter", refuse)
    (tmp_path / "logs").mkdir()
    settings = Settings(watch=(tmp_path / "logs",), state_dir=tmp_path / "s")
    (tmp_path / "s").mkdir()
    daemon = Daemon(settings, tmp_path / "s", [])
    daemon.start(watch=False)
    daemon._warm.join(timeout=30)
    daemon.drain(0)
    assert not daemon._warm.is_alive()
    assert hooked == []


def test_a_corrupt_checkpoint_database_gives_one_line_and_no_thread_traceback(
    tmp_path: Path,
) -> None:
    logs, _ = _logs(tmp_path, 1, 3)
    state = tmp_path / "s"
    args = ("--once", "--watch", logs, "--state-dir", state, "--data-dir", state)
    assert run_tailerd(*args).returncode == 0
    with (state / "checkpoints.db").open("r+b") as fh:
        fh.write(b"garbage, not SQLite")  # its first bytes overwritten
    for _ in range(3):  # the traceback was intermittent: a few runs
        done = run_tailerd(*args)
        assert done.returncode == 65, done.stderr
        assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr  # one line
        assert "checkpoint database is not a readable database" in done.stderr
