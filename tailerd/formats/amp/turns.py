"""An Amp thread's messages as turns: a prompt and the messages after it, up to the next prompt.

Message shapes (real sample: git-ai-project/git-ai tests/fixtures/amp-threads/T-*.json, Amp CLI
0.0.1772237000): `{role: "user"|"assistant"|"info", messageId: <int, from 0>, content: [blocks]}`.
User messages add `meta.sentAt` (epoch ms) and `agentMode`; a user message of `tool_result`
blocks carries tool results, any other user message is a prompt. Assistant messages add
`state` and `usage` (tailerd.formats.amp.usage) and, on a turn's last one, `turnElapsedMs`;
their blocks are `text`, `thinking` `{thinking, signature, provider}` and `tool_use`. `info`
messages (Amp's own notes: a manual bash run, a compaction summary) are not part of a turn.

`state` is `{type: "streaming"}`, `{type: "complete", stopReason: "end_turn"|"tool_use"|
"max_tokens"|null}`, `{type: "cancelled"}` or `{type: "error", error: {message}}` (Amp's bundle,
`@sourcegraph/amp` 0.0.1771243550-geaf318 dist/main.js, its providers' state mappers and the
cancel path). A turn is finished when its last assistant message is `complete` with any stop
reason but `tool_use` (after `tool_use` Amp runs the tools and calls the model again), or
`cancelled` or `error` (Amp stops there and waits for the user; the turn is marked
interrupted). The last turn of a thread that ends any other way is shipped only once the file
has been quiet for `idle_close` seconds (`final`), then marked interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, Turn
from tailerd.formats.amp.tools import (
    Span,
    Traces,
    blocks,
    is_subagent,
    results_of,
    runs,
    subagent,
)
from tailerd.formats.amp.usage import provider_of, usage_of
from tailerd.formats.base import parse_time, turn_key
from tailerd.formats.content_blocks import tool_calls
from tailerd.formats.json_values import as_dict, as_str

AGENT_NAME = "amp"
IDENTITY_PREFIX = "amp:message:"
Record = dict[str, Any]


def message_id(message: Record) -> int | None:
    found = message.get("messageId")
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def is_prompt(message: Record) -> bool:
    """A user message the person wrote, not one carrying tool results."""
    kinds = {as_str(b.get("type")) for b in blocks(message)}
    return message.get("role") == "user" and bool(kinds) and "tool_result" not in kinds


def _text(message: Record) -> str:
    return "\n".join(
        as_str(b.get("text")).strip()
        for b in blocks(message)
        if b.get("type") == "text" and as_str(b.get("text")).strip()
    )


def _state(message: Record) -> tuple[str, str]:
    state = as_dict(message.get("state"))
    return as_str(state.get("type")), as_str(state.get("stopReason"))


def ends_turn(message: Record) -> bool:
    """True for an assistant message after which Amp waits for the user (module docstring)."""
    kind, reason = _state(message)
    return (kind == "complete" and reason != "tool_use") or kind in ("cancelled", "error")


def _interrupted(assistants: list[Record]) -> bool:
    if not assistants:
        return True
    kind, _ = _state(assistants[-1])
    return kind in ("cancelled", "error") or not ends_turn(assistants[-1])


def _span(spans: Mapping[int, Span], key: int | None) -> Span:
    """The trace span of a message id; (None, None) when there is none."""
    return spans.get(key, (None, None)) if key is not None else (None, None)


def _reasoning(message: Record) -> list[str]:
    """The thinking blocks' text, as the Claude Code format keeps it (a redacted one named)."""
    out = []
    for b in blocks(message):
        if b.get("type") == "thinking" and as_str(b.get("thinking")):
            out.append(b["thinking"])
        elif b.get("type") == "redacted_thinking":
            out.append("[redacted thinking]")
    return out


def _llm_call(message: Record, span: Span) -> LLMCall:
    usage = as_dict(message.get("usage"))
    model = as_str(usage.get("model"))
    kind, reason = _state(message)
    ended = span[1] or parse_time(usage.get("timestamp"))
    attributes: dict[str, Any] = {} if usage else {"tailerd.usage.recorded": False}
    if kind == "error":
        error = as_dict(as_dict(message.get("state")).get("error"))
        attributes["error.type"] = "amp_error"  # OTel's: the call failed
        attributes["amp.error"] = as_str(error.get("message"))
    text = _text(message)
    return LLMCall(
        model=model,
        provider_name=provider_of(model),
        output_messages=(Message("assistant", text),) if text else (),
        usage=usage_of(usage),
        reasoning="\n\n".join(_reasoning(message)),
        finish_reasons=(reason or kind,) if kind else (),
        started_at=span[0] or ended,
        ended_at=ended,
        attributes=attributes,
    )


