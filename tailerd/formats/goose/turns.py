"""Rows of a goose `sessions.db` to finished turns (see the package docstring for the schema).

A turn is a message a person wrote (`Row.is_prompt`) and every message after it up to the next
one. It is finished when that next prompt exists, when its last message is an assistant
message with no tool request and every tool request of the turn has its response (goose's
reply loop stops when the model asks for no tool), or when its last message is `idle_close`
seconds old (then, as a turn cut short by a new prompt, it is marked interrupted). A run of
consecutive model messages is one LLM call; each `toolRequest` one tool call, its result the
`toolResponse` with the same id. Messages are read in row order (`messages.id`, the order
goose inserted them; goose itself orders by the second-resolution `timestamp`).

The cursor that passes a turn is `"<index>|<input>|<output>|<ledger id>|<message key>"`: the
position and key of the turn's last message, the session's accumulated input/output tokens
already shipped (see `_totals_turn`) and the last `usage_ledger` row shipped (usage.py).
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from datetime import datetime
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, ToolCall, Turn, Usage
from tailerd.edges.agent_db import table_columns
from tailerd.edges.agent_db.protocol import SessionQuery, SessionRead, SessionTurn
from tailerd.formats.base import parse_time, turn_key
from tailerd.formats.goose.content import Row, call_of, result_of
from tailerd.formats.goose.rows import Position, after, check, messages, session_row
from tailerd.formats.goose.usage import (
    Charge,
    charged,
    has_ledger,
    in_window,
    ledger,
    with_charges,
)
from tailerd.formats.json_values import as_str

AGENT = "goose"


def session_versions(db: sqlite3.Connection) -> dict[str, str]:
    """Every session id -> "<updated_at>|<message count>|<last row id>|<accumulated tokens>"
    (goose moves `updated_at` on every message and every token update)."""
    check(db)
    columns = table_columns(db, "sessions")
    totals = [c for c in ("accumulated_input_tokens", "accumulated_output_tokens") if c in columns]
    extra = "".join(f", s.{c}" for c in totals)
    if "session_id" in table_columns(db, "usage_ledger"):
        extra += ", (SELECT MAX(u.id) FROM usage_ledger u WHERE u.session_id = s.id)"
    rows = db.execute(
        f"SELECT s.id, s.updated_at, COUNT(m.id), MAX(m.id){extra} FROM sessions s"  # noqa: S608
        " LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id"
    )
    return {str(row[0]): "|".join(str(v) for v in row[1:]) for row in rows}


def read_session(query: SessionQuery) -> SessionRead:
    """The finished turns of one session after its cursor (see the module docstring)."""
    db, session_id = query.db, query.session_id
    check(db)
    session = session_row(db, session_id)
    if session is None:
        return SessionRead()
    position = Position.parse(query.cursor)
    rows = messages(db, session_id)
    groups: list[list[Row]] = []
    for row in after(rows, position):
        if row.is_prompt or not groups:
            groups.append([row])
        else:
            groups[-1].append(row)
    agent = query.source.agent_name or AGENT
    charges = ledger(db, session_id, position.ledger)
    turns: list[SessionTurn] = []
    if charges:  # rows of turns shipped before (written after them): a turn of their own
        late = in_window(charges, -math.inf, groups[0][0].created if groups else math.inf)
        if late:
            position = dataclasses.replace(position, ledger=late[-1].id)
            turns.append(SessionTurn(_usage_turn(session, late, agent), position.text()))
    for i, group in enumerate(groups):
        final = _final(group)
        if not final and i + 1 == len(groups) and query.now - group[-1].created < query.idle_close:
            return SessionRead(tuple(turns), True)
        turn = _turn(session, group, agent, not final)
        if charges:
            end = groups[i + 1][0].created if i + 1 < len(groups) else math.inf
            mine = in_window(charges, group[0].created, end)
            turn = with_charges(turn, mine)
            position = dataclasses.replace(
                position, ledger=max([position.ledger, *(c.id for c in mine)])
            )
        position = dataclasses.replace(position, index=group[-1].index, key=group[-1].key)
        turns.append(SessionTurn(turn, position.text()))
    if charges is not None:
        return SessionRead(tuple(turns))
    if has_ledger(db) and rows and query.now - rows[-1].created < query.idle_close:
        # No ledger row yet in a database that keeps one: a session older than the ledger, or
        # a new one whose first row is not written yet; its totals wait until it is quiet.
        return SessionRead(tuple(turns), True)
    return SessionRead((*turns, *_totals_turn(session, position, agent)))


def _final(group: list[Row]) -> bool:
    """Goose's loop is done: the last message is the model's, asking for no tool, and every
    tool request of the turn has its response."""
    last = group[-1]
    if not last.is_call or last.requests():
        return False
    asked = {as_str(r.get("id")) for row in group for r in row.requests()}
    answered = {as_str(r.get("id")) for row in group for r in row.of("toolResponse")}
    return asked <= answered


def _turn(session: dict[str, Any], group: list[Row], agent: str, interrupted: bool) -> Turn:
    first, last = group[0], group[-1]
    spans = _spans(session, group)
    calls = [r for r in group if r.is_call]
    output = next((t for r in reversed(calls) if (t := r.text())), "")
    return _new_turn(
        session,
        agent,
        (first.key,),
        messages=(Message("user", first.text()),) if first.is_prompt else (),
        output_messages=(Message("assistant", output),) if output else (),
        spans=tuple(spans),
        started_at=_time(first.created),
        ended_at=_time(last.created),
        interrupted=interrupted,
        attributes=_attributes(session),
        identities=(f"goose:message:{first.key}",),
    )


def _spans(session: dict[str, Any], group: list[Row]) -> list[SpanCall]:
    """One LLMCall per run of consecutive model messages, then that run's tool calls."""
    responses = {as_str(r.get("id")): (row, r) for row in group for r in row.of("toolResponse")}
    runs: list[list[Row]] = []
    previous_was_call = False
    for row in group:
        if row.is_call:
            if not previous_was_call:
                runs.append([])
            runs[-1].append(row)
        previous_was_call = row.is_call
    spans: list[SpanCall] = []
    for run in runs:
        text = "\n".join(t for r in run if (t := r.text()))
        spans.append(
            LLMCall(
                model=next((r.model for r in reversed(run) if r.model), session["model"]),
                provider_name=next((r.provider for r in run if r.provider), session["provider"]),
                output_messages=(Message("assistant", text),) if text else (),
                reasoning="\n".join(t for r in run if (t := r.reasoning())),
                response_id=run[0].key,
                started_at=_time(run[0].created),
                ended_at=_time(run[-1].created),
                attributes={"tailerd.usage.recorded": False},
            )
        )
        for row in run:
            spans.extend(_tool_call(row, request, responses) for request in row.requests())
    return spans


