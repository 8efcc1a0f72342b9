"""Native spans: validated native models turned into tailerd's domain messages and spans.

`span_of` maps an `llm`/`tool`/`subagent` model (nested sub-agent spans included) to an
`LLMCall`/`ToolCall`/`SubAgentCall`; unknown keys become span attributes (`extras_of`).
"""

from __future__ import annotations

from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall, Usage
from tailerd.formats.base import json_text
from tailerd.formats.native.models import (
    NativeLLM,
    NativeMessage,
    NativeSubAgent,
    NativeTool,
    OpenModel,
)

_EVENT_KEYS = frozenset({"type", "session_id", "turn_id"})


def message_of(m: NativeMessage) -> Message:
    """A native message as a domain Message; non-string content as JSON text."""
    return Message(m.role, json_text(m.content), m.tool_call_id, m.tool_name)


def messages_of(ms: list[NativeMessage]) -> tuple[Message, ...]:
    """Each of the messages through `message_of`, in order."""
    return tuple(message_of(m) for m in ms)


def extras_of(model: OpenModel) -> dict[str, Any]:
    """A model's unknown keys (span attributes), less the event keys type/session_id/turn_id."""
    return {k: v for k, v in model.extras().items() if k not in _EVENT_KEYS}


def span_of(s: NativeLLM | NativeTool | NativeSubAgent) -> SpanCall:
    """An llm/tool/subagent model as an LLMCall/ToolCall/SubAgentCall, children included."""
    if isinstance(s, NativeLLM):
        u = s.usage
        return LLMCall(
            model=s.model,
            provider_name=s.provider_name,
            input_messages=messages_of(s.input_messages),
            output_messages=messages_of(s.output_messages),
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
            attributes=extras_of(s),
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
            attributes=extras_of(s),
        )
    return SubAgentCall(
        name=s.name,
        model=s.model,
        agent_id=s.agent_id,
        input_messages=messages_of(s.input_messages),
        output_messages=messages_of(s.output_messages),
        tool_name=s.tool_name,
        tool_call_id=s.tool_call_id,
        spans=tuple(span_of(c) for c in s.spans),
        started_at=s.started_at,
        ended_at=s.ended_at,
        attributes=extras_of(s),
    )
