"""Copilot CLI event payloads as tailerd values: typed reads of `data`, spans, usage.

Every accessor tolerates a value of the wrong JSON type (it reads as absent), so the parser
never raises on a mutated record. Field names are those of the CLI's events
(`github/copilot-sdk` `python/copilot/generated/session_events.py`, generated from the CLI's
event schema): `assistant.message.data.{messageId, content, toolRequests, reasoningText,
outputTokens, requestId, model, parentToolCallId}`, `tool.execution_complete.data.{toolCallId,
success, result.content, error.message, model}`, `subagent.started/completed.data.{toolCallId,
agentName, agentDisplayName, model}`, `session.compaction_complete.data.{summaryContent,
compactionTokensUsed{input, output, cachedInput}}`, `session.shutdown.data.modelMetrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from tailerd.domain import LLMCall, Message, SubAgentCall, ToolCall, Usage
from tailerd.formats.base import json_text, parse_time

AGENT_NAME = "copilot-cli"
PROVIDER = "github_copilot"  # the CLI calls every model through GitHub's Copilot API
WORKSPACE_FILE = "workspace.yaml"
WORKSPACE_CAP = 64 * 1024  # bytes of workspace.yaml read (it holds a few short keys)

Record = dict[str, Any]


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    """A token count: ints and integral floats (the SDK types counts as numbers); else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    return 0


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def data_of(event: Record) -> dict[str, Any]:
    return as_dict(event.get("data"))


def time_of(event: Record) -> datetime | None:
    return parse_time(event.get("timestamp"))


