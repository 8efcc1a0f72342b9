"""A finished Codex turn: the open turn's requests, tools and messages as one `Turn`.

The turn is keyed by the thread id and Codex's own `turn_id` (else the opening prompt's
timestamp id), so re-reads and other hosts mint the same key (tailerd/formats/base.py
`turn_key`). Tools still awaiting their output are marked `codex.output_missing`; a turn whose
first record had no readable timestamp is marked `tailerd.timestamp_unknown` rather than given
the read time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, Turn
from tailerd.formats.base import turn_key
from tailerd.formats.codex.identity import turn_identities
from tailerd.formats.codex.records import AGENT_NAME
from tailerd.formats.codex.spans import OpenTurn, ToolDraft


def finished_turn(
    t: OpenTurn,
    interrupted: bool,
    *,
    session: str,
    thread_attributes: Mapping[str, Any],
    model: str,
    agent_name: str,
    span_of: Callable[[ToolDraft], SpanCall],
    previous: str,
) -> Turn:
    """`t` closed as a Turn of thread `session`: `thread_attributes` (the session header's)
    under the turn's own, `model` when no request named one, each tool call through `span_of`
    (a spawned child's nested spans), `previous` the identity of the turn closed before it
    (`identity.turn_identities`)."""
    for tool in t.awaiting.values():
        tool.attributes["codex.output_missing"] = True
    spans = [s for r in t.requests for s in r.spans(span_of)]
    models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
    attributes = dict(thread_attributes)
    attributes.update(t.attributes)
    if t.explicit:
        attributes["codex.turn_id"] = t.turn_id
    if t.started_at is None:
        attributes["tailerd.timestamp_unknown"] = True  # never stamped with the read time
    if t.unknown_times:
        attributes["codex.unreadable_timestamps"] = t.unknown_times
    output = (Message("assistant", t.final_message),) if t.final_message else ()
    return Turn(
        key=turn_key(AGENT_NAME, session, t.turn_id or t.implicit_id),
        session_id=session,
        start=t.start,
        end=t.end,
        agent_name=agent_name,
        model=models[-1] if models else model,
        messages=tuple(t.messages),
        output_messages=output,
        spans=tuple(spans),
        started_at=t.started_at,
        ended_at=t.ended_at,
        interrupted=interrupted or t.aborted,
        attributes=attributes,
        identities=turn_identities(t.turn_id, t.messages, t.requests, previous),
    )
