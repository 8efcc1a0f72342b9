"""Life signs for people: a backfill's progress, one line per delivered batch, a periodic
summary of a live daemon.

Nothing here runs per line read: a backfill is told about a file after each read of it (at most
`read_budget`, 2 MiB, at a time), a batch after a sink acknowledged it, the summary once per
loop tick; each call is a few additions and a clock read.

* `Backfill` (`--once`, `import`): in a terminal (stderr is a TTY, no `-q`) a rich progress bar
  on stderr — files, MB, turns, rate, ETA; otherwise one INFO log line every `LOG_EVERY`
  seconds (systemd, CI, pipes).
* `BatchLog`: "delivered N turns (S sessions, F files) to SINK", INFO in the live daemon
  (DEBUG during a backfill, where the bar or the 5-second line says it).
* `LiveSummary`: every `SUMMARY_EVERY` seconds what the daemon did since the last one.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from tailerd.sink_lane import Pending

log = logging.getLogger("tailerd")

LOG_EVERY = 5.0  # seconds between progress log lines without a terminal
REFRESH_EVERY = 0.25  # seconds between progress bar updates in a terminal
SUMMARY_EVERY = 300.0  # seconds between a live daemon's summaries
MB = 1e6


class Backfill:
    """Progress of reading a known set of files once, shown while it runs.

    The daemon's `--once` is observed, not instrumented: `follow(files)` samples its file
    table (each file's `size` and `pipe.framer.consumed`, bytes) from a thread every
    `REFRESH_EVERY` / `LOG_EVERY` seconds, so its read loop pays nothing. `import` reports each
    file itself with `file_read(size)`. `turns` is a zero-argument callable: turns so far.
    Bytes already behind a checkpoint when the backfill starts are not counted as work.
    """

    def __init__(
        self,
        what: str,
        turns: Callable[[], int],
        *,
        terminal: bool | None = None,
        stream: IO[str] | None = None,
        quiet: bool = False,
    ) -> None:
        self.what = what
        self._turns = turns
        self._stream = stream or sys.stderr
        tty = self._stream.isatty() if terminal is None else terminal
        self.bar = tty and not quiet
        self.logging = not tty and not quiet
        self.files_total = self.files_done = 0
        self.bytes_total = self.bytes_done = 0
        self._base: int | None = None  # bytes behind checkpoints at the start
        self._start = time.monotonic()
        self._progress: Any = None
        self._task: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_log = self._start + LOG_EVERY
        self._sizes: dict[str, int] = {}  # file key -> bytes
        self._logged = False
        # what delivery waits for ("waiting for otlp (next attempt in 8 s)"), or None: shown
        # instead of an ETA, which means nothing while no sink makes progress
        self.waiting: Callable[[], str | None] = lambda: None

    # ---- import: told file by file ----------------------------------------------------------

    def expect(self, files: int, size: int) -> None:
        """`files` files of `size` bytes in all are to be read."""
        self.files_total, self.bytes_total = files, size

    def file_read(self, size: int) -> None:
        """One more file was read whole (`size` bytes); shown when due."""
        self.files_done += 1
        self.bytes_done += size
        now = time.monotonic()
        if self._progress is not None or now >= self._next_log:
            self._next_log = now + LOG_EVERY
            self.show()

    # ---- the daemon's --once: observed ------------------------------------------------------

    def follow(self, files: Callable[[], Iterable[Any]]) -> None:
        """Sample `files()` (the daemon's file table) from a thread until `finish`."""
        self._sample(files)
        if self.bar or self.logging:
            self._thread = threading.Thread(target=self._run, args=(files,), daemon=True)
            self._thread.start()

    def _run(self, files: Callable[[], Iterable[Any]]) -> None:
        every = REFRESH_EVERY if self.bar else LOG_EVERY
        while not self._stop.wait(every):
            self._sample(files)
            self.show()

    def _sample(self, files: Callable[[], Iterable[Any]]) -> None:
        for _ in range(3):  # the table may change while we look: look again
            try:
                table = list(files())
                sizes = [self._size_of(f) for f in table]
                read = [_read_of(f, s) for f, s in zip(table, sizes, strict=True)]
                break
            except (RuntimeError, AttributeError):
                continue
        else:
            return
        done = sum(read)
        if self._base is None:
            self._base = done
        self.files_total = len(table)
        self.files_done = sum(1 for r, s in zip(read, sizes, strict=True) if r >= s)
        self.bytes_total = max(0, sum(sizes) - self._base)
        self.bytes_done = max(0, done - self._base)

    def _size_of(self, f: Any) -> int:
        """A file's size: what the daemon saw, else one stat when first met (the table learns
        sizes only as it opens files)."""
        key, size = f.key, max(0, int(f.size))
        known = self._sizes.get(key)
        if known is None:
            try:
                known = Path(f.path).stat().st_size
            except OSError:
                known = 0
        known = max(known, size)
        self._sizes[key] = known
        return known

    # ---- showing ----------------------------------------------------------------------------

    def start(self) -> None:
        """Show the bar (in a terminal); without one, log lines follow every LOG_EVERY s."""
        if not self.bar:
            return
        from rich.console import Console  # only in a terminal
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=Console(file=self._stream),
        )
        self._task = self._progress.add_task(self.what, total=1, info=self._info())
        self._progress.start()
        self._swap_log_stream(sys.stderr)  # now rich's proxy: log lines print above the bar

    def show(self) -> None:
        """Update the bar, or log `line()` (the caller paces it)."""
        if self._progress is not None:
            self._progress.update(
                self._task,
                total=max(1, self.bytes_total),
                completed=self.bytes_done,
                info=self._info(),
            )
        elif self.logging:
            self._logged = True
            log.info("%s", self.line())

    def _fields(self) -> dict[str, str]:
        elapsed = max(1e-6, time.monotonic() - self._start)
        return {
            "files": f"{self.files_done}/{self.files_total} files",
            "mb": f"{self.bytes_done / MB:,.1f}/{self.bytes_total / MB:,.1f} MB",
            "turns": f"{self._turns():,} turns",
            "rate": f"{self.bytes_done / MB / elapsed:,.1f} MB/s",
        }

    def _info(self) -> str:
        f = self._fields()
        waiting = self.waiting()
        return f"{f['files']}  {f['mb']}  {f['turns']}  {waiting or f['rate']}"

    def line(self) -> str:
        """The progress as one log line: files, MB and share, turns, rate, ETA."""
        f = self._fields()
        share = self.bytes_done / self.bytes_total if self.bytes_total else 1.0
        elapsed = max(1e-6, time.monotonic() - self._start)
        left = self.bytes_total - self.bytes_done
        rate = self.bytes_done / elapsed
        eta = f"ETA {left / rate:,.0f} s" if rate > 0 and left > 0 else "ETA -"
        eta = self.waiting() or eta
        return (
            f"{self.what}: {f['files']}, {f['mb']} ({share:.0%}), {f['turns']}, {f['rate']}, {eta}"
        )

    def finish(self, files: Callable[[], Iterable[Any]] | None = None) -> None:
        """Stop sampling; leave the bar, complete, on screen."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if files is not None:
            self._sample(files)
        if self._progress is None and self._logged:
            log.info("%s", self.line())  # the last word on a long backfill
        if self._progress is not None:
            self.show()
            self._progress.stop()
            self._progress = None
            self._swap_log_stream(None)

    def _swap_log_stream(self, proxy: IO[str] | None) -> None:
        for handler in logging.getLogger("tailerd").handlers:
            if not isinstance(handler, logging.StreamHandler):
                continue
            if proxy is not None and handler.stream is self._stream:
                self._swapped = getattr(self, "_swapped", [])
                self._swapped.append((handler, handler.setStream(proxy)))
        if proxy is None:
            for handler, stream in getattr(self, "_swapped", []):
                handler.setStream(stream)
            self._swapped = []


def _read_of(f: Any, size: int) -> int:
    """Bytes of a followed file read so far: its framer's count, or, for a file read whole (an
    agent database, a rewritten document: no framer moves), all of it once read."""
    if f.document and f.pipe.fmt is not None and not f.dirty:
        return size
    return min(int(f.pipe.framer.consumed), size)


def waiting_for(delivery: Any) -> str | None:
    """ "waiting for SINK (next attempt in N s)" while some sink fails and turns wait for it
    (every sink must acknowledge before a checkpoint moves), else None. `delivery`: the
    daemon's Delivery (its `health` by sink name, SinkHealth.retry_at in monotonic s)."""
    if not len(delivery):
        return None
    failing = {n: h for n, h in dict(delivery.health).items() if h.failing_since is not None}
    if not failing:
        return None
    wait = max(0.0, min(h.retry_at for h in failing.values()) - time.monotonic())
    return f"waiting for {', '.join(sorted(failing))} (next attempt in {wait:.0f} s)"


