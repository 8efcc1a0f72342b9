"""Codex turn assembly: the per-rollout state machine that cuts records into finished turns.

`task_started` opens a turn, `task_complete` finishes it; `turn_aborted` marks it interrupted and
it lingers `abort_grace` seconds (or until the next turn opens) for the aborted request's late
`token_count` and tool outputs. Older rollouts only have `user_message`, each one finishing the
previous turn; in a turn without task events, a non-injected `response_item` user message after
the model's answer is a prompt written without its `user_message` and opens the next turn.
`turn_context` and `token_count` place the cuts between model requests; `session_meta` gives the
thread's identity and, for a child thread, where the parent's copied history ends. `snapshot`
is the context as it was before the open turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from tailerd.domain import DeadLetter, Line, Message, SpanCall, Turn
from tailerd.formats.base import Source, decode_object, json_text, parse_time, turn_key
from tailerd.formats.codex.children import DEFAULT_ABORT_GRACE, Children
from tailerd.formats.codex.continuation import late_usage_turn
from tailerd.formats.codex.finish import finished_turn
from tailerd.formats.codex.lineage import SpawnOrigin, shipped_on_own, spawn_origin
from tailerd.formats.codex.records import (
    AGENT_NAME,
    THREAD_ID,
    as_dict,
    as_int,
    as_str,
    content_text,
    flag,
    ordinal,
    thread_header,
    usage_of,
)
from tailerd.formats.codex.spans import (
    OpenTurn,
    Request,
    ToolDraft,
    add_response_item,
    item_prompt,
    tag_spawn,
)

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_ABANDON_CLOSE = 6 * 3600.0


class CodexParser:
    def __init__(
        self,
        source: Source,
        context: Mapping[str, Any] | None,
        *,
        depth: int = 0,
        nested: bool = False,
    ) -> None:
        """`nested`: this parser reads a child rollout for its parent, at nesting `depth`."""
        ctx = dict(context or {})
        self._source = source
        self._session_id = as_str(ctx.get("session_id"))
        self._attrs: dict[str, Any] = dict(as_dict(ctx.get("attrs")))
        self._model = as_str(ctx.get("model"))
        self._last_total = as_str(ctx.get("last_total"))
        implicit = ctx.get("implicit")
        self._implicit: list[Any] = list(implicit) if isinstance(implicit, list) else ["", 0]
        self._turn: OpenTurn | None = None
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._abandon = float(source.options.get("abandon_close", DEFAULT_ABANDON_CLOSE))
        self._abort_grace = float(source.options.get("abort_grace", DEFAULT_ABORT_GRACE))
        last = ctx.get("last_closed")
        self._last_closed: list[str] = (
            [str(x) for x in last] if isinstance(last, list) and len(last) == 2 else []
        )
        self._nested = nested
        self._spawns: dict[str, SpawnOrigin] = {}  # child thread -> its finished spawning turn
        self._nest = nested or flag(source.options.get("nest_subagents"), True)
        self._children = Children(source, depth, _nested_parser) if self._nest else None
        self._spawned = ctx.get("spawned") is True  # a thread started by another's spawn call
        self._history_start = ordinal(ctx.get("history_start"))
        self._born = parse_time(ctx.get("born"))
        self._born_text = as_str(ctx.get("born"))
        self.ignored = 0  # well-formed records outside any turn or of kinds we do not use

    # -- protocol -------------------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        if not isinstance(raw.get("type"), str):
            return [DeadLetter(line.start, line.end, "not a Codex envelope")]
        if "payload" not in raw:
            return [DeadLetter(line.start, line.end, f"{raw['type']!r} record without payload")]
        out: list[Turn | DeadLetter] = []
        kind, payload = raw["type"], as_dict(raw.get("payload"))
        stamp = raw.get("timestamp")
        when = parse_time(stamp)
        if kind == "session_meta":
            self._session_meta(payload)
        elif self._inherited(raw.get("ordinal"), when):
            self.ignored += 1
            return []
        elif kind == "turn_context":
            self._turn_context(payload)
        elif kind == "event_msg":
            out.extend(self._event(payload, stamp, when, line))
        elif kind == "response_item":
            prompt = item_prompt(self._turn, payload)
            if prompt is not None:
                out.extend(self._prompt(prompt, stamp, when, line, from_item=True))
            elif self._turn is None or not add_response_item(self._turn, payload, when):
                self.ignored += 1
        else:
            self.ignored += 1
        if self._turn is not None and self._turn.start <= line.start:
            self._turn.end = max(self._turn.end, line.end)
            self._turn.ended_at = when or self._turn.ended_at
            self._turn.unknown_times += when is None
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        t = self._turn
        if t is None:
            return []
        if t.aborted and quiet_for >= self._abort_grace:
            return self._finish(interrupted=True)
        if not t.explicit and not t.awaiting and quiet_for >= self._idle_close:
            return self._finish(interrupted=False)
        if quiet_for >= self._abandon:
            return self._finish(interrupted=True)
        return []

    def pending_from(self) -> int | None:
        return None if self._turn is None else self._turn.start

    def spawn_of(self, child: str) -> SpawnOrigin | None:
        """The turn whose spawn call names thread `child`, finished or open, else None."""
        found = self._spawns.get(child)
        t = self._turn
        call = t.spawn_call(child) if found is None and t is not None else None
        if t is None or call is None:
            return found
        key = turn_key(AGENT_NAME, self._session(), t.turn_id or t.implicit_id)
        # an aborted turn's nesting end is already fixed; a running one's is not known yet
        return SpawnOrigin(self._session(), key, call, t.aborted_at, not t.aborted)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._turn.context) if self._turn is not None else self._context()

    # -- records --------------------------------------------------------------------------

    @property
    def _tailed_child(self) -> bool:
        """A spawned child thread tailed on its own, whose turns its parent may nest."""
        return self._spawned and self._nest and not self._nested

    def _inherited(self, raw_ordinal: Any, when: datetime | None) -> bool:
        """A record of the parent's history, copied into a child rollout."""
        if self._history_start is not None:
            number = ordinal(raw_ordinal)
            return number is not None and number < self._history_start
        return self._born is not None and when is not None and when < self._born

    def _context(self) -> dict[str, Any]:
        return {
            "session_id": self._session_id,
            "attrs": dict(self._attrs),
            "model": self._model,
            "last_total": self._last_total,
            "implicit": list(self._implicit),
            "spawned": self._spawned,
            "history_start": self._history_start,
            "born": self._born_text,
            "last_closed": list(self._last_closed),
        }

    def _session_meta(self, p: dict[str, Any]) -> None:
        if self._session_id or not as_str(p.get("id")):
            return  # the first session_meta is the identity; forks repeat their parents'
        h = thread_header(p)
        self._session_id = h.thread_id
        self._attrs.update(h.attributes)
        self._spawned, self._history_start = h.spawned, h.history_start
        if h.history_start is None and h.forked:
            self._born = parse_time(h.created)
            self._born_text = h.created if self._born else ""
        if self._tailed_child:
            self._turn = None  # records written before the header belong to the parent

    def _turn_context(self, p: dict[str, Any]) -> None:
        self._model = as_str(p.get("model")) or self._model
        t = self._turn
        if t is None:
            return
        if t.request.empty:
            t.request.model = self._model
        else:
            t.requests.append(Request(self._model, t.ended_at))

    def _event(
        self, p: dict[str, Any], stamp: Any, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        kind = as_str(p.get("type"))
        if kind in ("task_started", "turn_started"):
            return self._task_started(as_str(p.get("turn_id")), when, line)
        if kind in ("task_complete", "turn_complete", "turn_aborted"):
            return self._task_end(p, kind == "turn_aborted", when, line)
        if kind == "user_message":
            return self._prompt(as_str(p.get("message")), stamp, when, line)
        item = as_dict(p.get("item"))
        if kind == "item_completed" and item.get("type") == "UserMessage":
            return self._prompt(content_text(item.get("content")), stamp, when, line)
        if kind == "token_count":
            return self._token_count(as_dict(p.get("info")), when, line)
        if kind == "collab_agent_spawn_end" and self._turn is not None:
            tag_spawn(self._turn, p)
        else:
            self.ignored += 1
        return []

    def _task_started(
        self, turn_id: str, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        t = self._turn
        if t is not None and not t.explicit and not t.aborted and t.pristine():
            t.turn_id = turn_id or t.implicit_id  # the prompt was written just before this
            return []
        closed: list[Turn | DeadLetter] = []
        if t is not None:
            closed.extend(self._finish(interrupted=t.explicit))
        context = self._context()
        implicit_id = "" if turn_id else self._next_implicit_id(None, when)
        self._open(line, when, context, turn_id, implicit_id)
        return closed

    def _task_end(
        self, p: dict[str, Any], aborted: bool, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        t = self._turn
        turn_id = as_str(p.get("turn_id"))
        if t is None or (t.explicit and turn_id and turn_id != t.turn_id):
            self.ignored += 1
            return []
        t.end, t.ended_at = line.end, when or t.ended_at
        if aborted and as_str(p.get("reason")):
            t.attributes["codex.abort_reason"] = p["reason"]
        t.final_message = as_str(p.get("last_agent_message"))
        if aborted and not t.aborted:
            t.aborted, t.aborted_at = True, when  # its request's token_count may still follow
            return []
        t.unknown_times += when is None  # the closing record is the turn's too
        return [*self._finish(interrupted=aborted)]

    def _prompt(
        self, text: str, stamp: Any, when: datetime | None, line: Line, from_item: bool = False
    ) -> list[Turn | DeadLetter]:
        message = Message("user", text)
        t = self._turn
        if t is not None and t.explicit and not t.aborted:
            t.request.inputs.append(message)  # steering input inside a running turn
            t.messages.append(message)
            return []
        if t is not None and t.prompt_from_item and t.pristine() and not from_item:
            t.messages[:] = t.request.inputs[:] = [message]  # the event wins over its echo
            t.prompt_from_item = False
            return []
        closed: list[Turn | DeadLetter] = []
        if t is not None:
            closed.extend(self._finish(interrupted=bool(t.awaiting)))
        context = self._context()
        opened = self._open(line, when, context, "", self._next_implicit_id(stamp, when))
        opened.messages.append(message)
        opened.request.inputs.append(message)
        opened.prompt_from_item = from_item
        return closed

    def _token_count(
        self, info: dict[str, Any], when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        total = info.get("total_token_usage")
        if not info or total is None:
            return []
        fingerprint = json_text(total)
        if fingerprint == self._last_total:
            return []  # a repeated snapshot, not a new request
        self._last_total = fingerprint
        last = info.get("last_token_usage")
        t = self._turn
        if not isinstance(last, dict):
            return []
        if t is None:
            return self._late_usage(last, fingerprint, when, line)
        if t.request.usage is not None:
            t.requests.append(Request(self._model, when))
        t.request.usage = usage_of(last)
        t.request.ended_at = when or t.request.ended_at
        return []

    def _late_usage(
        self, last: dict[str, Any], fingerprint: str, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        if not self._last_closed or not any(as_int(v) for v in last.values()):
            return []  # before any turn of this file, or an empty snapshot: nothing to count
        turn_id, identity = self._last_closed
        turn = late_usage_turn(
            (turn_id, identity),
            usage_of(last),
            fingerprint,
            when,
            line,
            session=self._session(),
            agent_name=self._source.agent_name or AGENT_NAME,
            model=self._model,
            attributes=self._attrs,
        )
        return [*self._route(turn)]

    # -- turns ----------------------------------------------------------------------------

    def _next_implicit_id(self, stamp: Any, when: datetime | None) -> str:
        """An id from the prompt line's own timestamp, numbered if several lines share it."""
        base = as_str(stamp) or (when.isoformat() if when else "")
        count = self._implicit[1] + 1 if self._implicit[0] == base else 0
        self._implicit = [base, count]
        return f"u:{base}" if count == 0 else f"u:{base}#{count}"

    def _open(
        self,
        line: Line,
        when: datetime | None,
        context: dict[str, Any],
        turn_id: str,
        implicit_id: str,
    ) -> OpenTurn:
        self._turn = OpenTurn(
            start=line.start,
            end=line.end,
            context=context,
            implicit_id=implicit_id,
            turn_id=turn_id,
            requests=[Request(self._model, when)],
            started_at=when,
            ended_at=when,
        )
        return self._turn

    def _span_of(self, tool: ToolDraft, parent_end: datetime | None) -> SpanCall:
        child = tool.attributes.get("codex.child_thread_id")
        if self._children is None or not isinstance(child, str):
            return tool.build()
        return self._children.call(tool, child, parent_end)

    def _session(self) -> str:
        if self._session_id:
            return self._session_id
        found = THREAD_ID.findall(self._source.stable_name)
        return found[-1] if found else self._source.stable_name

    def _finish(self, interrupted: bool) -> list[Turn]:
        """Close the open turn; [] when it is a tailed child's turn that its parent nests."""
        return self._route(self._close(interrupted))

    def _route(self, turn: Turn) -> list[Turn]:
        """[turn], or [] for a tailed child's turn its parent nests (see `lineage`)."""
        if not self._tailed_child:
            return [turn]
        parent = self._attrs.get("codex.parent_thread_id")
        origin = spawn_origin(self._source, self._session(), parent, _flat_parser)
        if origin is not None and origin.nests(turn):
            return []
        return [shipped_on_own(turn, origin)]

    def _close(self, interrupted: bool) -> Turn:
        t = self._turn
        assert t is not None
        self._turn = None
        nest_end = t.aborted_at if t.aborted else t.ended_at  # children nest up to here
        session = self._session()
        turn = finished_turn(
            t,
            interrupted,
            session=session,
            thread_attributes=self._attrs,
            model=self._model,
            agent_name=self._source.agent_name or AGENT_NAME,
            span_of=lambda x: self._span_of(x, nest_end),
            previous=self._last_closed[1] if self._last_closed else "",
        )
        for tool in (x for r in t.requests for x in r.tools):
            child = tool.attributes.get("codex.child_thread_id")
            if isinstance(child, str):
                self._spawns[child] = SpawnOrigin(session, turn.key, tool.call_id, nest_end, False)
        self._last_closed = [t.turn_id or t.implicit_id, turn.identities[0]]
        return turn


def _flat_parser(source: Source) -> CodexParser:
    """A parser reading a parent rollout only to find its spawn calls (nothing nested)."""
    options = {**source.options, "nest_subagents": False}
    return CodexParser(replace(source, options=options), None)


def _nested_parser(source: Source, depth: int) -> CodexParser:
    """A parser reading a child rollout for its parent, at nesting `depth`."""
    return CodexParser(source, None, depth=depth, nested=True)
