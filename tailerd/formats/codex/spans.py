"""Codex calls of one turn: model requests and tool calls, from `response_item` records.

Each `turn_context` starts a new `Request` (one LLM span); tool calls are paired with their
outputs by `call_id` while the turn is open (`OpenTurn.awaiting`); a spawn call is tagged with its
child thread id (`codex.child_thread_id`) for `children` to nest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, ToolCall, Usage
from tailerd.formats.base import json_text
from tailerd.formats.codex.records import (
    CALL_TYPES,
    OUTPUT_TYPES,
    PROVIDER,
    as_str,
    content_text,
    injected_context,
    spawned_thread,
    tool_output,
)


@dataclass(slots=True)
class ToolDraft:
    """One tool call; its result filled in when its output record arrives."""

    name: str
    arguments: str
    call_id: str
    started_at: datetime | None
    result: str = ""
    is_error: bool = False
    ended_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def build(self) -> ToolCall:
        return ToolCall(
            name=self.name,
            arguments=self.arguments,
            result=self.result,
            tool_call_id=self.call_id,
            is_error=self.is_error,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attributes=dict(self.attributes),
        )


@dataclass(slots=True)
class Request:
    """One model request: the items between two `turn_context` records."""

    model: str
    started_at: datetime | None
    ended_at: datetime | None = None
    inputs: list[Message] = field(default_factory=list)
    outputs: list[Message] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tools: list[ToolDraft] = field(default_factory=list)
    usage: Usage | None = None
    has_items: bool = False

    @property
    def empty(self) -> bool:
        return not self.has_items and self.usage is None

    def spans(self, span_of: Callable[[ToolDraft], SpanCall]) -> list[SpanCall]:
        """The LLM span (unless nothing was seen), then each tool call through `span_of`."""
        out: list[SpanCall] = []
        if not self.empty:
            out.append(
                LLMCall(
                    model=self.model,
                    provider_name=PROVIDER,
                    input_messages=tuple(self.inputs),
                    output_messages=tuple(self.outputs),
                    usage=self.usage or Usage(),
                    reasoning="\n\n".join(self.reasoning),
                    started_at=self.started_at,
                    ended_at=self.ended_at,
                )
            )
        out.extend(span_of(t) for t in self.tools)
        return out


@dataclass(slots=True)
class OpenTurn:
    """A turn being read: its prompt messages, model requests and tool calls awaiting output."""

    start: int
    end: int
    context: dict[str, Any]  # parser context as it was just before this turn's first line
    implicit_id: str  # from the opening user message's timestamp; used without a turn_id
    turn_id: str = ""
    messages: list[Message] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    awaiting: dict[str, ToolDraft] = field(default_factory=dict)  # call_id -> call without output
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    aborted: bool = False  # `turn_aborted` seen; lingers for late records (`abort_grace`)
    aborted_at: datetime | None = None  # the `turn_aborted` record's time: where nesting ends
    answered: bool = False  # an assistant message was seen since the prompt
    prompt_from_item: bool = False  # opened by a `response_item` prompt (no `user_message`)
    unknown_times: int = 0  # records of this turn whose timestamp was absent or unreadable

    @property
    def explicit(self) -> bool:
        return bool(self.turn_id)

    @property
    def request(self) -> Request:
        return self.requests[-1]

    def pristine(self) -> bool:
        """True while no request has items, usage or tool calls."""
        return all(r.empty and not r.tools for r in self.requests)

    def spawn_call(self, child: str) -> str | None:
        """The call id of this turn's spawn call naming thread `child`, else None."""
        tools = [x for r in self.requests for x in r.tools]
        calls = [x.call_id for x in tools if x.attributes.get("codex.child_thread_id") == child]
        return calls[0] if calls else None


def item_prompt(t: OpenTurn | None, p: dict[str, Any]) -> str | None:
    """The prompt of a user `response_item` written without its `user_message`, else None.

    Only in a turn without task events, after the model answered it with no tool call awaiting
    output: a real prompt's `user_message` always comes first, and injected context
    (`<environment_context>`, AGENTS.md, ...) is never a prompt."""
    if p.get("type") != "message" or p.get("role") != "user" or t is None:
        return None
    if t.explicit or t.aborted or not t.answered or t.awaiting:
        return None
    text = content_text(p.get("content"))
    return None if injected_context(text) else text


def add_response_item(t: OpenTurn, p: dict[str, Any], when: datetime | None) -> bool:
    """Add one `response_item` payload to the open turn; False when it is of no use (ignored)."""
    kind = as_str(p.get("type"))
    r = t.request
    if kind == "message" and p.get("role") == "assistant":
        text = content_text(p.get("content"))
        r.outputs.append(Message("assistant", text))
        t.final_message = text
        t.answered = True
    elif kind == "reasoning":
        summary = p.get("summary")
        texts = [content_text(s) for s in summary] if isinstance(summary, list) else []
        r.reasoning.extend(text for text in texts if text)
    elif kind in CALL_TYPES or kind == "web_search_call":
        _tool_call(t, kind, p, when)
    elif kind in OUTPUT_TYPES:
        # an output feeds the next request; it does not belong to this one
        return _tool_result(t, p, when)
    else:
        return False
    r.has_items = True
    r.ended_at = when or r.ended_at
    return True


def _tool_call(t: OpenTurn, kind: str, p: dict[str, Any], when: datetime | None) -> None:
    call_id = as_str(p.get("call_id"))
    if kind == "function_call":
        name, args = as_str(p.get("name")), json_text(p.get("arguments"))
    elif kind == "custom_tool_call":
        name, args = as_str(p.get("name")), json_text(p.get("input"))
    elif kind == "local_shell_call":
        name, args = "local_shell", json_text(p.get("action"))
    elif kind == "tool_search_call":
        name, args = "tool_search", json_text(p.get("arguments"))
    else:
        name, args = "web_search", json_text(p.get("action"))
    tool = ToolDraft(name, args, call_id, when, attributes={"codex.item_type": kind})
    if isinstance(p.get("status"), str):
        tool.attributes["codex.status"] = p["status"]
    t.request.tools.append(tool)
    if kind == "web_search_call":
        tool.ended_at = when  # no output record: the call item is its own result
    else:
        t.awaiting[call_id] = tool


def _tool_result(t: OpenTurn, p: dict[str, Any], when: datetime | None) -> bool:
    tool = t.awaiting.pop(as_str(p.get("call_id")), None)
    if tool is None:
        return False
    if p.get("type") == "tool_search_output":
        tool.result = json_text(p.get("tools"))
    else:
        tool.result, tool.is_error, attrs = tool_output(p.get("output"))
        tool.attributes.update(attrs)
        child = spawned_thread(tool.name, p.get("output"))
        if child:  # the default persistence mode does not write collab_agent_spawn_end
            tool.attributes.setdefault("codex.child_thread_id", child)
    tool.ended_at = when
    return True


def tag_spawn(t: OpenTurn, p: dict[str, Any]) -> None:
    """Tag the spawn call named by a `collab_agent_spawn_end` payload with its child thread."""
    call_id, child = as_str(p.get("call_id")), as_str(p.get("new_thread_id"))
    for r in t.requests:
        for tool in r.tools:
            if tool.call_id == call_id and child:
                tool.attributes["codex.child_thread_id"] = child
                for field_name in ("new_agent_role", "new_agent_nickname", "model"):
                    if as_str(p.get(field_name)):
                        key = field_name.removeprefix("new_")
                        tool.attributes[f"codex.{key}"] = p[field_name]
