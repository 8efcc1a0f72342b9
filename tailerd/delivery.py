"""Delivery to the sinks: batching, per-sink retry with backoff and jitter, and isolation of a
refused turn so it cannot block the turns behind it.

A turn is settled for a sink when that sink delivered it or refused it for good; the daemon is
told through `on_settled` and moves the file's ledger. A transient failure leaves the turn
waiting and backs that sink off; the other sinks go on.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Outcome, Rejected, Retry, Turn
from tailerd.sinks.base import Sink

log = logging.getLogger("tailerd")

BACKOFF_BASE = 0.5
BACKOFF_MAX = 60.0


@dataclass(slots=True)
class Pending:
    """A turn made into spans, waiting for every sink to acknowledge it."""

    origin: Any  # the source file it came from; opaque here
    turn: Turn
    spans: list[ReadableSpan]
    waiting: set[str]


@dataclass(slots=True)
class SinkHealth:
    delivered: int = 0
    rejected: int = 0
    failures: int = 0
    retry_at: float = 0.0
    failing_since: float | None = None
    last_error: str = ""

    def failed(self, reason: str, now: float) -> None:
        self.failures += 1
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(self.failures, 8))
        self.retry_at = now + delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        self.failing_since = self.failing_since or time.time()
        self.last_error = reason

    def recovered(self) -> None:
        self.failures, self.retry_at, self.failing_since = 0, 0.0, None

    def report(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "rejected": self.rejected,
            "pending_failures": self.failures,
            "failing_since": self.failing_since,
            "last_error": self.last_error,
        }


Settled = Callable[[Pending, str, Outcome], None]


class Delivery:
    def __init__(
        self,
        sinks: Sequence[Sink],
        batch_spans: int,
        max_pending_spans: int,
        on_settled: Settled,
        on_batch_acknowledged: Callable[[], None],
    ) -> None:
        self.sinks = list(sinks)
        self.health = {s.name: SinkHealth() for s in self.sinks}
        self.outbox: deque[Pending] = deque()
        self._pending_spans = 0  # spans in the outbox; asked once per file read, kept running
        self._batch_spans = batch_spans
        self._max_pending_spans = max_pending_spans
        self._on_settled = on_settled
        self._on_batch_acknowledged = on_batch_acknowledged

    def add(self, origin: object, turn: Turn, spans: list[ReadableSpan]) -> None:
        self.outbox.append(Pending(origin, turn, spans, {s.name for s in self.sinks}))
        self._pending_spans += len(spans)

    def __len__(self) -> int:
        return len(self.outbox)

    def backpressured(self) -> bool:
        """Stop reading while a sink is failing (the log files are the buffer), or while too
        many spans wait for acknowledgement."""
        if self.outbox and any(h.failing_since is not None for h in self.health.values()):
            return True
        return self._pending_spans >= self._max_pending_spans

    def next_retry(self) -> float:
        if not self.outbox:
            return float("inf")
        return min(h.retry_at for h in self.health.values())

    def deliver(self) -> None:
        """Send what is waiting to every sink that is not backing off."""
        now = time.monotonic()
        for sink in self.sinks:
            if self.health[sink.name].retry_at > now:
                continue
            while (batch := self._batch_for(sink.name)) and self._send(sink, batch):
                self._on_batch_acknowledged()
        if any(not p.waiting for p in self.outbox):
            self.outbox = deque(p for p in self.outbox if p.waiting)
            self._pending_spans = sum(len(p.spans) for p in self.outbox)

    def report(self) -> dict[str, dict[str, object]]:
        return {
            name: {**h.report(), "pending": sum(name in p.waiting for p in self.outbox)}
            for name, h in self.health.items()
        }

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def _batch_for(self, sink_name: str) -> list[Pending]:
        batch: list[Pending] = []
        spans = 0
        for p in self.outbox:
            if sink_name not in p.waiting:
                continue
            if batch and spans + len(p.spans) > self._batch_spans:
                break
            batch.append(p)
            spans += len(p.spans)
        return batch

    def _send(self, sink: Sink, batch: list[Pending]) -> bool:
        """Send one batch; True if the sink took it (delivered, or refused for good)."""
        outcome = _safe_send(sink, [s for p in batch for s in p.spans])
        health = self.health[sink.name]
        if isinstance(outcome, Retry):
            if health.failures == 0 or health.last_error != outcome.reason:
                log.warning("sink %s failed, retrying: %s", sink.name, outcome.reason)
            health.failed(outcome.reason, time.monotonic())
            return False
        if health.failing_since is not None:
            log.info("sink %s recovered after %d failures", sink.name, health.failures)
        health.recovered()
        if isinstance(outcome, Rejected) and len(batch) > 1:
            return all(self._send(sink, [p]) for p in batch)  # isolate the refused turn
        for p in batch:
            if isinstance(outcome, Rejected):
                health.rejected += 1
                health.last_error = outcome.reason
            else:
                health.delivered += 1
            p.waiting.discard(sink.name)
            self._on_settled(p, sink.name, outcome)
        return True


def _safe_send(sink: Sink, spans: list[ReadableSpan]) -> Outcome:
    try:
        return sink.send(spans)
    except Exception as exc:
        return Retry(f"{type(exc).__name__}: {exc}")
