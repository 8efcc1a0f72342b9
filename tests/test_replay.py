"""Real transcripts replayed line by line into a watched directory yield the same turns as `--once`.

For one real transcript of each agent format: a `tailerd --once` run over the whole file is the
reference; then a running `tailerd` watches an empty directory while the test writes the same
file into it line by line, with the pauses of the records' own timestamps scaled down and some
lines torn into two writes. Both runs must send exactly the same spans (ids, names, tokens,
times, attributes), and each turn whose end the agent marked must arrive within `MAX_LATENCY`
of the test writing that end marker. Which line ends a turn is decided here by a deliberately
simple rule per format, not by the parser under test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES, popen_tailerd, run_tailerd
from tests.otlp_receiver import Receiver, running

pytestmark = pytest.mark.slow

MAX_LATENCY = 1.5  # seconds from writing a turn's end marker to its spans at the receiver
IDLE_CLOSE = 2.0  # every format's idle_close in both runs; > MAX_LATENCY, so a turn closed
# by idle instead of by its end marker fails the latency check
MAX_PAUSE = 0.05  # the longest pause between two lines of the replay
REPLAY_BUDGET = 4.0  # seconds of pauses per transcript at most; longer replays are sped up
TORN_SHARE = 0.2  # share of lines written in two parts
START_TIMEOUT = 20.0
SETTLE_TIMEOUT = 20.0  # after the last line: idle close plus delivery, on a loaded machine
QUIET_CHECK = 1.0  # then how long to wait for spans that should not come

# Top-level keys first: after a [table] header they would belong to that table.
CONFIG = "shutdown_timeout = 2.0\n" + "".join(
    f"[format_options.{name}]\nidle_close = {IDLE_CLOSE}\n"
    for name in ("claude-code", "codex", "gemini", "native")
)

Record = dict[str, Any]


# ---- which lines end turns: one simple rule per format --------------------------------------


def claude_marker(rec: Record) -> bool:
    """`system/turn_duration`, `system/stop_hook_summary`, or a Stop hook's progress/attachment."""
    if rec.get("type") == "system":
        return rec.get("subtype") in ("turn_duration", "stop_hook_summary")
    holder = rec.get("data") if rec.get("type") == "progress" else rec.get("attachment")
    return (
        rec.get("type") in ("progress", "attachment")
        and isinstance(holder, dict)
        and holder.get("hookEvent") == "Stop"
    )


def codex_marker(rec: Record) -> bool:
    payload = rec.get("payload")
    return (
        rec.get("type") == "event_msg"
        and isinstance(payload, dict)
        and payload.get("type") in ("task_complete", "turn_aborted")
    )


def native_marker(rec: Record) -> bool:
    return rec.get("type") == "turn_end"


def first_of_runs(records: list[Record], is_marker: Callable[[Record], bool]) -> list[int]:
    """Indices of marker lines not preceded by a marker: a run of markers ends one turn
    (Claude writes a Stop hook's progress lines, its summary and turn_duration in a row)."""
    return [
        i for i, r in enumerate(records) if is_marker(r) and not (i and is_marker(records[i - 1]))
    ]


def gemini_ends(records: list[Record]) -> list[int]:
    """A Gemini turn ends when the next `user` record arrives: every user record but the first."""
    return [i for i, r in enumerate(records) if r.get("type") == "user"][1:]


@dataclass(frozen=True)
class Transcript:
    path: Path
    ends: Callable[[list[Record]], list[int]]
    turns: int  # hand count of the turns in the file
    marked: int  # hand count of those ended by a marker (the others close by idle, last)
    companions: tuple[str, ...] = ()  # directories next to it read through the parent file


CLAUDE = FIXTURES / "claude-code" / "marot-spotter"
CODEX = FIXTURES / "codex" / "madshn-localpush" / "raw" / "sessions"
CLAUDE_SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"

