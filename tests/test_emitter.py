"""Turns become the spans the real weave.log_turn makes, with ids derived from the turn key."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from tailerd.domain import LLMCall, Message, SubAgentCall, ToolCall, Turn, Usage
from tailerd.emitter import Emitter

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def expected_trace_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|trace".encode(), digest_size=16).digest(), "big")


def sample_turn(key: str = "native|s1|1") -> Turn:
    return Turn(
        key=key,
        session_id="s1",
        start=0,
        end=10,
        agent_name="weather-bot",
        model="gpt-4o",
        messages=(Message("user", "weather in Tokyo?"),),
        output_messages=(Message("assistant", "24°C"),),
        spans=(
            LLMCall(
                model="gpt-4o",
                provider_name="openai",
                usage=Usage(100, 20),
                started_at=T0,
                ended_at=T0,
            ),
            ToolCall(
                name="get_weather",
                arguments='{"city": "Tokyo"}',
                result="24",
                is_error=True,
                started_at=T0,
            ),
            SubAgentCall(
                name="helper",
                spans=(LLMCall(model="m2", usage=Usage(5, 6)), ToolCall(name="grep")),
            ),
        ),
        started_at=T0,
        ended_at=T0,
        attributes={"user_tier": "free", "nested": {"a": 1}},
    )


def test_span_shape_is_what_log_turn_makes():
    spans = Emitter().emit(sample_turn())
    names = [s.name for s in spans]
    assert names == [
        "invoke_agent weather-bot",
        "chat gpt-4o",
        "execute_tool get_weather",
        "invoke_agent helper",
        "chat m2",
        "execute_tool grep",
    ]
    root, chat, tool, sub, sub_chat, sub_tool = spans
    assert root.parent is None
    assert {chat.parent.span_id, tool.parent.span_id, sub.parent.span_id} == {root.context.span_id}
    assert {sub_chat.parent.span_id, sub_tool.parent.span_id} == {sub.context.span_id}
    assert {s.attributes["gen_ai.conversation.id"] for s in spans} == {"s1"}
    assert chat.attributes["gen_ai.usage.input_tokens"] == 100
    assert sub_chat.attributes["gen_ai.usage.output_tokens"] == 6
    assert root.attributes["user_tier"] == "free"
    assert root.attributes["nested"] == '{"a":1}'
    assert tool.attributes["error.type"] == "tool_error"
    assert {s.context.trace_id for s in spans} == {expected_trace_id("native|s1|1")}


def test_ids_are_the_same_on_every_send_and_differ_between_turns():
    emitter = Emitter()
    first = [(s.context.trace_id, s.context.span_id) for s in emitter.emit(sample_turn())]
    again = [(s.context.trace_id, s.context.span_id) for s in emitter.emit(sample_turn())]
    other = [
        (s.context.trace_id, s.context.span_id) for s in emitter.emit(sample_turn("native|s1|2"))
    ]
    assert first == again
    assert len(set(first)) == 6
    assert not set(first) & set(other)


def test_a_whole_session_through_log_conversation_has_the_live_ids():
    emitter = Emitter()
    turns = [sample_turn("k1"), sample_turn("k2")]
    live = sorted((s.context.trace_id, s.context.span_id) for t in turns for s in emitter.emit(t))
    batch = sorted((s.context.trace_id, s.context.span_id) for s in emitter.emit_session(turns))
    assert live == batch
