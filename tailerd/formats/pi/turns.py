"""The pi parser: session entries in, finished turns out (v1 linear files and v3 trees alike).

A turn starts at a user message and holds the entries after it in file order: assistant
messages (one LLM call each), their tool results, `!command` runs. pi waits for the user after
an assistant message whose `stopReason` is `stop` or `length` (the turn is finished) or
`aborted` (finished, interrupted); after `error` pi may retry on its own, so that turn
finishes at the next user message or after `idle_close` (30 s) of quiet; a turn still in its
tool loop finishes after `stale_close` (6 h, interrupted). An assistant message with no open
turn (a retry after the turn closed) opens a continuation turn.

v3 files are a tree (`id`/`parentId`): a user message whose parent is not the entry before it
starts a new branch (`/tree`, a rewind); the abandoned branch was still sent to the model and
billed, so its turns are shipped as they were written, and the branching turn carries
`pi.branch_from` (the entry it continues). `compaction` and `branch_summary` entries are
pi's summariser: a sub-agent span in the open turn, or a synthetic turn of their own between
turns. `session_info.name` is the session's title; the header's `cwd` is `tailerd.cwd`, its
`parentSession`/`branchedFrom` (a forked session) `pi.branched_from`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn
from tailerd.formats.base import Source, turn_key
from tailerd.formats.claude_code.records import decode_line
from tailerd.formats.json_values import as_dict, as_int, as_str
from tailerd.formats.pi.entries import (
    FINISHED,
    Entry,
    bash_execution,
    identity,
    llm_call,
    message_time,
    summary_span,
    text_of,
    with_result,
)

AGENT_NAME = "pi"
DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 21600.0
_CONTEXT_KEYS = ("session_id", "cwd", "model", "provider", "name", "branched_from", "last_id")


@dataclass(slots=True)
class _Open:
    key_part: str
    start: int
    end: int
    started_at: datetime | None
    messages: list[Message] = field(default_factory=list)
    spans: list[SpanCall] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # tool call id -> index in spans
    identities: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    final: bool = False  # the last assistant message ended in error: pi may still retry
    interrupted: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


class PiParser:
    def __init__(self, source: Source, context: Mapping[str, Any] | None) -> None:
        ctx = as_dict(context)
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._stale_close = float(source.options.get("stale_close", DEFAULT_STALE_CLOSE))
        self._ctx: dict[str, str] = {k: as_str(ctx.get(k)) for k in _CONTEXT_KEYS}
        self._at_open = dict(self._ctx)
        self._open: _Open | None = None
        self.ignored = 0
        self._unknown: Counter[str] = Counter()  # entry types and message roles not understood

    # -- the TurnParser protocol --------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        entries, dead = decode_line(line)  # v1 files hold two entries glued on one line
        out: list[Turn | DeadLetter] = list(dead)
        for entry in entries:
            self._entry(entry, line, out)
            if as_str(entry.get("id")):
                self._ctx["last_id"] = entry["id"]
        if self._open is not None:
            self._open.end = max(self._open.end, line.end)
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        turn = self._open
        if turn is None:
            return []
        if (turn.final and quiet_for >= self._idle_close) or quiet_for >= self._stale_close:
            turn.interrupted = turn.interrupted or not turn.final
            return [self._close()]
        return []

    def pending_from(self) -> int | None:
        return self._open.start if self._open is not None else None

    def open_turns(self) -> list[tuple[int, str]]:
        if self._open is None:
            return []
        rule = (
            f"the next prompt or {self._idle_close:g} s of quiet (after an error)"
            if self._open.final
            else f"a final answer or {self._stale_close:g} s of quiet"
        )
        return [(self._open.start, rule)]

    def unknown_types(self) -> dict[str, int]:
        """Entry types (and message roles, as "message/<role>") not understood -> count."""
        return dict(self._unknown)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._at_open) if self._open is not None else dict(self._ctx)

    # -- entries ------------------------------------------------------------------------------

    def _entry(self, entry: Entry, line: Line, out: list[Turn | DeadLetter]) -> None:
        kind = entry.get("type")
        if kind == "session":
            self._header(entry)
        elif kind == "message":
            self._message(entry, line, out)
        elif kind == "model_change":
            self._ctx["model"] = as_str(entry.get("modelId")) or self._ctx["model"]
            self._ctx["provider"] = as_str(entry.get("provider")) or self._ctx["provider"]
        elif kind == "session_info":
            self._ctx["name"] = as_str(entry.get("name")) or self._ctx["name"]
        elif kind in ("compaction", "branch_summary"):
            self._summary(entry, str(kind), line, out)
        elif kind in ("thinking_level_change", "label", "custom", "custom_message", "leaf"):
            self.ignored += 1
        else:
            self._unknown[str(kind)] += 1

    def _header(self, entry: Entry) -> None:
        self._ctx["session_id"] = self._ctx["session_id"] or as_str(entry.get("id"))
        self._ctx["cwd"] = as_str(entry.get("cwd")) or self._ctx["cwd"]
        self._ctx["model"] = as_str(entry.get("modelId")) or self._ctx["model"]  # v1
        self._ctx["provider"] = as_str(entry.get("provider")) or self._ctx["provider"]
        parent = as_str(entry.get("parentSession")) or as_str(entry.get("branchedFrom"))
        self._ctx["branched_from"] = parent or self._ctx["branched_from"]

    def _message(self, entry: Entry, line: Line, out: list[Turn | DeadLetter]) -> None:
        message = as_dict(entry.get("message"))
        role = message.get("role")
        if role == "user":
            self._user(entry, message, line, out)
        elif role == "assistant":
            self._assistant(entry, message, line, out)
        elif role == "toolResult" and self._open is not None:
            turn = self._open
            i = turn.calls.pop(as_str(message.get("toolCallId")), None)
            old = turn.spans[i] if i is not None else None
            if isinstance(old, ToolCall) and i is not None:
                turn.spans[i] = with_result(old, entry)
            else:
                self.ignored += 1
        elif role == "bashExecution":
            turn = self._open or self._begin(entry, line, continuation=True)
            turn.spans.append(bash_execution(entry))
            turn.final = True
        elif role in ("user", "assistant", "toolResult"):
            self.ignored += 1  # a tool result with no turn open
        else:
            self._unknown[f"message/{role}"] += 1
        if self._open is not None:
            self._open.ended_at = message_time(entry) or self._open.ended_at

    def _user(self, entry: Entry, message: Entry, line: Line, out: list[Turn | DeadLetter]) -> None:
        if self._open is not None:
            out.append(self._close())
        turn = self._begin(entry, line)
        turn.messages.append(Message("user", text_of(message)))
        turn.identities.append(identity(message))
        parent = as_str(entry.get("parentId"))
        if parent and self._ctx["last_id"] and parent != self._ctx["last_id"]:
            turn.attributes["pi.branch_from"] = parent

    def _assistant(
        self, entry: Entry, message: Entry, line: Line, out: list[Turn | DeadLetter]
    ) -> None:
        turn = self._open or self._begin(entry, line, continuation=True)
        llm, calls = llm_call(entry, self._ctx["model"], self._ctx["provider"])
        turn.spans.append(llm)
        for call in calls:
            if call.tool_call_id:
                turn.calls[call.tool_call_id] = len(turn.spans)
            turn.spans.append(call)
        stop = as_str(message.get("stopReason"))
        turn.final = stop == "error" or (stop in FINISHED and not calls)
        turn.interrupted = turn.interrupted or stop == "aborted"
        if stop in FINISHED:
            turn.end = max(turn.end, line.end)
            turn.ended_at = message_time(entry) or turn.ended_at
            out.append(self._close())

    def _summary(self, entry: Entry, kind: str, line: Line, out: list[Turn | DeadLetter]) -> None:
        span = summary_span(entry, kind, self._ctx["model"])
        if self._open is not None:
            self._open.spans.append(span)
            return
        turn = self._begin(entry, line, continuation=True)
        turn.spans.append(span)
        turn.attributes["tailerd.synthetic"] = kind
        out.append(self._close())

    # -- building turns -----------------------------------------------------------------------

    def _begin(self, entry: Entry, line: Line, continuation: bool = False) -> _Open:
        self._at_open = dict(self._ctx)
        message = as_dict(entry.get("message"))
        key_part = as_str(entry.get("id"))  # v3
        if not key_part and as_int(message.get("timestamp")):  # v1: no ids; ms timestamps
            key_part = f"ts{as_int(message['timestamp'])}"
        if not key_part:
            key_part = self._source.local_key(line.start)
        turn = _Open(key_part, line.start, line.end, message_time(entry))
        if continuation:
            turn.attributes["pi.continuation"] = True
        self._open = turn
        return turn

    def _close(self) -> Turn:
        turn = self._open
        assert turn is not None
        self._open = None
        session = self._ctx["session_id"] or PurePath(self._source.path).name.split(".")[0]
        answers = [
            m.content
            for s in turn.spans
            if isinstance(s, LLMCall)
            for m in s.output_messages
            if m.content
        ]
        models = [s.model for s in turn.spans if isinstance(s, LLMCall) and s.model]
        attributes = dict(turn.attributes)
        if self._ctx["cwd"]:
            attributes["tailerd.cwd"] = self._ctx["cwd"]
        if self._ctx["branched_from"]:
            attributes["pi.branched_from"] = self._ctx["branched_from"]
        return Turn(
            key=turn_key(AGENT_NAME, session, turn.key_part),
            session_id=session,
            start=turn.start,
            end=turn.end,
            agent_name=self._source.agent_name or AGENT_NAME,
            model=models[-1] if models else self._ctx["model"],
            session_name=self._ctx["name"],
            messages=tuple(turn.messages),
            output_messages=(Message("assistant", answers[-1]),) if answers else (),
            spans=tuple(turn.spans),
            started_at=turn.started_at,
            ended_at=turn.ended_at or turn.started_at,
            interrupted=turn.interrupted,
            attributes=attributes,
            identities=tuple(turn.identities),
        )
