"""tailerd JSONL: the native format for agents that write their own logs.

Keys mirror weave's constructors (Message, LLM, Tool, SubAgent, Usage). Two styles, mixable:

* one `{"type": "turn", ...}` line per finished turn;
* event lines sharing `session_id` and `turn_id`: `turn_start`, any number of `llm`, `tool`,
  `subagent` and `message`, then `turn_end`, which finishes the turn. `session_end` finishes
  the session (closing any turn still open in it as interrupted).

Unknown keys are kept as span attributes. The JSON Schema in `tailerd/schema/native.schema.json`
is generated from these models (`python -m tailerd.formats.native`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tailerd.domain import (
    DeadLetter,
    Line,
    LLMCall,
    Message,
    SpanCall,
    SubAgentCall,
    ToolCall,
    Turn,
    Usage,
)
from tailerd.formats.base import Source, TurnParser, decode_object, json_text, turn_key

DEFAULT_IDLE_CLOSE = 600.0  # seconds a started turn may stay quiet before it is closed, interrupted


class _Open(BaseModel):
    """Unknown keys are allowed and kept as attributes."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NativeMessage(_Open):
    role: Literal["user", "assistant", "system", "tool"]
    content: Any = ""
    tool_call_id: str = ""
    tool_name: str = ""


class NativeUsage(_Open):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None


class NativeLLM(_Open):
    type: Literal["llm"]
    model: str = ""
    provider_name: str = ""
    input_messages: list[NativeMessage] = Field(default_factory=list)
    output_messages: list[NativeMessage] = Field(default_factory=list)
    usage: NativeUsage = Field(default_factory=NativeUsage)
    reasoning: str = ""
    response_id: str = ""
    finish_reasons: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class NativeTool(_Open):
    type: Literal["tool"]
    name: str
    arguments: Any = ""
    result: Any = ""
    tool_call_id: str = ""
    is_error: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None


class NativeSubAgent(_Open):
    type: Literal["subagent"]
    name: str
    model: str = ""
    agent_id: str = ""
    input_messages: list[NativeMessage] = Field(default_factory=list)
    output_messages: list[NativeMessage] = Field(default_factory=list)
    tool_name: str = ""
    tool_call_id: str = ""
    spans: list[NativeSpan] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None


NativeSpan = Annotated[Union[NativeLLM, NativeTool, NativeSubAgent], Field(discriminator="type")]  # noqa: UP007
NativeSubAgent.model_rebuild()

_SESSION = Annotated[str, Field(min_length=1)]


class NativeTurn(_Open):
    """A whole finished turn on one line."""

    type: Literal["turn"]
    session_id: _SESSION
    turn_id: str = ""
    session_name: str = ""
    agent_name: str = ""
    model: str = ""
    messages: list[NativeMessage] = Field(default_factory=list)
    output_messages: list[NativeMessage] | None = None
    spans: list[NativeSpan] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    interrupted: bool = False


class _Event(_Open):
    session_id: _SESSION
    turn_id: str


class TurnStart(_Event):
    type: Literal["turn_start"]
    session_name: str = ""
    agent_name: str = ""
    model: str = ""
    messages: list[NativeMessage] = Field(default_factory=list)
    started_at: datetime | None = None


class LLMEvent(NativeLLM, _Event):
    pass


class ToolEvent(NativeTool, _Event):
    pass


class SubAgentEvent(NativeSubAgent, _Event):
    pass


class MessageEvent(NativeMessage, _Event):
    type: Literal["message"]


class TurnEnd(_Event):
    type: Literal["turn_end"]
    output_messages: list[NativeMessage] | None = None
    ended_at: datetime | None = None
    interrupted: bool = False


class SessionEnd(_Open):
    type: Literal["session_end"]
    session_id: _SESSION


NativeLine = Annotated[
    NativeTurn
    | TurnStart
    | LLMEvent
    | ToolEvent
    | SubAgentEvent
    | MessageEvent
    | TurnEnd
    | SessionEnd,
    Field(discriminator="type"),
]
_LINE = TypeAdapter(NativeLine)
_TYPES = frozenset(
    {"turn", "turn_start", "llm", "tool", "subagent", "message", "turn_end", "session_end"}
)
_EVENT_KEYS = frozenset({"type", "session_id", "turn_id"})


