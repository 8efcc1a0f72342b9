"""Delivery to the sinks: batching, per-sink retry with backoff and jitter, isolation of a
refused turn so it cannot block the turns behind it, and each sink's I/O on its own thread.

A turn is settled for a sink when that sink delivered it or refused it for good; the owner is
told through `on_settled` and moves the file's ledger, and `on_batch_acknowledged` runs after
every batch a sink acknowledged (the daemon commits checkpoints there). A transient failure
(`Retry`, or a sink that raises) leaves the turns waiting and backs that sink off; the other
sinks go on.

Threads. The owner (the daemon's loop thread) owns all state here; both callbacks run on it,
inside `deliver()`, `poll()` or `drain()`, never on a worker. Each sink has one worker thread
(started on first use, a daemon thread) that only calls `sink.send(spans)` and posts the outcome
to a thread-safe queue, then sets the optional `wake` event so the owner's loop, waiting on it,
processes the acknowledgement at once. A slow or hung backend delays neither the loop nor the
other sinks. At most `MAX_IN_FLIGHT` batches per sink are handed to its worker (one sending, the
rest queued behind it); everything else waits here, and reading pauses (`backpressured`).

Too large. A single turn a sink refuses as too large (`Rejected.too_large`, HTTP 413) is sent
again by the worker, within the same job, with its content cut smaller each time
(`tailerd.shrink`: ids, names, times, parents and token counts stay); only a turn refused even
with all its content cut is rejected for good. Each sink shrinks on its own: another sink (the
local store) keeps the whole turn. A batch of several turns refused as too large is split first,
as any refused batch.

Order. A worker sends its batches in order. When a batch fails (Retry), or a batch of several
turns is refused, the worker skips the batches queued behind it (they come back unsent); the
owner hands them out again, in order, after the backoff (Retry) or at once with the refused
batch's turns sent one by one (to isolate the refused turn). So per sink, turns are settled in
the order they were added, each exactly once.

`threaded=False` sends on the owner's thread inside `deliver()` instead (deterministic stepping
for model tests, and one-shot tools); the semantics are the same.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Delivered, Outcome, Rejected, Retry, Turn
from tailerd.progress import BatchLog
from tailerd.sink_lane import Answer, Job, Pending, SinkHealth, SinkLane
from tailerd.sinks.base import Sink

__all__ = ["Delivery", "Pending", "Settled", "SinkHealth"]

log = logging.getLogger("tailerd")

MAX_IN_FLIGHT = 3  # batches handed to one sink's worker: one sending, two queued
POLL_INTERVAL = 0.01  # seconds; next_retry() while batches are in flight and there is no `wake`
JOIN_TIMEOUT = 1.0  # seconds close() waits for all workers together before closing the sinks

Settled = Callable[[Pending, str, Outcome], None]


class Delivery:
    """Turns waiting for the sinks, and each sink's worker. Every method is for the owner's
    thread only (the one that calls `add`); the callbacks run there too.

    `batch_spans`: most spans per batch (a single larger turn is sent whole).
    `max_pending_spans`: waiting spans at which `backpressured()` turns true.
    `wake`: set by a worker each time it has posted an answer; the owner's loop waits on it and
    then calls `deliver()`. Without it, `next_retry()` asks to be called every POLL_INTERVAL
    while batches are in flight.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        batch_spans: int,
        max_pending_spans: int,
        on_settled: Settled,
        on_batch_acknowledged: Callable[[], None],
        *,
        wake: threading.Event | None = None,
        threaded: bool = True,
    ) -> None:
        self.sinks = list(sinks)
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._lanes = [SinkLane(s, self._answers, wake) for s in self.sinks]
        self.health = {lane.name: lane.health for lane in self._lanes}
        self._turns = 0  # turns some sink has not settled yet
        self._pending_spans = 0  # their spans
        self._batch_spans = batch_spans
        self._max_pending_spans = max_pending_spans
        self._on_settled = on_settled
        self._on_batch_acknowledged = on_batch_acknowledged
        self._wake = wake
        self._threaded = threaded
        self.batch_log = BatchLog()  # one line per acknowledged batch (tailerd/progress.py)

    def add(self, origin: object, turn: Turn, spans: list[ReadableSpan]) -> None:
        """Queue a turn for every sink; it is handed out by the next `deliver()`."""
        pending = Pending(origin, turn, spans, {lane.name for lane in self._lanes})
        if not pending.waiting:
            return
        for lane in self._lanes:
            lane.todo.append(pending)
        self._turns += 1
        self._pending_spans += len(spans)

    def __len__(self) -> int:
        """Turns not yet settled by every sink."""
        return self._turns

    @property
    def sending(self) -> int:
        """Batches handed to workers and not answered yet."""
        return sum(len(lane.in_flight) for lane in self._lanes)

    def backpressured(self) -> bool:
        """Stop reading while a sink is failing (the log files are the buffer), while a sink that
        has never acknowledged anything has a batch in flight (a backend down from the start
        holds only what was read before its first answer), or while too many spans wait."""
        if self._turns and any(h.failing_since is not None for h in self.health.values()):
            return True
        if any(lane.in_flight and not lane.acknowledged for lane in self._lanes):
            return True
        return self._pending_spans >= self._max_pending_spans

    def next_retry(self) -> float:
        """When (`time.monotonic()` seconds) `deliver()` should next be called to hand out more;
        `inf` if only a worker's answer (which sets `wake`) or a new turn can move things."""
        due = self._next_dispatch()
        if self._threaded and self._wake is None and self.sending:
            due = min(due, time.monotonic() + POLL_INTERVAL)
        return due

    def deliver(self) -> None:
        """Process the workers' answers (running the callbacks), then hand out what is waiting
        to every sink that is not backing off. Never blocks on a sink when threaded."""
        self._take_answers(0.0)
        now = time.monotonic()
        for lane in self._lanes:
            if self._threaded:
                while self._dispatchable(lane, now):
                    job = self._job(lane)
                    lane.submit(job)
            else:
                while self._dispatchable(lane, now):
                    self._process(lane.execute(self._job(lane)))

    def poll(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a worker's answer, then `deliver()`. True if an
        answer was processed."""
        took = self._take_answers(timeout)
        self.deliver()
        return took

    def drain(self, timeout: float) -> bool:
        """Deliver until every turn is settled (True) or `timeout` seconds have passed (False),
        waiting out backoffs. For shutdown and `--once`; call `close()` afterwards."""
        deadline = time.monotonic() + timeout
        while True:
            self.deliver()
            if not self._turns:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            self.poll(min(deadline, max(now, self._next_dispatch())) - now)

    def report(self) -> dict[str, dict[str, object]]:
        """Per sink: delivered, rejected, shrunk (turns delivered with content cut), pending
        (turns), in_flight (batches), pending_failures, failing_since (epoch seconds or None),
        last_error, next_attempt_in (seconds or None)."""
        now = time.monotonic()
        return {
            lane.name: {
                **lane.health.report(now),
                "pending": lane.waiting(),
                "in_flight": len(lane.in_flight),
            }
            for lane in self._lanes
        }

    def close(self) -> None:
        """Stop the workers (a send under way may finish, a hung one is abandoned after
        JOIN_TIMEOUT: its thread is a daemon thread), then close every sink. Runs no callback:
        answers not yet processed are dropped, their turns are re-read on the next start."""
        for lane in self._lanes:
            lane.stop()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for lane in self._lanes:
            if not lane.join(max(0.0, deadline - time.monotonic())):
                log.warning("sink %s is still sending at shutdown; not waiting for it", lane.name)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("sink %s failed to close: %s: %s", sink.name, type(exc).__name__, exc)

    # ---- owner's side -----------------------------------------------------------------------

    def _next_dispatch(self) -> float:
        due = float("inf")
        for lane in self._lanes:
            if lane.todo and not lane.returned and len(lane.in_flight) < MAX_IN_FLIGHT:
                due = min(due, lane.health.retry_at)
        return due

    def _dispatchable(self, lane: SinkLane, now: float) -> bool:
        return (
            bool(lane.todo)
            and not lane.returned  # a failure is coming back: nothing overtakes it
            and len(lane.in_flight) < MAX_IN_FLIGHT
            and lane.health.retry_at <= now
        )

    def _job(self, lane: SinkLane) -> Job:
        job = Job(lane, lane.next_batch(self._batch_spans), lane.epoch)
        lane.in_flight.append(job)
        return job

    def _take_answers(self, timeout: float) -> bool:
        """Process every answer posted, waiting up to `timeout` seconds for the first."""
        try:
            answer = (
                self._answers.get(timeout=timeout) if timeout > 0 else self._answers.get_nowait()
            )
        except queue.Empty:
            return False
        while True:
            self._process(answer)
            try:
                answer = self._answers.get_nowait()
            except queue.Empty:
                return True

    def _process(self, answer: Answer) -> None:
        job, lane = answer.job, answer.job.lane
        if not lane.in_flight or lane.in_flight[0] is not job:
            raise AssertionError(f"sink {lane.name}: answers out of order")
        lane.in_flight.popleft()
        try:
            self._apply(lane, job, answer)
        finally:
            if lane.returned and not lane.in_flight:
                # turns that came back unsent go first, in order, before any not handed out
                lane.todo.extendleft(reversed(lane.returned))
                lane.returned.clear()

    def _apply(self, lane: SinkLane, job: Job, answer: Answer) -> None:
        outcome, health = answer.outcome, lane.health
        if answer.fatal is not None or outcome is None:  # ended the worker, or skipped unsent
            lane.returned.extend(job.batch)
            if answer.fatal is not None:
                raise answer.fatal
            return
        if isinstance(outcome, Retry):
            news = health.failures == 0 or health.last_error != outcome.reason
            now = time.monotonic()
            health.failed(outcome.reason, now)
            log.log(
                logging.WARNING if news else logging.INFO,
                "sink %s failed, retrying (%d in a row; next attempt in %.1f s): %s",
                lane.name,
                health.failures,
                health.retry_at - now,
                outcome.reason,
            )
            lane.epoch += 1  # the worker skips what it had queued behind this batch
            lane.returned.extend(job.batch)
            return
        if health.failing_since is not None:
            log.info("sink %s recovered after %d failures", lane.name, health.failures)
        health.recovered()
        lane.acknowledged = True
        if isinstance(outcome, Rejected) and len(job.batch) > 1:
            lane.alone.update(job.batch)  # isolate the refused turn: send these one by one
            lane.epoch += 1
            lane.returned.extend(job.batch)
            return
        if answer.shrunk_chars:
            health.shrunk += 1
            log.info(
                "sink %s took turn %s only with %d content chars cut (refused whole as too large)",
                lane.name,
                job.batch[0].turn.key,
                answer.shrunk_chars,
            )
        for p in job.batch:
            self._settle(lane, p, outcome)
        if isinstance(outcome, Delivered):
            self.batch_log(lane.name, job.batch)
        self._on_batch_acknowledged()

    def _settle(self, lane: SinkLane, p: Pending, outcome: Outcome) -> None:
        if lane.name not in p.waiting:
            raise AssertionError(f"turn {p.turn.key} settled twice for sink {lane.name}")
        p.waiting.discard(lane.name)
        lane.alone.discard(p)
        if isinstance(outcome, Rejected):
            lane.health.rejected += 1
            lane.health.last_error = outcome.reason
        else:
            lane.health.delivered += 1
        if not p.waiting:
            self._turns -= 1
            self._pending_spans -= len(p.spans)
        self._on_settled(p, lane.name, outcome)
