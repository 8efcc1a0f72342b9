"""Claude Code spans: the LLM and tool calls of one turn (or one sub-agent transcript).

An API response is written as one line per content block sharing `message.id`; `SpanBuilder`
merges them into one `LLMCall` whose usage is the last line's, pairs `tool_use.id` with
`tool_result.tool_use_id`, and hands `Task`/`Agent` calls to a sub-agent resolver (see
`subagents`). Spilled tool results (`<persisted-output>`) are read back through a callback.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall
from tailerd.formats.claude_code.records import (
    PROVIDER,
    SYNTHETIC_MODEL,
    as_dict,
    as_int,
    as_json_text,
    as_str,
    blocks_of,
    capped,
    content_text,
    message_of,
    usage_of,
)
from tailerd.pricing import CACHE_WRITE_1H

SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
_PERSISTED_PREFIX = "<persisted-output>"
_PERSISTED_PATH = re.compile(r"saved to:\s*(\S+)")
_AGENT_ID_IN_TEXT = re.compile(r"agentId:\s*([A-Za-z0-9_-]+)")


@dataclass(slots=True)
class CallDraft:
    """One API response, merged from its per-block lines."""

    key: str
    model: str
    started_at: datetime | None
    response_id: str = ""
    request_id: str = ""
    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_uses: list[Message] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
    ended_at: datetime | None = None
    input_messages: tuple[Message, ...] = ()

    def build(self) -> LLMCall:
        output = [Message("assistant", "\n\n".join(self.texts))] if self.texts else []
        attributes: dict[str, Any] = {}
        if self.request_id:
            attributes["claude_code.request_id"] = self.request_id
        # the part of the cache writes kept for an hour: priced at the 1-hour write price
        one_hour = as_dict(self.usage.get("cache_creation")).get("ephemeral_1h_input_tokens")
        if as_int(one_hour):
            attributes[CACHE_WRITE_1H] = as_int(one_hour)
        return LLMCall(
            model=self.model,
            provider_name=PROVIDER,
            input_messages=self.input_messages,
            output_messages=(*output, *self.tool_uses),
            usage=usage_of(self.usage),
            reasoning="\n\n".join(self.reasoning),
            response_id=self.response_id,
            finish_reasons=(self.stop_reason,) if self.stop_reason else (),
            started_at=self.started_at,
            ended_at=self.ended_at,
            attributes=attributes,
        )


@dataclass(slots=True)
class ToolDraft:
    """One tool call; its result, and for Task/Agent its sub-agent, filled in as they arrive."""

    tool_call_id: str
    name: str
    arguments: dict[str, Any] | str
    started_at: datetime | None
    result: str | None = None
    is_error: bool = False
    ended_at: datetime | None = None
    agent_id: str = ""
    subagent: SubAgentCall | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # the sub-agent's own records as its `agent_progress` records carried them: its calls when
    # its transcript file is missing (a copied or moved session keeps only these)
    progress: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_subagent(self) -> bool:
        return self.name in SUBAGENT_TOOLS

    def build(self) -> SpanCall:
        if self.subagent is not None:
            return self.subagent
        return ToolCall(
            name=self.name,
            arguments=as_json_text(self.arguments),
            result=self.result or "",
            tool_call_id=self.tool_call_id,
            is_error=self.is_error,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attributes=self.attributes,
        )


@dataclass(frozen=True, slots=True)
class BuiltSpan:
    """A span made elsewhere (e.g. the compaction summariser's call) kept in the turn's order."""

    span: SpanCall

    def build(self) -> SpanCall:
        return self.span


SubAgentResolver = Callable[["ToolDraft"], SubAgentCall]
SpilledReader = Callable[[str, str], str | None]


class SpanBuilder:
    """LLM and tool calls in the order they began; tool results paired as they arrive."""

    def __init__(
        self, resolve_subagent: SubAgentResolver, read_spilled: SpilledReader, result_cap: int
    ) -> None:
        self._resolve_subagent = resolve_subagent
        self._read_spilled = read_spilled
        self._result_cap = result_cap
        self._slots: list[CallDraft | ToolDraft | BuiltSpan] = []
        self._calls: dict[str, CallDraft] = {}
        self._tools: dict[str, ToolDraft] = {}
        self._anonymous: deque[ToolDraft] = deque()  # tool_use blocks without an id
        self._agent_ids: dict[str, str] = {}  # tool_use id -> agentId, from progress records
        self._progress: dict[str, list[dict[str, Any]]] = {}  # tool_use id -> embedded records
        self.pending_input: tuple[Message, ...] = ()  # input of the next new LLM call

    @property
    def calls(self) -> list[CallDraft]:
        return list(self._calls.values())

    def has_activity(self) -> bool:
        return bool(self._slots)

    def pending_tools(self) -> int:
        return sum(1 for s in self._slots if isinstance(s, ToolDraft) and s.result is None)

    def add_assistant(self, rec: Mapping[str, Any], ts: datetime | None) -> None:
        msg = message_of(rec)
        model = as_str(msg.get("model"))
        if model == SYNTHETIC_MODEL:
            return
        key = as_str(msg.get("id")) or f"uuid:{as_str(rec.get('uuid'))}"
        call = self._calls.get(key)
        if call is None:
            call = CallDraft(key, model, ts, as_str(msg.get("id")), as_str(rec.get("requestId")))
            call.input_messages, self.pending_input = self.pending_input, ()
            self._calls[key] = call
            self._slots.append(call)
        call.model = model or call.model
        call.ended_at = ts or call.ended_at
        if isinstance(msg.get("usage"), dict) and msg["usage"]:
            call.usage = msg["usage"]
        call.stop_reason = as_str(msg.get("stop_reason")) or call.stop_reason
        for block in blocks_of(msg.get("content")):
            self._add_block(call, block, ts)

    def _add_block(self, call: CallDraft, block: dict[str, Any], ts: datetime | None) -> None:
        kind = block.get("type")
        if kind == "text" and as_str(block.get("text")).strip():
            call.texts.append(as_str(block.get("text")))
        elif kind == "thinking":
            call.reasoning.append(as_str(block.get("thinking")))
        elif kind == "redacted_thinking":
            call.reasoning.append("[redacted thinking]")
        elif kind == "tool_use":
            self._add_tool_use(call, block, ts)

    def _add_tool_use(self, call: CallDraft, block: dict[str, Any], ts: datetime | None) -> None:
        tool_id = as_str(block.get("id"))
        if tool_id and tool_id in self._tools:
            return
        raw_input = block.get("input")
        arguments = raw_input if isinstance(raw_input, (dict, str)) else {}
        tool = ToolDraft(tool_id, as_str(block.get("name")), arguments, ts)
        call.tool_uses.append(Message("assistant", as_json_text(arguments), tool_id, tool.name))
        self._slots.append(tool)
        if tool_id:
            self._tools[tool_id] = tool
        else:
            self._anonymous.append(tool)

    def note_agent(self, tool_use_id: str, agent_id: str) -> None:
        if tool_use_id and agent_id:
            self._agent_ids.setdefault(tool_use_id, agent_id)

    def note_progress_record(self, tool_use_id: str, rec: dict[str, Any]) -> None:
        """Keep a sub-agent record an `agent_progress` record embeds (see `ToolDraft.progress`)."""
        if tool_use_id:
            self._progress.setdefault(tool_use_id, []).append(rec)

    def add_span(self, span: SpanCall) -> None:
        """Append a finished span (it counts as activity: the turn is shipped)."""
        self._slots.append(BuiltSpan(span))

    def add_results(self, rec: Mapping[str, Any], ts: datetime | None) -> None:
        for block in blocks_of(message_of(rec).get("content")):
            if block.get("type") != "tool_result":
                continue
            tool_id = as_str(block.get("tool_use_id"))
            tool = self._tools.get(tool_id) if tool_id else self._next_anonymous()
            if tool is None or tool.result is not None:
                continue
            self._finish_tool(tool, rec, block, ts)

    def _next_anonymous(self) -> ToolDraft | None:
        return self._anonymous.popleft() if self._anonymous else None

    def _finish_tool(
        self, tool: ToolDraft, rec: Mapping[str, Any], block: dict[str, Any], ts: datetime | None
    ) -> None:
        text = content_text(block.get("content"))
        if text.startswith(_PERSISTED_PREFIX):
            text = self._unspill(tool, text)
        tool.result = capped(text, self._result_cap)
        tool.is_error = block.get("is_error") is True
        tool.ended_at = ts
        if tool.is_subagent:
            tool.progress = self._progress.pop(tool.tool_call_id, [])
            structured = as_dict(rec.get("toolUseResult"))
            tool.agent_id = (
                as_str(structured.get("agentId"))
                or self._agent_ids.get(tool.tool_call_id, "")
                or _agent_id_in(text)
            )
            tool.attributes.update(_subagent_totals(structured))
            tool.subagent = self._resolve_subagent(tool)

    def _unspill(self, tool: ToolDraft, preview: str) -> str:
        found = _PERSISTED_PATH.search(preview)
        name = PurePath(found.group(1)).name if found else f"{tool.tool_call_id}.txt"
        full = self._read_spilled(name, tool.tool_call_id)
        if full is None:
            tool.attributes["claude_code.persisted_output_unavailable"] = True
            return preview
        return full

    def build(self) -> tuple[SpanCall, ...]:
        spans: list[SpanCall] = []
        for slot in self._slots:
            if isinstance(slot, ToolDraft) and slot.is_subagent and slot.subagent is None:
                slot.agent_id = slot.agent_id or self._agent_ids.get(slot.tool_call_id, "")
                slot.progress = self._progress.pop(slot.tool_call_id, [])
                slot.subagent = self._resolve_subagent(slot)
            spans.append(slot.build())
        return tuple(spans)

    def message_ids(self) -> list[str]:
        """`message.id` of this builder's own LLM calls (not of nested sub-agents), in order."""
        return [c.response_id for c in self._calls.values() if c.response_id]

    def final_text(self) -> str:
        for call in reversed(self._calls.values()):
            if call.texts:
                return "\n\n".join(call.texts)
        return ""

    def last_model(self) -> str:
        return next((c.model for c in reversed(self._calls.values()) if c.model), "")


def _agent_id_in(text: str) -> str:
    found = _AGENT_ID_IN_TEXT.search(text)
    return found.group(1) if found else ""


def _subagent_totals(structured: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("totalDurationMs", "totalTokens", "totalToolUseCount", "status")
    return {f"claude_code.{k}": structured[k] for k in keys if k in structured}