def _spans(prompt_id: int | None, rest: list[Record], traces: Traces) -> list[SpanCall]:
    found = runs(rest)
    assistants = [m for m in rest if m.get("role") == "assistant"]
    inferences = traces.inferences.get(prompt_id, []) if prompt_id is not None else []
    if len(inferences) != len(assistants):
        inferences = []  # the traces do not match the messages: use the messages' own times
    spans: list[SpanCall] = []
    for i, m in enumerate(assistants):
        call = _llm_call(m, inferences[i] if inferences else (None, None))
        spans.append(call)
        started, ended = _span(traces.tools, message_id(m))
        inputs = {as_str(b.get("id")): b.get("input") for b in blocks(m)}
        for tool in tool_calls(blocks(m), results_of(found, ended), started or call.ended_at):
            run = found.get(tool.tool_call_id, {})
            if is_subagent(run):
                spans.append(subagent(tool, run, inputs.get(tool.tool_call_id)))
            else:
                spans.append(tool)
    return spans


@dataclass(frozen=True, slots=True)
class Thread:
    """What a turn takes from its thread: its id, title and attributes, and the traces."""

    session_id: str
    title: str
    attributes: Mapping[str, Any]
    traces: Traces
    agent_name: str
    end: int  # the document's size in bytes
    # A fork's copy of its origin thread's messages: the origin's id, and the copied message
    # objects (by `id()`), whose identities are the origin's (see `identities`)
    origin: str = ""
    copied: frozenset[int] = frozenset()

    def identities(self, group: list[Record]) -> tuple[str, ...]:
        """`amp:message:<thread id>:<messageId>` of each message, with the origin thread's id
        for a message a fork copied: a turn made only of copies was shipped from its origin."""
        out = []
        for m in group:
            mid = message_id(m)
            if mid is not None:
                owner = self.origin if id(m) in self.copied else self.session_id
                out.append(f"{IDENTITY_PREFIX}{owner}:{mid}")
        return tuple(dict.fromkeys(out))


def build_turn(thread: Thread, group: list[Record]) -> Turn:
    """One turn from a prompt message and the messages after it."""
    prompt, rest = group[0], group[1:]
    prompt_id = message_id(prompt)
    assistants = [m for m in rest if m.get("role") == "assistant"]
    answers = [t for t in (_text(m) for m in assistants) if t]
    models = [as_str(as_dict(m.get("usage")).get("model")) for m in assistants]
    models = [m for m in models if m]
    spans = _spans(prompt_id, rest, thread.traces)
    whole = _span(thread.traces.agent, prompt_id)
    started = parse_time(as_dict(prompt.get("meta")).get("sentAt")) or whole[0]
    ends = [s.ended_at for s in spans if s.ended_at is not None]
    attributes = dict(thread.attributes)
    mode = as_str(prompt.get("agentMode"))
    if mode:
        attributes["amp.agent_mode"] = mode
    return Turn(
        key=turn_key(AGENT_NAME, thread.session_id, prompt_id if prompt_id is not None else ""),
        session_id=thread.session_id,
        start=0,
        end=thread.end,
        agent_name=thread.agent_name or AGENT_NAME,
        model=models[-1] if models else "",
        session_name=thread.title,
        messages=(Message("user", _text(prompt)),),
        output_messages=(Message("assistant", answers[-1]),) if answers else (),
        spans=tuple(spans),
        started_at=started,
        ended_at=whole[1] or (max(ends) if ends else started),
        interrupted=_interrupted(assistants),
        attributes=attributes,
        identities=thread.identities(group),
    )


def groups_of(messages: list[Any]) -> list[list[Record]]:
    """The thread's messages cut at each prompt (messages before the first prompt dropped)."""
    groups: list[list[Record]] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "info":
            continue
        if is_prompt(message):
            groups.append([message])
        elif groups:
            groups[-1].append(message)
    return groups


def finished(group: list[Record]) -> bool:
    """The group's last message is an assistant message that ends the turn."""
    last = group[-1]
    return last.get("role") == "assistant" and ends_turn(last)
