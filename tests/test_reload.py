"""Reload on SIGHUP against a real daemon process: a new watch root's files arrive, a sink added
gets the turns from then on, redaction rules change, nothing is sent twice (counted by span id
at the receiver), an invalid configuration is refused in one line and the daemon still ships;
RELOADING=1 (with MONOTONIC_USEC) then READY=1 reach the notify socket.

Expected turns are the ones each test writes (one `turn_line` is one finished turn)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, popen_tailerd
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


def _config(path: Path, watch: list[Path], sinks: list[str], url: str, extra: str = "") -> None:
    roots = ", ".join(f'"{w}"' for w in watch)
    names = ", ".join(f'"{s}"' for s in sinks)
    path.write_text(
        f'watch = [{roots}]\nsinks = [{names}]\notlp_endpoint = "{url}"\n'
        f"rescan_interval = 3600\n{extra}"
    )


class _Daemon(RunningTailerd):
    """A tailerd process with extra environment (NOTIFY_SOCKET)."""

    def __init__(self, *args: str | Path, **env: str) -> None:
        self.proc = popen_tailerd(*args, **env)
        self.stderr = []
        import threading

        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def hup_and_wait(self, marker: str) -> None:
        before = self.log.count(marker)
        self.proc.send_signal(signal.SIGHUP)
        reloaded: Callable[[], bool] = lambda: self.log.count(marker) > before  # noqa: E731
        assert poll(reloaded, timeout=30) is not None, self.log


def _stored_labels(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "tailerd.db") as db:
        rows = db.execute(
            "SELECT json_extract(attributes, '$.test_turn') FROM spans WHERE parent_span_id IS NULL"
        ).fetchall()
    return sorted(str(r[0]) for r in rows)


def test_sighup_applies_roots_sinks_and_redaction_and_refuses_a_bad_config(
    tmp_path: Path, receiver: Receiver
) -> None:
    first, second, state = tmp_path / "first", tmp_path / "second", tmp_path / "state"
    first.mkdir()
    second.mkdir()
    config = tmp_path / "tailerd.toml"
    _config(config, [first], ["otlp"], receiver.url)
    append(first / "a.jsonl", turn_line("s1", "a1"))
    append(second / "b.jsonl", turn_line("s2", "b0"))  # not watched yet
    daemon = _Daemon("--config", config, "--state-dir", state, "--data-dir", state)
    try:
        assert receiver.wait_for(has_labels({"a1"}), timeout=30), daemon.log

        # 1. a new root and a new sink
        _config(config, [first, second], ["otlp", "local"], receiver.url)
        daemon.hup_and_wait("configuration reloaded")
        assert receiver.wait_for(has_labels({"b0"}), timeout=10), daemon.log
        append(second / "b.jsonl", turn_line("s2", "b1"))
        append(first / "a.jsonl", turn_line("s1", "a2"))
        assert receiver.wait_for(has_labels({"b1", "a2"}), timeout=10), daemon.log
        # the local store has what was read after the reload: b0, b1 and a2, not a1
        assert poll(lambda: _stored_labels(state) == ["a2", "b0", "b1"], timeout=10), (
            _stored_labels(state)
        )

        # 2. an invalid configuration: refused in one line, the old one keeps shipping
        config.write_text(config.read_text() + "batch_spans = 0\n")
        daemon.hup_and_wait("reload refused")
        refused = [x for x in daemon.log.splitlines() if "reload refused" in x]
        assert len(refused) == 1 and f"invalid setting batch_spans (in {config})" in refused[0]
        append(first / "a.jsonl", turn_line("s1", "a3"))
        assert receiver.wait_for(has_labels({"a3"}), timeout=10), daemon.log

        # 3. redaction: content = "none" ships no message text from now on
        _config(
            config, [first, second], ["otlp", "local"], receiver.url,
            '[redaction]\ncontent = "none"\n',
        )  # fmt: skip
        daemon.hup_and_wait("configuration reloaded")
        append(first / "a.jsonl", turn_line("s1", "a4"))
        assert receiver.wait_for(has_labels({"a4"}), timeout=10), daemon.log
        texts = " ".join(str(s["attributes"]) for s in receiver.spans)
        assert "question a3" in texts  # before: content shipped
        assert "question a4" not in texts  # after: none

        # every turn once, every span once
        time.sleep(1.0)
        assert sorted(labels(receiver)) == ["a1", "a2", "a3", "a4", "b0", "b1"]
        assert duplicate_span_ids(receiver) == 0
        assert daemon.proc.poll() is None
        assert "Traceback" not in daemon.log
    finally:
        daemon.stop()


def test_reload_tells_systemd_reloading_with_a_monotonic_time_then_ready(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    config = tmp_path / "tailerd.toml"
    _config(config, [logs], ["otlp"], receiver.url)
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        daemon = _Daemon("--config", config, "--state-dir", state, NOTIFY_SOCKET=address)
        try:
            assert sock.recv(4096).startswith(b"READY=1")
            before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            daemon.proc.send_signal(signal.SIGHUP)
            reloading = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
            after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            assert reloading["RELOADING"] == "1"
            assert before <= int(reloading["MONOTONIC_USEC"]) <= after
            assert sock.recv(4096).startswith(b"READY=1")
        finally:
            daemon.stop()


def test_a_mapping_added_by_reload_reads_the_file_no_format_recognised(
    tmp_path: Path, receiver: Receiver
) -> None:
    """examples/custom/agent.log.jsonl holds 3 turns (hand count: 3 `"evt":"request"` and 3
    `"evt":"reply"` lines, `grep -c`); no built-in format reads it, its mapping does."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    (logs / "agent.log.jsonl").write_bytes((ROOT / "examples/custom/agent.log.jsonl").read_bytes())
    config = tmp_path / "tailerd.toml"
    _config(config, [logs], ["otlp"], receiver.url)
    daemon = _Daemon("--config", config, "--state-dir", state)
    try:
        assert poll(lambda: "no format recognises" in daemon.log, timeout=30), daemon.log
        mapping = (ROOT / "config/custom-agent.example.toml").read_text()
        config.write_text(config.read_text() + "\n" + mapping)
        daemon.hup_and_wait("configuration reloaded")
        assert receiver.wait_for(lambda r: len(r.roots()) >= 3, timeout=15), daemon.log
        time.sleep(0.5)
        assert len(receiver.roots()) == 3
        assert {r["attributes"]["gen_ai.conversation.id"] for r in receiver.roots()} == {"hd-5521"}
        assert duplicate_span_ids(receiver) == 0
    finally:
        daemon.stop()


