"""Delivery logic with scripted in-memory sinks: batching, isolation of a refused turn, a turn
refused as too large sent again shrunk, one sink's outage not holding back another, every
(turn, sink) settled exactly once and in order,
each sink's I/O on its own worker thread with the callbacks on the owner's thread; plus the
real local SQLite sink written from its worker.

Cases that hold for both modes run with sinks on worker threads (`threaded`) and inline.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from tailerd.delivery import JOIN_TIMEOUT, MAX_IN_FLIGHT, Delivery, Pending
from tailerd.domain import Delivered, Outcome, Rejected, Retry, Turn
from tailerd.sinks.local import LocalSink, connect

MODES = pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])


class ScriptedSink:
    """Answers each send from a script (then Delivered); refuses batches holding a poison span.
    Records every batch and the thread that sent it."""

    def __init__(self, name: str, script: Sequence[Outcome] = (), poison: str = "") -> None:
        self.name = name
        self.script = list(script)
        self.poison = poison
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.closed = False

    def send(self, spans: Sequence[object]) -> Outcome:
        self.threads.add(threading.get_ident())
        names = [str(s) for s in spans]
        self.batches.append(names)
        if self.script:
            return self.script.pop(0)
        if self.poison and self.poison in names:
            return Rejected("poison")
        return Delivered()

    def close(self) -> None:
        self.closed = True


class GatedSink(ScriptedSink):
    """A slow backend: each send blocks until `gate` is set (at most 30 s, a safety net)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.sends_finished = 0

    def send(self, spans: Sequence[object]) -> Outcome:
        self.started.set()
        released = self.gate.wait(30)
        self.sends_finished += 1
        return super().send(spans) if released else Retry("gate never opened")


