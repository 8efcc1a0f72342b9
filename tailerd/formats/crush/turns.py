"""Rows of a Crush / opencode-go database to finished turns (see the package docstring).

A turn is a user message and the assistant and tool messages after it. It is finished when the
next user message exists, when its last assistant message finished for a reason other than
`tool_use` with every tool call answered, or when its last message is `idle_close` seconds old.
Each assistant message is one LLM call; each `tool_call` part one tool call, its result taken
from the `tool_result` part with the same id. The cursor that passes a turn is
`"$<cost shipped>|<created_at>|<id>"`: the session's cost already shipped (see `_costed`) and
its last message's `created_at` and id (messages are read in (`created_at`, rowid) order, the
order the agent inserted them). A cursor of an earlier tailerd, `"<created_at>|<id>"`, is read
as no cost shipped (none was).
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.agent_db import table_columns
from tailerd.edges.agent_db.protocol import SessionQuery, SessionRead, SessionTurn
from tailerd.formats.base import Source, json_text, parse_time, turn_key
from tailerd.formats.crush.cost import cost_growth, provider_of, shipped_cost, totals_span

AGENT = "crush"
MAX_DEPTH = 4  # sub-agent sessions nested this deep are read; deeper ones are cut off
FINAL_CONTINUES = "tool_use"  # the one finish reason after which the agent goes on by itself
_MESSAGE_COLUMNS = ("id", "role", "parts", "model", "created_at", "updated_at", "finished_at")


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    role: str
    parts: tuple[tuple[str, dict[str, Any]], ...]
    model: str
    provider: str
    created: float
    updated: float
    finished: float | None

    def texts(self, kind: str = "text", key: str = "text") -> str:
        return "".join(_str(d.get(key)) for t, d in self.parts if t == kind)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for t, d in self.parts if t == kind]

    @property
    def finish_reason(self) -> str:
        found = self.of("finish")
        return _str(found[-1].get("reason")) if found else ""


def session_versions(db: sqlite3.Connection) -> dict[str, str]:
    """Top-level session id -> "<updated_at>|<message_count>|<cost>" (the first two move on
    every message; the cost too, but `updated_at` has whole seconds and the agent saves the
    cost after the call's message: a cost grown within that second still changes it)."""
    rows = db.execute(
        "SELECT id, updated_at, message_count, cost FROM sessions WHERE parent_session_id IS NULL"
        " OR parent_session_id = ''"
    )
    return {str(i): f"{u}|{n}|{c}" for i, u, n, c in rows}


def read_session(query: SessionQuery) -> SessionRead:
    """The finished turns of `session_id` after `cursor` (see the module docstring)."""
    db, source, session_id, cursor = query.db, query.source, query.session_id, query.cursor
    now, idle_close = query.now, query.idle_close
    session = _session(db, session_id)
    if session is None:
        return SessionRead()
    shipped, cursor = shipped_cost(cursor)
    rows = _after(_messages(db, session_id), cursor)
    groups: list[list[Row]] = []
    for row in rows:
        if row.role == "user" or not groups:
            groups.append([row])
        else:
            groups[-1].append(row)
    turns: list[SessionTurn] = []
    still_open = False
    for i, group in enumerate(groups):
        last = group[-1]
        quiet = now - max(last.updated, last.finished or 0.0)
        finished = i + 1 < len(groups) or _final(group)
        if not finished and quiet < idle_close:
            still_open = True
            break
        turn = _turn(
            db, source, session, group, interrupted=not _final(group) and i + 1 == len(groups)
        )
        turns.append(SessionTurn(turn, f"${shipped!r}|{_num(last.created)}|{last.id}"))
    if still_open:  # the cost grown so far waits for the open turn
        return SessionRead(tuple(turns), True)
    return _costed(session, turns, shipped, cursor, source)


def _costed(
    session: dict[str, Any],
    turns: list[SessionTurn],
    shipped: float,
    cursor: str | None,
    source: Source,
) -> SessionRead:
    """The session's cost grown since `shipped` (`sessions.cost` is cumulative: the agent adds
    each call's cost, and a sub-agent session's cost when it ends), shipped once: on a
    session-totals chat span appended to the last turn read, or, when no turn was read, on a
    synthetic turn of its own (`tailerd.synthetic = "session_totals"`); the cursor then holds
    the session's cost. A cost that went down ships nothing and becomes the new baseline (on
    the last turn's cursor, or, with no turn, the read's own `cursor`)."""
    total = session["cost"]
    grown = cost_growth(total, shipped, session["id"])
    passed = turns[-1].cursor.partition("|")[2] if turns else cursor or ""
    moved = f"${total!r}|{passed}"
    if total == shipped:
        return SessionRead(tuple(turns))
    if turns:
        turn = turns[-1].turn
        if grown > 0:
            span = totals_span(grown, turn.model, turn.ended_at)
            turn = dataclasses.replace(turn, spans=(*turn.spans, span))
        return SessionRead((*turns[:-1], SessionTurn(turn, moved)))
    if grown <= 0:
        return SessionRead(cursor=moved)
    when = _time(session["updated"])
    span = totals_span(grown, session["model"], when)
    turn = Turn(
        key=turn_key("crush", session["id"], "session_totals", repr(total)),
        session_id=session["id"],
        start=0,
        end=0,
        agent_name=_agent(source),
        model=session["model"],
        session_name=session["title"],
        spans=(span,),
        started_at=when,
        ended_at=when,
        attributes={**_cwd(session, source), "tailerd.synthetic": "session_totals"},
    )
    return SessionRead((SessionTurn(turn, moved),))


def _final(group: list[Row]) -> bool:
    """The agent marked the turn done: its last assistant message finished for a reason other
    than tool_use, and every tool call of the turn has its result."""
    answers = [r for r in group if r.role == "assistant"]
    if not answers or answers[-1].finish_reason in ("", FINAL_CONTINUES):
        return False
    called = {_str(c.get("id")) for r in answers for c in r.of("tool_call")}
    answered = {_str(t.get("tool_call_id")) for r in group for t in r.of("tool_result")}
    return called <= answered


def _turn(
    db: sqlite3.Connection,
    source: Source,
    session: dict[str, Any],
    group: list[Row],
    *,
    interrupted: bool,
) -> Turn:
    first, last = group[0], group[-1]
    results = {_str(t.get("tool_call_id")): t for r in group for t in r.of("tool_result")}
    spans = _spans(db, group, results)
    prompt = first.texts() if first.role == "user" else ""
    answers = [r for r in group if r.role == "assistant"]
    output = next((r.texts() for r in reversed(answers) if r.texts()), "")
    model = next((r.model for r in reversed(answers) if r.model), "")
    attributes: dict[str, Any] = _cwd(session, source)
    if answers and answers[-1].finish_reason:
        attributes["tailerd.finish_reason"] = answers[-1].finish_reason
    agent = _agent(source)
    return Turn(
        key=turn_key("crush", session["id"], first.id),
        session_id=session["id"],
        start=0,
        end=0,
        agent_name=agent,
        model=model,
        session_name=session["title"],
        messages=(Message("user", prompt),) if first.role == "user" else (),
        output_messages=(Message("assistant", output),) if output else (),
        spans=tuple(spans),
        started_at=_time(first.created),
        ended_at=_time(max(last.updated, last.finished or 0.0)),
        interrupted=interrupted or (bool(answers) and answers[-1].finish_reason == "canceled"),
        attributes=attributes,
        identities=(f"crush:message:{first.id}",),
    )


def _cwd(session: dict[str, Any], source: Source) -> dict[str, Any]:
    """`tailerd.cwd`: Crush's `sessions.workspace_cwd`, else the project holding the data dir."""
    return {"tailerd.cwd": session["cwd"] or str(PurePath(source.path).parent.parent)}


def _agent(source: Source) -> str:
    """`crush` for Crush and for its predecessor opencode-go alike (`opencode` names the
    TypeScript OpenCode, formats/opencode), unless the source names its agent."""
    return source.agent_name or AGENT


def _spans(
    db: sqlite3.Connection, group: list[Row], results: dict[str, dict[str, Any]], depth: int = 0
) -> list[SpanCall]:
    spans: list[SpanCall] = []
    answered_at = {
        _str(t.get("tool_call_id")): r.created for r in group for t in r.of("tool_result")
    }
    for row in group:
        if row.role != "assistant":
            continue
        calls = row.of("tool_call")
        text = row.texts()
        out = (Message("assistant", text),) if text else ()
        reason = row.finish_reason
        spans.append(
            LLMCall(
                model=row.model,
                provider_name=row.provider or provider_of(row.model),
                output_messages=out,
                reasoning=row.texts("reasoning", "thinking"),
                response_id=row.id,
                finish_reasons=(reason,) if reason else (),
                started_at=_time(row.created),
                ended_at=_time(row.finished or row.updated),
                attributes={"tailerd.usage.recorded": False},
            )
        )
        for call in calls:
            call_id = _str(call.get("id"))
            result = results.get(call_id, {})
            ended = answered_at.get(call_id)
            name = _str(call.get("name"))
            child = _child_session(db, call_id, depth)
            if child is not None:
                spans.append(
                    _sub_agent(db, call, child=child, result=result, row=row, depth=depth + 1)
                )
                continue
            spans.append(
                ToolCall(
                    name=name,
                    arguments=json_text(call.get("input")),
                    result=json_text(result.get("content")),
                    tool_call_id=call_id,
                    is_error=result.get("is_error") is True,
                    started_at=_time(row.finished or row.updated),
                    ended_at=_time(ended) if ended is not None else None,
                )
            )
    return spans


def _sub_agent(
    db: sqlite3.Connection,
    call: dict[str, Any],
    *,
    child: dict[str, Any],
    result: dict[str, Any],
    row: Row,
    depth: int,
) -> SubAgentCall:
    """A tool call that ran a sub-agent, with the child session's calls nested under it."""
    rows = _messages(db, child["id"])
    results = {_str(t.get("tool_call_id")): t for r in rows for t in r.of("tool_result")}
    prompt = next((r.texts() for r in rows if r.role == "user"), "")
    answer = _str(result.get("content"))
    name = _str(call.get("name")) or "agent"
    ended = rows[-1].finished or rows[-1].updated if rows else None
    return SubAgentCall(
        name=name,
        model=next((r.model for r in rows if r.model), ""),
        agent_id=child["id"],
        input_messages=(Message("user", prompt),) if prompt else (),
        output_messages=(Message("assistant", answer),) if answer else (),
        tool_name=name,
        tool_call_id=_str(call.get("id")),
        spans=tuple(_spans(db, rows, results, depth)),
        started_at=_time(row.finished or row.updated),
        ended_at=_time(ended) if ended is not None else None,
    )


# ---- rows ---------------------------------------------------------------------------------


def _session(db: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    columns = table_columns(db, "sessions")
    cwd = "workspace_cwd" if "workspace_cwd" in columns else "''"
    found = db.execute(
        f"SELECT id, title, cost, updated_at, {cwd}, (SELECT model FROM messages"  # noqa: S608
        " WHERE session_id = sessions.id AND role = 'assistant' AND model != ''"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1) FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if found is None:
        return None
    sid, title, cost, updated, workdir, model = found
    usd = _num(cost)
    return {
        "id": str(sid),
        "title": _str(title),
        "cost": usd if math.isfinite(usd) and usd > 0 else 0.0,
        "updated": _seconds(updated),
        "cwd": _str(workdir),
        "model": _str(model),
    }


def _child_session(db: sqlite3.Connection, call_id: str, depth: int) -> dict[str, Any] | None:
    """The sub-agent session a tool call started: Crush and opencode-go create it with the
    tool call's id as its id and the calling session as its parent (`CreateTaskSession(ctx,
    call.ID, sessionID, ...)` in their agent tool)."""
    if not call_id or depth >= MAX_DEPTH:
        return None
    found = db.execute(
        "SELECT 1 FROM sessions WHERE id = ? AND parent_session_id IS NOT NULL"
        " AND parent_session_id != ''",
        (call_id,),
    ).fetchone()
    return None if found is None else _session(db, call_id)


def _messages(db: sqlite3.Connection, session_id: str) -> list[Row]:
    columns = table_columns(db, "messages")
    provider = "provider" if "provider" in columns else "''"
    found = db.execute(
        f"SELECT {', '.join(_MESSAGE_COLUMNS)}, {provider} FROM messages"  # noqa: S608
        " WHERE session_id = ? ORDER BY created_at, rowid",
        (session_id,),
    )
    return [_row(values) for values in found]


def _row(values: tuple[Any, ...]) -> Row:
    mid, role, parts, model, created, updated, finished, provider = values
    return Row(
        id=str(mid),
        role=_str(role),
        parts=tuple(_parts(parts)),
        model=_str(model),
        provider=_str(provider),
        created=_seconds(created),
        updated=_seconds(updated) or _seconds(created),
        finished=_seconds(finished) or None,
    )


def _parts(raw: object) -> Iterable[tuple[str, dict[str, Any]]]:
    try:
        parsed = orjson.loads(raw) if isinstance(raw, (str, bytes)) else None
    except orjson.JSONDecodeError:
        parsed = None
    for part in parsed if isinstance(parsed, list) else ():
        if isinstance(part, dict) and isinstance(part.get("data"), dict):
            yield _str(part.get("type")), part["data"]


def _after(rows: list[Row], cursor: str | None) -> list[Row]:
    """The rows after the cursor's message. Should that message be gone, the rows of its
    second and before are taken as read (never sent twice)."""
    if not cursor:
        return rows
    time_text, _, message_id = cursor.partition("|")
    try:
        at = float(time_text)
    except ValueError:
        return rows
    for i, row in enumerate(rows):
        if row.id == message_id:
            return rows[i + 1 :]
    return [r for r in rows if r.created > at]


def _time(value: float | None) -> datetime | None:
    return parse_time(value) if value else None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def _seconds(value: object) -> float:
    """Epoch seconds from the seconds opencode-go writes, or milliseconds (the schema's
    comments say milliseconds, as a later release may write)."""
    number = _num(value)
    return number / 1000 if number > 1e11 else number