TRANSCRIPTS = {
    # Prompts at lines 7 ("Work on bead"), 280 ("continue") and 1502 (a task notification); each
    # turn ends with Stop-hook progress lines (273, 1496, 1508). One Task call whose sub-agent
    # transcript is in <session>/subagents/. 1512 lines, 3 MB.
    "claude-code": Transcript(
        CLAUDE / f"{CLAUDE_SESSION}.jsonl",
        lambda rs: first_of_runs(rs, claude_marker),
        3,
        3,
        (CLAUDE_SESSION,),
    ),
    # Five task_started ... task_complete pairs (lines 8/186, 187/288, 289/520, 529/651, 652/702).
    "codex": Transcript(
        CODEX / "rollout-2026-02-23T12-40-23-019c8a4c-ed82-79a1-aa28-7738fc5ab61a.jsonl",
        lambda rs: first_of_runs(rs, codex_marker),
        5,
        5,
    ),
    # Three user records (lines 4, 18, 22): the first two turns end at the next user record,
    # the last one only by idle close.
    "gemini": Transcript(
        FIXTURES / "gemini" / "Mai0313-VibeCodingTracker" / "gemini-session-2026-04.jsonl",
        gemini_ends,
        3,
        2,
    ),
    # t1 and t2 end with turn_end; t3 has none and closes by idle (as interrupted).
    "native": Transcript(
        EXAMPLES / "research-agent" / "session-r1.jsonl",
        lambda rs: first_of_runs(rs, native_marker),
        3,
        2,
    ),
}


# ---- the replay ------------------------------------------------------------------------------


def record_time(rec: Record) -> float | None:
    for key in ("timestamp", "started_at", "ended_at"):
        value = rec.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    return None


def pauses(records: list[Record]) -> list[float]:
    """Pause before each line: the gap between the records' own times, capped, and scaled
    down as a whole if the replay would take longer than REPLAY_BUDGET."""
    out, last = [], None
    for rec in records:
        at = record_time(rec)
        gap = at - last if at is not None and last is not None else 0.0
        out.append(min(max(gap, 0.0), MAX_PAUSE))
        last = at if at is not None else last
    scale = min(1.0, REPLAY_BUDGET / max(sum(out), 1e-9))
    return [p * scale for p in out]


def replay(lines: list[bytes], waits: list[float], dest: Path, seed: int) -> list[float]:
    """Append `lines` to `dest`; for each line, the monotonic time just before the write that
    completed it (so a turn can never seem to arrive before its end marker was written)."""
    rng = random.Random(seed)
    written = []
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for line, wait in zip(lines, waits, strict=True):
            time.sleep(wait)
            cut = rng.randrange(1, len(line)) if rng.random() < TORN_SHARE and len(line) > 1 else 0
            if cut:
                os.write(fd, line[:cut])  # the daemon may read this partial line
                time.sleep(0.003)
            # Taken before the write: the receiver's thread may run before this one resumes.
            written.append(time.monotonic())
            os.write(fd, line[cut:])
    finally:
        os.close(fd)
    return written


# ---- running tailerd ---------------------------------------------------------------------------


@pytest.fixture
def live_receiver() -> Iterator[Receiver]:
    """A second receiver, so the reference and the live run never share spans."""
    with running() as rec:
        yield rec


