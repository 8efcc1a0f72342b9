"""Native format models: the pydantic models of every native JSONL line, one per `type`.

`LINE` validates a decoded line into one of them (discriminated by `type`); the JSON Schema in
`tailerd/schema/native.schema.json` is generated from `NativeLine` (see `schema`). Unknown keys
are allowed and kept (`OpenModel.extras`). Class docstrings become schema descriptions: changing
one changes the checked-in schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class OpenModel(BaseModel):
    """Unknown keys are allowed and kept as attributes."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NativeMessage(OpenModel):
    role: Literal["user", "assistant", "system", "tool"]
    content: Any = ""
    tool_call_id: str = ""
    tool_name: str = ""


class NativeUsage(OpenModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None


class NativeLLM(OpenModel):
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


class NativeTool(OpenModel):
    type: Literal["tool"]
    name: str
    arguments: Any = ""
    result: Any = ""
    tool_call_id: str = ""
    is_error: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None


class NativeSubAgent(OpenModel):
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


class NativeTurn(OpenModel):
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


class _Event(OpenModel):
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


class SessionEnd(OpenModel):
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
LINE = TypeAdapter(NativeLine)
TYPES = frozenset(
    {"turn", "turn_start", "llm", "tool", "subagent", "message", "turn_end", "session_end"}
)