@dataclass(slots=True)
class Tokens:
    """Token counts recorded per call in this process's part of the file, per model, so that the
    `session.shutdown` totals ship only what no call carried (never counted twice)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def add(self, usage: Usage) -> None:
        self.input += usage.input_tokens
        self.output += usage.output_tokens
        self.cache_read += usage.cache_read_input_tokens
        self.cache_write += usage.cache_creation_input_tokens

    def to_json(self) -> list[int]:
        return [self.input, self.output, self.cache_read, self.cache_write]

    @classmethod
    def from_json(cls, raw: Any) -> Tokens:
        values = [as_int(v) for v in as_list(raw)][:4]
        return cls(*values)


def prompt_text(data: Mapping[str, Any]) -> str:
    """The user's words; an autopilot nudge has empty `content` and its text in
    `transformedContent` (the prompt as sent, with the CLI's wrappers)."""
    return as_str(data.get("content")) or as_str(data.get("transformedContent"))


def tool_requests(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in as_list(data.get("toolRequests")) if isinstance(r, dict)]


def llm_call(data: Mapping[str, Any], model: str, when: datetime | None) -> LLMCall:
    """One `assistant.message`: one model request. Copilot records only its `outputTokens`; the
    input side is unknown per call (`tailerd.usage.input_recorded = false`) unless an
    `assistant.usage` event follows (see `with_usage`)."""
    text = as_str(data.get("content"))
    return LLMCall(
        model=as_str(data.get("model")) or model,
        provider_name=PROVIDER,
        output_messages=(Message("assistant", text),) if text else (),
        usage=Usage(output_tokens=as_int(data.get("outputTokens"))),
        reasoning=as_str(data.get("reasoningText")),
        response_id=as_str(data.get("requestId")) or as_str(data.get("messageId")),
        finish_reasons=() if tool_requests(data) else ("stop",),
        started_at=when,
        ended_at=when,
        attributes={"tailerd.usage.input_recorded": False},
    )


def usage_of(data: Mapping[str, Any]) -> Usage:
    """An `assistant.usage` payload in Weave's convention. Copilot's `inputTokens` is the API's
    prompt token count, which already includes the cache reads (OpenAI convention: in the
    1.0.34 fixture's shutdown totals inputTokens 186,809 > cacheReadTokens 151,738)."""
    return Usage(
        input_tokens=as_int(data.get("inputTokens")),
        output_tokens=as_int(data.get("outputTokens")),
        cache_read_input_tokens=as_int(data.get("cacheReadTokens")),
        cache_creation_input_tokens=as_int(data.get("cacheWriteTokens")),
        reasoning_tokens=as_int(data.get("reasoningTokens")),
    )


def tool_result(data: Mapping[str, Any]) -> tuple[str, bool]:
    """(result text, is_error) of a `tool.execution_complete`."""
    result, error = data.get("result"), data.get("error")
    text = json_text(as_dict(result).get("content", result)) if isinstance(result, dict) else ""
    if not text and result is not None and not isinstance(result, dict):
        text = json_text(result)
    if error is not None:
        message = as_dict(error).get("message") if isinstance(error, dict) else error
        text = text or json_text(message)
    success = data.get("success")
    return text, success is False or error is not None


@dataclass(slots=True)
class ToolState:
    """One tool call, from the request in `assistant.message` to `tool.execution_complete`."""

    call_id: str
    name: str
    arguments: str
    started_at: datetime | None
    ended_at: datetime | None = None
    result: str = ""
    is_error: bool = False
    done: bool = False
    model: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    # set when a sub-agent ran under this call (subagent.started names the call)
    agent: dict[str, Any] | None = None
    inner: list[Any] = field(default_factory=list)  # the sub-agent's spans, in order

    def span(self) -> ToolCall | SubAgentCall:
        if self.agent is None:
            return ToolCall(
                name=self.name,
                arguments=self.arguments,
                result=self.result,
                tool_call_id=self.call_id,
                is_error=self.is_error,
                started_at=self.started_at,
                ended_at=self.ended_at or self.started_at,
                attributes=self.attributes,
            )
        agent = self.agent
        return SubAgentCall(
            name=as_str(agent.get("agentName")) or self.name,
            model=as_str(agent.get("model")),
            agent_id=self.call_id,
            input_messages=(Message("user", self.arguments),) if self.arguments else (),
            output_messages=(Message("assistant", self.result),) if self.result else (),
            tool_name=self.name,
            tool_call_id=self.call_id,
            spans=tuple(s.span() if isinstance(s, ToolState) else s for s in self.inner),
            started_at=self.started_at,
            ended_at=self.ended_at or self.started_at,
            attributes={
                **self.attributes,
                **{
                    f"copilot.subagent.{k}": agent[k]
                    for k in ("agentDisplayName", "totalToolCalls", "totalTokens", "durationMs")
                    if isinstance(agent.get(k), (str, int)) and not isinstance(agent[k], bool)
                },
            },
        )


def tool_state(request: Mapping[str, Any], when: datetime | None) -> ToolState:
    arguments = request.get("arguments")
    attributes = {}
    for key in ("intentionSummary", "mcpServerName", "toolTitle"):
        if as_str(request.get(key)):
            attributes[f"copilot.{key}"] = request[key]
    return ToolState(
        call_id=as_str(request.get("toolCallId")),
        name=as_str(request.get("name")),
        arguments=json_text(arguments),
        started_at=when,
        attributes=attributes,
    )


def compaction_span(data: Mapping[str, Any], model: str, when: datetime | None) -> SubAgentCall:
    """`session.compaction_complete`: the summariser call, as a "compaction" sub-agent span with
    the LLM call the CLI records (`compactionTokensUsed`: `input` includes `cachedInput`)."""
    used = as_dict(data.get("compactionTokensUsed"))
    usage = Usage(
        input_tokens=as_int(used.get("input")),
        output_tokens=as_int(used.get("output")),
        cache_read_input_tokens=as_int(used.get("cachedInput")),
    )
    summary = as_str(data.get("summaryContent"))
    llm = LLMCall(
        model=model,
        provider_name=PROVIDER,
        output_messages=(Message("assistant", summary),) if summary else (),
        usage=usage,
        response_id=as_str(data.get("requestId")),
        started_at=when,
        ended_at=when,
        attributes={} if used else {"tailerd.usage.recorded": False},
    )
    attributes: dict[str, Any] = {"tailerd.synthetic": "compaction"}
    for key in ("preCompactionTokens", "postCompactionTokens", "messagesRemoved"):
        if as_int(data.get(key)):
            attributes[f"copilot.{key}"] = as_int(data[key])
    if data.get("success") is False:
        attributes["copilot.compaction_error"] = json_text(data.get("error"))
    return SubAgentCall(
        name="compaction",
        model=model,
        output_messages=llm.output_messages,
        spans=(llm,),
        started_at=when,
        ended_at=when,
        attributes=attributes,
    )


def session_totals(
    metrics: Mapping[str, Any], recorded: Mapping[str, Tokens], when: datetime | None
) -> list[LLMCall]:
    """`session.shutdown.data.modelMetrics` less what this process's calls already carried:
    one LLM span per model with the remaining tokens (`tailerd.usage.session_totals = true`).
    Copilot writes input tokens only here, so they reach the backend once, on this span."""
    calls = []
    for model, raw in sorted(metrics.items()):
        entry = as_dict(raw)
        usage, requests = as_dict(entry.get("usage")), entry.get("requests")
        seen = recorded.get(model, Tokens())
        attributes: dict[str, Any] = {"tailerd.usage.session_totals": True}
        if isinstance(requests, dict):
            attributes["copilot.requests"] = as_int(requests.get("count"))
            cost = requests.get("cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                attributes["copilot.premium_requests"] = float(cost)
        elif as_int(requests):
            attributes["copilot.requests"] = as_int(requests)
        if not usage:
            attributes["tailerd.usage.recorded"] = False
        calls.append(
            LLMCall(
                model=model,
                provider_name=PROVIDER,
                usage=Usage(
                    input_tokens=max(as_int(usage.get("inputTokens")) - seen.input, 0),
                    output_tokens=max(as_int(usage.get("outputTokens")) - seen.output, 0),
                    cache_read_input_tokens=max(
                        as_int(usage.get("cacheReadTokens")) - seen.cache_read, 0
                    ),
                    cache_creation_input_tokens=max(
                        as_int(usage.get("cacheWriteTokens")) - seen.cache_write, 0
                    ),
                    reasoning_tokens=as_int(usage.get("reasoningTokens")),
                ),
                started_at=when,
                ended_at=when,
                attributes=attributes,
            )
        )
    return calls


def by_model(shutdown: Mapping[str, Any], model: str) -> dict[str, Any]:
    """`modelMetrics` of a `session.shutdown`. Later CLIs (1.0.7x) write per model only the
    request count and the session's tokens in `tokenDetails.{input, output, cache_read,
    cache_write}.tokenCount`: those are given to the one model of the session (the only
    model in `modelMetrics`, else `currentModel`, else the model in use)."""
    metrics = dict(as_dict(shutdown.get("modelMetrics")))
    details = as_dict(shutdown.get("tokenDetails"))
    if not details or any(as_dict(m).get("usage") for m in metrics.values()):
        return metrics
    owner = (
        next(iter(metrics)) if len(metrics) == 1 else as_str(shutdown.get("currentModel")) or model
    )
    names = {
        "inputTokens": "input",
        "outputTokens": "output",
        "cacheReadTokens": "cache_read",
        "cacheWriteTokens": "cache_write",
    }
    usage = {k: as_int(as_dict(details.get(v)).get("tokenCount")) for k, v in names.items()}
    metrics[owner] = {**as_dict(metrics.get(owner)), "usage": usage}
    return metrics


def workspace(raw: bytes | None) -> dict[str, str]:
    """`workspace.yaml` beside events.jsonl: {cwd, summary} as strings ({} when unreadable)."""
    if not raw:
        return {}
    try:
        doc = yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k in ("cwd", "summary") if isinstance(v := doc.get(k), str) and v}
