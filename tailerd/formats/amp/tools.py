"""Amp's tool calls, their results, the sub-agents some tools run, and the thread's own timings.

A tool call is an assistant `tool_use` block `{id, name, input, complete}`; its result is a
`tool_result` block `{toolUseID, run}` in a later user message, where `run` is the tool's last
status: `{status: "done", result, progress?, trackFiles?}`, `{status: "error", error:
{message}}`, `{status: "cancelled", reason?}`, `{status: "rejected-by-user", reason}` (or still
`in-progress`/`queued`). `result` is what the tool returned: a string, or an object such as
`Read`'s `{absolutePath, content}` and `edit_file`'s `{diff, lineRange}` (real sample:
git-ai-project/git-ai tests/fixtures/amp-threads/). Status names and the shapes below are read
from Amp's own bundle, `@sourcegraph/amp` 0.0.1771243550-geaf318 dist/main.js.

Sub-agents: the tools that run an agent of their own (`Task`, `finder`, `librarian`, `oracle`)
finish with `run = {status: "done", result: <its final message>, progress: [{message,
tool_uses: [{tool_name, status, input}]}], "~debug": {inferences: [{inferenceTimeMs, usage}]}}`
(main.js: the sub-agent runner `k7.runOne` and its status mappers, e.g. `k41`). Such a call
becomes a `SubAgentCall` holding one LLM call per recorded inference (usage as for the main
thread) and one tool call per recorded tool use (Amp keeps no sub-agent tool results).

Times: `meta.traces` holds the thread's own spans `{name: agent|inference|tools, id, parent,
startTime, endTime, context: {messageId}}`: an `agent` trace per prompt (context: the prompt's
message id), its `inference` traces in order (one per assistant message), a `tools` trace per
assistant message that called tools (context: that message's id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall
from tailerd.formats.amp.usage import provider_of, usage_of
from tailerd.formats.base import json_text, parse_time
from tailerd.formats.content_blocks import ToolResults
from tailerd.formats.json_values import as_dict, as_str

Record = dict[str, Any]
Span = tuple[datetime | None, datetime | None]
_FAILED = frozenset({"error", "cancelled", "rejected-by-user"})


def blocks(message: Record) -> list[Record]:
    """A message's content blocks (a string content is one text block)."""
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _run_text(run: Record) -> tuple[str, bool]:
    """A tool run's result as text, and whether it failed."""
    status = as_str(run.get("status"))
    if status in _FAILED:
        error = as_dict(run.get("error"))
        reason = as_str(error.get("message")) or as_str(run.get("reason")) or status
        return reason, True
    return json_text(run.get("result")), False


def runs(messages: list[Record]) -> dict[str, Record]:
    """tool_use id -> its `run`, from the messages' `tool_result` blocks."""
    out: dict[str, Record] = {}
    for m in messages:
        for b in blocks(m):
            if b.get("type") == "tool_result" and as_str(b.get("toolUseID")):
                out[b["toolUseID"]] = as_dict(b.get("run"))
    return out


def results_of(found: Mapping[str, Record], ended: datetime | None) -> ToolResults:
    """`content_blocks.tool_calls`' results: tool_use id -> (text, is_error, time ended)."""
    out: ToolResults = {}
    for call_id, run in found.items():
        text, failed = _run_text(run)
        out[call_id] = (text, failed, ended.isoformat() if ended else None)
    return out


def _inferences(run: Record) -> list[Record]:
    debug = as_dict(run.get("~debug"))
    found = debug.get("inferences")
    return [as_dict(i) for i in found] if isinstance(found, list) else []


def is_subagent(run: Record) -> bool:
    """A run that records its own inferences or progress turns: a sub-agent's."""
    progress = run.get("progress")
    turns = isinstance(progress, list) and any(
        isinstance(p, dict) and "tool_uses" in p for p in progress
    )
    return bool(_inferences(run)) or turns


def subagent(call: ToolCall, run: Record, tool_input: Any) -> SubAgentCall:
    """The sub-agent a tool call ran (see the module docstring), nested spans inside."""
    spans: list[SpanCall] = []
    for inference in _inferences(run):
        usage = as_dict(inference.get("usage"))
        model = as_str(usage.get("model"))
        spans.append(
            LLMCall(
                model=model,
                provider_name=provider_of(model),
                usage=usage_of(usage),
                started_at=call.started_at,
                ended_at=parse_time(usage.get("timestamp")) or call.ended_at,
                attributes={} if usage else {"tailerd.usage.recorded": False},
            )
        )
    progress = run.get("progress")
    for turn in progress if isinstance(progress, list) else []:
        uses = as_dict(turn).get("tool_uses")
        for raw in uses if isinstance(uses, list) else []:
            use = as_dict(raw)
            spans.append(
                ToolCall(
                    name=as_str(use.get("tool_name")),
                    arguments=json_text(use.get("input")),
                    is_error=as_str(use.get("status")) in _FAILED,
                    started_at=call.started_at,
                    ended_at=call.ended_at,
                    attributes={"amp.tool.status": as_str(use.get("status"))},
                )
            )
    models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
    prompt = as_str(as_dict(tool_input).get("prompt")) or call.arguments
    return SubAgentCall(
        name=call.name,
        model=models[-1] if models else "",
        agent_id=call.tool_call_id,
        input_messages=(Message("user", prompt),),
        output_messages=(Message("assistant", call.result),) if call.result else (),
        tool_name=call.name,
        tool_call_id=call.tool_call_id,
        spans=tuple(spans),
        started_at=call.started_at,
        ended_at=call.ended_at,
    )


@dataclass
class Traces:
    """The thread's `meta.traces`, indexed: times of a turn's inferences and of tool batches."""

    inferences: dict[int, list[Span]] = field(default_factory=dict)  # prompt id -> in order
    agent: dict[int, Span] = field(default_factory=dict)  # prompt id -> the whole turn
    tools: dict[int, Span] = field(default_factory=dict)  # assistant message id -> its tools

    @classmethod
    def of(cls, doc: Record) -> Traces:
        raw = as_dict(doc.get("meta")).get("traces")
        traces = [as_dict(t) for t in raw] if isinstance(raw, list) else []
        out = cls()
        agents: dict[str, int] = {}
        for t in traces:
            message = as_dict(t.get("context")).get("messageId")
            if not isinstance(message, int) or isinstance(message, bool):
                continue
            span = (parse_time(t.get("startTime")), parse_time(t.get("endTime")))
            if t.get("name") == "agent" and as_str(t.get("id")):
                agents[t["id"]] = message
                out.agent[message] = span
            elif t.get("name") == "tools":
                out.tools[message] = span
        for t in traces:
            parent = agents.get(as_str(t.get("parent")))
            if t.get("name") == "inference" and parent is not None:
                span = (parse_time(t.get("startTime")), parse_time(t.get("endTime")))
                out.inferences.setdefault(parent, []).append(span)
        return out