def _message(m: NativeMessage) -> Message:
    return Message(m.role, json_text(m.content), m.tool_call_id, m.tool_name)


def _messages(ms: list[NativeMessage]) -> tuple[Message, ...]:
    return tuple(_message(m) for m in ms)


def _extras(model: _Open) -> dict[str, Any]:
    return {k: v for k, v in model.extras().items() if k not in _EVENT_KEYS}


def _span(s: NativeLLM | NativeTool | NativeSubAgent) -> SpanCall:
    if isinstance(s, NativeLLM):
        u = s.usage
        return LLMCall(
            model=s.model,
            provider_name=s.provider_name,
            input_messages=_messages(s.input_messages),
            output_messages=_messages(s.output_messages),
            usage=Usage(
                u.input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
                u.reasoning_tokens,
                u.total_tokens,
            ),
            reasoning=s.reasoning,
            response_id=s.response_id,
            finish_reasons=tuple(s.finish_reasons),
            started_at=s.started_at,
            ended_at=s.ended_at,
            attributes=_extras(s),
        )
    if isinstance(s, NativeTool):
        return ToolCall(
            name=s.name,
            arguments=json_text(s.arguments),
            result=json_text(s.result),
            tool_call_id=s.tool_call_id,
            is_error=s.is_error,
            started_at=s.started_at,
            ended_at=s.ended_at,
            attributes=_extras(s),
        )
    return SubAgentCall(
        name=s.name,
        model=s.model,
        agent_id=s.agent_id,
        input_messages=_messages(s.input_messages),
        output_messages=_messages(s.output_messages),
        tool_name=s.tool_name,
        tool_call_id=s.tool_call_id,
        spans=tuple(_span(c) for c in s.spans),
        started_at=s.started_at,
        ended_at=s.ended_at,
        attributes=_extras(s),
    )


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
            record = _LINE.validate_python(raw)
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
                list(_messages(record.messages)),
                started_at=record.started_at,
                attributes=_extras(record),
            )
            return list(replaced)
        turn = self._open.get(slot)
        if turn is None:
            return [
                DeadLetter(line.start, line.end, f"{record.type} for a turn that was not started")
            ]
        if isinstance(record, MessageEvent):
            turn.messages.append(_message(record))
        elif isinstance(record, TurnEnd):
            output = None if record.output_messages is None else _messages(record.output_messages)
            return list(self._close(slot, line.end, record.ended_at, record.interrupted, output))
        else:
            turn.spans.append(_span(record))
        return []

    def _whole_turn(self, r: NativeTurn, line: Line) -> Turn:
        messages, output = split_output(
            _messages(r.messages),
            None if r.output_messages is None else _messages(r.output_messages),
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
            spans=tuple(_span(s) for s in r.spans),
            started_at=r.started_at,
            ended_at=r.ended_at,
            interrupted=r.interrupted,
            attributes=_extras(r),
        )

    def _key(self, session_id: str, turn_id: str, start: int) -> str:
        if turn_id:
            return turn_key("native", session_id, turn_id)
        return turn_key("native", session_id, self._source.stable_name, start)

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

    def snapshot(self) -> dict[str, Any]:
        return {}  # every native line names its session and turn: nothing to carry over


def _validation_reason(raw: dict[str, Any], exc: ValidationError) -> str:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        return f"unknown record type {kind!r}"
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid record: {where}: {first['msg']}"


class NativeFormat:
    name = "native"

    def claims(self, path: PurePath, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        try:
            raw = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(raw, dict)
            and isinstance(raw.get("type"), str)
            and raw["type"] in _TYPES
            and "session_id" in raw
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return NativeParser(source)


FORMAT = NativeFormat()

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "native.schema.json"


def json_schema() -> dict[str, Any]:
    schema = _LINE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tailerd native JSONL line"
    return schema


if __name__ == "__main__":
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
