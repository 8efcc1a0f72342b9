"""The scheduler between the parts: file table → pipeline → redaction → emitter → delivery →
checkpoints. It owns every piece of mutable state on one thread; watchdog's thread only drops
hints in a mailbox, and the sinks' workers only post acknowledgements back.

A tick costs what changed: the paths inotify named, the files with unread bytes, the files with
open turns (for idle closing), and the checkpoints of files that moved. Nothing is O(all files)
except the start-up walk, an inotify overflow and the slow safety-net walk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tailerd import formats
from tailerd.delivery import JOIN_TIMEOUT, Delivery, Pending
from tailerd.domain import Outcome, Rejected
from tailerd.edges.agent_db.followed import DatabaseFiles
from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint
from tailerd.edges.source_file import SourceFile
from tailerd.edges.watcher import Hints, Watching
from tailerd.emitter import Emitter
from tailerd.file_pump import FilePump
from tailerd.history import PRUNE_INTERVAL, HistoryIndex
from tailerd.redaction import Redactor
from tailerd.settings import Settings
from tailerd.sinks.base import Sink
from tailerd.status import READ_SIGNATURE, Counters, OpenSince, StatusWriter
from tailerd.tracking import FileTable

log = logging.getLogger("tailerd")

IDLE_CHECK = 1.0  # seconds between idle-close checks while some turn is open
POOL_SWEEP = 5.0  # seconds between closing idle descriptors


class Daemon(FilePump):
    def __init__(
        self,
        settings: Settings,
        state_dir: Path,
        sinks: Sequence[Sink],
        redactor: Redactor | None = None,
        *,
        threaded_delivery: bool = True,
    ) -> None:
        """`threaded_delivery=False` sends on the loop thread (deterministic model tests)."""
        self.settings = settings
        self.state_dir = state_dir
        self.hints = Hints()
        self._threaded = threaded_delivery
        self.delivery = self._delivery(sinks, settings)
        self.redactor = redactor
        self._emitter: Emitter | None = None
        self._emitter_lock = threading.Lock()
        self.store = CheckpointStore(state_dir)
        # agents' SQLite databases (edges/agent_db), with the settings a reload may replace
        self.databases = DatabaseFiles(self.store, lambda: self.settings)
        # A dry run (every sink is `console`) moves no checkpoint and writes no history.
        self.dry_run = bool(sinks) and all(s.name == "console" for s in sinks)
        self.history = HistoryIndex(self.store, settings.history_retention, write=not self.dry_run)
        self._refused: set[Pending] = set()  # settled by some sink as Rejected
        self.mapped = formats.configured(settings.mapping, settings.format)
        self.table = FileTable(settings, {})
        self.counters = Counters()
        self.status = StatusWriter(state_dir)
        self.start_failures = {}
        self.read_signatures = {}
        self._open_turns: set[str] = set()  # keys of files whose parser holds an open turn
        self.open_since = OpenSince()  # when tailerd first saw each file's oldest open turn
        self.watching = Watching(self.hints)  # inotify, or polling
        now = time.monotonic()
        self._next_rescan = now + settings.rescan_interval
        self._next_idle_check = now
        self._next_root_check = now
        self._next_sweep = now + POOL_SWEEP
        self._next_prune = now + PRUNE_INTERVAL
        self._last_save = 0.0

    @property
    def files(self) -> dict[str, SourceFile]:
        return self.table.files

    @property
    def emitter(self) -> Emitter:
        with self._emitter_lock:
            return self._make_emitter()

    def _delivery(self, sinks: Sequence[Sink], settings: Settings) -> Delivery:
        return Delivery(
            sinks,
            settings.batch_spans,
            settings.max_pending_spans,
            on_settled=self._settled,
            on_batch_acknowledged=self.commit,  # a crash then re-sends at most one batch
            wake=self.hints.wake,
            threaded=self._threaded,
        )

    def replace_sinks(self, sinks: Sequence[Sink], settings: Settings) -> bool:
        """A reload's new sinks, once every turn in flight is settled and committed (waiting
        up to shutdown_timeout); the old sinks are closed. False (nothing changed) if turns
        are still unacknowledged then: a reload must not drop them."""
        if not self.delivery.drain(settings.shutdown_timeout):
            return False
        self.commit(force=True)
        self.delivery.close()
        self.delivery = self._delivery(sinks, settings)
        return True

    def use_redactor(self, redactor: Redactor) -> None:
        """A reload's redaction rules, for the turns read from now on."""
        with self._emitter_lock:
            if self._emitter is not None and redactor.keeps_content != (
                self.redactor is None or self.redactor.keeps_content
            ):
                self._emitter = None  # built again with the new content policy
            self.redactor = redactor

    def _make_emitter(self) -> Emitter:
        if self._emitter is None:
            self._emitter = Emitter(
                include_content=self.redactor is None or self.redactor.keeps_content
            )
        return self._emitter

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, watch: bool = True) -> None:
        checkpoints = self.store.load()  # a corrupt store raises here, before any thread
        # weave's import takes about a second: let it run while the trees are walked (the
        # emitter waits for it on the first turn).
        self._warm = threading.Thread(target=self._warm_up, name="tailerd-warm-up", daemon=True)
        self._warm.start()
        for cp in checkpoints.values():  # the table __init__ built, given its checkpoints
            self.table.index.add(cp)
        for warning in self.store.warnings:
            log.warning("%s", warning)
        self.history.prune(time.time())
        if self.dry_run:
            log.info("dry run (console only): checkpoints and the history index are not written")
        if watch:
            self.start_watcher()
        self.table.scan()
        if watch:
            self._warm.join()  # ready means ready to ship: the emitter is built

    def _warm_up(self) -> None:
        """Build the emitter (imports weave) ahead of the first turn. It never raises: a
        failure here (or an import cut short by the interpreter exiting on an error path)
        is said at DEBUG only, and the first turn builds the emitter again for real."""
        try:
            self.emitter  # noqa: B018 (the property builds it)
        except BaseException as exc:  # a thread's traceback at exit is noise, never news
            try:
                log.debug("warming up the emitter failed (retried on the first turn): %r", exc)
            except BaseException:  # logging itself torn down at interpreter exit
                return

    def start_watcher(self) -> None:
        """inotify on the roots, or a walk every poll_interval (edges/watcher.py Watching)."""
        settings = self.settings
        self.watching.start(settings.watch, settings.watch_mode, settings.poll_interval)
        self._next_rescan = time.monotonic() + self._scan_interval()

    def _scan_interval(self) -> float:
        s = self.settings
        return s.rescan_interval if self.watching.inotify else s.poll_interval

    def run(
        self,
        stop: threading.Event,
        on_tick: Callable[[], None] | None = None,
        max_wait: float = 1.0,
    ) -> None:
        """Serve until `stop`; `on_tick` runs at least every `max_wait` seconds (watchdog)."""
        while not stop.is_set():
            self.tick(max_wait)
            if on_tick:
                on_tick()
        self.drain(self.settings.shutdown_timeout)

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Read everything there is, deliver it, commit. False if some turns stayed unsent
        because the sinks made no progress for `once_timeout` seconds, or if `stop` was set
        (reading stops within one file's read budget; the caller drains what is in flight)."""
        deadline = time.monotonic() + self.settings.once_timeout
        progress = (-1, -1)
        while True:
            self._pump_dirty(once=True, stop=stop)
            if stop is not None and stop.is_set():
                return False
            self.close_idle(force=True)
            self.deliver()
            self.commit(force=True)
            if not self.delivery and not self.table.dirty:
                return True
            now = time.monotonic()
            moved = (self.counters.turns, len(self.delivery))
            if moved != progress:
                progress, deadline = moved, now + self.settings.once_timeout
            elif now > deadline:
                return False
            wait = max(0.0, min(0.2, self.delivery.next_retry() - now))
            self.delivery.poll(wait)

    def drain(self, timeout: float) -> None:
        self.watching.stop()
        # shutdown_timeout is the whole budget: closing gives the workers JOIN_TIMEOUT more.
        self.delivery.drain(max(0.0, timeout - JOIN_TIMEOUT))
        self.commit(force=True)
        self._write_status(force=True)
        if self.delivery:
            log.warning(
                "stopping with %d turns unacknowledged; they are re-read on next start",
                len(self.delivery),
            )
        self.table.pool.close_all()
        self.delivery.close()
        self.store.close()

    # ---- one tick ---------------------------------------------------------------------------

    def tick(self, max_wait: float = 1.0) -> None:
        now = time.monotonic()
        deadline = min(self._next_rescan, self.delivery.next_retry(), now + max_wait)
        if self._open_turns:
            deadline = min(deadline, self._next_idle_check)
        if not self.table.dirty or self.delivery.backpressured():
            # (files waiting while a sink fails are read when an answer sets `wake`)
            self.hints.wake.wait(max(0.0, deadline - now))
        taken = self.hints.take()
        if taken.exhausted and self.watching.exhausted(
            taken.exhausted, self.settings.poll_interval
        ):
            taken.rescan = True  # inotify ran out of watches midway: polling from now on
        now = time.monotonic()
        if taken.rescan or now >= self._next_rescan:
            self._next_rescan = now + self._scan_interval()
            if not self.watching.inotify or taken.rescan:
                self.table.scan()  # polling (no inotify), or events were lost
            else:
                self.table.safety_net()
        self._follow_roots(now)
        for directory in taken.dirs:
            self.table.scan([Path(directory)])
        for path in taken.paths:
            self.table.look_at(path)
        self.table.hold_unread()
        self._pump_dirty(once=False)
        if now >= self._next_idle_check:
            self._next_idle_check = now + IDLE_CHECK
            self.close_idle()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL
            self.history.prune(time.time())
        if now >= self._next_sweep:
            self._next_sweep = now + POOL_SWEEP
            self.table.close_idle_descriptors()
            self.table.purge_retired()
        self.table.retire_drained()
        self.deliver()
        self.commit()
        self._write_status()

    def _follow_roots(self, now: float) -> None:
        """Under inotify: roots waited for are looked for (a stat each, every second), and
        roots that appeared or directories readable again get their watches."""
        if self.watching.inotify and self.table.roots.missing and now >= self._next_root_check:
            self._next_root_check = now + IDLE_CHECK
            self.table.look_for_roots()
        self.watching.add(self.table.watchable)
        self.table.watchable.clear()

    # ---- reading ----------------------------------------------------------------------------

    def _pump_dirty(self, once: bool, stop: threading.Event | None = None) -> None:
        """Read every file with unread bytes (each up to the read budget per round), until
        `stop` is set."""
        while self.table.dirty and not self.delivery.backpressured():
            for key, f in list(self.table.dirty.items()):
                if self.delivery.backpressured() or (stop is not None and stop.is_set()):
                    return
                try:
                    self.pump(f)
                except Exception as exc:  # a bug met on one file must not stop the others
                    self._quarantine(f, exc)
                if not f.dirty:
                    self.table.dirty.pop(key, None)
                self.deliver()
            if not once:
                return

    # ---- delivery ---------------------------------------------------------------------------

    def deliver(self) -> None:
        self.delivery.deliver()

    def _settled(self, p: Pending, sink_name: str, outcome: Outcome) -> None:
        """One sink is done with a turn; once all are, the file's checkpoint may pass it."""
        f: SourceFile = p.origin
        if isinstance(outcome, Rejected):
            reason = f"{sink_name} rejected turn {p.turn.key}: {outcome.reason}"
            self._dead_letter(f, p.turn.start, p.turn.end, reason, (p.turn.key, sink_name))
            self._refused.add(p)
        if p.waiting:
            return
        refused = p in self._refused
        self._refused.discard(p)
        self.history.settled(p.turn, f.key, not refused, time.time())
        f.ledger.resolved(p.turn.key)
        self.table.changed.add(f.key)
        if f.document and not self.databases.settled(f, p.turn.key):
            self._mark_sent(f, p.turn.key)

    # ---- checkpoints ------------------------------------------------------------------------

    def commit(self, force: bool = False) -> None:
        """Move the checkpoints of the files that changed, and save only those."""
        table = self.table
        changed = []
        for key in list(table.changed):
            f = table.files.get(key)
            self.status.note(key, f, self.settings, self.open_since.get(key))
            if f is None:
                self.read_signatures.pop(key, None)  # let go of (retired or forgotten)
            cp = table.index.get(key)
            if cp is None:
                continue
            if f is not None and f.checkpoint is cp and not f.document and cp.head_len >= 0:
                offset = f.ledger.advance(f.pipe.framer.consumed, f.pipe.pending_from())
                ahead = f.ledger.resolved_ahead()
                if offset != cp.offset or ahead != cp.resolved_ahead:
                    cp.offset, cp.resolved_ahead = offset, ahead
                    cp.context = f.pipe.snapshot()
            elif f is not None and f.checkpoint is cp and f.document:
                self._note_shipped_read(f, cp)
            changed.append(cp)
        now = time.monotonic()
        due = force or now - self._last_save >= self.settings.checkpoint_interval
        shipped = self.history.take_rows()
        cursors = self.databases.pending_cursors()
        forgotten = self.databases.forgotten_cursors()
        written = changed or table.removed or shipped or cursors or forgotten
        if written and due and not self.dry_run:
            self._last_save = now
            self.store.save(changed, table.removed, shipped, cursors, forgotten)
            self.history.committed(shipped)
            self.databases.committed()
            table.changed.clear()
            table.removed.clear()
            self.status.touch()
        if force:
            self._write_status(force=True)

    def _note_shipped_read(self, f: SourceFile, cp: FileCheckpoint) -> None:
        """A file read whole whose last read is read to its end and acknowledged by every sink
        keeps that read's signature in its checkpoint (`tailerd status`: up to date)."""
        if f.dirty or f.ledger.unresolved:
            return
        if f.key in self.databases:
            sig = self.databases.read_signature(f)
        else:
            sig = self.read_signatures.get(f.key)
        if sig is not None and cp.context.get(READ_SIGNATURE) != list(sig):
            cp.context = {**cp.context, READ_SIGNATURE: list(sig)}

    def _write_status(self, force: bool = False) -> None:
        self.status.write(self, force)
