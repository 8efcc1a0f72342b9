"""What `tailerd status` shows of a running daemon, and the dead-letter records it appends.

`status.json` (0600, replaced atomically) is rewritten only when something changed, at most
once per STATUS_INTERVAL: an idle daemon writes nothing. Per-file offsets come from the
checkpoint store; this file adds per sink its delivery health and, per file, only what is worth
a look (turns waiting, unknown record types, a quarantined parser, an unrecognised format).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tailerd.edges import dead_letter_store
from tailerd.edges.agent_db import signature
from tailerd.edges.agent_db.protocol import idle_close_of
from tailerd.formats.claude_code import turns as claude_turns
from tailerd.formats.codex import turns as codex_turns

if TYPE_CHECKING:
    from tailerd.daemon import Daemon
    from tailerd.edges.source_file import SourceFile
    from tailerd.pipeline import FilePipeline
    from tailerd.settings import Settings

OpenTurn = tuple[int, str]  # (first byte offset of the turn, what would close it)
# In the checkpoint context of a file read whole (a rewritten document, an agent database):
# its `edges.agent_db.signature` when last read with every turn acknowledged.
READ_SIGNATURE = "read_signature"
UP_TO_DATE, CHANGED, NOT_READ = "up to date", "changed since the last shipped read", "not read yet"
NOT_RECORDED = "read; state not recorded yet"  # read by a version that did not record it

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
        self._details: dict[str, tuple[str, dict[str, object]]] = {}

    def note(
        self, key: str, f: SourceFile | None, settings: Settings, open_since: float | None
    ) -> None:
        """Refresh one file's detail (it changed, or is gone when `f` is None). Kept per file,
        so a status write costs what changed, never a visit of every followed file."""
        detail = file_detail(f, settings, open_since) if f is not None else {}
        if detail and f is not None:
            self._details[key] = (str(f.path), detail)
        elif self._details.pop(key, None) is None:
            return
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
            "files": dict(self._details.values()),
        }
        tmp = self.state_dir / (STATUS + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, orjson.dumps(doc))
        finally:
            os.close(fd)
        tmp.replace(self.state_dir / STATUS)
        self._last_write, self._last_doc, self._touched = now, doc, False


def open_turns(pipe: FilePipeline, settings: Settings) -> list[OpenTurn]:
    """The turns still open in one file's pipeline: (start offset, what would close it).

    A format's parser may expose `open_turns()` (native, gemini); otherwise the oldest open
    turn is `pending_from()` and the rule is the format's, with its configured settings. A
    whole-document file reports its last turn while it has not been quiet long enough; an agent
    database one entry per session with a turn still open (offset 0: no bytes mean anything)."""
    if pipe.fmt is None:
        return []
    if pipe.open_sessions:  # an agent database: its sessions' last turns
        quiet = f"{_idle_close(pipe, settings):g} s of quiet"
        rule = f"the next prompt or the agent's final answer, else {quiet}"
        return [(0, f"session {session}: {rule}") for session in pipe.open_sessions]
    if pipe.document is not None:
        quiet = f"{pipe.document_idle_close():g} s of quiet"
        return [(0, f"the last turn of the rewritten document, if unfinished: {quiet}")]
    exposed = getattr(pipe.parser, "open_turns", None)  # through the guard to the format's
    if callable(exposed):
        try:
            return [(int(start), str(rule)) for start, rule in exposed()]
        except Exception:  # noqa: S110 - a report must not fail: fall back below
            pass
    start = pipe.pending_from()
    return [] if start is None else [(start, close_rule(pipe.fmt.name, settings))]


def _idle_close(pipe: FilePipeline, settings: Settings) -> float:
    return idle_close_of(settings.format_options.get(pipe.format_name() or "", {}))


class OpenSince:
    """File key -> when (epoch seconds) tailerd first saw the file's oldest open turn."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float]] = {}  # key -> (oldest open offset, since)

    def track(self, f: SourceFile) -> None:
        """Call after a file was read or its idle turns closed."""
        start = f.pipe.pending_from()
        if f.document:
            start = None if f.document_final else 0
        if start is None:
            self._seen.pop(f.key, None)
        elif self._seen.get(f.key, (None,))[0] != start:
            self._seen[f.key] = (start, time.time())

    def get(self, key: str) -> float | None:
        seen = self._seen.get(key)
        return None if seen is None else seen[1]