def _tool_call(
    row: Row, request: dict[str, Any], responses: dict[str, tuple[Row, dict[str, Any]]]
) -> ToolCall:
    call_id = as_str(request.get("id"))
    name, arguments, call_error = call_of(request)
    answered = responses.get(call_id)
    result, is_error = result_of(answered[1]) if answered else ("", False)
    return ToolCall(
        name=name or "invalid_tool_call",
        arguments=arguments,
        result=result or call_error,
        tool_call_id=call_id,
        is_error=is_error or bool(call_error),
        started_at=_time(row.created),
        ended_at=_time(answered[0].created) if answered else None,
    )


def _totals_turn(session: dict[str, Any], passed: Position, agent: str) -> tuple[SessionTurn, ...]:
    """Goose records tokens only per session (`accumulated_input_tokens`,
    `accumulated_output_tokens`: every call's usage added up). Once no turn is open, what they
    grew by since the cursor is shipped as one synthetic turn (`tailerd.synthetic =
    "session_totals"`) with one chat span carrying that difference, so each token reaches the
    backend once; the cursor then holds the new totals."""
    seen_in, seen_out = passed.input_tokens, passed.output_tokens
    total_in, total_out = session["input_tokens"], session["output_tokens"]
    grew_in, grew_out = max(total_in - seen_in, 0), max(total_out - seen_out, 0)
    if not (grew_in or grew_out):
        return ()
    when = parse_time(session["updated_at"])
    call = LLMCall(
        model=session["model"],
        provider_name=session["provider"],
        usage=Usage(input_tokens=grew_in, output_tokens=grew_out, total_tokens=grew_in + grew_out),
        started_at=when,
        ended_at=when,
        attributes={"tailerd.usage.session_totals": True},
    )
    attributes = {**_attributes(session), "tailerd.synthetic": "session_totals"}
    if session["total_tokens"]:
        attributes["goose.accumulated_total_tokens"] = session["total_tokens"]
    turn = _new_turn(
        session,
        agent,
        ("session_totals", total_in, total_out),
        spans=(call,),
        started_at=when,
        ended_at=when,
        attributes=attributes,
    )
    moved = dataclasses.replace(
        passed, input_tokens=max(total_in, seen_in), output_tokens=max(total_out, seen_out)
    )
    return (SessionTurn(turn, moved.text()),)


def _new_turn(
    session: dict[str, Any], agent: str, key_parts: tuple[str | int, ...], **fields: Any
) -> Turn:
    """A turn of this session: its key from the session id and `key_parts`, the session's
    model and title, and `fields`."""
    return Turn(
        key=turn_key(AGENT, session["id"], *key_parts),
        session_id=session["id"],
        start=0,
        end=0,
        agent_name=agent,
        model=session["model"],
        session_name=session["name"],
        **fields,
    )


def _usage_turn(session: dict[str, Any], charges: list[Charge], agent: str) -> Turn:
    """Ledger rows written after their turn was shipped, as a synthetic turn."""
    spans = tuple(charged(LLMCall(), c, unmatched=not c.compaction) for c in charges)
    first, last = spans[0], spans[-1]
    return _new_turn(
        session,
        agent,
        ("usage", charges[0].id, charges[-1].id),
        spans=spans,
        started_at=first.started_at if isinstance(first, LLMCall) else None,
        ended_at=last.ended_at if isinstance(last, LLMCall) else None,
        attributes={**_attributes(session), "tailerd.synthetic": "usage"},
    )


def _attributes(session: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"goose.session_type": session["type"]}
    if session["parent"]:
        attributes["goose.parent_session_id"] = session["parent"]
    if session["cwd"]:
        attributes["tailerd.cwd"] = session["cwd"]
    if session["schedule_id"]:
        attributes["goose.schedule_id"] = session["schedule_id"]
    return attributes


def _time(value: float) -> datetime | None:
    return parse_time(value) if value else None
