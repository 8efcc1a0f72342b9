"""Qwen Code chat records as tailerd spans: Gemini-style message parts, `usageMetadata`.

Record shape (`QwenLM/qwen-code` `packages/core/src/services/chatRecordingService.ts`,
`ChatRecord`): `{uuid, parentUuid, sessionId, timestamp, type: user|assistant|tool_result|
system, subtype?, cwd, version, gitBranch?, model?, message: {role, parts: [...]},
usageMetadata?, toolCallResult?, systemPayload?, isSidechain?, agentId?, agentName?}`.
Parts are `@google/genai` parts: `{text}`, `{text, thought: true}`, `{functionCall: {id,
name, args}}`, `{functionResponse: {id, name, response: {output} | {error}}}`.

Tokens: `usageMetadata` is Gemini's: `promptTokenCount` already includes
`cachedContentTokenCount` (in the splitrail fixture 600 prompt tokens with 50 cached, total
605 = 600 + 5), so `input_tokens = prompt + toolUsePrompt`, `output_tokens = candidates +
thoughts`, `reasoning_tokens = thoughts`, `cache_read_input_tokens = cached` (the same mapping
as tailerd's Gemini CLI format). The `system/ui_telemetry` `qwen-code.api_response` records
repeat the same numbers and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall, Usage
from tailerd.formats.base import json_text, parse_time
from tailerd.formats.json_values import as_dict, as_int, as_str

PROVIDER = "qwen"
HOOK_CONTEXT = "<qwen:user-prompt-submit-context>"

Record = dict[str, Any]


def parts_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = as_dict(record.get("message")).get("parts")
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def time_of(record: Mapping[str, Any]) -> datetime | None:
    return parse_time(record.get("timestamp"))


def prompt_text(record: Mapping[str, Any]) -> str:
    """What the user typed: `systemPayload.displayText` when written (the model-bound parts
    may carry a hook's context after it), else the record's text parts."""
    shown = as_str(as_dict(record.get("systemPayload")).get("displayText"))
    if shown:
        return shown
    texts = [as_str(p.get("text")) for p in parts_of(record)]
    return "\n".join(t for t in texts if t and not t.startswith(HOOK_CONTEXT))


def usage_of(meta: Any) -> Usage:
    m = as_dict(meta)
    thoughts = as_int(m.get("thoughtsTokenCount"))
    total = m.get("totalTokenCount")
    return Usage(
        input_tokens=as_int(m.get("promptTokenCount")) + as_int(m.get("toolUsePromptTokenCount")),
        output_tokens=as_int(m.get("candidatesTokenCount")) + thoughts,
        cache_read_input_tokens=as_int(m.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        total_tokens=as_int(total) if as_int(total) else None,
    )


def merged(old: Record, new: Record) -> Record:
    """The same uuid written again (an assistant reply written in fragments: its thought
    first, then its calls and text with the usage): parts are joined, later metadata wins."""
    message = {**as_dict(old.get("message")), **as_dict(new.get("message"))}
    message["parts"] = [*parts_of(old), *parts_of(new)]
    return {**old, **new, "message": message}


def _llm(record: Record) -> tuple[LLMCall, list[ToolCall]]:
    when = time_of(record)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts_of(record):
        text = as_str(part.get("text"))
        if text:
            (thoughts if part.get("thought") is True else texts).append(text)
        call = as_dict(part.get("functionCall"))
        if call:
            calls.append(
                ToolCall(
                    name=as_str(call.get("name")),
                    arguments=json_text(call.get("args")),
                    tool_call_id=as_str(call.get("id")),
                    started_at=when,
                )
            )
    recorded = isinstance(record.get("usageMetadata"), dict)
    llm = LLMCall(
        model=as_str(record.get("model")),
        provider_name=PROVIDER,
        output_messages=(Message("assistant", "\n".join(texts)),) if texts else (),
        usage=usage_of(record.get("usageMetadata")),
        reasoning="\n\n".join(thoughts),
        response_id=as_str(record.get("uuid")),
        started_at=when,
        ended_at=when,
        attributes={} if recorded else {"tailerd.usage.recorded": False},
    )
    return llm, calls


def _results(record: Record) -> Iterable[tuple[str, str, bool]]:
    """(call id, result text, is_error) for each functionResponse of a tool_result record."""
    result = as_dict(record.get("toolCallResult"))
    status, fallback_id = as_str(result.get("status")), as_str(result.get("callId"))
    for part in parts_of(record):
        response = as_dict(part.get("functionResponse"))
        if not response:
            continue
        body = response.get("response")
        error = isinstance(body, dict) and "error" in body
        if isinstance(body, dict):
            text = json_text(body["error"] if error else body.get("output", body))
        else:
            text = json_text(body)
        call_id = as_str(response.get("id")) or fallback_id
        yield call_id, text, error or status in ("error", "cancelled")


def compaction(record: Record) -> SubAgentCall:
    """A `system/chat_compression` record: the summariser ran; Qwen records its effect
    (`info.originalTokenCount` -> `newTokenCount`), not the call's tokens."""
    info = as_dict(as_dict(record.get("systemPayload")).get("info"))
    attributes: dict[str, Any] = {
        "tailerd.synthetic": "compaction",
        "tailerd.usage.recorded": False,
    }
    for key in ("originalTokenCount", "newTokenCount"):
        if as_int(info.get(key)):
            attributes[f"qwen.{key}"] = as_int(info[key])
    when = time_of(record)
    return SubAgentCall(name="compaction", started_at=when, ended_at=when, attributes=attributes)


def _telemetry(record: Record) -> tuple[str, str, float]:
    """(event name, call id, duration in seconds) of a `system/ui_telemetry` record."""
    event = as_dict(as_dict(record.get("systemPayload")).get("uiEvent"))
    ms = event.get("duration_ms")
    seconds = ms / 1000 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else 0.0
    if not (0 <= seconds < 86400):
        seconds = 0.0
    return as_str(event.get("event.name")), as_str(event.get("call_id")), seconds


def _earlier(when: datetime | None, seconds: float) -> datetime | None:
    return when - timedelta(seconds=seconds) if when is not None and seconds else when


def _rounds(records: Iterable[Record]) -> list[Record]:
    """One assistant record per model round. A sub-agent (0.24) writes a round's usage as an
    assistant record with no parts (`agentRound`), then the round's calls without usage:
    those are joined to it."""
    out: list[Record] = []
    for record in records:
        last = out[-1] if out else None
        if (
            last is not None
            and record.get("type") == "assistant"
            and "usageMetadata" not in record
            and last.get("type") == "assistant"
            and not parts_of(last)
            and "usageMetadata" in last
        ):
            out[-1] = merged(last, record)
            out[-1]["usageMetadata"] = last["usageMetadata"]
        else:
            out.append(record)
    return out


def spans_of(records: Iterable[Record]) -> list[SpanCall]:
    """The LLM, tool and compaction spans of a run of records, in order; tool results fill
    the tool spans their `functionResponse.id` names. The `ui_telemetry` records give the
    durations: `qwen-code.api_response` (written just before its reply) the LLM call's,
    `qwen-code.tool_call` (by `call_id`) the tool's; spans start that long before they end."""
    spans: list[SpanCall] = []
    pending: dict[str, int] = {}  # call id -> index in spans
    api_seconds = 0.0
    tool_seconds: dict[str, float] = {}
    for record in _rounds(records):
        kind = record.get("type")
        if kind == "system" and record.get("subtype") == "ui_telemetry":
            name, call_id, seconds = _telemetry(record)
            if name.endswith("api_response"):
                api_seconds = seconds
            elif name.endswith("tool_call"):  # 0.18 names no call_id: its function, then
                event = as_dict(as_dict(record.get("systemPayload")).get("uiEvent"))
                tool_seconds[call_id or f"fn:{as_str(event.get('function_name'))}"] = seconds
        elif kind == "assistant":
            llm, calls = _llm(record)
            llm = replace(llm, started_at=_earlier(llm.ended_at, api_seconds))
            api_seconds = 0.0
            spans.append(llm)
            for call in calls:
                if call.tool_call_id:
                    pending[call.tool_call_id] = len(spans)
                spans.append(call)
        elif kind == "tool_result":
            for call_id, text, error in _results(record):
                i = pending.pop(call_id, None)
                if i is None:
                    continue
                tool = spans[i]
                assert isinstance(tool, ToolCall)
                ended = time_of(record) or tool.started_at
                by_name = f"fn:{tool.name}"
                key = call_id if call_id in tool_seconds else by_name
                seconds = tool_seconds.pop(key, 0.0)
                spans[i] = ToolCall(
                    name=tool.name,
                    arguments=tool.arguments,
                    result=text,
                    tool_call_id=tool.tool_call_id,
                    is_error=error,
                    started_at=_earlier(ended, seconds) if seconds else tool.started_at,
                    ended_at=ended,
                )
        elif kind == "system" and record.get("subtype") == "chat_compression":
            spans.append(compaction(record))
    return spans


def waiting_calls(records: Iterable[Record]) -> set[str]:
    """Ids of tool calls requested and not yet answered."""
    asked: set[str] = set()
    for record in records:
        for part in parts_of(record):
            call_id = as_str(as_dict(part.get("functionCall")).get("id"))
            if call_id:
                asked.add(call_id)
            if part.get("functionResponse") is not None:
                answer = as_str(as_dict(part.get("functionResponse")).get("id"))
                asked.discard(answer or as_str(as_dict(record.get("toolCallResult")).get("callId")))
    return asked
