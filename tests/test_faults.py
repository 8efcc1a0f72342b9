"""Nothing lost, nothing twice: the running daemon under kill -9 and a misbehaving backend.

A writer process appends native turns `t0`..`tN` (turn `ti` has `1 + i % 3` spans, so the
expected spans are counted from the numbering, not from tailerd); the daemon is killed and
restarted at seeded random moments, or the receiver fails in scripted ways. Afterwards the
receiver must hold every turn, and every span exactly once once re-sends of identical ids are
set aside. Re-sends after a kill are allowed (at-least-once delivery; ids are deterministic so
the backend can dedupe) and their number is printed (pytest -s).

TAILERD_SOAK=1 runs the kill -9 test with many more turns and cycles.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tailerd
from tests.live_daemon import (
    LABEL,
    RunningTailerd,
    append,
    duplicate_span_ids,
    has_labels,
    labels,
    otlp_daemon,
    quiet,
    spans_of,
    trace_ids_by_label,
    turn_line,
    write_config,
)
from tests.otlp_receiver import Receiver, serve

SOAK = os.environ.get("TAILERD_SOAK") == "1"

Start = Callable[[], RunningTailerd]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


def starter(tmp_path: Path, logs: Path, url: str, started: list[RunningTailerd]) -> Start:
    # Short backoff ceilings are not configurable; a short rescan keeps catch-up after a
    # restart quick. shutdown_timeout bounds the final SIGTERM.
    config = write_config(tmp_path / "tailerd.toml", shutdown_timeout=3, rescan_interval=1)

    def launch() -> RunningTailerd:
        daemon = otlp_daemon(logs, tmp_path / "state", url, "--config", config)
        started.append(daemon)
        return daemon

    return launch


@pytest.fixture
def start(tmp_path: Path, logs: Path, receiver: Receiver) -> Iterator[Start]:
    started: list[RunningTailerd] = []
    yield starter(tmp_path, logs, receiver.url, started)
    stop_all(started)


def stop_all(started: list[RunningTailerd]) -> None:
    for daemon in started:
        daemon.stop()
    for daemon in started:
        assert "Traceback" not in daemon.log, daemon.log


def writer(logs: Path, count: int, seconds: float, seed: int) -> subprocess.Popen[bytes]:
    args = [str(logs), str(count), str(seconds), str(seed)]
    return subprocess.Popen([sys.executable, "-m", "tests.live_daemon", *args], cwd=ROOT)


def assert_each_turn_once(receiver: Receiver, expected: dict[str, int]) -> int:
    """Every expected turn arrived with one trace id and its exact spans; the raw duplicates."""
    by_label = trace_ids_by_label(receiver)
    assert set(by_label) == set(expected), set(by_label) ^ set(expected)
    assert all(len(ids) == 1 for ids in by_label.values()), "a turn was sent with new ids"
    spans_by_trace: dict[str, set[str]] = {}
    for s in receiver.spans:
        spans_by_trace.setdefault(s["trace_id"], set()).add(s["span_id"])
    assert len(spans_by_trace) == len(expected), "spans of a trace with no root"
    for label, count in expected.items():
        [trace] = by_label[label]
        assert len(spans_by_trace[trace]) == count, label
    assert len(set(receiver.span_ids())) == sum(expected.values())
    return duplicate_span_ids(receiver)


def settle(receiver: Receiver, expected: dict[str, int], timeout: float = 20) -> None:
    assert receiver.wait_for(has_labels(set(expected)), timeout=timeout), sorted(
        set(expected) - set(labels(receiver))
    )
    assert quiet(receiver, for_seconds=1.0, timeout=10)


def nothing_left_to_send(tmp_path: Path, logs: Path, receiver: Receiver) -> None:
    """A `--once` run on the same state finds every turn committed: it sends no request."""
    before = len(receiver.requests)
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", logs, "--once", "--state-dir", state, "--data-dir", state,
        "--sink", "otlp", "--otlp-endpoint", receiver.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(receiver.requests) == before


def kill_restart(
    tmp_path: Path, logs: Path, receiver: Receiver, start: Start,
    *, turns: int, seconds: float, kills: int, seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    receiver.delay = 0.05  # requests spend a while in flight: some kills land mid-request
    agent = writer(logs, turns, seconds, seed)
    began = time.monotonic()
    daemon, cycles = start(), 0
    while cycles < kills:
        # Kill at a random moment once the new process is sending (start-up alone is ~0.6 s).
        sent = len(receiver.requests)
        wait(lambda: len(receiver.requests) > sent, timeout=5)  # noqa: B023 - called at once
        time.sleep(rng.uniform(0, 0.8))
        daemon.kill()
        daemon, cycles = start(), cycles + 1
    assert agent.wait(timeout=seconds + 60) == 0

    expected = {f"t{i}": spans_of(i) for i in range(turns)}
    settle(receiver, expected, timeout=30 if turns < 1000 else 120)
    code, took = daemon.terminate(timeout=10)
    assert code == 0, daemon.log
    duplicates = assert_each_turn_once(receiver, expected)
    nothing_left_to_send(tmp_path, logs, receiver)
    print(
        f"\n{turns} turns ({sum(expected.values())} spans), {kills} kill -9 cycles: "
        f"{duplicates} spans re-sent with identical ids, {len(receiver.requests)} requests, "
        f"all delivered {time.monotonic() - began:.1f} s after the writer started; "
        f"final SIGTERM took {took:.2f} s"
    )


def test_kill_9_while_writing_and_sending_loses_nothing_and_ids_never_change(
    tmp_path: Path, logs: Path, receiver: Receiver, start: Start
) -> None:
    kill_restart(tmp_path, logs, receiver, start, turns=300, seconds=6, kills=6, seed=7)


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="set TAILERD_SOAK=1 for the long kill -9 soak")
@pytest.mark.timeout(900)
def test_kill_9_soak(tmp_path: Path, logs: Path, receiver: Receiver, start: Start) -> None:
    seed = int(os.environ.get("TAILERD_SOAK_SEED", "11"))
    kill_restart(tmp_path, logs, receiver, start, turns=3000, seconds=60, kills=60, seed=seed)


# ---- a misbehaving backend ----------------------------------------------------------------


class RestartableReceiver:
    """The test receiver on a fixed port that can be taken down (connection refused) and back."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self._server, _ = serve(self.receiver)
        self._handler = self._server.RequestHandlerClass
        self._port = self._server.server_address[1]

    def down(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def up(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), self._handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()


def test_backend_down_for_a_while_then_back_gets_every_turn_once(
    tmp_path: Path, logs: Path
) -> None:
    backend = RestartableReceiver()
    receiver = backend.receiver
    backend.down()
    started: list[RunningTailerd] = []
    try:
        daemon = starter(tmp_path, logs, receiver.url, started)()
        expected = {}
        for i in range(30):
            append(logs / "a.jsonl", turn_line("s", f"t{i}", llm_calls=spans_of(i) - 1))
            expected[f"t{i}"] = spans_of(i)
            if i == 10:
                assert wait(lambda: "sink otlp failed, retrying" in daemon.log, 10), daemon.log
        time.sleep(1.0)  # the outage lasts a while, with backoff growing
        outage = time.monotonic()
        backend.up()
        settle(receiver, expected)
        print(f"\nbackend back: all delivered {time.monotonic() - outage:.1f} s later")
        assert assert_each_turn_once(receiver, expected) == 0
        assert "recovered after" in daemon.log
    finally:
        stop_all(started)
        backend.down()


def wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_5xx_bursts_and_slow_responses_deliver_every_turn_exactly_once(
    tmp_path: Path, logs: Path, receiver: Receiver, start: Start
) -> None:
    receiver.delay = 0.5  # slow, but well inside the sink's 10 s timeout
    daemon = start()
    expected: dict[str, int] = {}
    bursts = [[503, 503], [500], [502, 429], []]  # each burst is followed by good answers
    for phase, burst in enumerate(bursts):
        with receiver.lock:
            receiver.script.extend(burst)
        for i in range(phase * 12, phase * 12 + 12):
            path = logs / ("a.jsonl" if i % 2 else "b.jsonl")
            append(path, turn_line("s", f"t{i}", llm_calls=spans_of(i) - 1))
            expected[f"t{i}"] = spans_of(i)
            time.sleep(0.02)
        settle(receiver, expected)
    failed = Counter(r["code"] for r in receiver.requests if r["code"] != 200)
    assert failed == {503: 2, 500: 1, 502: 1, 429: 1}
    assert assert_each_turn_once(receiver, expected) == 0  # a 5xx stores nothing: no re-send
    assert daemon.terminate(timeout=10)[0] == 0
    nothing_left_to_send(tmp_path, logs, receiver)


def test_a_turn_refused_for_good_is_dead_lettered_and_blocks_nothing(
    tmp_path: Path, logs: Path, receiver: Receiver, start: Start
) -> None:
    refused = {"poison-batched", "poison-live"}
    receiver.reject_if = lambda span: span["attributes"].get(LABEL) in refused
    session = logs / "a.jsonl"
    lines = [turn_line("s", f"t{i}") for i in range(6)]
    lines.insert(3, turn_line("s", "poison-batched"))
    append(session, b"".join(lines))  # one catch-up batch: the refusal must be isolated
    daemon = start()
    expected = {f"t{i}": 2 for i in range(6)}
    settle(receiver, expected)

    live = [turn_line("s", "poison-live"), turn_line("s", "t6"), turn_line("s", "t7")]
    for line in live:
        append(session, line)
    expected |= {"t6": 2, "t7": 2}
    settle(receiver, expected)
    assert assert_each_turn_once(receiver, expected) == 0
    assert daemon.terminate(timeout=10)[0] == 0

    letters = json.loads(
        run_tailerd("dead-letters", "--state-dir", tmp_path / "state", "--json").stdout
    )
    content = b"".join(lines + live)
    spans = sorted(
        (
            content.index(turn_line("s", label)),
            content.index(turn_line("s", label)) + len(turn_line("s", label)),
        )
        for label in refused
    )
    assert sorted((d["start"], d["end"]) for d in letters) == spans
    for letter in letters:
        assert letter["path"] == str(session)
        assert "otlp rejected turn" in letter["reason"] and "HTTP 400" in letter["reason"]
    nothing_left_to_send(tmp_path, logs, receiver)
