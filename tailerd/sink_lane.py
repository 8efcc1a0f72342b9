"""One sink's lane through delivery: its health and backoff, its turns in order, and the
worker thread that alone calls the sink's `send`. The owner's side (which batch goes when, what
an answer means) is `tailerd.delivery`; this module only carries batches and answers.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Delivered, Outcome, Rejected, Retry, Turn
from tailerd.shrink import attempts, content_chars, shrink
from tailerd.sinks.base import Sink

log = logging.getLogger("tailerd")

BACKOFF_BASE = 0.5  # seconds; the n-th consecutive failure waits BACKOFF_BASE * 2**n, jittered
BACKOFF_MAX = 60.0  # seconds


@dataclass(slots=True, eq=False)
class Pending:
    """A turn made into spans, waiting for every sink in `waiting` (names) to settle it.
    Compared and hashed by identity."""

    origin: Any  # the source file it came from; opaque here
    turn: Turn
    spans: list[ReadableSpan]
    waiting: set[str]


@dataclass(slots=True)
class SinkHealth:
    """One sink's counters and backoff state (`retry_at` in `time.monotonic()` seconds;
    `failing_since` in `time.time()` seconds, None while healthy)."""

    delivered: int = 0
    rejected: int = 0
    shrunk: int = 0  # turns delivered with their content cut (refused as too large whole)
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

    def report(self, now: float) -> dict[str, object]:
        backing_off = self.failing_since is not None
        return {
            "delivered": self.delivered,
            "rejected": self.rejected,
            "shrunk": self.shrunk,
            "pending_failures": self.failures,
            "failing_since": self.failing_since,
            "last_error": self.last_error,
            "next_attempt_in": max(0.0, self.retry_at - now) if backing_off else None,
        }


@dataclass(slots=True, eq=False)
class Job:
    """One batch handed to a sink's worker. `epoch` tells the worker which batches to skip
    after a failure (all of an epoch it saw fail)."""

    lane: SinkLane
    batch: list[Pending]
    epoch: int


@dataclass(slots=True)
class Answer:
    """A worker's answer: the sink's outcome, None if the batch was skipped unsent, or the
    BaseException that ended the worker (`fatal`, re-raised on the owner's thread). A single
    turn the sink took only with its content cut has `shrunk_chars` > 0."""

    job: Job
    outcome: Outcome | None
    fatal: BaseException | None = None
    shrunk_chars: int = 0  # content characters cut before the sink accepted the turn


class SinkLane:
    """One sink: its health, its turns in order, and its worker thread. Every attribute but
    `_skip_through`, `_inbox` and `_stopping` belongs to the owner's thread."""

    def __init__(
        self, sink: Sink, answers: queue.SimpleQueue[Answer], wake: threading.Event | None
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.health = SinkHealth()
        self.todo: deque[Pending] = deque()  # waiting, not handed out, in order
        self.in_flight: deque[Job] = deque()  # handed to the worker, in order
        # came back unsent; they go back to the front of `todo` once in_flight is empty
        self.returned: list[Pending] = []
        self.alone: set[Pending] = set()  # in a refused batch: sent one by one
        self.epoch = 0
        self.acknowledged = False  # has the sink ever delivered or refused a batch
        self._answers = answers
        self._wake = wake
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._skip_through = -1  # the worker's: skip jobs of this epoch and before

    def waiting(self) -> int:
        return len(self.todo) + len(self.returned) + sum(len(j.batch) for j in self.in_flight)

    def next_batch(self, batch_spans: int) -> list[Pending]:
        """Take the next batch off `todo`: turns in order up to `batch_spans` spans (at least
        one turn), or a single turn that must be sent alone."""
        batch = [self.todo.popleft()]
        if batch[0] in self.alone:
            return batch
        spans = len(batch[0].spans)
        while self.todo and self.todo[0] not in self.alone:
            if spans + len(self.todo[0].spans) > batch_spans:
                break
            spans += len(self.todo[0].spans)
            batch.append(self.todo.popleft())
        return batch

    def execute(self, job: Job) -> Answer:
        """Send one job (worker thread, or the owner's when not threaded)."""
        if job.epoch <= self._skip_through:
            return Answer(job, None)
        spans = [s for p in job.batch for s in p.spans]
        outcome = _safe_send(self.sink, spans)
        shrunk = 0
        if isinstance(outcome, Rejected) and outcome.too_large and len(job.batch) == 1:
            outcome, shrunk = _send_shrinking(self.sink, spans, outcome, self._stopping)
        if isinstance(outcome, Retry) or (isinstance(outcome, Rejected) and len(job.batch) > 1):
            self._skip_through = job.epoch  # what is queued behind it comes back unsent
        return Answer(job, outcome, shrunk_chars=shrunk)

    def submit(self, job: Job) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._work, name=f"tailerd-sink-{self.name}", daemon=True
            )
            self._thread.start()
        self._inbox.put(job)

    def _work(self) -> None:
        while (job := self._inbox.get()) is not None and not self._stopping.is_set():
            try:
                answer = self.execute(job)
            except BaseException as exc:  # the owner re-raises it: the process is going down
                self._post(Answer(job, None, fatal=exc))
                return
            self._post(answer)

    def _post(self, answer: Answer) -> None:
        self._answers.put(answer)
        if self._wake is not None:
            self._wake.set()

    def stop(self) -> None:
        """Ask the worker to stop before its next send (a send under way runs to its end)."""
        self._stopping.set()
        self._inbox.put(None)

    def join(self, timeout: float) -> bool:
        """True if the worker has ended within `timeout` seconds (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


def _send_shrinking(
    sink: Sink, spans: list[ReadableSpan], refused: Rejected, stopping: threading.Event
) -> tuple[Outcome, int]:
    """One turn the sink refused as too large, sent again with its content cut, halving the
    budget each time (`tailerd.shrink.attempts`) until it is taken or refused for another
    reason. Returns the last outcome and the characters cut (0 unless Delivered). A Retry on
    the way ends the attempts: the turn comes back whole and starts again after the backoff;
    so does a shutdown (`stopping`) between attempts. Spans that cannot be shrunk (not OTel
    spans) keep the first refusal."""
    try:
        total = content_chars(spans)
    except Exception as exc:  # not OTel spans: nothing to cut
        return Rejected(f"{refused.reason}; cannot shrink: {exc}", too_large=True), 0
    tries = 0
    for budget in attempts(total):
        if stopping.is_set():
            return Retry(f"{refused.reason}; shutting down while sending it smaller"), 0
        try:
            shrunk = shrink(spans, budget, sink.name)
        except Exception as exc:  # a bug in shrinking must not end the worker
            return Rejected(f"{refused.reason}; cannot shrink: {exc}", too_large=True), 0
        tries += 1
        outcome = _safe_send(sink, shrunk.spans)
        if isinstance(outcome, Delivered):
            return outcome, shrunk.cut_chars
        if not (isinstance(outcome, Rejected) and outcome.too_large):
            return outcome, 0
    return (
        Rejected(
            f"{refused.reason}; still too large with all its content cut "
            f"({total} chars, {tries} smaller attempts)",
            too_large=True,
        ),
        0,
    )


def _safe_send(sink: Sink, spans: list[ReadableSpan]) -> Outcome:
    try:
        return sink.send(spans)
    except Exception as exc:
        return Retry(f"{type(exc).__name__}: {exc}")
