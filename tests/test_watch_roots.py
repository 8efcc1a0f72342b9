"""Forgiving watch roots (issue 10): a root that does not exist yet is waited for, an
unreadable directory is warned about once and retried; only a root that is a file is fatal.

Expected turns are counted from what each test writes: one `turn_line` is one finished turn.
"""

from __future__ import annotations

import ctypes
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import run_tailerd
from tests.live_daemon import (
    RunningTailerd,
    append,
    has_labels,
    labels,
    otlp_daemon,
    poll,
    turn_line,
    write_config,
)
from tests.otlp_receiver import Receiver

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _stored_roots(data_dir: Path) -> int:
    """Turns in the local store: root spans (no parent)."""
    with sqlite3.connect(data_dir / "tailerd.db") as db:
        (count,) = db.execute("SELECT count(*) FROM spans WHERE parent_span_id IS NULL").fetchone()
    return int(count)


def _warnings(log: str, text: str) -> int:
    return sum(1 for line in log.splitlines() if "WARNING" in line and text in line)


def test_once_with_one_of_two_roots_missing_ships_the_other_with_one_warning(
    tmp_path: Path,
) -> None:
    logs, missing, state = tmp_path / "logs", tmp_path / "codex-not-installed", tmp_path / "s"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "one") + turn_line("s1", "two"))  # 2 turns
    result = run_tailerd(
        "--watch", logs, "--watch", missing, "--once", "--state-dir", state, "--data-dir", state
    )
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stderr, str(missing)) == 1
    assert "Traceback" not in result.stderr
    assert _stored_roots(state) == 2


def test_a_root_that_is_a_file_is_one_line_and_exit_78(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a.jsonl"
    not_a_dir.write_bytes(turn_line("s1", "one"))
    result = run_tailerd("--watch", not_a_dir, "--once", "--state-dir", tmp_path / "s")
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        f"tailerd: invalid setting watch (from flag --watch): not a directory: {not_a_dir}"
    ]


def test_a_root_created_while_running_is_read_and_then_followed(
    tmp_path: Path, receiver: Receiver
) -> None:
    root = tmp_path / "home" / ".codex" / "sessions"  # not there when tailerd starts
    daemon = otlp_daemon(root, tmp_path / "s", receiver.url)
    try:
        assert poll(lambda: "waiting for it" in daemon.log, timeout=30) is not None, daemon.log
        (root / "2026").mkdir(parents=True)
        append(root / "2026" / "r.jsonl", turn_line("s1", "first"))
        assert receiver.wait_for(has_labels({"first"}), timeout=20), daemon.log
        append(root / "2026" / "r.jsonl", turn_line("s1", "second"))  # inotify now follows it
        assert receiver.wait_for(has_labels({"second"}), timeout=10), daemon.log
        assert sorted(labels(receiver)) == ["first", "second"]
        assert _warnings(daemon.log, str(root)) == 1
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()


def _without_root_powers() -> None:
    """In the child before exec: drop the capabilities that let root read any directory, as
    `setpriv --bounding-set=-dac_override,-dac_read_search` does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def test_an_unreadable_subdirectory_is_warned_about_once_and_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs, locked = tmp_path / "logs", tmp_path / "logs" / "locked"
    locked.mkdir(parents=True)
    (logs / "open.jsonl").write_bytes(turn_line("s1", "readable"))
    (locked / "later.jsonl").write_bytes(turn_line("s2", "locked"))
    locked.chmod(0)
    config = write_config(tmp_path / "t.toml", rescan_interval=0.3)
    state = tmp_path / "s"
    daemon = RunningTailerd(
        "--watch", logs, "--state-dir", state, "--data-dir", state, "--config", config,
        "--sink", "otlp", "--otlp-endpoint", receiver.url,
        preexec_fn=_without_root_powers,
    )  # fmt: skip
    try:
        assert receiver.wait_for(has_labels({"readable"}), timeout=30), daemon.log
        assert poll(lambda: "cannot read directory" in daemon.log, timeout=10) is not None
        poll(lambda: False, timeout=1.5)  # five more safety-net rounds meet it again
        assert _warnings(daemon.log, "cannot read directory") == 1, daemon.log
        locked.chmod(0o755)
        assert receiver.wait_for(has_labels({"locked"}), timeout=10), daemon.log
        assert sorted(labels(receiver)) == ["locked", "readable"]
    finally:
        locked.chmod(0o755)
        daemon.stop()


def test_a_root_deleted_and_made_again_is_waited_for_and_followed_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    root = tmp_path / "sessions"
    root.mkdir()
    append(root / "a.jsonl", turn_line("s1", "before"))
    daemon = otlp_daemon(root, tmp_path / "s", receiver.url)
    try:
        assert receiver.wait_for(has_labels({"before"}), timeout=30), daemon.log
        shutil.rmtree(root)
        assert poll(lambda: "waiting for it" in daemon.log, timeout=10) is not None, daemon.log
        root.mkdir()
        append(root / "b.jsonl", turn_line("s2", "after"))
        assert receiver.wait_for(has_labels({"after"}), timeout=10), daemon.log
        append(root / "b.jsonl", turn_line("s2", "appended"))  # inotify watches it again
        assert receiver.wait_for(has_labels({"appended"}), timeout=5), daemon.log
        assert sorted(labels(receiver)) == ["after", "appended", "before"]
    finally:
        daemon.stop()
