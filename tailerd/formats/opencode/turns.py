"""OpenCode's messages and parts to finished turns, whichever source holds them: the SQLite
database (opencode/database.py) or the older JSON `storage/` tree (opencode/storage.py). Both
hand the same shapes (`Row`: a message's id, times, its `data` JSON and its parts' JSON) through
`Rows`, so both mint the same turn keys and span ids for one session.

Messages are taken in (`time_created`, `id`) order, OpenCode's own order (its ids ascend); a
message's parts in `id` order. The cursor that passes a turn is its last message's
`"<time_created>|<id>"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall, Turn, Usage
from tailerd.edges.agent_db.protocol import SessionRead, SessionTurn
from tailerd.formats.base import Source, json_text, parse_time, turn_key

CONTINUES = ("tool-calls", "unknown", "")  # finish reasons after which OpenCode's loop goes on
MAX_DEPTH = 4  # sub-agent sessions nested this deep are read; deeper ones are cut off


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    created: float  # epoch ms
    updated: float
    info: dict[str, Any]
    parts: tuple[dict[str, Any], ...]

    @property
    def role(self) -> str:
        return _str(self.info.get("role"))

    @property
    def finish(self) -> str:
        return _str(self.info.get("finish"))

    @property
    def completed(self) -> float:
        return _num(_obj(self.info.get("time")).get("completed"))

    def text(self) -> str:
        return "".join(
            _str(p.get("text"))
            for p in self.parts
            if p.get("type") == "text" and not p.get("synthetic")
        )


class Rows(Protocol):
    """Where one OpenCode session's rows come from (the database or the storage/ tree)."""

    def session(self, session_id: str) -> dict[str, str] | None:
        """{"id", "title", "directory"} of the session, None when there is no such session."""
        ...

    def messages(self, session_id: str, cursor: str | None) -> list[Row]:
        """The session's messages after `cursor` (None: all), in (created, id) order, each
        with its parts in id order."""
        ...


def session_turns(
    rows: Rows,
    source: Source,
    session_id: str,
    cursor: str | None,
    *,
    now: float,
    idle_close: float,
) -> SessionRead:
    """The finished turns of `session_id` after `cursor` (see the package docstring): a turn
    is user message -> assistant messages up to the next user message; the last one is
    finished by OpenCode's own marks (`_final`) or once its last message is `idle_close`
    seconds older than `now` (epoch seconds)."""
    session = rows.session(session_id)
    if session is None:
        return SessionRead()
    groups: list[list[Row]] = []
    for row in rows.messages(session_id, cursor):
        if row.role == "user" or not groups:
            groups.append([row])
        else:
            groups[-1].append(row)
    turns: list[SessionTurn] = []
    still_open = False
    for i, group in enumerate(groups):
        last = group[-1]
        quiet = now - max(last.updated, last.completed) / 1000
        done = _final(group)
        if i + 1 == len(groups) and not done and quiet < idle_close:
            still_open = True
            break
        turn = _turn(rows, source, session, group, interrupted=not done and i + 1 == len(groups))
        turns.append(SessionTurn(turn, f"{_int(last.created)}|{last.id}"))
    return SessionRead(tuple(turns), still_open)


def _final(group: list[Row]) -> bool:
    answers = [r for r in group if r.role == "assistant"]
    if not answers or not answers[-1].completed:
        return False
    last = answers[-1]
    if last.finish in CONTINUES and not last.info.get("error"):
        return False
    return all(
        _str(_obj(p.get("state")).get("status")) in ("completed", "error")
        for r in answers
        for p in r.parts
        if p.get("type") == "tool"
    )


def _turn(
    rows: Rows,
    source: Source,
    session: dict[str, str],
    group: list[Row],
    *,
    interrupted: bool,
) -> Turn:
    first, last = group[0], group[-1]
    answers = [r for r in group if r.role == "assistant"]
    output = next((r.text() for r in reversed(answers) if r.text()), "")
    model = next(
        (_str(r.info.get("modelID")) for r in reversed(answers) if r.info.get("modelID")), ""
    )
    cwd = session["directory"] or next(
        (_str(_obj(r.info.get("path")).get("cwd")) for r in answers if _obj(r.info.get("path"))), ""
    )
    attributes: dict[str, Any] = {}
    if cwd:
        attributes["tailerd.cwd"] = cwd
    if answers and answers[-1].finish:
        attributes["tailerd.finish_reason"] = answers[-1].finish
    errors = [_obj(r.info.get("error")) for r in answers if r.info.get("error")]
    if errors:
        attributes["tailerd.opencode.error"] = _str(errors[-1].get("name")) or "error"
    return Turn(
        key=turn_key("opencode", session["id"], first.id),
        session_id=session["id"],
        start=0,
        end=0,
        agent_name=source.agent_name or "opencode",
        model=model,
        session_name=session["title"],
        messages=(Message("user", first.text()),) if first.role == "user" else (),
        output_messages=(Message("assistant", output),) if output else (),
        spans=tuple(_spans(rows, answers, 0)),
        started_at=_time(first.created),
        ended_at=_time(max(last.updated, last.completed)),
        interrupted=interrupted or bool(errors and answers[-1].info.get("error")),
        attributes=attributes,
        identities=(f"opencode:message:{first.id}",),
    )


