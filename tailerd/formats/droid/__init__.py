"""Factory Droid sessions: `~/.factory/sessions/<cwd-slug>/<uuid>.jsonl` (+ `<uuid>.settings.json`).

What the file holds (real sample: ../shared/fixtures/agents/droid/, from git-ai's
tests/fixtures/droid-session.jsonl; Droid is closed source, the same layout is read by
robertpelloni/borg agents/agent-sessions/AgentSessions/Services/DroidSessionParser.swift):
line 1 `{"type": "session_start", "id", "title", "sessionTitle", "owner", "version", "cwd"}`,
then `{"type": "message", "id", "timestamp", "message": {"role", "content": [blocks]}}` with
Anthropic-style blocks (`text`, `tool_use`, `tool_result`), and `todo_state` records (the todo
list; ignored). Tool results come back as `user` messages holding only `tool_result` blocks.

A turn is a prompt (a `user` message with text and no tool results) and everything up to the
next prompt; it is finished by Droid's own `{"type": "agent_turn_outcome", "turnId": <prompt
id>, "reason": "completed"|...}` (0.215+; another reason marks it interrupted), else when the
next prompt arrives or the file has been quiet for `idle_close` seconds (option, default 30 s).
Droid 0.215 also writes user messages that are not prompts: `context-<prompt id>` messages
holding `<system-reminder>` text, and notices carrying a `visibility` key; they stay inside the
open turn (or are skipped) and never start one. Assistant messages carry `modelId` and
`openaiMessageId` (the call's model and response id) in 0.215.

Each `assistant` message is one `chat` span (response id: `openaiMessageId`, else the message
id), followed by an `execute_tool` span per `tool_use`, with the
result and `is_error` of its `tool_result`. Tokens come from the settings file, see `usage`.

Keys: the session uuid and the prompt message's id; `Turn.identities` are
`droid:message:<prompt id>` so a session copied into another file is not shipped twice. The
session title is `sessionTitle` unless it is Droid's placeholder "New Session", else `title`;
`cwd` is the turn attribute `tailerd.cwd`. Model and provider come from the settings file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, Turn
from tailerd.formats.base import (
    IdleClosingParser,
    Source,
    TurnParser,
    decode_object,
    first_object,
    parse_time,
    turn_key,
)
from tailerd.formats.content_blocks import (
    block_text,
    message_blocks,
    result_text,
    tool_calls,
)
from tailerd.formats.droid import usage
from tailerd.formats.options import IDLE_CLOSE_ONLY

AGENT_NAME = "droid"
DEFAULT_IDLE_CLOSE = 30.0
PLACEHOLDER_TITLE = "New Session"
IDENTITY_PREFIX = "droid:message:"
CONTEXT_PREFIX = "context-"
REMINDER = "<system-reminder>"
TURN_OUTCOME = "agent_turn_outcome"
COMPLETED = "completed"

Record = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _role(record: Record) -> str:
    message = record.get("message")
    return _str(message.get("role")) if isinstance(message, dict) else ""


def _is_prompt(record: Record) -> bool:
    """A message the person typed: user text, no tool results, and none of what Droid 0.215
    adds as user messages around it: `context-<prompt id>` system reminders and notices with a
    `visibility` (e.g. a BYOK configuration warning), both seen by running the real CLI."""
    blocks = message_blocks(record)
    message = record.get("message")
    texts = [_str(b.get("text")) for b in blocks if b.get("type") == "text"]
    return (
        _role(record) == "user"
        and bool(texts)
        and not any(b.get("type") == "tool_result" for b in blocks)
        and not _str(record.get("id")).startswith(CONTEXT_PREFIX)
        and not (isinstance(message, dict) and "visibility" in message)
        and not all(t.lstrip().startswith(REMINDER) for t in texts)
    )


class DroidParser(IdleClosingParser):
    def __init__(self, source: Source, context: Mapping[str, Any] | None) -> None:
        ctx = dict(context or {})
        self._source = source
        self._session = _str(ctx.get("session_id"))
        self._title = _str(ctx.get("title"))
        self._cwd = _str(ctx.get("cwd"))
        self._attributed = usage.saved_totals(ctx.get("attributed"))
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._records: list[Record] = []
        self._outcome = ""  # the open turn's agent_turn_outcome reason, once written
        self._start = 0
        self._end = 0
        self.ignored = 0

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        kind = raw.get("type")
        if kind == "session_start":
            self._session_start(raw)
        elif kind == "message" and _is_prompt(raw):
            closed: list[Turn | DeadLetter] = [self._close()] if self._records else []
            self._records = [raw]
            self._start, self._end = line.start, line.end
            return closed
        elif kind == "message" and _role(raw) in ("assistant", "user"):
            if self._records:
                self._records.append(raw)
                self._end = line.end
            else:
                self.ignored += 1  # before the first prompt (a file cut at the front)
        elif kind == TURN_OUTCOME and self._records:
            self._end = line.end
            if _str(raw.get("turnId")) == _str(self._records[0].get("id")):
                self._outcome = _str(raw.get("reason")) or "unknown"
                return [self._close()]  # Droid 0.215+: the turn's own end, no quiet time
        elif isinstance(kind, str) and kind:
            self.ignored += 1  # todo_state and record types of newer Droids
            if self._records:
                self._end = line.end
        else:
            return [DeadLetter(line.start, line.end, "unknown Droid record (no type)")]
        return []

    def snapshot(self) -> dict[str, Any]:
        return {
            "session_id": self._session,
            "title": self._title,
            "cwd": self._cwd,
            "attributed": dict(self._attributed),
        }

    def _session_start(self, raw: Record) -> None:
        self._session = _str(raw.get("id")) or self._session
        own = _str(raw.get("sessionTitle"))
        self._title = own if own and own != PLACEHOLDER_TITLE else _str(raw.get("title"))
        self._cwd = _str(raw.get("cwd")) or self._cwd

    def _close(self) -> Turn:
        prompt, rest = self._records[0], self._records[1:]
        self._records = []
        settings = usage.parse_settings(
            self._source.read_related(usage.settings_path(self._source.path), usage.SETTINGS_CAP)
        )
        spans = self._spans(rest, settings)
        session = self._session or PurePath(self._source.stable_name).stem
        attrs: dict[str, Any] = {"tailerd.cwd": self._cwd} if self._cwd else {}
        if settings.totals is None:
            attrs["tailerd.usage.recorded"] = False
        outcome, self._outcome = self._outcome, ""
        if outcome:
            attrs["droid.turn_outcome"] = outcome
        answers = [
            t for t in (block_text(message_blocks(r)) for r in rest if _role(r) == "assistant") if t
        ]
        times = [t for t in (parse_time(r.get("timestamp")) for r in (prompt, *rest)) if t]
        prompt_id = _str(prompt.get("id"))
        return Turn(
            key=turn_key(AGENT_NAME, session, prompt_id or self._start),
            session_id=session,
            start=self._start,
            end=self._end,
            agent_name=self._source.agent_name or AGENT_NAME,
            model=settings.model,
            session_name=self._title,
            messages=(Message("user", block_text(message_blocks(prompt))),),
            output_messages=(Message("assistant", answers[-1]),) if answers else (),
            spans=tuple(spans),
            started_at=times[0] if times else None,
            ended_at=times[-1] if times else None,
            interrupted=bool(outcome) and outcome != COMPLETED,
            attributes=attrs,
            identities=(f"{IDENTITY_PREFIX}{prompt_id}",) if prompt_id else (),
        )

    def _spans(self, rest: list[Record], settings: usage.Settings) -> list[SpanCall]:
        results: dict[str, tuple[str, bool, Any]] = {}
        for r in rest:
            for b in message_blocks(r):
                if b.get("type") == "tool_result" and _str(b.get("tool_use_id")):
                    is_error = b.get("is_error") is True
                    when = r.get("timestamp")
                    results[b["tool_use_id"]] = (result_text(b.get("content")), is_error, when)
        spans: list[SpanCall] = []
        last_chat = -1
        for r in rest:
            if _role(r) != "assistant":
                continue
            blocks, when = message_blocks(r), parse_time(r.get("timestamp"))
            text = block_text(blocks)
            last_chat = len(spans)
            message = r.get("message")
            message = message if isinstance(message, dict) else {}
            spans.append(
                LLMCall(
                    model=_str(message.get("modelId")) or settings.model,
                    provider_name=settings.provider,
                    output_messages=(Message("assistant", text),) if text else (),
                    response_id=_str(message.get("openaiMessageId")) or _str(r.get("id")),
                    started_at=when,
                    ended_at=when,
                    attributes={"tailerd.usage.recorded": False},
                )
            )
            spans.extend(tool_calls(blocks, results, when))
        if last_chat >= 0 and settings.totals is not None:
            grown = usage.delta(settings.totals, self._attributed)
            self._attributed = dict(settings.totals)
            chat = spans[last_chat]
            assert isinstance(chat, LLMCall)
            spans[last_chat] = replace(
                chat, usage=usage.as_usage(grown), attributes={"tailerd.usage.scope": "turn"}
            )
        return spans


class DroidFormat:
    name = "droid"

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A `.jsonl` whose first line is Droid's `session_start` header."""
        if ".jsonl" not in path.name:
            return False
        first = first_object(head)
        return (
            first.get("type") == "session_start"
            and "session_id" not in first
            and ("sessionTitle" in first or "owner" in first)
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return DroidParser(source, context)


FORMAT = DroidFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