def gave_up_line(delivery: Any, unread_files: int, once_timeout: float) -> str:
    """The last line of a `--once` that gave up: which sinks made no progress for
    `once_timeout` s (with their last error), the turns not sent (unacknowledged) and the files
    not read to the end (reading waits while the sinks hold `max_pending_spans`)."""
    failing = sorted((n, h.last_error) for n, h in dict(delivery.health).items()
                     if h.failing_since is not None)  # fmt: skip
    named = ", ".join(f"{n} ({e})" if e else n for n, e in failing) or ", ".join(
        sorted(dict(delivery.health))
    )
    sink = "sinks" if len(failing) > 1 else "sink"
    return (
        f"gave up after once_timeout {once_timeout:g} s without progress of {sink} {named}:"
        f" {len(delivery)} turns not sent, {unread_files} files not read to the end;"
        " run again when the sink is back"
    )


class BatchLog:
    """One log line per batch a sink acknowledged: turns, sessions, files, sink."""

    def __init__(self, level: int = logging.INFO) -> None:
        self.level = level

    def __call__(self, sink: str, batch: Sequence[Pending]) -> None:
        if not log.isEnabledFor(self.level):
            return
        sessions = len({p.turn.session_id for p in batch})
        files = len({id(p.origin) for p in batch})
        log.log(
            self.level,
            "delivered %d turns (%d sessions, %d files) to %s",
            len(batch),
            sessions,
            files,
            sink,
        )


