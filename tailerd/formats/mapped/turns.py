"""Mapped turn assembly: records cut into finished turns, one open turn per session.

See the package docstring, "Turn boundaries". Per session, the parser remembers its name and its
last finished turns (`snapshot`), so a re-read after a restart sends nothing twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn
from tailerd.formats.base import Source, decode_object, turn_key
from tailerd.formats.mapped.records import Reader, Record, Unreadable
from tailerd.formats.mapped.spec import MappingSpec
from tailerd.formats.native import split_output

SENT_IDS = 16  # finished turn ids remembered per session
SESSIONS_REMEMBERED = 64  # sessions whose name and finished turns are remembered


@dataclass(slots=True)
class _OpenTurn:
    start: int
    end: int
    turn_id: str
    started_at: datetime | None
    ended_at: datetime | None
    messages: list[Message] = field(default_factory=list)
    spans: list[SpanCall] = field(default_factory=list)
    awaiting: dict[str, int] = field(default_factory=dict)  # call id -> index in spans


@dataclass(slots=True)
class _Session:
    """What a file has said about a session before the current line; carried across restarts."""

    name: str = ""
    sent_until: int = 0  # end offset of its last finished turn: earlier lines are a re-read
    sent_ids: list[str] = field(default_factory=list)  # its last finished turn ids

    def finished(self, turn: _OpenTurn) -> None:
        self.sent_until = turn.end
        if turn.turn_id:
            self.sent_ids = [*self.sent_ids, turn.turn_id][-SENT_IDS:]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sent_until": self.sent_until, "sent_ids": self.sent_ids}

    @classmethod
    def from_json(cls, raw: object) -> _Session:
        if not isinstance(raw, dict):
            return cls()
        ids = raw.get("sent_ids")
        until = raw.get("sent_until")
        return cls(
            name=str(raw.get("name") or ""),
            sent_until=until if isinstance(until, int) else 0,
            sent_ids=[str(i) for i in ids] if isinstance(ids, list) else [],
        )


def _sessions_from(context: Mapping[str, Any] | None) -> OrderedDict[str, _Session]:
    raw = (context or {}).get("sessions")
    if not isinstance(raw, dict):
        return OrderedDict()
    return OrderedDict((str(k), _Session.from_json(v)) for k, v in raw.items())


class MappedParser:
    """One file of a mapped format: lines in, finished turns out (see `TurnParser`)."""

    def __init__(
        self,
        spec: MappingSpec,
        compiled: Mapping[str, Any],
        source: Source,
        context: Mapping[str, Any] | None,
    ) -> None:
        """`compiled`: the spec's expressions, from `compile_expressions(spec)`."""
        self._compiled = compiled
        self._spec = spec
        self._source = source
        self._open: dict[str, _OpenTurn] = {}
        self._sessions = _sessions_from(context)
        self._idle_close = float(source.options.get("idle_close", self._spec.idle_close))
        self._stale_close = float(source.options.get("stale_close", self._spec.stale_close))

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        try:
            record = Reader(self._spec, self._compiled, raw).read()
        except Unreadable as exc:
            return [DeadLetter(line.start, line.end, f"mapping {self._spec.name!r}: {exc}")]
        return self._apply(record, line)

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > SESSIONS_REMEMBERED:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(session_id)
        return session

    def _apply(self, r: Record, line: Line) -> list[Turn | DeadLetter]:
        session = self._session(r.session_id)
        if line.start < session.sent_until:
            return []  # re-read after a restart: this line's turn was already sent
        session.name = r.session_name or session.name
        if r.turn_id and r.turn_id in session.sent_ids:
            reason = f"record of finished turn {r.turn_id!r}"
            return [DeadLetter(line.start, line.end, reason)] if r.has_content else []
        out: list[Turn | DeadLetter] = []
        turn = self._open.get(r.session_id)
        if self._opens_turn(r, turn):
            if turn is not None:
                out.append(self._close(r.session_id, not self._spec.end_on_next_start))
            turn = self._open[r.session_id] = _OpenTurn(
                line.start, line.end, r.turn_id, r.time, r.time
            )
        if turn is None:
            if r.has_content:
                out.append(DeadLetter(line.start, line.end, "record with content outside a turn"))
            return out
        turn.end, turn.ended_at = line.end, r.time or turn.ended_at
        turn.turn_id = turn.turn_id or r.turn_id
        dead = self._add(turn, r)
        if dead:
            out.append(DeadLetter(line.start, line.end, dead))
        if r.ends:
            out.append(self._close(r.session_id, interrupted=False))
        return out

    def _opens_turn(self, r: Record, turn: _OpenTurn | None) -> bool:
        if self._spec.turn_start is not None:
            return r.starts
        if turn is not None:
            return bool(r.turn_id and turn.turn_id and r.turn_id != turn.turn_id)
        return r.has_content and r.tool_result is None

    def _add(self, turn: _OpenTurn, r: Record) -> str:
        """Adds the record's content to its turn; returns a dead-letter reason or ""."""
        if r.user is not None:
            turn.messages.append(Message("user", r.user))
        if r.llm is not None:
            turn.spans.append(r.llm)
        if r.tool is not None:
            if r.awaits_result:
                turn.awaiting[r.tool.tool_call_id] = len(turn.spans)
            turn.spans.append(r.tool)
        if r.assistant is not None:
            turn.messages.append(Message("assistant", r.assistant))
        if r.tool_result is None:
            return ""
        index = turn.awaiting.pop(r.tool_result.call_id, None)
        if index is None:
            return f"tool result for no waiting call {r.tool_result.call_id!r}"
        call = turn.spans[index]
        if isinstance(call, ToolCall):  # always: `awaiting` indexes tool calls only
            turn.spans[index] = replace(
                call, result=r.tool_result.result, is_error=r.tool_result.is_error, ended_at=r.time
            )
        return ""

    def _key(self, session_id: str, turn: _OpenTurn) -> str:
        if turn.turn_id:
            return turn_key(self._spec.name, session_id, turn.turn_id)
        if turn.started_at is not None:
            started = turn.started_at.isoformat()
            return turn_key(self._spec.name, session_id, self._source.local_key(started))
        return turn_key(self._spec.name, session_id, self._source.local_key(turn.start))

    def _close(self, session_id: str, interrupted: bool) -> Turn:
        t = self._open.pop(session_id)
        session = self._session(session_id)
        session.finished(t)
        spans = list(t.spans)
        for index in t.awaiting.values():
            spans[index] = replace(spans[index], attributes={"result_missing": True})
        messages, output = split_output(tuple(t.messages), None)
        models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
        return Turn(
            key=self._key(session_id, t),
            session_id=session_id,
            start=t.start,
            end=t.end,
            agent_name=self._source.agent_name or self._spec.agent_name or self._spec.name,
            model=models[-1] if models else "",
            session_name=session.name,
            messages=messages,
            output_messages=output,
            spans=tuple(spans),
            started_at=t.started_at,
            ended_at=t.ended_at,
            interrupted=interrupted,
        )

    def close_idle(self, quiet_for: float) -> list[Turn]:
        out: list[Turn] = []
        for session_id in sorted(self._open, key=lambda s: self._open[s].start):
            unfinished = self._spec.turn_end is not None or bool(self._open[session_id].awaiting)
            if quiet_for >= (self._stale_close if unfinished else self._idle_close):
                out.append(self._close(session_id, interrupted=unfinished))
        return out

    def pending_from(self) -> int | None:
        return min((t.start for t in self._open.values()), default=None)

    def snapshot(self) -> dict[str, Any]:
        # a session's name may come from a header before the resume offset, and a finished turn
        # of another session may straddle it: re-read, its lines must not become a new turn
        return {"sessions": {k: v.to_json() for k, v in self._sessions.items()}}
