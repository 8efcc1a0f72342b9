"""Running tailerd: lock the state dir, build sinks and the daemon, serve until told to stop."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from tailerd import progress, sinks
from tailerd.content_policy import build_redactor
from tailerd.daemon import Daemon
from tailerd.edges.heartbeat import Heartbeat
from tailerd.edges.signals import (
    STOP,
    catch_early,
    reload_requested,
    stop_exit_code,
    wake_on_signal,
)
from tailerd.edges.source_file import SourceFile
from tailerd.edges.state_dir import (
    StateLock,
    prepare,
    record_data_dir,
    resolve_data_dir,
    resolve_state_dir,
)
from tailerd.edges.systemd import Notifier
from tailerd.errors import EX_TEMPFAIL
from tailerd.settings import Settings
from tailerd.status import open_turn_lines

log = logging.getLogger("tailerd")

STOP_GRACE = 1.5  # seconds past shutdown_timeout for the loop to notice the stop and close


def build_daemon(settings: Settings) -> tuple[Daemon, StateLock]:
    state_dir = prepare(resolve_state_dir(settings.state_dir))
    lock = StateLock(state_dir)
    lock.acquire()
    try:
        redactor = build_redactor(settings)
        data_dir = resolve_data_dir(settings.data_dir, state_dir)
        outputs = sinks.build(settings, data_dir)
        if "local" in settings.sinks:  # reports given only --state-dir find the store
            record_data_dir(state_dir, data_dir)
        return Daemon(settings, state_dir, outputs, redactor), lock
    except BaseException:
        lock.release()
        raise


def run(settings: Settings, load: Callable[[], Settings] | None = None) -> int:
    """Serve (or, with `once`, read what is there and exit); `load` reads the configuration
    again on SIGHUP (tailerd/reload.py)."""
    daemon, lock = build_daemon(settings)
    try:
        if settings.once:
            return _once(daemon)
        return _serve(daemon, load)
    finally:
        lock.release()


def _once(daemon: Daemon) -> int:
    """Read what is there, deliver, commit; 0, or EX_TEMPFAIL if a sink made no progress for
    once_timeout. SIGINT/SIGTERM (STOP, set by the handlers `tailerd.cli` installs) stop the
    reading at once; what is in flight is drained for at most shutdown_timeout and committed,
    and the exit code is 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM): the
    backfill is not complete, and the next `--once` sends exactly the rest. A format that could
    not start raises FormatStartError (a ConfigError: exit 78) once the rest was committed."""
    finished = threading.Event()
    bound = daemon.settings.shutdown_timeout + STOP_GRACE
    guard = (STOP, daemon.hints.wake, bound, finished, stop_exit_code)
    threading.Thread(target=_stop_promptly, args=guard, daemon=True).start()
    try:
        daemon.start(watch=False)
        complete = progress.run_once(daemon, STOP)  # with a progress bar or log lines
        stopped = STOP.is_set()
        unread = sum(1 for f in daemon.files.values() if _unread(f))
        daemon.drain(daemon.settings.shutdown_timeout if stopped else 0)
        _summary(daemon)
        if not complete and not stopped:  # no sink progress for once_timeout: say so, last
            timeout = daemon.settings.once_timeout
            log.warning("%s", progress.gave_up_line(daemon.delivery, unread, timeout))
    finally:
        finished.set()
    if stopped:
        return stop_exit_code()
    if (error := daemon.start_error()) is not None:
        raise error  # a format could not start: its files are unread (exit 78, one line)
    return 0 if complete else EX_TEMPFAIL


def _serve(daemon: Daemon, load: Callable[[], Settings] | None) -> int:
    stop = STOP
    catch_early()
    bound = daemon.settings.shutdown_timeout + STOP_GRACE
    guard = (stop, daemon.hints.wake, bound)
    threading.Thread(target=_stop_promptly, args=guard, daemon=True).start()
    notifier = Notifier()
    wake_on_signal(daemon.hints.wake)  # a SIGHUP is seen at once, not at the next tick
    daemon.start(watch=True)
    missing = daemon.table.roots.missing
    watched = ", ".join(str(p) for p in daemon.settings.watch if p not in missing) or "nothing yet"
    waiting = f"; waiting for {len(missing)} more (tailerd doctor lists them)" if missing else ""
    sink_names = ",".join(s.name for s in daemon.delivery.sinks)
    log.info("watching %s%s; sinks %s", watched, waiting, sink_names)
    notifier.ready(f"tailing {len(daemon.files)} files")

    data_dir = resolve_data_dir(daemon.settings.data_dir, daemon.state_dir)

    summary = progress.LiveSummary()

    heartbeat = Heartbeat(daemon.state_dir, daemon.settings.heartbeat_interval)

    def between_ticks() -> None:  # on the loop's thread: a safe point to reload
        notifier.watchdog()
        heartbeat.beat()
        summary.tick(daemon)
        if reload_requested() and load is not None:
            from tailerd.reload import reload

            reload(daemon, load, notifier, data_dir)

    daemon.run(stop, between_ticks, max_wait=min(1.0, notifier.watchdog_interval or 1.0))
    notifier.stopping()
    _summary(daemon)
    return 0


def _unread(f: SourceFile) -> bool:
    """Bytes of `f` may be waiting (reading stopped before its end: backpressure, a stop)."""
    return f.dirty and not f.quarantined and not f.gone


def _stop_promptly(
    stop: threading.Event,
    wake: threading.Event,
    bound: float,
    finished: threading.Event | None = None,
    exit_code: Callable[[], int] = lambda: 0,
) -> None:
    """Wake the loop when told to stop. A request in flight waits for the sink's own timeout,
    which a stop must not: past the bound, leave with `exit_code()`. Nothing is lost: what was
    not committed is re-read (and re-sent) on the next start. `finished` (a run that ends by
    itself, `--once`): once set, the guard leaves without a word."""
    if finished is None:
        finished = threading.Event()
        stop.wait()
    else:
        while not stop.wait(0.25):
            if finished.is_set():
                return
        if finished.is_set():
            return
    log.info(
        "stopping: finishing what is being sent (at most %g s: shutdown_timeout %g s + %g s to"
        " close), then committing",
        bound,
        bound - STOP_GRACE,
        STOP_GRACE,
    )
    wake.set()
    if finished.wait(bound):
        return
    log.warning("stop took longer than %.1f s (a sink is not answering); exiting now", bound)
    os._exit(exit_code())


def _summary(daemon: Daemon) -> None:
    """The end of a run, honestly: what was sent, what was not acknowledged, and which turns
    are still open (not sent: they wait for their close rule), one line per file, capped."""
    c = daemon.counters
    # turns not finished at the end of a file read to its end (a file whose reading waited
    # for the sinks has no such end yet: its last turn read is no open turn)
    still_open = [(f, turns) for f, turns in daemon.still_open() if not _unread(f)]
    turns_open = sum(len(turns) for _, turns in still_open)
    log.info(
        "done: %d files, %d turns emitted, %d duplicates skipped, %d dead letters,"
        " %d unacknowledged, %d turns still open in %d files%s",
        len(daemon.files),
        c.turns,
        c.duplicates_skipped,
        c.dead_letters,
        len(daemon.delivery),
        turns_open,
        len(still_open),
        " (not sent yet: sent by a later run once finished)" if turns_open else "",
    )
    sent = ", ".join(f"{n} {h.delivered}" for n, h in daemon.delivery.health.items())
    log.info(
        "%s: turns delivered per sink: %s; what was not acknowledged is read again next start",
        "dry run, nothing committed" if daemon.dry_run else "committed",
        sent or "-",
    )
    files = [(str(f.path), turns, f.mtime) for f, turns in still_open]
    for line in open_turn_lines(files, time.time()):
        log.info("open: %s", line)
