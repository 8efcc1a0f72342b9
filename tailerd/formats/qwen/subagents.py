"""Qwen Code sub-agents (the `agent` tool): their own transcripts, nested under the call.

Qwen Code 0.24 writes a sub-agent's records to `projects/<project>/subagents/<parent session
id>/agent-<agentId>.jsonl` (with an `agent-<agentId>.meta.json` beside it: `toolUseId`,
`subagentName`, `status`), where `agentId` is `<subagent name>-<tool call id>`; every record
carries `isSidechain`, `agentId`, `agentName`. The spawning call's `tool_result` has
`toolCallResult.resultDisplay.type = "task_execution"` (`subagentName`, `taskPrompt`,
`result`, `executionSummary`). When the parent's turn is built, the transcript is read
through `Source.find_related`/`read_related` and becomes a sub-agent span with the
sub-agent's own LLM and tool spans; the file is auxiliary (never tailed as a session).
Not handled: a backgrounded sub-agent still writing after its parent's turn ended (its later
records are not shipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall
from tailerd.formats.base import Source
from tailerd.formats.json_values import as_dict, as_int, as_str
from tailerd.formats.qwen.records import Record, prompt_text, spans_of

TRANSCRIPT_CAP = 32 << 20  # bytes of a sub-agent transcript read


def is_subagent_file(path: PurePath) -> bool:
    """`.../projects/<project>/subagents/<session>/agent-*.jsonl` (Claude Code's sub-agent files
    sit one level higher: `<session>/subagents/agent-*.jsonl`)."""
    parts = path.parts
    return (
        len(parts) >= 5
        and parts[-3] == "subagents"
        and parts[-5] == "projects"
        and path.name.startswith("agent-")
        and path.name.endswith(".jsonl")
    )


def task_calls(records: Iterable[Record]) -> dict[str, dict[str, Any]]:
    """Tool call id -> `resultDisplay` of each call that ran a sub-agent."""
    out = {}
    for record in records:
        result = as_dict(record.get("toolCallResult"))
        display = as_dict(result.get("resultDisplay"))
        if display.get("type") == "task_execution" and as_str(result.get("callId")):
            out[result["callId"]] = display
    return out


def _transcript(source: Source, session_id: str, call_id: str) -> list[Record]:
    project = PurePath(source.path).parent.parent  # .../projects/<project>/chats/<file>
    folder = str(project / "subagents" / session_id)
    paths = source.find_related(folder, f"agent-*-{call_id}.jsonl")
    data = source.read_related(paths[0], TRANSCRIPT_CAP) if paths else None
    records = []
    for line in (data or b"").splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn last line (still being written) or a damaged one
        if isinstance(record, dict):
            records.append(record)
    return records


def nest(
    spans: list[SpanCall], calls: dict[str, dict[str, Any]], source: Source, session_id: str
) -> list[SpanCall]:
    """`spans` with each tool span that ran a sub-agent replaced by the sub-agent's span."""
    out: list[SpanCall] = []
    for span in spans:
        display = calls.get(span.tool_call_id) if isinstance(span, ToolCall) else None
        if not isinstance(span, ToolCall) or display is None:
            out.append(span)
            continue
        records = _transcript(source, session_id, span.tool_call_id)
        inner = spans_of(records)
        prompt = next((prompt_text(r) for r in records if r.get("type") == "user"), "")
        prompt = prompt or as_str(display.get("taskPrompt"))
        models = [c.model for c in inner if isinstance(c, LLMCall) and c.model]
        summary = as_dict(display.get("executionSummary"))
        attributes: dict[str, Any] = {
            f"qwen.subagent.{k}": as_int(summary[k])
            for k in ("rounds", "totalToolCalls", "totalTokens", "totalDurationMs")
            if as_int(summary.get(k))
        }
        if not records:
            attributes["qwen.subagent.transcript_found"] = False
        agent_id = next((as_str(r.get("agentId")) for r in records if r.get("agentId")), "")
        out.append(
            SubAgentCall(
                name=as_str(display.get("subagentName")) or span.name,
                model=models[-1] if models else "",
                agent_id=agent_id,
                input_messages=(Message("user", prompt),) if prompt else (),
                output_messages=(Message("assistant", span.result),) if span.result else (),
                tool_name=span.name,
                tool_call_id=span.tool_call_id,
                spans=tuple(inner),
                started_at=span.started_at,
                ended_at=span.ended_at,
                attributes=attributes,
            )
        )
    return out
