"""Native turn assembly: whole-turn lines and start/event/end lines cut into finished turns.

A `turn` line is a finished turn on its own. Event lines are grouped by (`session_id`,
`turn_id`): `turn_start` opens a turn, `llm`/`tool`/`subagent`/`message` add to it, `turn_end`
finishes it; `session_end`, a repeated `turn_start` and `close_idle` finish open turns as
interrupted. A line that fails validation is a dead letter naming the first error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tailerd.domain import DeadLetter, Line, Message, SpanCall, Turn
from tailerd.formats.base import Source, decode_object, turn_key
from tailerd.formats.native.models import (
    LINE,
    TYPES,
    MessageEvent,
    NativeTurn,
    SessionEnd,
    TurnEnd,
    TurnStart,
)
from tailerd.formats.native.spans import extras_of, message_of, messages_of, span_of

DEFAULT_IDLE_CLOSE = 600.0  # seconds a started turn may stay quiet before it is closed, interrupted


def split_output(
    messages: tuple[Message, ...], output: tuple[Message, ...] | None
) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """Without explicit output messages, the trailing assistant messages are the turn's output."""
    if output is not None:
        return messages, output
    cut = len(messages)
    while cut > 0 and messages[cut - 1].role == "assistant":
        cut -= 1
    return messages[:cut], messages[cut:]


@dataclass(slots=True)
class _OpenTurn:
    start: int
    session_id: str
    turn_id: str
    agent_name: str = ""
    model: str = ""
    session_name: str = ""
    messages: list[Message] = field(default_factory=list)
    spans: list[SpanCall] = field(default_factory=list)
    started_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class NativeParser:
    def __init__(self, source: Source) -> None:
        self._source = source
        self._open: dict[tuple[str, str], _OpenTurn] = {}
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        try:
            record = LINE.validate_python(raw)
        except ValidationError as exc:
            return [DeadLetter(line.start, line.end, _validation_reason(raw, exc))]
        return self._apply(record, line)

    def _apply(self, record: Any, line: Line) -> list[Turn | DeadLetter]:
        if isinstance(record, NativeTurn):
            return [self._whole_turn(record, line)]
        if isinstance(record, SessionEnd):
            return self._end_session(record.session_id, line.end)
        slot = (record.session_id, record.turn_id)
        if isinstance(record, TurnStart):
            replaced = self._close(slot, line.start, None, interrupted=True)
            self._open[slot] = _OpenTurn(
                line.start,
                record.session_id,
                record.turn_id,
                record.agent_name,
                record.model,
                record.session_name,
                list(messages_of(record.messages)),
                started_at=record.started_at,
                attributes=extras_of(record),
            )
            return list(replaced)
        turn = self._open.get(slot)
        if turn is None:
            return [
                DeadLetter(line.start, line.end, f"{record.type} for a turn that was not started")
            ]
        if isinstance(record, MessageEvent):
            turn.messages.append(message_of(record))
        elif isinstance(record, TurnEnd):
            output = None if record.output_messages is None else messages_of(record.output_messages)
            return list(self._close(slot, line.end, record.ended_at, record.interrupted, output))
        else:
            turn.spans.append(span_of(record))
        return []

    def _whole_turn(self, r: NativeTurn, line: Line) -> Turn:
        messages, output = split_output(
            messages_of(r.messages),
            None if r.output_messages is None else messages_of(r.output_messages),
        )
        return Turn(
            key=self._key(r.session_id, r.turn_id, line.start),
            session_id=r.session_id,
            start=line.start,
            end=line.end,
            agent_name=self._source.agent_name or r.agent_name,
            model=r.model,
            session_name=r.session_name,
            messages=messages,
            output_messages=output,
            spans=tuple(span_of(s) for s in r.spans),
            started_at=r.started_at,
            ended_at=r.ended_at,
            interrupted=r.interrupted,
            attributes=extras_of(r),
        )

    def _key(self, session_id: str, turn_id: str, start: int) -> str:
        if turn_id:
            return turn_key("native", session_id, turn_id)
        return turn_key("native", session_id, self._source.local_key(start))

    def _close(
        self,
        slot: tuple[str, str],
        end: int,
        ended_at: datetime | None,
        interrupted: bool,
        output: tuple[Message, ...] | None = None,
    ) -> list[Turn]:
        t = self._open.pop(slot, None)
        if t is None:
            return []
        messages, output = split_output(tuple(t.messages), output)
        return [
            Turn(
                key=self._key(t.session_id, t.turn_id, t.start),
                session_id=t.session_id,
                start=t.start,
                end=end,
                agent_name=self._source.agent_name or t.agent_name,
                model=t.model,
                session_name=t.session_name,
                messages=messages,
                output_messages=output,
                spans=tuple(t.spans),
                started_at=t.started_at,
                ended_at=ended_at,
                interrupted=interrupted,
                attributes=t.attributes,
            )
        ]

    def _end_session(self, session_id: str, end: int) -> list[Turn | DeadLetter]:
        slots = [s for s in self._open if s[0] == session_id]
        out: list[Turn | DeadLetter] = []
        for slot in slots:
            out.extend(self._close(slot, end, None, interrupted=True))
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if quiet_for < self._idle_close or not self._open:
            return []
        out: list[Turn] = []
        for slot in sorted(self._open, key=lambda s: self._open[s].start):
            out.extend(self._close(slot, self._open[slot].start, None, interrupted=True))
        return out

    def pending_from(self) -> int | None:
        return min((t.start for t in self._open.values()), default=None)

    def open_turns(self) -> list[tuple[int, str]]:
        """Each open turn as (first byte offset, what would close it), oldest first."""
        rule = f"turn_end, session_end or {self._idle_close:g} s of quiet"
        return sorted((t.start, rule) for t in self._open.values())

    def snapshot(self) -> dict[str, Any]:
        return {}  # every native line names its session and turn: nothing to carry over


def _validation_reason(raw: dict[str, Any], exc: ValidationError) -> str:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        return f"unknown record type {kind!r}"
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid record: {where}: {first['msg']}"