class Daemon:
    """A running `tailerd`; stderr drained by a thread (a full pipe would block it)."""

    def __init__(self, *args: str | Path) -> None:
        self.proc: subprocess.Popen[str] = popen_tailerd(*args)
        self.lines: list[str] = []
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not any("watching " in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "tailerd did not start:\n" + "".join(self.lines)
            time.sleep(0.02)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._drain.join(timeout=5)
        return "".join(self.lines)


def place(t: Transcript, directory: Path) -> Path:
    """The transcript's companions (sub-agent files) copied into `directory`; its own path there."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in t.companions:
        shutil.copytree(t.path.parent / name, directory / name, copy_function=shutil.copyfile)
    return directory / t.path.name


def span_rows(spans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    def row(s: dict[str, Any]) -> tuple[Any, ...]:
        a = s["attributes"]
        return (
            s["trace_id"],
            s["span_id"],
            s["name"],
            a.get("gen_ai.usage.input_tokens"),
            a.get("gen_ai.usage.output_tokens"),
        )

    return sorted(row(s) for s in spans)


def span_details(spans: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        s["span_id"]: (
            s["parent_span_id"],
            s["start_ns"],
            s["end_ns"],
            json.dumps(s["attributes"], sort_keys=True),
        )
        for s in spans
    }


def traces_in_arrival_order(rec: Receiver) -> list[tuple[str, float]]:
    """Each trace (one per turn) with the time its first span arrived."""
    first: dict[str, float] = {}
    with rec.lock:
        for span, at in zip(rec.spans, rec.arrived_at, strict=True):
            first.setdefault(span["trace_id"], at)
    return list(first.items())


# ---- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(TRANSCRIPTS))
def test_live_replay_sends_the_same_turns_as_once_each_soon_after_its_end(
    fmt: str, tmp_path: Path, receiver: Receiver, live_receiver: Receiver
) -> None:
    t = TRANSCRIPTS[fmt]
    assert t.path.is_file(), f"fixture missing: {t.path}"
    data = t.path.read_bytes()
    lines = data.splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    ends = t.ends(records)
    assert len(ends) == t.marked, "the simple end rule disagrees with the hand count"
    config = tmp_path / "tailerd.toml"
    config.write_text(CONFIG)

    # Reference: the whole file at once, old enough for its open last turn to close by idle.
    whole = place(t, tmp_path / "once")
    whole.write_bytes(data)
    old = time.time() - 3600
    os.utime(whole, (old, old))
    result = run_tailerd(
        "--watch", whole.parent, "--once", "--config", config,
        "--sink", "otlp", "--otlp-endpoint", receiver.url,
        "--state-dir", tmp_path / "s1", "--data-dir", tmp_path / "s1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    reference = list(receiver.spans)
    assert len({s["trace_id"] for s in reference}) == t.turns

    # Live: the same file written line by line into a watched directory.
    watched = tmp_path / "live"
    watched.mkdir()
    daemon = Daemon(
        "--watch", watched, "--config", config,
        "--sink", "otlp", "--otlp-endpoint", live_receiver.url,
        "--state-dir", tmp_path / "s2", "--data-dir", tmp_path / "s2",
    )  # fmt: skip
    try:
        daemon.wait_ready()
        written = replay(lines, pauses(records), place(t, watched), seed=len(data))
        settled = live_receiver.wait_for(
            lambda r: len(r.spans) >= len(reference), timeout=SETTLE_TIMEOUT
        )
        time.sleep(QUIET_CHECK)  # anything extra (a duplicate, a turn split late) shows by now
    finally:
        log = daemon.stop()
    assert "Traceback" not in log, log
    assert settled, f"live run sent {len(live_receiver.spans)} of {len(reference)} spans\n{log}"
    live = list(live_receiver.spans)

    if t.companions:  # the sub-agent's own calls, read from its file, nested under its span
        agents = {
            s["span_id"]
            for s in live
            if s["name"].startswith("invoke_agent") and s["parent_span_id"]
        }  # not the roots, which are invoke_agent spans too
        assert any(s["parent_span_id"] in agents for s in live)
    assert span_rows(live) == span_rows(reference)
    assert span_details(live) == span_details(reference)

    arrivals = traces_in_arrival_order(live_receiver)
    assert len(arrivals) == t.turns
    latencies = [at - written[line] for (_trace, at), line in zip(arrivals, ends, strict=False)]
    replayed = written[-1] - written[0]
    shown = [round(x, 3) for x in latencies]
    print(f"{fmt}: {len(live)} spans, replay {replayed:.1f} s, end marker -> receiver s: {shown}")
    for index, latency in enumerate(latencies):
        assert 0 <= latency < MAX_LATENCY, (
            f"turn {index} (ended at line {ends[index] + 1}): {latency:.3f} s"
        )
