"""`tailerd --once` against a sink that is down: it gives up after `once_timeout` with no sink
progress (exit 75), and its last line says so - which sink, the turns not sent, the files not
read to the end - while the open-turn listing names only files read to their end (a file whose
reading waited for the sink has a turn cut by where reading stopped, not an open turn).

What the test writes (hand count): `stalled.jsonl`, 3 finished turns (2 spans each: root + 1
chat, ~250 bytes each), a turn_start (at byte 750) and 60 message lines of ~1 KiB, then its
turn_end (~62 KiB: more than the 4 KiB read budget, so with max_pending_spans = 2 reading
stops long before its end, with t4 started and not ended)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

from tests.conftest import run_tailerd
from tests.live_daemon import append, turn_line


def _event(kind: str, session: str, turn: str, **extra: object) -> bytes:
    return (
        json.dumps({"type": kind, "session_id": session, "turn_id": turn, **extra}).encode() + b"\n"
    )


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_once_with_a_dead_sink_ends_saying_it_gave_up(tmp_path: Path) -> None:
    watch, state = tmp_path / "w", tmp_path / "state"
    watch.mkdir()
    stalled = watch / "stalled.jsonl"
    for label in ("t1", "t2", "t3"):
        append(stalled, turn_line("s2", label))
    append(stalled, _event("turn_start", "s2", "t4"))
    for i in range(60):
        append(stalled, _event("message", "s2", "t4", role="user", content=f"{i} " + "x" * 1000))
    append(stalled, _event("turn_end", "s2", "t4"))
    url = f"http://127.0.0.1:{_closed_port()}/v1/traces"
    result = run_tailerd(
        "--watch", watch, "--once", "--state-dir", state, "--data-dir", state,
        "--sink", "otlp", "--otlp-endpoint", url,
        TAILERD_ONCE_TIMEOUT="2", TAILERD_READ_BUDGET="4096", TAILERD_MAX_PENDING_SPANS="2",
    )  # fmt: skip
    err = result.stderr
    assert result.returncode == 75, err
    last = err.strip().splitlines()[-1]
    found = re.fullmatch(
        r"tailerd WARNING gave up after once_timeout 2 s without progress of sink otlp"
        r" \((?P<error>.+)\): (?P<turns>\d+) turns not sent, (?P<files>\d+) files not read to"
        r" the end; run again when the sink is back",
        last,
    )
    assert found is not None, err
    assert url in found["error"]
    assert found["files"] == "1"  # stalled.jsonl (62 KiB, 4 KiB at a time)
    assert 1 <= int(found["turns"]) <= 3  # t1..t3 at most: t4 ends past the first 4 KiB
    assert f"{found['turns']} unacknowledged" in err  # the same count as the summary's
    opened = [x for x in err.splitlines() if " open: " in x or "INFO open:" in x]
    assert not [x for x in opened if "stalled.jsonl" in x], err  # its reading stopped midway
