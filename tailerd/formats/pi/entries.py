"""pi session entries as tailerd spans: messages, usage with pi's own cost, tool results.

Entry shapes (badlogic/pi-mono, now earendil-works/pi: `packages/coding-agent/src/core/
session-manager.ts`, `SessionEntry`): a `message` entry holds an `AgentMessage`:
`{role: "user", content, timestamp}`, `{role: "assistant", content: [text | thinking |
toolCall{id, name, arguments}], api, provider, model, usage{input, output, cacheRead,
cacheWrite, totalTokens, cost{input, output, cacheRead, cacheWrite, total}}, stopReason:
stop | length | toolUse | error | aborted, errorMessage?, responseId?}`, `{role: "toolResult",
toolCallId, toolName, content, isError}`, `{role: "bashExecution", command, output,
exitCode}` (a `!command` the user ran).

Tokens: pi's `input` excludes cache reads and writes (Anthropic's convention: in the v3
fixture `input 1811 + output 27 + cacheRead 8294 = totalTokens 10132`), so Weave's
`input_tokens = input + cacheRead + cacheWrite`. Cost: pi prices each call itself
(`usage.cost.total`, USD); a positive total is shipped as `gen_ai.usage.cost` (the agent's
own number beats a price table; `tailerd.cost.source = "agent"`). A total of 0 is what pi
writes both for free models and for models it has no price for, so it is not shipped as a
cost: the call is left to tailerd's price table (`pi.cost_total = 0.0` says what pi wrote).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tailerd.domain import LLMCall, Message, SubAgentCall, ToolCall, Usage
from tailerd.formats.base import json_text, parse_time
from tailerd.formats.json_values import as_dict, as_int, as_str

Entry = dict[str, Any]
FINISHED = frozenset({"stop", "length", "aborted"})  # stopReasons after which pi waits


def blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def text_of(message: Mapping[str, Any]) -> str:
    texts = [as_str(b.get("text")) for b in blocks(message) if b.get("type") == "text"]
    return "\n".join(t for t in texts if t)


def message_time(entry: Mapping[str, Any]) -> datetime | None:
    """The entry's ISO timestamp, else its message's epoch milliseconds."""
    return parse_time(entry.get("timestamp")) or parse_time(
        as_dict(entry.get("message")).get("timestamp")
    )


def identity(message: Mapping[str, Any]) -> str:
    """A user message's identity across files: its epoch-ms timestamp and a hash of its text,
    both kept when pi migrates a v1 file to v3 (adding entry ids) or forks a session."""
    digest = hashlib.sha256(text_of(message).encode()).hexdigest()[:16]
    return f"pi:message:{as_int(message.get('timestamp'))}:{digest}"


def usage_of(raw: Any) -> Usage:
    u = as_dict(raw)
    cache_read, cache_write = as_int(u.get("cacheRead")), as_int(u.get("cacheWrite"))
    total = as_int(u.get("totalTokens"))
    return Usage(
        input_tokens=as_int(u.get("input")) + cache_read + cache_write,
        output_tokens=as_int(u.get("output")),
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        total_tokens=total or None,
    )


def cost_attributes(raw: Any) -> dict[str, Any]:
    cost = as_dict(as_dict(raw).get("cost")).get("total")
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
        return {}
    if cost > 0:
        return {"gen_ai.usage.cost": float(cost), "tailerd.cost.source": "agent"}
    return {"pi.cost_total": 0.0}


def llm_call(entry: Entry, model: str, provider: str) -> tuple[LLMCall, list[ToolCall]]:
    """An assistant message: one LLM call, and the tool calls it requested (results later)."""
    message = as_dict(entry.get("message"))
    when = message_time(entry)
    thinking = [as_str(b.get("thinking")) for b in blocks(message) if b.get("type") == "thinking"]
    calls = [
        ToolCall(
            name=as_str(b.get("name")),
            arguments=json_text(b.get("arguments")),
            tool_call_id=as_str(b.get("id")),
            started_at=when,
        )
        for b in blocks(message)
        if b.get("type") == "toolCall"
    ]
    stop = as_str(message.get("stopReason"))
    attributes: dict[str, Any] = cost_attributes(message.get("usage"))
    if not isinstance(message.get("usage"), dict):
        attributes["tailerd.usage.recorded"] = False
    if as_str(message.get("errorMessage")):
        attributes["pi.error"] = message["errorMessage"]
    if as_str(message.get("api")):
        attributes["pi.api"] = message["api"]
    text = text_of(message)
    llm = LLMCall(
        model=as_str(message.get("model")) or model,
        provider_name=as_str(message.get("provider")) or provider,
        output_messages=(Message("assistant", text),) if text else (),
        usage=usage_of(message.get("usage")),
        reasoning="\n\n".join(t for t in thinking if t),
        response_id=as_str(message.get("responseId")) or as_str(entry.get("id")),
        finish_reasons=(stop,) if stop else (),
        started_at=when,
        ended_at=when,
        attributes=attributes,
    )
    return llm, calls


def with_result(call: ToolCall, entry: Entry) -> ToolCall:
    message = as_dict(entry.get("message"))
    return ToolCall(
        name=call.name or as_str(message.get("toolName")),
        arguments=call.arguments,
        result=text_of(message),
        tool_call_id=call.tool_call_id,
        is_error=message.get("isError") is True,
        started_at=call.started_at,
        ended_at=message_time(entry) or call.started_at,
    )


def bash_execution(entry: Entry) -> ToolCall:
    """`!command` run by the user in pi's editor: its output goes to the model as context."""
    message = as_dict(entry.get("message"))
    when = message_time(entry)
    exit_code = message.get("exitCode")
    return ToolCall(
        name="bash",
        arguments=json_text({"command": message.get("command")}),
        result=json_text(message.get("output")),
        is_error=message.get("cancelled") is True
        or (isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code != 0),
        started_at=when,
        ended_at=when,
        attributes={"pi.user_command": True},
    )


def summary_span(entry: Entry, name: str, model: str) -> SubAgentCall:
    """A `compaction` or `branch_summary` entry: pi's summariser ran. pi records the summary
    (and, for compaction, `tokensBefore`), not the call's tokens, unless `usage` is present."""
    when = message_time(entry)
    summary = as_str(entry.get("summary"))
    usage = entry.get("usage")
    attributes: dict[str, Any] = {"tailerd.synthetic": name}
    if as_int(entry.get("tokensBefore")):
        attributes["pi.tokens_before"] = as_int(entry["tokensBefore"])
    llm = LLMCall(
        model=model,
        output_messages=(Message("assistant", summary),) if summary else (),
        usage=usage_of(usage),
        started_at=when,
        ended_at=when,
        attributes=cost_attributes(usage)
        if isinstance(usage, dict)
        else {"tailerd.usage.recorded": False},
    )
    return SubAgentCall(
        name=name,
        model=model,
        output_messages=llm.output_messages,
        spans=(llm,),
        started_at=when,
        ended_at=when,
        attributes=attributes,
    )
