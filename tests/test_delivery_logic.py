"""Delivery logic with scripted in-memory sinks: batching, isolation of a refused turn, one
sink's outage not holding back another, every (turn, sink) settled exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tailerd.delivery import Delivery, Pending
from tailerd.domain import Delivered, Outcome, Rejected, Retry, Turn


class ScriptedSink:
    """Answers each send from a script (then Delivered); refuses batches holding a poison span."""

    def __init__(self, name: str, script: Sequence[Outcome] = (), poison: str = "") -> None:
        self.name = name
        self.script = list(script)
        self.poison = poison
        self.batches: list[list[str]] = []

    def send(self, spans: Sequence[object]) -> Outcome:
        names = [str(s) for s in spans]
        self.batches.append(names)
        if self.script:
            return self.script.pop(0)
        if self.poison and self.poison in names:
            return Rejected("poison")
        return Delivered()

    def close(self) -> None:
        return None


def turn(n: int) -> Turn:
    return Turn(key=f"k{n}", session_id="s", start=n * 10, end=n * 10 + 10)


def run(sinks: list[ScriptedSink], turns: int, batch_spans: int = 4):
    settled: list[tuple[str, str, str]] = []
    acks: list[int] = []

    def on_settled(p: Pending, sink: str, outcome: Outcome) -> None:
        settled.append((p.turn.key, sink, type(outcome).__name__))

    delivery = Delivery(sinks, batch_spans, 1000, on_settled, lambda: acks.append(1))  # type: ignore[arg-type]
    for n in range(turns):
        delivery.add(None, turn(n), [f"k{n}/a", f"k{n}/b"])  # type: ignore[list-item]
    return delivery, settled, acks


def test_batches_respect_the_span_budget_and_each_ack_is_reported():
    sink = ScriptedSink("a")
    delivery, settled, acks = run([sink], turns=5, batch_spans=4)
    delivery.deliver()
    assert [len(b) for b in sink.batches] == [4, 4, 2]
    assert len(acks) == 3
    assert Counter(k for k, _, _ in settled) == Counter(f"k{n}" for n in range(5))
    assert not delivery


def test_a_refused_turn_is_isolated_and_does_not_block_the_rest():
    sink = ScriptedSink("a", poison="k2/a")
    delivery, settled, _ = run([sink], turns=4, batch_spans=8)
    delivery.deliver()
    outcomes = {k: o for k, _, o in settled}
    assert outcomes == {"k0": "Delivered", "k1": "Delivered", "k2": "Rejected", "k3": "Delivered"}
    assert delivery.report()["a"]["rejected"] == 1
    assert not delivery


def test_one_sink_down_does_not_hold_back_the_other_and_nothing_settles_twice(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("tailerd.delivery.time.monotonic", lambda: clock[0])
    up = ScriptedSink("up")
    down = ScriptedSink("down", script=[Retry("503"), Retry("503")])
    delivery, settled, _ = run([up, down], turns=3, batch_spans=100)
    delivery.deliver()
    assert {(k, s) for k, s, _ in settled} == {("k0", "up"), ("k1", "up"), ("k2", "up")}
    assert delivery.backpressured()  # a sink is failing: reading pauses
    report = delivery.report()["down"]
    assert report["pending"] == 3 and report["failing_since"] is not None
    delivery.deliver()  # still backing off: no new attempt
    assert len(down.batches) == 1
    clock[0] += 61
    delivery.deliver()
    clock[0] += 61
    delivery.deliver()
    assert len(down.batches) == 3
    assert Counter((k, s) for k, s, _ in settled) == Counter(
        {(f"k{n}", name): 1 for n in range(3) for name in ("up", "down")}
    )
    assert not delivery and not delivery.backpressured()


def test_a_sink_that_raises_is_retried_not_fatal():
    class Broken(ScriptedSink):
        def send(self, spans: Sequence[object]) -> Outcome:
            raise RuntimeError("bug")

    delivery, settled, _ = run([Broken("b")], turns=1)
    delivery.deliver()
    assert settled == []
    assert "RuntimeError: bug" in str(delivery.report()["b"]["last_error"])


def test_too_many_waiting_spans_pause_reading_until_they_are_acknowledged():
    sink = ScriptedSink("a")
    delivery = Delivery([sink], 100, 4, lambda *_: None, lambda: None)  # type: ignore[list-item]
    delivery.add(None, turn(0), ["s1", "s2"])  # type: ignore[list-item]
    assert not delivery.backpressured()
    delivery.add(None, turn(1), ["s3", "s4"])  # type: ignore[list-item]
    assert delivery.backpressured()
    delivery.deliver()
    assert not delivery.backpressured()
