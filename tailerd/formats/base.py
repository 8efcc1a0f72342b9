"""The interface every agent format implements: one module per format, registered in FORMATS.

A format is pure: it is handed complete lines and returns finished turns. It never opens the
file it parses; the rare format that needs a neighbouring file (a sub-agent transcript, a
spilled tool result) asks through `Source.read_related`, which the daemon provides.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any, Protocol

import orjson

from tailerd.domain import DeadLetter, Line, Turn

COMPRESSION_SUFFIXES = (".zst", ".gz")


def _no_related(_path: str, _cap: int) -> bytes | None:
    return None


def _nothing_found(_root: str, _pattern: str) -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class Source:
    """What a parser may know about the file it parses."""

    path: str
    agent_name: str = ""  # operator override; empty means the format's default
    options: Mapping[str, Any] = field(default_factory=dict)
    read_related: Callable[[str, int], bytes | None] = _no_related
    # (directory, glob) -> matching paths, recursively; e.g. a Codex child thread's rollout
    find_related: Callable[[str, str], list[str]] = _nothing_found
    host: str = ""  # this host's name: a turn keyed by a byte offset is only unique per host

    def local_key(self, *parts: str | int) -> str:
        """Key parts for a turn the agent gave no globally unique id: the host and the file
        (without compression suffix) come first, so that hosts of a fleet writing the same
        session and file names mint different ids (a backend keeps one span per id)."""
        return turn_key(self.host, str(PurePath(self.path).parent), self.stable_name, *parts)

    @property
    def stable_name(self) -> str:
        """The file name without compression suffix: the same for a rollout and its .zst."""
        name = PurePath(self.path).name
        for suffix in COMPRESSION_SUFFIXES:
            name = name.removesuffix(suffix)
        return name


class TurnParser(Protocol):
    """Per-file state machine: lines in, finished turns out. Never raises on any input."""

    def feed(self, line: Line) -> list[Turn | DeadLetter]: ...

    def close_idle(self, quiet_for: float) -> list[Turn]:
        """Close turns the format considers finished once the file has been quiet that long."""
        ...

    def pending_from(self) -> int | None:
        """First byte of the oldest unfinished turn, or None when nothing is open."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """JSON-able context needed to resume parsing at `pending_from()` (or the next line)."""
        ...


class IdleClosingParser:
    """The idle half of a `TurnParser` whose one open turn is the records in `_records` (any
    sized collection), begun at byte `_start` and closed by `_close()` once the file has been
    quiet `_idle_close` seconds. `closed_by` names what else closes it (for `open_turns`)."""

    _records: Sized
    _start: int
    _idle_close: float
    closed_by = "the next prompt"

    def _close(self) -> Turn:
        raise NotImplementedError

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if not self._records or quiet_for < self._idle_close:
            return []
        return [self._close()]

    def pending_from(self) -> int | None:
        return self._start if self._records else None

    def open_turns(self) -> list[tuple[int, str]]:
        """The open turn, if any, as (first byte offset, what would close it)."""
        if not self._records:
            return []
        return [(self._start, f"{self.closed_by} or {self._idle_close:g} s of quiet")]


class Format(Protocol):
    name: str

    def claims(self, path: PurePath, head: bytes) -> bool:
        """Cheap test on the path and the first bytes: is this file in my format?"""
        ...

    def is_auxiliary(self, path: PurePath) -> bool:
        """True for files read through another file (sub-agent transcripts), never tailed alone."""
        ...

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser: ...


DEFAULT_DOCUMENT_IDLE_CLOSE = 30.0  # seconds before a rewritten-whole file's last turn is final


class DocumentFormat(Format, Protocol):
    """A format some of whose files are rewritten whole (e.g. Gemini's legacy .json): for those,
    the daemon re-reads the whole file on change and sends only turns whose key is new."""

    def reads_whole(self, path: PurePath) -> bool: ...

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]: ...


class WholeDocumentsOnly:
    """The line-reading half of a DocumentFormat all of whose files are read whole (Cline,
    OpenHands, Amp): no line parser; no auxiliary files unless the format says otherwise."""

    name: str

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        raise NotImplementedError(f"{self.name} files are read whole (reads_whole)")


def messages_document(data: bytes) -> dict[str, Any] | None:
    """A rewritten-whole document (Gemini's legacy .json, Cline, Amp) as its JSON object when it
    is one with a `messages` list; None while it is half-written, or for anything else."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
        return None
    return doc


def json_text(value: Any) -> str:
    """A payload as text: strings as they are, None as empty, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def decode_object(line: Line) -> dict[str, Any] | DeadLetter | None:
    """The JSON object on a line; None for a blank line; a DeadLetter for anything else."""
    if not line.data.strip():
        return None
    try:
        raw = orjson.loads(line.data)
    except orjson.JSONDecodeError as exc:
        return DeadLetter(line.start, line.end, f"invalid JSON: {exc}")
    if not isinstance(raw, dict):
        return DeadLetter(line.start, line.end, f"not a JSON object: {type(raw).__name__}")
    return raw


def first_object(head: bytes) -> dict[str, Any]:
    """The first line of a file's head as a JSON object; {} if it is not one (a format's
    `claims` reads it to tell its files from another agent's)."""
    try:
        first = orjson.loads(head.split(b"\n", 1)[0])
    except orjson.JSONDecodeError:
        return {}
    return first if isinstance(first, dict) else {}


def turn_key(*parts: str | int) -> str:
    """A stable turn key: the same turn gets the same key on every host and every re-read."""
    return "|".join(str(p) for p in parts)


def parse_time(value: object) -> datetime | None:
    """ISO-8601 (with `Z`), or epoch seconds/milliseconds; None when absent or unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