class Recorder:
    """The owner's callbacks: what was settled, how many acks, and on which threads."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, str, str]] = []
        self.acks = 0
        self.threads: set[int] = set()

    def on_settled(self, p: Pending, sink: str, outcome: Outcome) -> None:
        self.threads.add(threading.get_ident())
        self.settled.append((p.turn.key, sink, type(outcome).__name__))

    def on_ack(self) -> None:
        self.threads.add(threading.get_ident())
        self.acks += 1

    def keys(self, sink: str) -> list[str]:
        return [k for k, s, _ in self.settled if s == sink]


def turn(n: int) -> Turn:
    return Turn(key=f"k{n}", session_id="s", start=n * 10, end=n * 10 + 10)


def make(
    sinks: Sequence[ScriptedSink],
    batch_spans: int = 4,
    max_pending_spans: int = 1000,
    threaded: bool = True,
    wake: threading.Event | None = None,
) -> tuple[Delivery, Recorder]:
    rec = Recorder()
    delivery = Delivery(
        sinks,  # type: ignore[arg-type]
        batch_spans,
        max_pending_spans,
        rec.on_settled,
        rec.on_ack,
        wake=wake,
        threaded=threaded,
    )
    return delivery, rec


def add_turns(delivery: Delivery, first: int, count: int) -> None:
    for n in range(first, first + count):
        delivery.add(None, turn(n), [f"k{n}/a", f"k{n}/b"])  # type: ignore[list-item]


def settle(delivery: Delivery) -> None:
    """Process answers until no batch is in flight (bounded by rounds, not by the clock, so
    tests that stop `time.monotonic` can use it)."""
    for _ in range(400):
        delivery.deliver()
        if not delivery.sending:
            return
        delivery.poll(0.05)
    raise AssertionError("workers never answered")


@pytest.fixture
def owner() -> int:
    return threading.get_ident()


# ---- cases kept from the synchronous delivery ------------------------------------------------


@MODES
def test_batches_respect_the_span_budget_and_each_ack_is_reported(threaded: bool, owner: int):
    sink = ScriptedSink("a")
    delivery, rec = make([sink], batch_spans=4, threaded=threaded)
    add_turns(delivery, 0, 5)
    assert delivery.drain(10)
    assert [len(b) for b in sink.batches] == [4, 4, 2]
    assert rec.acks == 3
    assert Counter(k for k, _, _ in rec.settled) == Counter(f"k{n}" for n in range(5))
    assert not delivery
    assert rec.threads == {owner}
    assert (owner in sink.threads) is not threaded  # threaded: sent on the worker only
    delivery.close()
    assert sink.closed


@MODES
def test_a_refused_turn_is_isolated_and_does_not_block_the_rest(threaded: bool):
    sink = ScriptedSink("a", poison="k2/a")
    delivery, rec = make([sink], batch_spans=8, threaded=threaded)
    add_turns(delivery, 0, 4)
    assert delivery.drain(10)
    assert rec.settled == [
        ("k0", "a", "Delivered"),
        ("k1", "a", "Delivered"),
        ("k2", "a", "Rejected"),
        ("k3", "a", "Delivered"),
    ]
    # the whole batch once, then each of its turns alone
    assert sink.batches == [[f"k{n}/{s}" for n in range(4) for s in "ab"]] + [
        [f"k{n}/a", f"k{n}/b"] for n in range(4)
    ]
    assert delivery.report()["a"]["rejected"] == 1
    assert not delivery
    delivery.close()


@MODES
def test_one_sink_down_does_not_hold_back_the_other_and_nothing_settles_twice(
    threaded: bool, monkeypatch: pytest.MonkeyPatch
):
    clock = [1000.0]
    monkeypatch.setattr("tailerd.delivery.time.monotonic", lambda: clock[0])
    up = ScriptedSink("up")
    down = ScriptedSink("down", script=[Retry("503"), Retry("503")])
    delivery, rec = make([up, down], batch_spans=100, threaded=threaded)
    add_turns(delivery, 0, 3)
    delivery.deliver()
    settle(delivery)
    assert {(k, s) for k, s, _ in rec.settled} == {("k0", "up"), ("k1", "up"), ("k2", "up")}
    assert delivery.backpressured()  # a sink is failing: reading pauses
    report = delivery.report()["down"]
    assert report["pending"] == 3 and report["failing_since"] is not None
    # first failure: BACKOFF_BASE * 2 = 1 s, jittered to [0.5, 1]
    assert 0.5 <= report["next_attempt_in"] <= 1.0  # type: ignore[operator]
    assert delivery.report()["up"]["next_attempt_in"] is None
    assert delivery.next_retry() > clock[0]
    delivery.deliver()  # still backing off: no new attempt
    settle(delivery)
    assert len(down.batches) == 1
    clock[0] += 61
    delivery.deliver()
    settle(delivery)
    clock[0] += 61
    delivery.deliver()
    settle(delivery)
    assert len(down.batches) == 3
    assert Counter((k, s) for k, s, _ in rec.settled) == Counter(
        {(f"k{n}", name): 1 for n in range(3) for name in ("up", "down")}
    )
    assert rec.keys("down") == ["k0", "k1", "k2"]
    assert not delivery and not delivery.backpressured()
    assert delivery.report()["down"]["failing_since"] is None
    delivery.close()


@MODES
def test_a_sink_that_raises_is_retried_not_fatal(threaded: bool):
    class Broken(ScriptedSink):
        def send(self, spans: Sequence[object]) -> Outcome:
            raise RuntimeError("bug")

    delivery, rec = make([Broken("b")], threaded=threaded)
    add_turns(delivery, 0, 1)
    delivery.deliver()
    settle(delivery)
    assert rec.settled == []
    assert "RuntimeError: bug" in str(delivery.report()["b"]["last_error"])
    assert len(delivery) == 1
    delivery.close()


@MODES
def test_too_many_waiting_spans_pause_reading_until_they_are_acknowledged(threaded: bool):
    sink = ScriptedSink("a")
    delivery, _ = make([sink], batch_spans=100, max_pending_spans=4, threaded=threaded)
    delivery.add(None, turn(0), ["s1", "s2"])  # type: ignore[list-item]
    assert not delivery.backpressured()
    delivery.add(None, turn(1), ["s3", "s4"])  # type: ignore[list-item]
    assert delivery.backpressured()
    delivery.deliver()
    settle(delivery)
    assert not delivery.backpressured()
    delivery.close()


# ---- sinks on worker threads -----------------------------------------------------------------


def test_a_slow_sink_delays_neither_the_other_sink_nor_the_owner(owner: int):
    slow, fast = GatedSink("slow"), ScriptedSink("fast")
    wake = threading.Event()
    delivery, rec = make([slow, fast], batch_spans=2, wake=wake)
    add_turns(delivery, 0, 2)
    began = time.perf_counter()
    delivery.deliver()
    returned_after = time.perf_counter() - began
    assert slow.started.wait(10)  # the slow sink is inside send() now, and stays there
    # the owner goes on: acknowledgements of the fast sink arrive, more turns are added
    while len(rec.keys("fast")) < 2:
        assert wake.wait(10), "no worker woke the owner"
        wake.clear()
        delivery.deliver()
    add_turns(delivery, 2, 2)
    delivery.deliver()
    while len(rec.keys("fast")) < 4:
        assert delivery.poll(10)
    assert rec.keys("fast") == ["k0", "k1", "k2", "k3"]
    assert rec.keys("slow") == [] and slow.sends_finished == 0  # all that while it was blocked
    assert returned_after < 1.0  # generous: deliver() only hands batches over
    assert delivery.report()["slow"]["in_flight"] == MAX_IN_FLIGHT
    slow.gate.set()
    assert delivery.drain(10)
    assert rec.keys("slow") == ["k0", "k1", "k2", "k3"]
    assert rec.threads == {owner}
    assert owner not in slow.threads | fast.threads
    assert slow.threads.isdisjoint(fast.threads)  # a worker per sink
    delivery.close()


def test_at_most_a_few_batches_are_handed_to_a_worker_the_rest_wait_in_order():
    sink = GatedSink("a")
    delivery, rec = make([sink], batch_spans=2, wake=threading.Event())  # a turn per batch
    add_turns(delivery, 0, 10)
    delivery.deliver()
    assert sink.started.wait(10)
    report = delivery.report()["a"]
    assert (report["in_flight"], report["pending"]) == (MAX_IN_FLIGHT, 10)
    assert delivery.next_retry() > time.monotonic() + 1000  # nothing to hand out: waits for wake
    sink.gate.set()
    assert delivery.drain(10)
    assert sink.batches == [[f"k{n}/a", f"k{n}/b"] for n in range(10)]
    assert rec.keys("a") == [f"k{n}" for n in range(10)]
    delivery.close()


def test_reading_pauses_while_a_sink_that_never_answered_has_a_batch_in_flight():
    """A backend down from the start: only what was read before its first answer is held."""
    sink = GatedSink("a")
    delivery, _ = make([sink], wake=threading.Event())
    add_turns(delivery, 0, 1)
    assert not delivery.backpressured()  # nothing handed out yet
    delivery.deliver()
    assert delivery.backpressured()  # its first batch is out, no answer yet
    sink.gate.set()
    assert delivery.drain(10)
    add_turns(delivery, 1, 1)
    delivery.deliver()
    assert not delivery.backpressured()  # it has answered once: batches in flight are fine
    assert delivery.drain(10)
    delivery.close()


def test_without_wake_next_retry_asks_to_be_polled_while_batches_are_in_flight():
    sink = GatedSink("a")
    delivery, _ = make([sink])
    add_turns(delivery, 0, 1)
    delivery.deliver()
    assert delivery.next_retry() <= time.monotonic() + 0.1
    sink.gate.set()
    assert delivery.drain(10)
    assert delivery.next_retry() == float("inf")
    delivery.close()


def test_close_does_not_wait_for_a_hung_send_and_still_closes_the_sinks():
    hung, other = GatedSink("hung"), ScriptedSink("other")
    delivery, _ = make([hung, other])
    add_turns(delivery, 0, 1)
    delivery.deliver()
    assert hung.started.wait(10)
    assert not delivery.drain(0.2)  # the hung sink never answers within the timeout
    began = time.perf_counter()
    delivery.close()
    assert time.perf_counter() - began < JOIN_TIMEOUT + 2.0
    assert hung.closed and other.closed
    hung.gate.set()  # let the abandoned thread end


def test_a_base_exception_in_a_worker_reaches_the_owner():
    class Killed(BaseException):
        pass

    class Dying(ScriptedSink):
        def send(self, spans: Sequence[object]) -> Outcome:
            raise Killed

    delivery, rec = make([Dying("d")])
    add_turns(delivery, 0, 1)
    delivery.deliver()
    with pytest.raises(Killed):
        for _ in range(200):
            delivery.poll(0.05)
    assert rec.settled == [] and len(delivery) == 1
    delivery.close()


# ---- order and exactly-once under random failure scripts -------------------------------------

STEP = st.sampled_from(["retry", "raise"])
FINAL = st.sampled_from(["ok", "ok", "reject", "large", "huge"])
TURN_SCRIPT = st.tuples(st.lists(STEP, max_size=2), FINAL)
LIMIT = 2000  # content chars a PerTurnSink takes per request
LARGE = 5000  # content chars a turn scripted "large" carries for that sink


class PerTurnSink:
    """A backend whose answers are scripted per turn: a batch fails (Retry, or raises) while
    one of its turns has a failure left (one consumed per attempt, shrunken re-sends included).
    Otherwise it is refused as too large if it holds a turn scripted `huge` (whatever its size)
    or more than LIMIT chars of this sink's content attribute `<name>.content` (a turn scripted
    `large` carries LARGE); else refused if it holds a turn scripted `reject`, else delivered.
    Records the turns it took, in order, and which of them came shrunk."""

    def __init__(self, name: str, scripts: dict[str, tuple[list[str], str]]) -> None:
        self.name = name
        self.failures = {k: list(steps) for k, (steps, _) in scripts.items()}
        self.final = {k: final for k, (_, final) in scripts.items()}
        self.taken: list[str] = []  # turns of accepted batches (and refused single turns)
        self.shrunk: list[str] = []  # turns taken with their content cut

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        keys = list(dict.fromkeys(s.name.split("/")[0] for s in spans))
        for k in keys:
            if self.failures[k]:
                if self.failures[k].pop(0) == "raise":
                    raise OSError("connection reset")
                return Retry("503")
        chars = sum(len(str((s.attributes or {}).get(f"{self.name}.content", ""))) for s in spans)
        if chars > LIMIT or any(self.final[k] == "huge" for k in keys):
            return Rejected("HTTP 413", too_large=True)
        refused = [k for k in keys if self.final[k] == "reject"]
        if refused and len(keys) > 1:
            return Rejected("a turn in the batch is refused")
        self.taken.extend(keys)
        if any((s.attributes or {}).get("tailerd.shrunk") for s in spans):
            self.shrunk.extend(keys)
        return Rejected("refused") if refused else Delivered()

    def close(self) -> None:
        return None


def scripted_spans(n: int, count: int, finals: Sequence[str]) -> list[ReadableSpan]:
    """Turn `n`'s spans `k<n>/0`.. with, on the first, each sink's content attribute: LARGE
    chars for a sink that scripts this turn `large`, else 10."""
    content = {
        f"{name}.content": "x" * (LARGE if final == "large" else 10)
        for name, final in zip(["a", "b"], finals, strict=True)
    }
    return [
        ReadableSpan(
            name=f"k{n}/{i}",
            context=SpanContext(n + 1, i + 1, is_remote=False),
            attributes=content if i == 0 else {},
        )
        for i in range(count)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.tuples(TURN_SCRIPT, TURN_SCRIPT), min_size=1, max_size=12),
    spans_per_turn=st.lists(st.integers(1, 3), min_size=12, max_size=12),
    chunks=st.lists(st.integers(1, 5), min_size=1, max_size=12),
    batch_spans=st.integers(1, 6),
    threaded=st.booleans(),
)
def test_each_turn_is_settled_once_per_sink_in_order_whatever_the_sinks_answer(
    scripts: list[tuple[tuple[list[str], str], tuple[list[str], str]]],
    spans_per_turn: list[int],
    chunks: list[int],
    batch_spans: int,
    threaded: bool,
) -> None:
    owner = threading.get_ident()
    keys = [f"k{n}" for n in range(len(scripts))]
    sinks = [
        PerTurnSink(name, {k: s[i] for k, s in zip(keys, scripts, strict=True)})
        for i, name in enumerate(["a", "b"])
    ]
    delivery, rec = make(sinks, batch_spans=batch_spans, threaded=threaded)  # type: ignore[arg-type]
    with mock.patch("tailerd.sink_lane.BACKOFF_BASE", 0.0):  # retry at once
        added = 0
        for size in [*chunks, len(keys)]:  # turns arrive in chunks between deliveries
            for n in range(added, min(added + size, len(keys))):
                finals = [s[1] for s in scripts[n]]
                delivery.add(None, turn(n), scripted_spans(n, spans_per_turn[n], finals))
            added = min(added + size, len(keys))
            delivery.deliver()
        assert delivery.drain(20)
    delivery.close()
    for i, sink in enumerate(sinks):
        finals = [s[i][1] for s in scripts]
        assert rec.keys(sink.name) == keys  # each once, in the order added
        # the backend took each once, in order; a turn too large even empty never got in
        assert sink.taken == [k for k, f in zip(keys, finals, strict=True) if f != "huge"]
        assert sink.shrunk == [k for k, f in zip(keys, finals, strict=True) if f == "large"]
        refused = {k for k, s, o in rec.settled if s == sink.name and o == "Rejected"}
        assert refused == {k for k, f in zip(keys, finals, strict=True) if f in ("reject", "huge")}
        assert delivery.report()[sink.name]["shrunk"] == finals.count("large")
    assert rec.threads == {owner}
    assert not delivery


# ---- the real local store, written from its worker -------------------------------------------


def span(n: int, i: int) -> ReadableSpan:
    trace_id, span_id = 0xABC0 + n, 0x100 * (n + 1) + i
    return ReadableSpan(
        name=f"turn {n} span {i}",
        context=SpanContext(trace_id, span_id, is_remote=False),
        attributes={"gen_ai.conversation.id": "s", "gen_ai.operation.name": "chat"},
        start_time=1_000 * n,
        end_time=1_000 * n + 500,
    )


def test_the_local_sink_stores_from_its_worker_thread(tmp_path: Path, owner: int):
    db_path = tmp_path / "tailerd.db"
    sink = LocalSink(db_path)  # the connection is made here, on the owner's thread
    rec = Recorder()
    delivery = Delivery([sink], 4, 1000, rec.on_settled, rec.on_ack)
    for n in range(5):  # 5 turns of 3 spans: 15 rows
        delivery.add(None, turn(n), [span(n, i) for i in range(3)])
    assert delivery.drain(10), delivery.report()
    assert [o for _, _, o in rec.settled] == ["Delivered"] * 5
    assert rec.threads == {owner}
    delivery.close()
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT count(*), count(DISTINCT trace_id) FROM spans").fetchone()
    assert rows == (15, 5)
    ro = connect(db_path, readonly=True)
    try:
        query = "SELECT name FROM spans WHERE span_id = ?"
        assert ro.execute(query, (f"{0x302:016x}",)).fetchone() == ("turn 2 span 2",)
    finally:
        ro.close()
