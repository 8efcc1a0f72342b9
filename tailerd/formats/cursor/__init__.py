"""Cursor CLI agent transcripts: `~/.cursor/projects/<slug>/agent-transcripts/<uuid>/<uuid>.jsonl`.

What the file holds (real sample: ../shared/fixtures/agents/cursor/, git-ai's
tests/fixtures/cursor-session-simple.jsonl; Cursor's CLI is closed source, so the layout is the
one its files show): one JSON object per line, `{"role": "user"|"assistant", "message":
{"content": [{"type": "text", "text": ...} | {"type": "tool_use", "name": ..., "input": {...}}]}}`.
User text is wrapped in `<user_query>...</user_query>`; assistant thinking is stored as the text
"[REDACTED]". The file records **no** timestamps, ids, model, token usage or tool results.

A turn is a `user` line and every `assistant` line up to the next `user` line; it is finished
when the next user line arrives or the file has been quiet for `idle_close` seconds (option,
default 30 s: the file says nothing about a turn's end). Each assistant line is one model step:
one `chat` span, then one `execute_tool` span per `tool_use` block.

What Cursor does not record, said on the spans instead of guessed: the turn carries
`tailerd.timestamps.recorded = false` and `tailerd.usage.recorded = false` (its start/end stay
unset: a parser never opens or stats files, so the file's mtime is not known here); chat spans
carry `tailerd.usage.recorded = false` (their zero token counts mean "unknown"); tool spans carry
`tailerd.tool.result_recorded = false`.

Keys: Cursor gives no message ids. The session id is the transcript's uuid (its file name, also
its directory's name), unique across hosts, and a turn is keyed by the byte offset of its user
line in that append-only file: a re-read, a restart or another host holding the same session
mint the same key. `Turn.identities` stay empty: Cursor is not known to copy history into
another transcript. The project slug (the working directory with `/` turned into `-`, lossy)
is kept as `cursor.project`; no `tailerd.cwd`, since the slug cannot be turned back into a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn
from tailerd.formats.base import Source, TurnParser, decode_object, json_text, turn_key

AGENT_NAME = "cursor"
PROVIDER = "cursor"
DEFAULT_IDLE_CLOSE = 30.0
TRANSCRIPTS_DIR = "agent-transcripts"
_QUERY = re.compile(r"^\s*<user_query>\s*(.*?)\s*</user_query>\s*$", re.DOTALL)
NOT_RECORDED = {"tailerd.timestamps.recorded": False, "tailerd.usage.recorded": False}

Record = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _blocks(record: Record) -> list[Record]:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text(record: Record) -> str:
    return "\n".join(
        _str(b.get("text")) for b in _blocks(record) if b.get("type") == "text" and b.get("text")
    )


def user_text(record: Record) -> str:
    """A prompt's text without Cursor's `<user_query>` wrapper."""
    text = _text(record)
    found = _QUERY.match(text)
    return found.group(1) if found else text


def _spans(record: Record) -> list[SpanCall]:
    text = _text(record)
    spans: list[SpanCall] = [
        LLMCall(
            provider_name=PROVIDER,
            output_messages=(Message("assistant", text),) if text else (),
            attributes={"tailerd.usage.recorded": False},
        )
    ]
    for block in _blocks(record):
        if block.get("type") == "tool_use":
            spans.append(
                ToolCall(
                    name=_str(block.get("name")),
                    arguments=json_text(block.get("input")),
                    tool_call_id=_str(block.get("id")),
                    attributes={"tailerd.tool.result_recorded": False},
                )
            )
    return spans


def session_of(path: PurePath) -> str:
    """The transcript's uuid: its file name without `.jsonl` (and compression suffix)."""
    name = path.name
    for suffix in (".zst", ".gz", ".jsonl"):
        name = name.removesuffix(suffix)
    return name


def project_of(path: PurePath) -> str:
    """The project slug: the directory above `agent-transcripts`, when the path has one."""
    parts = path.parts
    if TRANSCRIPTS_DIR in parts:
        i = parts.index(TRANSCRIPTS_DIR)
        return parts[i - 1] if i > 0 else ""
    return ""


class CursorParser:
    def __init__(self, source: Source, _context: Mapping[str, Any] | None) -> None:
        self._source = source
        path = PurePath(source.path)
        self._session = session_of(path)
        project = project_of(path)
        self._attrs: dict[str, Any] = dict(NOT_RECORDED)
        if project:
            self._attrs["cursor.project"] = project
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._records: list[Record] = []
        self._start = 0
        self._end = 0
        self.ignored = 0

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        role = raw.get("role")
        if role == "user":
            closed: list[Turn | DeadLetter] = [self._close()] if self._records else []
            self._records = [raw]
            self._start, self._end = line.start, line.end
            return closed
        if role == "assistant":
            if not self._records:
                self.ignored += 1  # an answer without its prompt (a file cut at the front)
                return []
            self._records.append(raw)
            self._end = line.end
            return []
        return [DeadLetter(line.start, line.end, "unknown Cursor record (no user/assistant role)")]

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if not self._records or quiet_for < self._idle_close:
            return []
        return [self._close()]

    def pending_from(self) -> int | None:
        return self._start if self._records else None

    def open_turns(self) -> list[tuple[int, str]]:
        if not self._records:
            return []
        return [(self._start, f"the next prompt or {self._idle_close:g} s of quiet")]

    def snapshot(self) -> dict[str, Any]:
        return {}  # everything else comes from the path

    def _close(self) -> Turn:
        user, answers = self._records[0], self._records[1:]
        self._records = []
        texts = [t for t in (_text(r) for r in answers) if t]
        return Turn(
            key=turn_key(AGENT_NAME, self._session, self._start),
            session_id=self._session,
            start=self._start,
            end=self._end,
            agent_name=self._source.agent_name or AGENT_NAME,
            messages=(Message("user", user_text(user)),),
            output_messages=(Message("assistant", texts[-1]),) if texts else (),
            spans=tuple(s for r in answers for s in _spans(r)),
            attributes=dict(self._attrs),
        )


class CursorFormat:
    name = "cursor"

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A `.jsonl` under `agent-transcripts/` whose first line is `{"role":..,"message":..}`
        (and nothing Claude-like: no `type`/`uuid`)."""
        if TRANSCRIPTS_DIR not in path.parts or ".jsonl" not in path.name:
            return False
        try:
            first = orjson.loads(head.split(b"\n", 1)[0])
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(first, dict)
            and first.get("role") in ("user", "assistant")
            and isinstance(first.get("message"), dict)
            and "type" not in first
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return CursorParser(source, context)


FORMAT = CursorFormat()