class LiveSummary:
    """Every `every` seconds (monotonic), one INFO line on what a live daemon did since the
    last: turns emitted, per sink delivered / rejected / retrying, files followed."""

    def __init__(self, every: float = SUMMARY_EVERY) -> None:
        self.every = every
        self._next = time.monotonic() + every
        self._turns = 0
        self._delivered: dict[str, int] = {}

    def tick(self, daemon: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        turns = daemon.counters.turns
        sinks = []
        for name, health in daemon.delivery.health.items():
            delta = health.delivered - self._delivered.get(name, 0)
            self._delivered[name] = health.delivered
            state = (
                f"retrying since {time.strftime('%H:%M:%S', time.localtime(health.failing_since))}"
                if health.failing_since is not None
                else "ok"
            )
            sinks.append(f"{name} {delta} delivered, {health.rejected} refused in all, {state}")
        log.info(
            "last %s: %d turns read, %d waiting; %d files followed; %s",
            f"{self.every / 60:.0f} min" if self.every >= 60 else f"{self.every:.0f} s",
            turns - self._turns,
            len(daemon.delivery),
            len(daemon.files),
            "; ".join(sinks) or "no sinks",
        )
        self._turns = turns


def run_once(daemon: Any, stop: threading.Event | None = None) -> bool:
    """The daemon's `run_once` (read everything, deliver, commit; reading ends early when
    `stop` is set) with its progress shown: a bar in a terminal, a log line every LOG_EVERY s
    otherwise, nothing with `-q`. Batches are then logged at DEBUG only (the progress says
    it)."""
    daemon.delivery.batch_log.level = logging.DEBUG
    shown = Backfill(
        "backfill", lambda: int(daemon.counters.turns), quiet=not log.isEnabledFor(logging.INFO)
    )

    def files() -> Iterable[Any]:
        return list(daemon.files.values())

    shown.waiting = lambda: waiting_for(daemon.delivery)
    shown.start()
    try:
        shown.follow(files)
        return bool(daemon.run_once(stop))
    finally:
        shown.finish(files)
