"""Polling: `watch_mode = "poll"` for filesystems without inotify, and the automatic fallback
when inotify watches run out midway (ENOSPC from inotify_add_watch)."""

from __future__ import annotations

import ctypes
import errno
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tailerd import sinks
from tailerd.daemon import Daemon
from tailerd.settings import Settings
from tests.live_daemon import append, has_labels, otlp_daemon, poll, turn_line
from tests.otlp_receiver import Receiver


def test_poll_mode_picks_up_appends_within_the_interval(tmp_path: Path, receiver: Receiver) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "poll.toml"
    config.write_text('watch_mode = "poll"\npoll_interval = 0.5\n')
    daemon = otlp_daemon(logs, tmp_path / "s", receiver.url, "--config", config)
    try:
        assert poll(lambda: "polling: a walk every 0.5 s" in daemon.log, timeout=30), daemon.log
        append(logs / "a.jsonl", turn_line("s1", "new-file"))  # a new file
        assert receiver.wait_for(has_labels({"new-file"}), timeout=10), daemon.log
        start = time.monotonic()
        append(logs / "a.jsonl", turn_line("s1", "appended"))  # an append to a known one
        assert receiver.wait_for(has_labels({"appended"}), timeout=10), daemon.log
        assert time.monotonic() - start < 0.5 + 1.5  # the interval, plus a send
        assert "inotify" not in daemon.log  # no watches were set up
    finally:
        daemon.stop()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _stored_roots(data_dir: Path) -> int:
    db = data_dir / "tailerd.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        (n,) = con.execute("SELECT count(*) FROM spans WHERE parent_span_id IS NULL").fetchone()
    return int(n)


def test_inotify_watches_running_out_midway_fall_back_to_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam: watchdog calls `inotify_c.inotify_add_watch` (a ctypes function) for every
    watch; the stand-in fails for directories named `deep` exactly as the kernel does when
    fs.inotify.max_user_watches is reached (-1, errno ENOSPC), so watchdog's own code raises
    its OSError(ENOSPC, "inotify watch limit reached") and swallows it for a subdirectory.
    (Lowering the real sysctl needs a privileged, non-shared kernel: not possible here.)"""
    from watchdog.observers import inotify_c

    real = inotify_c.inotify_add_watch

    def limited(fd: int, path: bytes, mask: int) -> int:
        if path.endswith(b"/deep"):
            ctypes.set_errno(errno.ENOSPC)
            return -1
        return int(real(fd, path, mask))

    monkeypatch.setattr(inotify_c, "inotify_add_watch", limited)
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    state.mkdir()
    append(logs / "a.jsonl", turn_line("s1", "before"))
    settings = Settings(watch=(logs,), poll_interval=0.3, rescan_interval=3600)
    daemon = Daemon(settings, state, sinks.build(settings, state))
    heard = _Lines()
    logging.getLogger("tailerd").addHandler(heard)
    stop = threading.Event()
    try:
        daemon.start(watch=True)
        runner = threading.Thread(target=daemon.run, args=(stop,), kwargs={"max_wait": 0.2})
        runner.start()
        assert poll(lambda: _stored_roots(state) == 1, timeout=30)  # the first turn
        (logs / "deep").mkdir()  # its watch fails: the limit is reached
        append(logs / "deep" / "b.jsonl", turn_line("s2", "in-deep"))
        # found by polling (the safety net would wait an hour), then appends too
        assert poll(lambda: _stored_roots(state) == 2, timeout=10), heard.lines
        append(logs / "deep" / "b.jsonl", turn_line("s2", "in-deep-2"))
        assert poll(lambda: _stored_roots(state) == 3, timeout=10), heard.lines
        lost = [x for x in heard.lines if "inotify unavailable" in x]
        assert len(lost) == 1 and lost[0].startswith("WARNING"), heard.lines
        assert "inotify watch limit reached" in lost[0]
    finally:
        stop.set()
        logging.getLogger("tailerd").removeHandler(heard)
        if "runner" in locals():
            runner.join(timeout=30)


def test_no_inotify_watch_for_a_root_at_start_means_polling_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seam as above, failing for the root itself: watchdog raises at start."""
    from watchdog.observers import inotify_c

    def exhausted(fd: int, path: bytes, mask: int) -> int:
        ctypes.set_errno(errno.ENOSPC)
        return -1

    monkeypatch.setattr(inotify_c, "inotify_add_watch", exhausted)
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    state.mkdir()
    settings = Settings(watch=(logs,), poll_interval=0.3, rescan_interval=3600)
    daemon = Daemon(settings, state, sinks.build(settings, state))
    heard = _Lines()
    logging.getLogger("tailerd").addHandler(heard)
    stop = threading.Event()
    runner = threading.Thread(target=daemon.run, args=(stop,), kwargs={"max_wait": 0.2})
    try:
        daemon.start(watch=True)
        runner.start()
        append(logs / "a.jsonl", turn_line("s1", "polled"))
        assert poll(lambda: _stored_roots(state) == 1, timeout=10), heard.lines
        lost = [x for x in heard.lines if "inotify unavailable" in x]
        assert len(lost) == 1 and "inotify watch limit reached" in lost[0], heard.lines
    finally:
        stop.set()
        logging.getLogger("tailerd").removeHandler(heard)
        if runner.is_alive():
            runner.join(timeout=30)
