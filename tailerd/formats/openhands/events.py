"""OpenHands events as turns: one JSON file per event under `<conversation>/events/`.

File names are `event-<5-digit sequence>-<event id>.json`; the sequence orders them. Event
kinds read (OpenHands V1 SDK, openhands/sdk/event/; real sample in
../shared/fixtures/agents/openhands/): `MessageEvent` (`source` user: a prompt, which starts a
turn; `source` agent: an answer, one chat span, `llm_response_id`), `ActionEvent` (a tool call
the model made: `tool_call {id, name, arguments}`, `thought`, `reasoning_content`,
`llm_response_id`; parallel calls of one completion share the response id and so one chat
span), `ObservationEvent` (the tool's result: `observation.content`, `observation.is_error`),
`AgentErrorEvent` and `UserRejectObservation` (a tool call that failed or was refused:
`is_error`; an `AgentErrorEvent` answering no tool call, and a `ConversationErrorEvent`, go to
the turn attribute `openhands.errors`; software-agent-sdk openhands/sdk/event/llm_convertible).
`SystemPromptEvent`, state updates and condensation events make no spans.

Timestamps are naive ISO strings; they are taken as UTC (the sample's agree with the epoch
timestamps of base_state.json's `costs` to the millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, ToolCall, Turn
from tailerd.formats.base import json_text, parse_time, turn_key
from tailerd.formats.openhands.state import State

AGENT_NAME = "openhands"
PROVIDER = "openhands"  # fallback only: the model name carries LiteLLM's provider prefix
IDENTITY_PREFIX = "openhands:event:"
_ERRORS = frozenset({"AgentErrorEvent", "UserRejectObservation"})

Event = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    items = content if isinstance(content, list) else []
    return "\n".join(_str(c.get("text")) for c in items if isinstance(c, dict) and c.get("text"))


def _message_text(event: Event) -> str:
    return _content_text(_dict(event.get("llm_message")).get("content"))


def is_prompt(event: Event) -> bool:
    return event.get("kind") == "MessageEvent" and event.get("source") == "user"


@dataclass(frozen=True, slots=True)
class _Result:
    text: str
    is_error: bool
    when: Any


def _results(events: list[Event]) -> dict[str, _Result]:
    out: dict[str, _Result] = {}
    for e in events:
        call_id = _str(e.get("tool_call_id"))
        if not call_id:
            continue
        kind = e.get("kind")
        if kind == "ObservationEvent":
            obs = _dict(e.get("observation"))
            out[call_id] = _Result(
                _content_text(obs.get("content")), obs.get("is_error") is True, e.get("timestamp")
            )
        elif _str(kind) in _ERRORS:
            why = _str(e.get("error")) or _str(e.get("rejection_reason"))
            out[call_id] = _Result(why, True, e.get("timestamp"))
    return out


def _llm(event: Event, state: State, text: str) -> LLMCall:
    rid = _str(event.get("llm_response_id"))
    call = state.calls.get(rid)
    ended = parse_time(event.get("timestamp"))
    started = ended
    attrs: dict[str, Any] = {}
    if call is None:
        attrs["tailerd.usage.recorded"] = False
    else:
        if call.cost is not None:
            attrs.update({"gen_ai.usage.cost": call.cost, "tailerd.cost.source": "agent"})
        if ended is not None and call.latency is not None and call.latency < 86400:
            started = ended - timedelta(seconds=call.latency)
    model = call.model if call is not None else state.model
    return LLMCall(
        model=model,
        provider_name=model.split("/", 1)[0] if "/" in model else PROVIDER,
        output_messages=(Message("assistant", text),) if text else (),
        usage=call.usage if call is not None else LLMCall().usage,
        reasoning=_str(event.get("reasoning_content")),
        response_id=rid,
        started_at=started,
        ended_at=ended,
        attributes=attrs,
    )


def _spans(events: list[Event], state: State) -> list[SpanCall]:
    results = _results(events)
    spans: list[SpanCall] = []
    current = None  # the response id of the last chat span
    for e in events:
        kind, rid = e.get("kind"), _str(e.get("llm_response_id"))
        if kind == "MessageEvent" and e.get("source") == "agent":
            spans.append(_llm(e, state, _message_text(e)))
            current = rid or None
        elif kind == "ActionEvent":
            if not rid or rid != current:
                spans.append(_llm(e, state, _content_text(e.get("thought"))))
                current = rid or None
            call = _dict(e.get("tool_call"))
            call_id = _str(e.get("tool_call_id")) or _str(call.get("id"))
            result = results.get(call_id)
            when = parse_time(e.get("timestamp"))
            spans.append(
                ToolCall(
                    name=_str(call.get("name")) or _str(e.get("tool_name")),
                    arguments=json_text(call.get("arguments", e.get("action"))),
                    result=result.text if result else "",
                    tool_call_id=call_id,
                    is_error=result.is_error if result else False,
                    started_at=when,
                    ended_at=(parse_time(result.when) if result else None) or when,
                )
            )
    return spans


def _answer(events: list[Event]) -> str:
    """The agent's last message, else the message of its `finish` action."""
    for e in reversed(events):
        if e.get("kind") == "MessageEvent" and e.get("source") == "agent" and _message_text(e):
            return _message_text(e)
        action = _dict(e.get("action"))
        if e.get("kind") == "ActionEvent" and _str(action.get("message")):
            return _str(action["message"])
    return ""


def _errors(events: list[Event]) -> list[str]:
    """Errors of the agent's scaffold that answer no tool call (`AgentErrorEvent` without
    `tool_call_id`, e.g. a malformed model reply), and conversation errors."""
    return [
        _str(e.get("error")) or _str(e.get("detail")) or _str(e.get("kind"))
        for e in events
        if (e.get("kind") == "AgentErrorEvent" and not _str(e.get("tool_call_id")))
        or e.get("kind") == "ConversationErrorEvent"
    ]


def build_turn(
    conversation: str,
    group: list[Event],
    state: State,
    *,
    end: int,
    agent_name: str,
    attributes: Mapping[str, Any],
) -> Turn:
    """One turn: a user MessageEvent and the events after it (`end`: base_state.json's size)."""
    prompt, rest = group[0], group[1:]
    times = [t for t in (parse_time(e.get("timestamp")) for e in group) if t is not None]
    spans = _spans(rest, state)
    models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
    answer = _answer(rest)
    attrs = dict(attributes)
    errors = _errors(rest)
    if errors:
        attrs["openhands.errors"] = errors
    return Turn(
        key=turn_key(AGENT_NAME, conversation, _str(prompt.get("id"))),
        session_id=conversation,
        start=0,
        end=end,
        agent_name=agent_name or AGENT_NAME,
        model=models[-1] if models else state.model,
        messages=(Message("user", _message_text(prompt)),),
        output_messages=(Message("assistant", answer),) if answer else (),
        spans=tuple(spans),
        started_at=times[0] if times else None,
        ended_at=times[-1] if times else None,
        attributes=attrs,
        identities=(f"{IDENTITY_PREFIX}{prompt['id']}",) if _str(prompt.get("id")) else (),
    )
