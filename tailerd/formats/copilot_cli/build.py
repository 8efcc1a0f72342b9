"""Copilot CLI turns as tailerd `Turn`s: a finished user interaction, or a synthetic turn (the
session's shutdown totals, a compaction outside any turn).

Every turn is keyed by the session id and the anchor event's `id` (tailerd/formats/base.py
`turn_key`), so re-reads mint the same key. The session's title and, when the events named no
working directory, its cwd come from `workspace.yaml` beside `events.jsonl` (1.0+ layout:
`session-state/<id>/events.jsonl`; read through `Source.read_related`).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from tailerd.domain import LLMCall, Message, Turn
from tailerd.formats.base import Source, turn_key
from tailerd.formats.copilot_cli.events import (
    AGENT_NAME,
    WORKSPACE_CAP,
    WORKSPACE_FILE,
    ToolState,
    workspace,
)
from tailerd.formats.copilot_cli.state import Context, OpenTurn


def finished_turn(source: Source, ctx: Context, turn: OpenTurn) -> Turn:
    """`turn` closed: its items as spans, the last model answer (else the task_complete
    summary) as the output message, `ctx.model` when no call named a model."""
    spans = tuple(s.span() if isinstance(s, ToolState) else s for s in turn.items)
    answers = [
        m.content
        for s in turn.items
        if isinstance(s, LLMCall)
        for m in s.output_messages
        if m.content
    ]
    answer = answers[-1] if answers else (turn.task_complete or "")
    attributes: dict[str, Any] = {}
    if turn.interaction_id:
        attributes["copilot.interaction_id"] = turn.interaction_id
    if turn.notices:
        attributes["copilot.notices"] = list(turn.notices)
    if not turn.messages:
        attributes["copilot.continuation"] = True
    return session_turn(
        source,
        ctx,
        key_part=turn.anchor,
        start=turn.start,
        end=turn.end,
        spans=spans,
        started_at=turn.started_at,
        ended_at=turn.ended_at,
        attributes=attributes,
        model=turn.model or ctx.model,
        messages=tuple(turn.messages),
        output_messages=(Message("assistant", answer),) if answer else (),
        interrupted=turn.interrupted,
        identities=tuple(turn.identities),
    )


def session_turn(
    source: Source, ctx: Context, key_part: str, attributes: dict[str, Any], **fields: Any
) -> Turn:
    """A Turn of this session: `fields` are Turn's own (byte range, spans, times, ...);
    the title, and the cwd when the events gave none, come from `workspace.yaml`."""
    path = PurePath(source.path)
    in_folder = path.name == "events.jsonl"  # 1.0+: session-state/<id>/events.jsonl
    related = path.parent / WORKSPACE_FILE
    ws = workspace(source.read_related(str(related), WORKSPACE_CAP)) if in_folder else {}
    cwd = ctx.cwd or ws.get("cwd", "")
    attributes = {
        **({"tailerd.cwd": cwd} if cwd else {}),
        **({"copilot.version": ctx.version} if ctx.version else {}),
        **attributes,
    }
    session = ctx.session_id or (path.parent.name if in_folder else path.name.split(".")[0])
    fields["ended_at"] = fields.get("ended_at") or fields.get("started_at")
    return Turn(
        key=turn_key(AGENT_NAME, session, key_part),
        session_id=session,
        agent_name=source.agent_name or AGENT_NAME,
        session_name=ws.get("summary", ""),
        attributes=attributes,
        **fields,
    )