def _spans(rows: Rows, answers: list[Row], depth: int) -> list[SpanCall]:
    """Per assistant message, one LLM call per step (`step-start` .. `step-finish`), each
    followed by the tool calls made in it."""
    spans: list[SpanCall] = []
    for row in answers:
        steps: list[list[dict[str, Any]]] = [[]]
        for part in row.parts:
            steps[-1].append(part)
            if part.get("type") == "step-finish":
                steps.append([])
        if not steps[-1] and len(steps) > 1:
            steps.pop()
        for step in steps:
            finish = next((p for p in step if p.get("type") == "step-finish"), None)
            spans.append(_llm(row, step, finish, whole_message=len(steps) == 1))
            spans.extend(_tool(rows, p, depth) for p in step if p.get("type") == "tool")
    return spans


def _llm(
    row: Row, step: list[dict[str, Any]], finish: dict[str, Any] | None, *, whole_message: bool
) -> LLMCall:
    source = finish if finish is not None else (row.info if whole_message else {})
    tokens = _obj(source.get("tokens"))
    cache = _obj(tokens.get("cache"))
    read, write = _int(cache.get("read")), _int(cache.get("write"))
    usage = Usage(
        input_tokens=_int(tokens.get("input")) + read + write,
        output_tokens=_int(tokens.get("output")),
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
        reasoning_tokens=_int(tokens.get("reasoning")),
    )
    text = "".join(_str(p.get("text")) for p in step if p.get("type") == "text")
    reasoning = "".join(_str(p.get("text")) for p in step if p.get("type") == "reasoning")
    reason = _str(finish.get("reason")) if finish is not None else row.finish
    attributes: dict[str, Any] = {}
    if not tokens:
        attributes["tailerd.usage.recorded"] = False
    cost = source.get("cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        attributes["tailerd.opencode.cost"] = float(cost)
    return LLMCall(
        model=_str(row.info.get("modelID")),
        provider_name=_str(row.info.get("providerID")),
        output_messages=(Message("assistant", text),) if text else (),
        usage=usage,
        reasoning=reasoning,
        response_id=row.id,
        finish_reasons=(reason,) if reason else (),
        started_at=_time(row.created),
        ended_at=_time(row.completed or row.updated),
        attributes=attributes,
    )


def _tool(rows: Rows, part: dict[str, Any], depth: int) -> SpanCall:
    state = _obj(part.get("state"))
    times = _obj(state.get("time"))
    name = _str(part.get("tool"))
    status = _str(state.get("status"))
    result = _str(state.get("output")) if status == "completed" else _str(state.get("error"))
    call_id = _str(part.get("callID"))
    child_id = _str(_obj(state.get("metadata")).get("sessionId"))
    started, ended = _time(_num(times.get("start"))), _time(_num(times.get("end")))
    if name == "task" and child_id and depth < MAX_DEPTH:
        child = rows.session(child_id)
        if child is not None:
            answers = [r for r in rows.messages(child_id, None) if r.role == "assistant"]
            arguments = _obj(state.get("input"))
            prompt = _str(arguments.get("prompt"))
            return SubAgentCall(
                name=_str(arguments.get("subagent_type")) or child["title"] or "task",
                model=next((_str(r.info.get("modelID")) for r in answers), ""),
                agent_id=child_id,
                input_messages=(Message("user", prompt),) if prompt else (),
                output_messages=(Message("assistant", result),) if result else (),
                tool_name=name,
                tool_call_id=call_id,
                spans=tuple(_spans(rows, answers, depth + 1)),
                started_at=started,
                ended_at=ended,
            )
    return ToolCall(
        name=name,
        arguments=json_text(state.get("input")),
        result=result,
        tool_call_id=call_id,
        is_error=status == "error",
        started_at=started,
        ended_at=ended,
    )


# ---- JSON values ----------------------------------------------------------------------


def json_object(raw: object) -> dict[str, Any]:
    """A JSON object from text or bytes; {} for anything else (not JSON, not an object)."""
    try:
        parsed = orjson.loads(raw) if isinstance(raw, (str, bytes)) else None
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(ms: float | None) -> datetime | None:
    return parse_time(ms / 1000) if ms else None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def number(value: object) -> float:
    """A JSON number as float; 0.0 for anything else (bools included)."""
    return _num(value)


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)
