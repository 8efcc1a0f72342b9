"""The daemon's per-file reading: a file's new bytes (or its whole document, or its agent
database's changed sessions) through its pipeline into pending turns, idle closing, and dead
letters. `Daemon` (tailerd/daemon.py) runs the loop, delivery and checkpoints around it; this
mixin only names the parts of the daemon it uses.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tailerd.delivery import Delivery
from tailerd.domain import DeadLetter, Turn
from tailerd.edges.agent_db import Signature, signature
from tailerd.edges.agent_db.followed import DatabaseFiles
from tailerd.edges.source_file import SourceFile
from tailerd.emitter import Emitter
from tailerd.formats.base import Format
from tailerd.formats.guard import FormatStartError
from tailerd.history import HistoryIndex
from tailerd.pipeline import format_head
from tailerd.redaction import Redactor
from tailerd.settings import Settings
from tailerd.status import Counters, OpenSince, OpenTurn, StatusWriter, still_open
from tailerd.tracking import FileTable

log = logging.getLogger("tailerd")

NAMED_FILES = 3  # files named per format that could not start, then "and N more"


class FilePump:
    """Reading files into pending turns; mixed into `Daemon`, which sets these attributes."""

    settings: Settings
    table: FileTable
    mapped: tuple[Format, ...]
    databases: DatabaseFiles
    delivery: Delivery
    history: HistoryIndex
    redactor: Redactor | None
    counters: Counters
    status: StatusWriter
    open_since: OpenSince
    _open_turns: set[str]
    start_failures: dict[str, list[Path]]  # why a format could not start -> its files unread
    read_signatures: dict[str, Signature | None]  # document key -> signature of its last read

    @property
    def emitter(self) -> Emitter:
        raise NotImplementedError

    def pump(self, f: SourceFile) -> None:
        """Read what is new in one file (up to the budget) and turn it into pending turns."""
        table = self.table
        if not table.open(f):
            return
        if f.size < f.pipe.framer.consumed:
            table.restart(f, f"file shrank to {f.size} bytes (truncated)")
        elif not f.document and table.head_changed(f):
            # truncated and written again past the old end before we looked (copytruncate)
            table.restart(f, "first bytes changed (file rewritten)")
        if f.pipe.fmt is None and not self._choose_format(f):
            f.dirty = False
            return
        if f.document:
            if self._pump_database(f, idle=False) is None:
                self._pump_document(f, final=False)
            table.changed.add(f.key)  # its read signature may move at the next commit
            return
        for item in f.read_turns(self.settings.read_budget):
            self._accept(f, item)
        table.grow_head(f)
        table.changed.add(f.key)
        if f.pipe.pending_from() is not None:
            self._open_turns.add(f.key)
        self.open_since.track(f)

    def _quarantine(self, f: SourceFile, exc: Exception) -> None:
        f.quarantined = f"{type(exc).__name__}: {exc}"
        f.dirty = False
        if isinstance(exc, FormatStartError):  # the format logged it, once per format
            self.start_failures.setdefault(str(exc), []).append(f.path)
        else:
            log.error("stopped reading path=%s after an internal error: %s", f.path, f.quarantined)
        log.debug("traceback of the error on path=%s", f.path, exc_info=exc)
        self.table.changed.add(f.key)  # its status detail shows why

    def _choose_format(self, f: SourceFile) -> bool:
        cp = f.checkpoint
        assert f.reader is not None
        head = format_head(f.reader, self.settings.max_line_bytes)
        chosen = f.pipe.choose(head, self.mapped, cp.context, cp.format)
        if chosen is None:
            return False  # wait for a whole first line before deciding
        if not chosen:
            if not f.unrecognised:
                log.info("no format recognises path=%s; ignoring it", f.path)
            f.unrecognised = True
            return False
        f.unrecognised = False
        cp.format = f.pipe.format_name() or ""
        cp.document = f.pipe.document is not None
        self.table.changed.add(f.key)
        return True

    def _pump_database(self, f: SourceFile, idle: bool) -> bool | None:
        """An agent's SQLite database: the finished turns of the sessions that changed (`idle`:
        and of those with an open turn). None if `f` is no database; else whether a turn is open."""
        still_open = self.databases.pump(f, self._accept, idle)
        if still_open:
            self._open_turns.add(f.key)
        return still_open

    def _pump_document(self, f: SourceFile, final: bool) -> None:
        """A file rewritten whole: re-read it and send the turns whose key is new."""
        assert f.reader is not None
        self.read_signatures[f.key] = signature(f.path)  # taken before: never newer than read
        data = f.reader.read(0, f.size)
        items = f.pipe.document_turns(data, final=final)
        for item in items:
            if isinstance(item, DeadLetter) or (
                item.key not in f.sent_keys and not f.ledger.is_pending(item.key)
            ):
                self._accept(f, item)
        # Open only if the format holds a turn back (started, not finished): the quiet-time
        # pass would give more than this read did.
        held = not final and _holds_a_turn(f, data, items)
        f.dirty, f.document_final = False, not held
        if held:
            self._open_turns.add(f.key)
        else:
            self._open_turns.discard(f.key)
        self.open_since.track(f)

    def _accept(self, f: SourceFile, item: Turn | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self._dead_letter(f, item.start, item.end, item.reason)
            return
        if f.ledger.already_resolved(item.key, item.start):
            return
        owner = self.history.is_copy(item, f.key)
        if owner is not None:  # history copied from another file, already shipped from there
            self.history.skip(item, f.key, owner, f.path)
            self.counters.duplicates_skipped += 1
            if f.document:
                self._mark_sent(f, item.key)
            self.table.changed.add(f.key)
            return
        turn = self.redactor.apply(item) if self.redactor else item
        try:
            spans = self.emitter.emit(turn)
        except Exception as exc:
            self._dead_letter(f, item.start, item.end, f"cannot build spans: {exc!r}")
            return
        f.ledger.emitted(item.key, item.start)
        self.history.emitted(item, f.key)
        self.delivery.add(f, item, spans)
        f.checkpoint.turns_emitted += 1
        self.counters.turns += 1

    def _mark_sent(self, f: SourceFile, key: str) -> None:
        """A whole document's turn `key` is shipped: its checkpoint keeps the key, and so does
        the checkpoint of the file that replaced it at the same path (a rename over it) while
        the turn was in flight, so neither this run nor a later one sends it again."""
        f.sent_keys.add(key)
        f.checkpoint.sent_keys = sorted(f.sent_keys)
        now = self.table.files.get(self.table.by_path.get(str(f.path), ""))
        if now is not None and now is not f and now.document and key not in now.sent_keys:
            now.sent_keys.add(key)
            now.checkpoint.sent_keys = sorted(now.sent_keys)
            self.table.changed.add(now.key)

    def close_idle(self, force: bool = False) -> None:
        """Close turns their format considers finished after the file's quiet time. Only files
        with an open turn are visited."""
        now = time.time()
        for key in list(self._open_turns):
            f = self.table.files.get(key)
            if f is None:
                self._open_turns.discard(key)
                continue
            if key in self.databases:
                if not self._pump_database(f, idle=True):
                    self._open_turns.discard(key)
                continue
            if f.document:
                if f.document_final or f.pipe.fmt is None:
                    self._open_turns.discard(key)
                elif now - f.mtime >= f.pipe.document_idle_close() and self.table.open(f):
                    self._pump_document(f, final=True)
                continue
            if f.pipe.pending_from() is None:
                self._open_turns.discard(key)
                continue
            for turn in f.pipe.close_idle(max(0.0, now - f.mtime)):
                self._accept(f, turn)
            self.table.changed.add(key)
            self.open_since.track(f)
            if f.pipe.pending_from() is None:
                self._open_turns.discard(key)
        if force:
            self.table.retire_drained()

    def still_open(self) -> list[tuple[SourceFile, list[OpenTurn]]]:
        """Files with turns not finished yet (not sent: they wait for their close rule), by
        path, each with its open turns (start offset, what would close it)."""
        files = (self.table.files.get(key) for key in self._open_turns)
        return still_open([f for f in files if f is not None], self.settings)

    def _dead_letter(
        self, f: SourceFile, start: int, end: int, reason: str, turn: tuple[str, str] | None = None
    ) -> None:
        """Record input that could not be delivered: a line (turn=None) or a turn a sink
        refused (turn=(key, sink)), which `tailerd retry` can send again."""
        f.checkpoint.dead_letters += 1
        self.counters.dead_letters += 1
        self.table.changed.add(f.key)
        log.warning("dead letter path=%s offset=%d reason=%s", f.path, start, reason)
        self.status.dead_letter(f, start, end, reason, turn)

    def start_error(self) -> FormatStartError | None:
        """The formats that could not start, in one line: each reason with the files it left
        unread (at most NAMED_FILES named per format); None if every format started."""
        if not self.start_failures:
            return None
        parts = []
        for reason, paths in sorted(self.start_failures.items()):
            named = ", ".join(str(p) for p in sorted(paths)[:NAMED_FILES])
            more = f" and {len(paths) - NAMED_FILES} more" if len(paths) > NAMED_FILES else ""
            parts.append(f"{reason}; left unread: {named}{more}")
        fix = "fix the format's options (or the files it reads) and run again"
        return FormatStartError(f"{'; '.join(parts)} ({fix})")


def _holds_a_turn(f: SourceFile, data: bytes, read: list[Turn | DeadLetter]) -> bool:
    """Whether the document `data`, read not final into `read`, has a turn its format holds
    back until the agent finishes it or the file is quiet (a second, final parse: a document
    is read whole on each rewrite anyway)."""
    if any(isinstance(item, DeadLetter) for item in read):
        return False  # the format failed on it: a final parse fails alike
    given = {item.key for item in read if isinstance(item, Turn)}
    return any(
        isinstance(item, Turn) and item.key not in given
        for item in f.pipe.document_turns(data, final=True)
    )
