"""The composition root and main loop: files -> lines -> turns -> spans -> sinks -> checkpoints.

One thread owns every piece of mutable state; watchdog's thread only drops hints in a mailbox.
Each tick: collect hints (or rescan), pump changed files, close idle turns, deliver, commit.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import orjson

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.core.ledger import DeliveryLedger
from tailerd.delivery import Delivery, Pending
from tailerd.domain import DeadLetter, Outcome, Rejected, Turn
from tailerd.edges import dead_letter_store
from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint
from tailerd.edges.discovery import Globs, walk
from tailerd.edges.related_files import as_document, document_idle_close, source_for
from tailerd.edges.source_file import HEAD_BYTES, SourceFile, head_hash, open_reader
from tailerd.edges.watcher import Hints, Watcher
from tailerd.emitter import Emitter
from tailerd.formats.base import Source
from tailerd.redaction import Redactor
from tailerd.settings import Settings
from tailerd.sinks.base import Sink

log = logging.getLogger("tailerd")

REMOVED_RETENTION = 7 * 24 * 3600.0
STATUS = "status.json"
STATUS_INTERVAL = 1.0  # seconds; status.json also shows a sink failing while nothing else changes


@dataclass(slots=True)
class Counters:
    turns: int = 0
    dead_letters: int = 0
    started: float = field(default_factory=time.time)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        state_dir: Path,
        sinks: Sequence[Sink],
        redactor: Redactor | None = None,
    ) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.delivery = Delivery(
            sinks,
            settings.batch_spans,
            settings.max_pending_spans,
            on_settled=self._settled,
            on_batch_acknowledged=self.commit,  # a crash then re-sends at most one batch
        )
        self.redactor = redactor
        self.emitter = Emitter(include_content=redactor is None or redactor.keeps_content)
        self.store = CheckpointStore(state_dir)
        self.globs = Globs(settings.include, settings.exclude)
        self.mapped = formats.configured(settings.mapping, settings.format)
        self.hints = Hints()
        self.files: dict[str, SourceFile] = {}
        self.by_path: dict[str, str] = {}
        self.checkpoints: dict[str, FileCheckpoint] = {}
        self.counters = Counters()
        self._watcher: Watcher | None = None
        self._next_rescan = 0.0
        self._last_save = 0.0
        self._last_status = 0.0
        self._changed = False
        self._unreadable: set[str] = set()  # file keys already reported as unreadable

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, watch: bool = True) -> None:
        self.checkpoints = self.store.load()
        for warning in self.store.warnings:
            log.warning("%s", warning)
        if watch:
            self._watcher = Watcher(self.settings.watch, self.hints)
            self._watcher.start()
        self.scan()

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

    def run_once(self) -> bool:
        """Read everything there is, deliver it, commit. False if some turns stayed unsent."""
        deadline = time.monotonic() + self.settings.once_timeout
        while True:
            for f in list(self.files.values()):
                while f.dirty and not self.delivery.backpressured():
                    self.pump(f)
                    self.deliver()
            self.close_idle()
            self.deliver()
            self.commit(force=True)
            done = not self.delivery and not any(
                f.dirty for f in self.files.values() if not f.unrecognised
            )
            if done or time.monotonic() > deadline:
                return not self.delivery
            time.sleep(min(0.2, max(0.0, self.delivery.next_retry() - time.monotonic())))

    def drain(self, timeout: float) -> None:
        if self._watcher:
            self._watcher.stop()
        deadline = time.monotonic() + timeout
        while self.delivery and time.monotonic() < deadline:
            self.deliver()
            if self.delivery:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self.commit(force=True)
        self._write_status()
        if self.delivery:
            log.warning(
                "stopping with %d turns unacknowledged; they are re-read on next start",
                len(self.delivery),
            )
        for f in self.files.values():
            f.close()
        self.delivery.close()

    # ---- one tick ---------------------------------------------------------------------------

    def tick(self, max_wait: float = 1.0) -> None:
        now = time.monotonic()
        wait = min(self._next_rescan, self.delivery.next_retry(), now + max_wait) - now
        if not any(f.dirty for f in self.files.values()):
            self.hints.wake.wait(max(0.0, wait))
        paths, rescan = self.hints.take()
        now = time.monotonic()
        if rescan or now >= self._next_rescan or any(p not in self.by_path for p in paths):
            self.scan()
            targets = list(self.files.values())
        else:
            targets = [self.files[self.by_path[p]] for p in paths]
            targets += [f for f in self.files.values() if f.dirty and f not in targets]
        for f in targets:
            if self.delivery.backpressured():
                break
            self.pump(f)
        self.close_idle()
        self.deliver()
        self.commit()
        if time.monotonic() - self._last_status >= STATUS_INTERVAL:
            self._write_status()

    # ---- discovery --------------------------------------------------------------------------

    def scan(self) -> None:
        self._next_rescan = time.monotonic() + self.settings.rescan_interval
        seen: set[str] = set()
        for path, st in walk(self.settings.watch, self.globs):
            key = f"{st.st_dev}:{st.st_ino}"
            seen.add(key)
            known = self.files.get(key)
            if known is not None:
                self._moved(known, path)
                known.dirty = known.dirty or st.st_size != known.size or st.st_mtime != known.mtime
            elif not formats.is_auxiliary(PurePath(path)):
                self._track(path, key, st)
        for key, f in list(self.files.items()):
            if key not in seen and not f.gone:
                f.gone, f.dirty = True, True
                log.info("file gone; draining what is left path=%s", f.path)
        self._retire_drained()

    def _moved(self, f: SourceFile, path: Path) -> None:
        if f.path != path:
            self.by_path.pop(str(f.path), None)
            f.path = path
            f.checkpoint.path = str(path)
            f.gone = False
            self._changed = True
        self.by_path[str(path)] = f.key

    def _track(self, path: Path, key: str, st: os.stat_result) -> None:
        try:
            reader = open_reader(path)
        except Exception as exc:
            if key not in self._unreadable:
                self._unreadable.add(key)
                log.warning("cannot read path=%s error=%s", path, getattr(exc, "strerror", exc))
            return
        self._unreadable.discard(key)
        head = reader.read(0, HEAD_BYTES)
        cp = self._resume_point(path, key, reader.stat(), head)
        f = SourceFile(
            path=path,
            reader=reader,
            checkpoint=cp,
            framer=LineFramer(offset=cp.offset, max_line=self.settings.max_line_bytes),
            ledger=DeliveryLedger.restore(cp.offset, cp.resolved_ahead),
        )
        f.sent_keys = set(cp.sent_keys)
        self.files[key] = f
        self.by_path[str(path)] = key
        self.checkpoints[key] = cp
        self._changed = True

    def _resume_point(
        self, path: Path, key: str, st: os.stat_result, head: bytes
    ) -> FileCheckpoint:
        """The checkpoint to resume from: the same inode with the same first bytes, or the same
        content under another name; else a fresh start at 0."""
        stable = Source(str(path)).stable_name
        for doc in self.checkpoints.values():
            if doc.document and doc.path == str(path):
                return dataclasses.replace(doc, device=st.st_dev, inode=st.st_ino, removed_at=None)
        # Another name with the same content: a rollout compressed or archived (same stable
        # name), or a copy made by copytruncate rotation (a full identical head, 1 KiB).
        candidates: list[FileCheckpoint | None] = [self.checkpoints.get(key)] + [
            c
            for c in self.checkpoints.values()
            if c.key != key and (c.stable_name == stable or c.head_len == HEAD_BYTES)
        ]
        for cp in candidates:
            if cp is None or cp.head_len > len(head) or cp.offset > st.st_size:
                continue
            if head_hash(head[: cp.head_len]) == cp.head_hash:
                resumed = dataclasses.replace(
                    cp, path=str(path), device=st.st_dev, inode=st.st_ino, removed_at=None
                )
                if cp.key != key:
                    log.info("same content as path=%s; resuming at offset=%d", cp.path, cp.offset)
                return resumed
        return FileCheckpoint(
            path=str(path),
            device=st.st_dev,
            inode=st.st_ino,
            head_len=len(head),
            head_hash=head_hash(head),
            stable_name=stable,
        )

    def _retire_drained(self) -> None:
        now = time.time()
        for key, f in list(self.files.items()):
            parser_idle = f.parser is None or f.parser.pending_from() is None
            if f.gone and not f.dirty and f.ledger.unresolved == 0 and parser_idle:
                f.close()
                del self.files[key]
                self.by_path.pop(str(f.path), None)
                f.checkpoint.removed_at = now
                self._changed = True
        for key, cp in list(self.checkpoints.items()):
            if cp.removed_at is not None and now - cp.removed_at > REMOVED_RETENTION:
                del self.checkpoints[key]
                self._changed = True

    # ---- reading ----------------------------------------------------------------------------

    def pump(self, f: SourceFile) -> None:
        """Read what is new in one file (up to the budget) and turn it into pending turns."""
        try:
            f.refresh()
        except OSError:
            f.dirty = False
            return
        if f.size < f.framer.consumed:
            self._restart_file(f, f"file shrank to {f.size} bytes (truncated)")
        elif not f.checkpoint.document and self._head_changed(f):
            # truncated and written again past the old end before we looked (copytruncate)
            self._restart_file(f, "first bytes changed (file rewritten)")
        if f.fmt is None and not self._choose_format(f):
            f.dirty = False
            return
        if f.document:
            self._pump_document(f, final=False)
            return
        assert f.parser is not None
        for item in f.read_lines(self.settings.read_budget):
            if isinstance(item, DeadLetter):
                self._dead_letter(f, item.start, item.end, item.reason)
                continue
            for out in f.parser.feed(item):
                self._accept(f, out)
        self._grow_head(f)

    def _choose_format(self, f: SourceFile) -> bool:
        head = f.head(64 * 1024)
        if b"\n" not in head and not self.settings.format:
            return False  # wait for a whole first line before deciding
        fmt = formats.choose(PurePath(f.path), head, self.settings.format, self.mapped)
        if fmt is None:
            if not f.unrecognised:
                log.info("no format recognises path=%s; ignoring it", f.path)
            f.unrecognised = True
            return False
        # A parser context saved by another format (the file was replaced) means nothing here.
        context = f.checkpoint.context if f.checkpoint.format == fmt.name else None
        f.fmt, f.unrecognised = fmt, False
        f.checkpoint.format = fmt.name
        if as_document(fmt, f.path):
            f.document = f.checkpoint.document = True
            return True
        f.parser = fmt.new_parser(source_for(f.path, fmt, self.settings), context)
        return True

    def _pump_document(self, f: SourceFile, final: bool) -> None:
        """A file rewritten whole: re-read it and send the turns whose key is new."""
        document = as_document(f.fmt, f.path) if f.fmt else None
        assert document is not None
        source = source_for(f.path, document, self.settings)
        turns = document.document_turns(f.reader.read(0, f.size), source, final=final)
        for turn in turns:
            if turn.key not in f.sent_keys and not f.ledger.is_pending(turn.key):
                self._accept(f, turn)
        f.dirty, f.document_final = False, final

    def _restart_file(self, f: SourceFile, why: str) -> None:
        log.warning("%s; reading again from the start path=%s", why, f.path)
        head = f.head()
        f.framer = LineFramer(offset=0, max_line=self.settings.max_line_bytes)
        f.ledger = DeliveryLedger()
        f.parser, f.fmt = None, None
        cp = f.checkpoint
        cp.offset, cp.context, cp.resolved_ahead = 0, {}, []
        cp.head_len, cp.head_hash = len(head), head_hash(head)
        self._changed = True

    def _head_changed(self, f: SourceFile) -> bool:
        cp = f.checkpoint
        return head_hash(f.reader.read(0, cp.head_len)) != cp.head_hash

    def _grow_head(self, f: SourceFile) -> None:
        """A file first seen shorter than HEAD_BYTES gets its fingerprint extended as it grows."""
        cp = f.checkpoint
        if cp.head_len < HEAD_BYTES and f.size > cp.head_len:
            head = f.head()
            if head_hash(head[: cp.head_len]) != cp.head_hash:
                self._restart_file(f, "first bytes changed (file rewritten)")
                return
            cp.head_len, cp.head_hash = len(head), head_hash(head)
            self._changed = True

    def _accept(self, f: SourceFile, item: Turn | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self._dead_letter(f, item.start, item.end, item.reason)
            return
        if f.ledger.already_resolved(item.key, item.start):
            return
        turn = self.redactor.apply(item) if self.redactor else item
        try:
            spans = self.emitter.emit(turn)
        except Exception as exc:
            self._dead_letter(f, item.start, item.end, f"cannot build spans: {exc!r}")
            return
        f.ledger.emitted(item.key, item.start)
        self.delivery.add(f, item, spans)
        f.checkpoint.turns_emitted += 1
        self.counters.turns += 1

    def close_idle(self) -> None:
        now = time.time()
        for f in list(self.files.values()):
            if f.document and not f.document_final and f.fmt is not None:
                if now - f.mtime >= document_idle_close(f.fmt, self.settings):
                    self._pump_document(f, final=True)
                continue
            if f.parser is None or f.parser.pending_from() is None:
                continue
            for turn in f.parser.close_idle(max(0.0, now - f.mtime)):
                self._accept(f, turn)

    def _dead_letter(
        self, f: SourceFile, start: int, end: int, reason: str, turn: tuple[str, str] | None = None
    ) -> None:
        """Record input that could not be delivered: a line (turn=None) or a turn a sink
        refused (turn=(key, sink)), which `tailerd retry` can send again."""
        f.checkpoint.dead_letters += 1
        self.counters.dead_letters += 1
        log.warning("dead letter path=%s offset=%d reason=%s", f.path, start, reason)
        record: dict[str, object] = {"time": time.time(), "path": str(f.path), "start": start}
        record.update(end=end, reason=reason, kind="line")
        if turn is not None:
            record.update(kind="turn", key=turn[0], sink=turn[1], format=f.checkpoint.format)
        dead_letter_store.append(self.state_dir, record)

    # ---- delivery ---------------------------------------------------------------------------

    def deliver(self) -> None:
        self.delivery.deliver()

    def _settled(self, p: Pending, sink_name: str, outcome: Outcome) -> None:
        """One sink is done with a turn; once all are, the file's checkpoint may pass it."""
        f: SourceFile = p.origin
        if isinstance(outcome, Rejected):
            reason = f"{sink_name} rejected turn {p.turn.key}: {outcome.reason}"
            self._dead_letter(f, p.turn.start, p.turn.end, reason, (p.turn.key, sink_name))
        if p.waiting:
            return
        f.ledger.resolved(p.turn.key)
        if f.document:
            f.sent_keys.add(p.turn.key)
            f.checkpoint.sent_keys = sorted(f.sent_keys)
            self._changed = True

    # ---- checkpoints ------------------------------------------------------------------------

    def commit(self, force: bool = False) -> None:
        for f in self.files.values():
            cp = f.checkpoint
            if f.document:
                continue
            pending = f.parser.pending_from() if f.parser else None
            offset = f.ledger.advance(f.framer.consumed, pending)
            ahead = f.ledger.resolved_ahead()
            if offset != cp.offset or ahead != cp.resolved_ahead:
                cp.offset, cp.resolved_ahead = offset, ahead
                cp.context = f.parser.snapshot() if f.parser else {}
                self._changed = True
        now = time.monotonic()
        if self._changed and (force or now - self._last_save >= self.settings.checkpoint_interval):
            self.store.save(self.checkpoints)
            self._write_status()
            self._changed, self._last_save = False, now

    def _write_status(self) -> None:
        """What `tailerd status` shows of the running daemon (files' offsets come from the
        checkpoints): per sink its delivery health, per file what the parser noticed."""
        status = {
            "pid": os.getpid(),
            "time": time.time(),
            "started": self.counters.started,
            "turns_emitted": self.counters.turns,
            "dead_letters": self.counters.dead_letters,
            "sinks": self.delivery.report(),
            "redactions": self.redactor.counts() if self.redactor else {},
            "files": {str(f.path): _file_status(f) for f in self.files.values()},
        }
        tmp = self.state_dir / (STATUS + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, orjson.dumps(status))
        finally:
            os.close(fd)
        tmp.replace(self.state_dir / STATUS)
        self._last_status = time.monotonic()


def _file_status(f: SourceFile) -> dict[str, object]:
    unknown = getattr(f.parser, "unknown_types", None)
    return {
        "format": f.fmt.name if f.fmt else None,
        "read": f.framer.consumed,
        "unrecognised": f.unrecognised,
        "pending_turns": f.ledger.unresolved,
        "unknown_record_types": unknown() if callable(unknown) else {},
    }
