"""The running daemon: real inotify on real files, a `tailerd` subprocess, a real OTLP receiver.

Where a test needs the daemon to find several changes at once (a rename racing an append),
it freezes the daemon with SIGSTOP, makes the changes, and thaws it with SIGCONT, so the
interleaving is certain rather than left to timing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import run_tailerd
from tests.live_daemon import (
    RunningTailerd,
    append,
    has_labels,
    labels,
    otlp_daemon,
    poll,
    quiet,
    turn_line,
    write_config,
)
from tests.otlp_receiver import Receiver

START_TIMEOUT = 15.0  # start-up plus first delivery, on a loaded 2-core machine
SHUTDOWN_TIMEOUT = 2.0  # written to the daemon's config by the tests that stop it

Start = Callable[..., RunningTailerd]


@pytest.fixture
def start(tmp_path: Path, receiver: Receiver) -> Iterator[Start]:
    """Start `tailerd --sink otlp` on a directory; every daemon started is gone after the test."""
    started: list[RunningTailerd] = []
    config = write_config(tmp_path / "tailerd.toml", shutdown_timeout=SHUTDOWN_TIMEOUT)

    def launch(watch: Path, state: Path | None = None) -> RunningTailerd:
        daemon = otlp_daemon(watch, state or tmp_path / "state", receiver.url, "--config", config)
        started.append(daemon)
        return daemon

    yield launch
    for daemon in started:
        daemon.stop()
        assert "Traceback" not in daemon.log, daemon.log


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@contextmanager
def frozen(daemon: RunningTailerd) -> Iterator[None]:
    """The daemon sees everything done inside this block only after it, all at once."""
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        daemon.proc.send_signal(signal.SIGCONT)


def started_with(start: Start, logs: Path, receiver: Receiver, label: str) -> RunningTailerd:
    """A daemon that has delivered the turn `label` already in `logs` (so it is up and tailing)."""
    daemon = start(logs)
    assert receiver.wait_for(has_labels({label}), timeout=START_TIMEOUT), daemon.log
    return daemon


def settle(receiver: Receiver, wanted: set[str]) -> Counter[str]:
    """Wait for every wanted label, then for the receiver to stay quiet; the labels received."""
    assert receiver.wait_for(has_labels(wanted), timeout=10), sorted(set(labels(receiver)))
    assert quiet(receiver, for_seconds=0.5, timeout=10)
    return Counter(labels(receiver))


def test_appended_turns_and_files_in_new_directories_arrive_in_well_under_a_second(
    logs: Path, receiver: Receiver, start: Start
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    started_with(start, logs, receiver, "initial")

    def latency(label: str, write: Callable[[], None]) -> float:
        """Seconds from just before the write until the turn is at the receiver."""
        began = time.monotonic()
        write()
        assert poll(lambda: label in labels(receiver), timeout=5) is not None, label
        return time.monotonic() - began

    appended = [
        latency(f"append-{i}", partial(append, session, turn_line("s", f"append-{i}")))
        for i in range(20)
    ]

    def new_directory(i: int) -> None:
        (logs / f"project-{i}").mkdir()
        append(logs / f"project-{i}" / "session.jsonl", turn_line(f"n{i}", f"new-dir-{i}"))

    created = [latency(f"new-dir-{i}", partial(new_directory, i)) for i in range(10)]

    print(  # the numbers the report quotes (pytest -s)
        f"\nappend->received median {statistics.median(appended) * 1000:.1f} ms, "
        f"max {max(appended) * 1000:.1f} ms; new dir+file->received median "
        f"{statistics.median(created) * 1000:.1f} ms, max {max(created) * 1000:.1f} ms"
    )
    assert max(appended) < 1.0, appended
    assert max(created) < 1.0, created
    assert Counter(labels(receiver)) == Counter(
        ["initial"] + [f"append-{i}" for i in range(20)] + [f"new-dir-{i}" for i in range(10)]
    )


def test_a_line_written_in_two_parts_is_delivered_once_whole_after_the_second(
    logs: Path, receiver: Receiver, start: Start
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    started_with(start, logs, receiver, "initial")
    split = turn_line("s", "split", llm_calls=2)
    # One write: a whole turn, then the first part of the next. The whole one arriving proves
    # the daemon has read the part too.
    append(session, turn_line("s", "marker") + split[:50])
    assert receiver.wait_for(has_labels({"marker"}), timeout=5)
    assert quiet(receiver, for_seconds=0.3, timeout=5)
    assert "split" not in labels(receiver)

    append(session, split[50:])
    assert settle(receiver, {"split"}) == {"initial": 1, "marker": 1, "split": 1}
    [root] = [r for r in receiver.roots() if r["attributes"].get("test_turn") == "split"]
    assert "answer split" in root["attributes"]["gen_ai.output.messages"]
    assert sum(s["trace_id"] == root["trace_id"] for s in receiver.spans) == 3
    assert not (logs.parent / "state" / "dead-letters.jsonl").exists()


@pytest.mark.parametrize("rotated_name", ["a.1.jsonl", "a.jsonl.1"], ids=["matching", "ignored"])
def test_rotation_by_rename_loses_nothing_and_reads_the_new_file_from_its_start(
    logs: Path, receiver: Receiver, start: Start, rotated_name: str
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    daemon = started_with(start, logs, receiver, "initial")

    wanted = {"before-rename", "fresh"}
    with frozen(daemon), session.open("ab") as writer:
        writer.write(turn_line("s", "before-rename"))
        writer.flush()
        session.rename(logs / rotated_name)
        if rotated_name.endswith(".jsonl"):  # still watched: later writes to it count too
            writer.write(turn_line("s", "after-rename"))
            wanted.add("after-rename")
        append(session, turn_line("s2", "fresh"))
    assert settle(receiver, wanted) == Counter({"initial": 1, **dict.fromkeys(wanted, 1)})

    append(session, turn_line("s2", "fresh-2"))  # the new file is tailed on
    assert settle(receiver, {"fresh-2"})["fresh-2"] == 1


@pytest.mark.parametrize("regrown", [False, True], ids=["rewritten-shorter", "rewritten-longer"])
def test_copytruncate_sends_the_turns_written_after_the_truncation(
    logs: Path, receiver: Receiver, start: Start, regrown: bool
) -> None:
    session = logs / "a.jsonl"
    old = [f"old-{i}" for i in range(8)]  # more than the 1 KiB fingerprint
    append(session, b"".join(turn_line("s", label) for label in old))
    daemon = started_with(start, logs, receiver, old[-1])

    new = [f"new-{i}" for i in range(12 if regrown else 1)]
    # logrotate's copytruncate: copy, then cut the same inode to 0; the agent writes on.
    with frozen(daemon):
        (logs / "a.jsonl.1").write_bytes(session.read_bytes())
        os.truncate(session, 0)
        for label in new:
            append(session, turn_line("s", label))
    assert session.stat().st_size > len(b"".join(turn_line("s", x) for x in old)) or not regrown
    assert settle(receiver, set(new)) == Counter(old + new)
    assert not (logs.parent / "state" / "dead-letters.jsonl").exists()


def test_a_deleted_file_is_drained_and_one_created_again_is_read_from_its_start(
    logs: Path, receiver: Receiver, start: Start
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    daemon = started_with(start, logs, receiver, "initial")

    with frozen(daemon):
        append(session, turn_line("s", "last-words"))
        session.unlink()
    assert settle(receiver, {"last-words"}) == {"initial": 1, "last-words": 1}

    append(session, turn_line("s", "reborn"))
    assert settle(receiver, {"reborn"}) == {"initial": 1, "last-words": 1, "reborn": 1}


def test_sigterm_exits_0_promptly_and_a_restart_sends_nothing_again(
    logs: Path, receiver: Receiver, start: Start
) -> None:
    sessions = [logs / "a.jsonl", logs / "deep" / "b.jsonl"]
    sessions[1].parent.mkdir()
    for n, path in enumerate(sessions):
        append(path, b"".join(turn_line(f"s{n}", f"{n}-{i}") for i in range(5)))
    daemon = started_with(start, logs, receiver, "0-4")
    assert settle(receiver, {"1-4"}).total() == 10

    code, took = daemon.terminate(timeout=SHUTDOWN_TIMEOUT + 2)
    assert code == 0, daemon.log
    print(f"\nSIGTERM -> exit took {took:.2f} s")

    sent = len(receiver.spans)
    start(logs)
    append(sessions[0], turn_line("s0", "after-restart"))
    assert settle(receiver, {"after-restart"}).total() == 11
    assert len(receiver.spans) == sent + 2  # the new turn's root and chat span only


def test_sigterm_while_the_backend_fails_exits_in_time_and_the_restart_delivers_once(
    logs: Path, tmp_path: Path, receiver: Receiver, start: Start
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    daemon = started_with(start, logs, receiver, "initial")

    receiver.script = [503] * 1000
    append(session, turn_line("s", "unacknowledged"))
    assert receiver.wait_for(lambda r: r.requests[-1]["code"] == 503, timeout=5)
    code, took = daemon.terminate(timeout=SHUTDOWN_TIMEOUT + 2)
    assert code == 0, daemon.log
    assert "1 turns unacknowledged" in daemon.log
    print(f"\nSIGTERM with the backend down -> exit took {took:.2f} s")

    receiver.script = []
    start(logs)
    assert settle(receiver, {"unacknowledged"}) == {"initial": 1, "unacknowledged": 1}
    letters = run_tailerd("dead-letters", "--state-dir", tmp_path / "state", "--json")
    assert json.loads(letters.stdout or "[]") == []


def test_sigterm_while_a_request_hangs_still_exits_in_time_and_loses_nothing(
    logs: Path, receiver: Receiver, start: Start
) -> None:
    session = logs / "a.jsonl"
    append(session, turn_line("s", "initial"))
    daemon = started_with(start, logs, receiver, "initial")

    receiver.delay = 3 * SHUTDOWN_TIMEOUT  # inside the sink's own 10 s timeout
    append(session, turn_line("s", "in-flight"))
    assert receiver.wait_for(lambda r: len(r.requests) == 2, timeout=5)
    code, took = daemon.terminate(timeout=SHUTDOWN_TIMEOUT + 2)
    assert code == 0, daemon.log
    assert "still sending at shutdown; not waiting for it" in daemon.log
    print(f"\nSIGTERM with a request hanging -> exit took {took:.2f} s")

    receiver.delay = 0
    start(logs)
    assert receiver.wait_for(has_labels({"in-flight"}), timeout=START_TIMEOUT)
    [trace] = {
        r["trace_id"] for r in receiver.roots() if r["attributes"]["test_turn"] == "in-flight"
    }
    assert len({s["span_id"] for s in receiver.spans if s["trace_id"] == trace}) == 2


def test_unreadable_file_is_reported_once_not_on_every_rescan(tmp_path):
    """A file that cannot be read (here a corrupt .zst) is one warning, not one per rescan."""
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    (logs / "rollout-x.jsonl.zst").write_bytes(b"not zstd at all")
    daemon = RunningTailerd(
        "--watch", logs, "--state-dir", state, "--data-dir", state, "--sink", "console"
    )  # fmt: skip
    try:
        assert poll(lambda: "cannot read path=" in daemon.log, timeout=10) is not None
        time.sleep(4.5)  # two more full rescans (one every 2 s) must not repeat it
        assert daemon.log.count("cannot read path=") == 1, daemon.log
    finally:
        daemon.stop()


def test_copytruncate_copy_is_not_sent_again(logs: Path, receiver: Receiver, start: Start):
    """logrotate's copytruncate: the copy resumes where the original was, the original restarts."""
    path = logs / "a.jsonl"
    filler = "x" * 1200  # the first KiB identifies the content
    path.write_bytes(b"".join(turn_line("s", f"old{i}", pad=filler) for i in range(3)))
    daemon = start(logs)
    assert poll(lambda: sorted(labels(receiver)) == ["old0", "old1", "old2"], timeout=10), (
        daemon.log
    )
    shutil.copyfile(path, logs / "a-1.jsonl")
    os.truncate(path, 0)
    append(path, turn_line("s", "new0"))
    want = ["new0", "old0", "old1", "old2"]
    assert poll(lambda: sorted(labels(receiver)) == want, timeout=10), daemon.log
    assert quiet(receiver, for_seconds=2.5, timeout=10)  # after a full rescan: nothing again
    assert sorted(labels(receiver)) == want
