"""Cursor CLI agent transcripts: `~/.cursor/projects/<slug>/agent-transcripts/<uuid>/<uuid>.jsonl`.

What the file holds (real sample: ../shared/fixtures/agents/cursor/, git-ai's
tests/fixtures/cursor-session-simple.jsonl; Cursor's CLI is closed source, so the layout is the
one its files show): one JSON object per line, `{"role": "user"|"assistant", "message":
{"content": [{"type": "text", "text": ...} | {"type": "tool_use", "name": ..., "input": {...}}]}}`.
User text is wrapped in `<user_query>...</user_query>`; assistant thinking is stored as the text
"[REDACTED]". The file records **no** timestamps, ids, model, token usage or tool results.

A turn is a `user` line and every line up to the next prompt; it is finished by a
`{"type": "turn_ended", "status": ...}` marker (newer transcripts; the status is kept as
`cursor.turn_status`, an aborted/cancelled/error one marks the turn interrupted), else when the
next prompt arrives or the file has been quiet for `idle_close` seconds (option, default 30 s).
Each assistant line is one model step: one `chat` span, then one `execute_tool` span per
`tool_use` block. Newer transcripts also write `user` lines holding only `tool_result` blocks:
they are no prompt, their results go to the tool spans (by `tool_use_id`, else in order).
Other typed markers are skipped. (The newer shapes as described by a reader of many Cursor
transcripts, "obsession" connector spec, section 10.5; not in the licensed sample.)

What Cursor does not record, said on the spans instead of guessed: the turn carries
`tailerd.timestamps.recorded = false` and `tailerd.usage.recorded = false` (its start/end stay
unset here, a parser never stats files: the pipeline then places the turn at the file's mtime
when read, marked `tailerd.timestamps.source = "file_mtime"`, tailerd/file_times.py); chat spans
carry `tailerd.usage.recorded = false` (their zero token counts mean "unknown"); tool spans
without a `tool_result` carry `tailerd.tool.result_recorded = false`.

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
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn
from tailerd.formats.base import (
    IdleClosingParser,
    Source,
    TurnParser,
    decode_object,
    first_object,
    json_text,
    turn_key,
)
from tailerd.formats.content_blocks import block_text, message_blocks, result_text
from tailerd.formats.options import IDLE_CLOSE_ONLY

AGENT_NAME = "cursor"
PROVIDER = "cursor"
DEFAULT_IDLE_CLOSE = 30.0
TRANSCRIPTS_DIR = "agent-transcripts"
_QUERY = re.compile(r"^\s*<user_query>\s*(.*?)\s*</user_query>\s*$", re.DOTALL)
TURN_ENDED = "turn_ended"
INTERRUPTED = frozenset({"aborted", "cancelled", "canceled", "interrupted", "error", "failed"})
NOT_RECORDED = {"tailerd.timestamps.recorded": False, "tailerd.usage.recorded": False}

Record = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text(record: Record) -> str:
    return block_text(message_blocks(record))


def user_text(record: Record) -> str:
    """A prompt's text without Cursor's `<user_query>` wrapper."""
    text = _text(record)
    found = _QUERY.match(text)
    return found.group(1) if found else text


def is_tool_results(record: Record) -> bool:
    """A `user` line holding only `tool_result` blocks (newer transcripts): not a prompt."""
    blocks = message_blocks(record)
    return bool(blocks) and all(b.get("type") == "tool_result" for b in blocks)


def _spans(answers: list[Record]) -> list[SpanCall]:
    """A chat span per assistant line, a tool span per `tool_use`; a `tool_result` is matched
    by `tool_use_id`, else to the oldest call still without one (the sample's calls have no
    ids); calls with no result say so."""
    spans: list[SpanCall] = []
    waiting: list[int] = []  # indexes of tool spans without a result, oldest first
    for record in answers:
        if record.get("role") != "assistant":
            for block in message_blocks(record):
                if block.get("type") != "tool_result" or not waiting:
                    continue
                wanted = _str(block.get("tool_use_id"))
                at = next(
                    (i for i in waiting if wanted and spans[i].tool_call_id == wanted),  # type: ignore[union-attr]
                    waiting[0],
                )
                waiting.remove(at)
                call = spans[at]
                assert isinstance(call, ToolCall)
                spans[at] = replace(
                    call,
                    result=result_text(block.get("content")),
                    is_error=block.get("is_error") is True,
                    attributes={},
                )
            continue
        text = _text(record)
        spans.append(
            LLMCall(
                provider_name=PROVIDER,
                output_messages=(Message("assistant", text),) if text else (),
                attributes={"tailerd.usage.recorded": False},
            )
        )
        for block in message_blocks(record):
            if block.get("type") == "tool_use":
                waiting.append(len(spans))
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


class CursorParser(IdleClosingParser):
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
        self._status = ""  # the open turn's `turn_ended` status, once written
        self._start = 0
        self._end = 0
        self.ignored = 0

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        role, kind = raw.get("role"), raw.get("type")
        if role == "user" and not is_tool_results(raw):
            closed: list[Turn | DeadLetter] = [self._close()] if self._records else []
            self._records = [raw]
            self._start, self._end = line.start, line.end
            return closed
        if role not in ("assistant", "user") and not (isinstance(kind, str) and kind):
            return [DeadLetter(line.start, line.end, "unknown Cursor record (no role, no type)")]
        if not self._records:
            self.ignored += 1  # before the first prompt (a file cut at the front)
            return []
        self._end = line.end
        if role in ("assistant", "user"):
            self._records.append(raw)
        elif kind == TURN_ENDED:
            self._status = _str(raw.get("status")) or "unknown"
            return [self._close()]
        else:
            self.ignored += 1  # a marker of a newer Cursor: skipped, the turn goes on
        return []

    def snapshot(self) -> dict[str, Any]:
        return {}  # everything else comes from the path

    def _close(self) -> Turn:
        user, answers = self._records[0], self._records[1:]
        self._records = []
        status, self._status = self._status, ""
        attrs = dict(self._attrs)
        if status:
            attrs["cursor.turn_status"] = status
        texts = [t for t in (_text(r) for r in answers if r.get("role") == "assistant") if t]
        return Turn(
            key=turn_key(AGENT_NAME, self._session, self._start),
            session_id=self._session,
            start=self._start,
            end=self._end,
            agent_name=self._source.agent_name or AGENT_NAME,
            messages=(Message("user", user_text(user)),),
            output_messages=(Message("assistant", texts[-1]),) if texts else (),
            spans=tuple(_spans(answers)),
            interrupted=status.lower() in INTERRUPTED,
            attributes=attrs,
        )


class CursorFormat:
    name = "cursor"

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A `.jsonl` under `agent-transcripts/` whose first line is `{"role":..,"message":..}`
        (and nothing Claude-like: no `type`/`uuid`)."""
        if TRANSCRIPTS_DIR not in path.parts or ".jsonl" not in path.name:
            return False
        first = first_object(head)
        return (
            first.get("role") in ("user", "assistant")
            and isinstance(first.get("message"), dict)
            and "type" not in first
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return CursorParser(source, context)


FORMAT = CursorFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
