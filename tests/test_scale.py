"""Host scale: thousands of files under a low descriptor limit, and per-file (never per-tree)
work for one append. Counts come from what the tests wrote; work is counted by the daemon's own
counters (descriptors opened, paths stat'ed), never by a clock."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
from pathlib import Path

from tailerd.daemon import Daemon
from tailerd.settings import Settings
from tailerd.sinks.local import LocalSink
from tests.conftest import tailerd_env
from tests.live_daemon import (
    RunningTailerd,
    append,
    duplicate_span_ids,
    has_labels,
    labels,
    poll,
    turn_line,
)
from tests.otlp_receiver import Receiver

FILES = 3000
DIRS = 300
LIMIT = 256  # RLIMIT_NOFILE of the daemon: far fewer descriptors than files


def _write_tree(root: Path, files: int, dirs: int) -> set[str]:
    """`files` native logs in `dirs` directories, one finished turn each; their labels."""
    wanted = set()
    for n in range(files):
        d = root / f"d{n % dirs:04d}"
        d.mkdir(parents=True, exist_ok=True)
        label = f"f{n}"
        (d / f"s{n}.jsonl").write_bytes(turn_line(f"session-{n}", label))
        wanted.add(label)
    return wanted


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def test_once_over_thousands_of_files_under_a_low_descriptor_limit(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    wanted = _write_tree(logs, FILES, DIRS)
    args = ["--watch", logs, "--once", "--state-dir", state, "--data-dir", state]
    args += ["--sink", "otlp", "--otlp-endpoint", receiver.url]
    result = subprocess.run(
        [sys.executable, "-m", "tailerd", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=tailerd_env(),
        preexec_fn=_limited,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Too many open files" not in result.stderr
    got = labels(receiver)
    assert set(got) == wanted and len(got) == FILES  # every session, none twice
    assert duplicate_span_ids(receiver) == 0


def test_live_daemon_follows_thousands_of_files_under_a_low_descriptor_limit(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Files present at start and files written while it runs, all under the low limit."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    wanted = _write_tree(logs, FILES // 2, DIRS)
    args = ["--watch", logs, "--state-dir", state, "--data-dir", state]
    args += ["--sink", "otlp", "--otlp-endpoint", receiver.url]
    daemon = RunningTailerd(*args, preexec_fn=_limited)
    try:
        assert poll(lambda: has_labels(wanted)(receiver), timeout=300, every=0.2) is not None
        for n in range(FILES // 2, FILES):  # new files in new and existing directories
            d = logs / f"late{n % (DIRS // 2):04d}"
            d.mkdir(exist_ok=True)
            append(d / f"s{n}.jsonl", turn_line(f"session-{n}", f"f{n}"))
            wanted.add(f"f{n}")
        assert poll(lambda: has_labels(wanted)(receiver), timeout=300, every=0.2) is not None
        code, _ = daemon.terminate(timeout=60)
    finally:
        daemon.stop()
    assert code == 0, daemon.log[-2000:]
    assert "Too many open files" not in daemon.log
    got = labels(receiver)
    assert len(got) == FILES and set(got) == wanted
    assert duplicate_span_ids(receiver) == 0


def test_one_append_among_thousands_of_files_reads_only_that_file(tmp_path: Path) -> None:
    """After the backfill, an append costs one stat and one descriptor (the file's own) —
    not a walk of the tree, whatever its size."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    _write_tree(logs, 5000, 500)
    state.mkdir(mode=0o700)
    sink = LocalSink(tmp_path / "store.db")
    settings = Settings(watch=(logs,), max_open_files=64, idle_fd_close=3600)
    daemon = Daemon(settings, state, [sink], redactor=None)
    stop = threading.Event()
    daemon.start(watch=True)
    runner = threading.Thread(target=daemon.run, args=(stop,), kwargs={"max_wait": 0.05})
    runner.start()
    try:
        assert poll(lambda: daemon.counters.turns == 5000 and not daemon.delivery, 120, 0.05)
        assert poll(lambda: not daemon.table.dirty, 30, 0.05)
        opens, stats = daemon.table.pool.opens, daemon.table.stats
        target = logs / "d0123" / "s123.jsonl"
        append(target, turn_line("session-123", "appended"))
        assert poll(lambda: daemon.counters.turns == 5001 and not daemon.delivery, 30, 0.01)
        assert daemon.table.pool.opens - opens <= 1  # this file, if the pool had closed it
        assert daemon.table.stats - stats <= 2  # inotify may report the write twice
        assert len(daemon.table.pool) <= 64
    finally:
        stop.set()
        runner.join(timeout=30)


def test_an_idle_daemon_writes_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """Once caught up, nothing in the state dir changes while nothing is written to the logs."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    wanted = _write_tree(logs, 50, 5)
    args = ["--watch", logs, "--state-dir", state, "--data-dir", state]
    quiet = tmp_path / "no-heartbeat.toml"  # heartbeats (on by default) touch status.json
    quiet.write_text("heartbeat_interval = 0\n")
    args += ["--config", quiet]
    daemon = RunningTailerd(*args, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    try:
        assert poll(lambda: has_labels(wanted)(receiver), timeout=60, every=0.1) is not None

        def snapshot() -> dict[str, tuple[int, int]]:
            return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in state.iterdir()}

        poll(lambda: False, timeout=2.5)  # the last status write (at most one a second)
        before = snapshot()
        poll(lambda: False, timeout=5)
        assert snapshot() == before
        append(logs / "d0001" / "s1.jsonl", turn_line("session-1", "late"))
        assert poll(lambda: "late" in labels(receiver), timeout=20) is not None
    finally:
        daemon.stop()