def test_reload_switches_to_polling_and_appends_still_arrive(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    config = tmp_path / "tailerd.toml"
    _config(config, [logs], ["otlp"], receiver.url)
    append(logs / "a.jsonl", turn_line("s1", "inotify"))
    daemon = _Daemon("--config", config, "--state-dir", state)
    try:
        assert receiver.wait_for(has_labels({"inotify"}), timeout=30), daemon.log
        polling = 'watch_mode = "poll"\npoll_interval = 0.3\n'
        _config(config, [logs], ["otlp"], receiver.url, polling)
        daemon.hup_and_wait("configuration reloaded")
        assert "polling: a walk every 0.3 s" in daemon.log
        append(logs / "a.jsonl", turn_line("s1", "polled"))
        append(logs / "b.jsonl", turn_line("s2", "polled-new-file"))
        assert receiver.wait_for(has_labels({"polled", "polled-new-file"}), timeout=10)
        assert sorted(labels(receiver)) == ["inotify", "polled", "polled-new-file"]
        assert duplicate_span_ids(receiver) == 0
    finally:
        daemon.stop()


def test_a_format_options_reload_says_which_files_it_applies_to(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Fresh-user review: "changed: format_options" while open files kept the old options.
    The log now says the options apply to files opened after the reload (one file open)."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "one"))
    config = tmp_path / "tailerd.toml"
    _config(config, [logs], ["otlp"], receiver.url)
    daemon = _Daemon("--config", config, "--state-dir", state)
    try:
        assert receiver.wait_for(has_labels({"one"}), timeout=30), daemon.log
        config.write_text(config.read_text() + "[format_options.native]\nidle_close = 5.0\n")
        daemon.hup_and_wait("configuration reloaded")
        assert "changed: format_options" in daemon.log, daemon.log
        assert (
            "format options apply to files opened after the reload; files already open (1)"
            " keep theirs until a restart" in daemon.log
        ), daemon.log
    finally:
        daemon.stop()