def still_open(
    files: list[SourceFile], settings: Settings
) -> list[tuple[SourceFile, list[OpenTurn]]]:
    """Of `files`, those with open turns, by path, each with (start offset, close rule)."""
    out = []
    for f in files:
        if f.document and f.document_final:
            continue
        if turns := open_turns(f.pipe, settings):
            out.append((f, turns))
    return sorted(out, key=lambda item: str(item[0].path))


OPEN_LINES = 10  # files listed at the end of --once, preview and import before "and N more"


def open_turn_lines(
    files: list[tuple[str, list[OpenTurn], float]], now: float, limit: int = OPEN_LINES
) -> list[str]:
    """One line per file with open turns ((path, open turns, mtime) each), at most `limit`,
    then "and N more files"; [] when nothing is open."""
    lines = []
    for path, turns, mtime in files[:limit]:
        first, rule = turns[0]
        count = f"{len(turns)} open turn" + ("s" if len(turns) > 1 else "")
        quiet = max(0.0, now - mtime)
        lines.append(
            f"{path}: {count} from byte {first}, waiting for {rule} (quiet for {quiet:.0f} s)"
        )
    if len(files) > limit:
        lines.append(f"and {len(files) - limit} more files with open turns")
    return lines


def whole_read_state(path: str, context: Mapping[str, Any], read: bool = False) -> str:
    """Where a file read whole stands, since byte offsets mean nothing for it: UP_TO_DATE when
    its signature (size and mtime in ns of the file and its `-wal`) is the one of its last read
    whose every turn every sink acknowledged, CHANGED when it differs (or the file is gone),
    NOT_READ when no read was acknowledged yet. `read`: its checkpoint says it was read (turns
    emitted or shipped) though no signature is recorded (a checkpoint written before tailerd
    recorded one): NOT_RECORDED, until the next read records it."""
    stored = context.get(READ_SIGNATURE)
    if not isinstance(stored, list):
        return NOT_RECORDED if read else NOT_READ
    now = signature(Path(path))
    return UP_TO_DATE if now is not None and list(now) == stored else CHANGED


def close_rule(format_name: str, settings: Settings) -> str:
    """What closes an open turn of this format, in words, with the configured settings."""
    options = settings.format_options.get(format_name, {})

    def seconds(name: str, default: float) -> str:
        return f"{float(options.get(name, default)):g} s"

    if format_name == "claude-code":
        idle = seconds("idle_close", claude_turns.DEFAULT_IDLE_CLOSE)
        stale = seconds("stale_close", claude_turns.DEFAULT_STALE_CLOSE)
        return (
            f"turn_duration, a Stop hook, an interruption or the next prompt; else {idle} of"
            f" quiet with no tool call waiting ({stale} with one)"
        )
    if format_name == "codex":
        idle = seconds("idle_close", codex_turns.DEFAULT_IDLE_CLOSE)
        abandon = seconds("abandon_close", codex_turns.DEFAULT_ABANDON_CLOSE)
        return (
            f"task_complete or turn_aborted; else {abandon} of quiet (abandon_close);"
            f" a turn without task events: the next prompt or {idle} of quiet"
        )
    if "idle_close" in options:
        return f"its end record, the next turn or {seconds('idle_close', 0)} of quiet"
    return "its end record, the next turn, or the mapping's idle_close/stale_close of quiet"


def file_detail(
    f: SourceFile, settings: Settings, open_since: float | None = None
) -> dict[str, object]:
    """What a file has worth showing beyond its checkpoint; {} when nothing. Open turns are
    `open_turns: [{"from": offset, "closes_on": words}]`, with `open_since` (epoch seconds
    tailerd first saw the oldest open) and `quiet_since` (the file's last write)."""
    parser = f.pipe.parser
    unknown = getattr(parser, "unknown_types", None)
    unknown_types = unknown() if callable(unknown) else {}
    quarantined = getattr(parser, "quarantined", None)
    detail: dict[str, object] = {}
    if unknown_types:
        detail["unknown_record_types"] = unknown_types
    if f.ledger.unresolved:
        detail["pending_turns"] = f.ledger.unresolved
    if f.pipe.pending_from() is not None or (f.document and not f.document_final):
        still_open = open_turns(f.pipe, settings)
        if still_open:
            detail["open_turns"] = [{"from": at, "closes_on": rule} for at, rule in still_open]
            detail["open_since"] = open_since
            detail["quiet_since"] = f.mtime
    if isinstance(quarantined, str) or f.quarantined:
        detail["quarantined"] = f.quarantined or quarantined
    if f.unrecognised:
        detail["unrecognised"] = True
    if detail:
        detail["format"] = f.pipe.format_name()
        detail["read"] = f.pipe.framer.consumed
    return detail
