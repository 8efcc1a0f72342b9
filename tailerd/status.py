"""What `tailerd status` shows of a running daemon, and the dead-letter records it appends.

`status.json` (0600, replaced atomically) is rewritten only when something changed, at most
once per STATUS_INTERVAL: an idle daemon writes nothing. Per-file offsets come from the
checkpoint store; this file adds per sink its delivery health and, per file, only what is worth
a look (turns waiting, unknown record types, a quarantined parser, an unrecognised format).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tailerd.edges import dead_letter_store

if TYPE_CHECKING:
    from tailerd.daemon import Daemon
    from tailerd.edges.source_file import SourceFile

STATUS = "status.json"
STATUS_INTERVAL = 1.0  # seconds between rewrites while things change


@dataclass(slots=True)
class Counters:
    turns: int = 0
    dead_letters: int = 0
    duplicates_skipped: int = 0  # turns not shipped: copies of history shipped from another file
    started: float = field(default_factory=time.time)


class StatusWriter:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._last_write = 0.0
        self._last_doc: dict[str, Any] | None = None
        self._touched = True

    def touch(self) -> None:
        """Something worth reporting changed (a commit, a dead letter)."""
        self._touched = True

    def dead_letter(
        self,
        f: SourceFile,
        start: int,
        end: int,
        reason: str,
        turn: tuple[str, str] | None,
    ) -> None:
        record: dict[str, object] = {"time": time.time(), "path": str(f.path), "start": start}
        record.update(end=end, reason=reason, kind="line")
        if turn is not None:
            record.update(kind="turn", key=turn[0], sink=turn[1], format=f.checkpoint.format)
        dead_letter_store.append(self.state_dir, record)
        self._touched = True

    def write(self, daemon: Daemon, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < STATUS_INTERVAL:
            return
        sinks = daemon.delivery.report()
        if not force and not self._touched and sinks == (self._last_doc or {}).get("sinks"):
            return
        c = daemon.counters
        doc = {
            "pid": os.getpid(),
            "time": time.time(),
            "started": c.started,
            "turns_emitted": c.turns,
            "dead_letters": c.dead_letters,
            "duplicates_skipped": c.duplicates_skipped,
            "dry_run": daemon.dry_run,
            "open_files": len(daemon.table.pool),
            "tracked_files": len(daemon.table.files),
            "sinks": sinks,
            "redactions": daemon.redactor.counts() if daemon.redactor else {},
            "files": {
                str(f.path): detail
                for f in daemon.table.files.values()
                if (detail := file_detail(f))
            },
        }
        tmp = self.state_dir / (STATUS + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, orjson.dumps(doc))
        finally:
            os.close(fd)
        tmp.replace(self.state_dir / STATUS)
        self._last_write, self._last_doc, self._touched = now, doc, False


def file_detail(f: SourceFile) -> dict[str, object]:
    """What a file has worth showing beyond its checkpoint; {} when nothing."""
    parser = f.pipe.parser
    unknown = getattr(parser, "unknown_types", None)
    unknown_types = unknown() if callable(unknown) else {}
    quarantined = getattr(parser, "quarantined", None)
    detail: dict[str, object] = {}
    if unknown_types:
        detail["unknown_record_types"] = unknown_types
    if f.ledger.unresolved:
        detail["pending_turns"] = f.ledger.unresolved
    if f.pipe.pending_from() is not None:
        detail["open_turn_from"] = f.pipe.pending_from()
    if isinstance(quarantined, str) or f.quarantined:
        detail["quarantined"] = f.quarantined or quarantined
    if f.unrecognised:
        detail["unrecognised"] = True
    if detail:
        detail["format"] = f.pipe.format_name()
        detail["read"] = f.pipe.framer.consumed
    return detail
