"""OpenAI Codex CLI rollouts: `sessions/YYYY/MM/DD/rollout-*.jsonl` (also archived, `.jsonl.zst`).

Every line is an envelope `{"timestamp", ["ordinal"], "type", "payload"}`.

Turns. `event_msg/task_started{turn_id}` opens a turn; `task_complete` finishes it and
`turn_aborted` finishes it as interrupted. Files older than the task events (<= 0.4x) only have
`event_msg/user_message`: a user message opens a turn and the next one finishes the previous
turn. A user message that arrives while an explicit (task_started) turn is open is a steering
message and joins that turn; one that precedes its `task_started` is adopted by it. Prompts come
only from `user_message` (or paginated `item_completed{UserMessage}`) events, never from the
`response_item` user messages, which carry injected context (environment, AGENTS.md, ...).

LLM calls. Each `turn_context` marks a new model request (0.39 writes the request's
`token_count` before its items, 0.104 after them, so token events alone cannot place the cut).
A request's usage is its distinct `token_count.info.last_token_usage`: `info: null` and repeats
of the previous `total_token_usage` are ignored. Usage is in Weave's convention already
(`input_tokens` includes `cached_input_tokens`, `output_tokens` includes reasoning).
`encrypted_content` is never read.

Tool calls: `function_call`, `custom_tool_call`, `local_shell_call`, `tool_search_call` paired with
their outputs by `call_id`; `web_search_call` has no output record.

Sub-agents. A child thread has its own rollout, `rollout-<local time>-<child id>.jsonl[.zst]`,
somewhere under the Codex home (`sessions/` or `archived_sessions/`); its first `session_meta`
names the parent (`parent_thread_id` or `source.subagent.thread_spawn.parent_thread_id`). The
parent's spawn call is tied to the child by `collab_agent_spawn_end{call_id, new_thread_id}`
(written in the extended persistence mode only) or by the call's own output
`{"agent_id": <child id>}`. When the parent's turn finishes, the child's rollout is found
through `Source.find_related` (searched from the directory holding `sessions/`, else from the
parent's directory), read through `Source.read_related` and parsed by a nested parser; the
spawn call becomes a `SubAgentCall` holding every LLM and tool call of the child's turns, in
order (grandchildren nest the same way, at most 3 levels deep). The child is read as it is at
that moment: child turns written after the parent's turn closed are not shipped. A child that
cannot be found or read leaves the plain tool call, tagged
`codex.subagent_transcript = "unavailable"`.
Since a spawned child's calls travel inside its parent's turn, its own rollout
(`source.subagent.thread_spawn`) emits no turns when tailed: it is read and checkpointed, and
nothing else. Other sub-threads (review, compaction, guardian: no spawn call points at them)
emit their own turns, tagged `codex.parent_thread_id`; with `nest_subagents = false` every
child does, and nothing is nested.
In a child rollout the copy of the parent's history is skipped: records whose `ordinal` is
below the header's `subagent_history_start_ordinal` (or `history_base.end_ordinal_exclusive`),
or, in a fork without ordinals (`forked_from_id`), records stamped before the child's creation.

Options (`source.options`):
* `idle_close` (default 30 s): quiet time after which an old-style turn (no task events) with
  no tool call awaiting its output is finished.
* `abandon_close` (default 6 h): quiet time after which any open turn is closed as interrupted
  (an explicit turn may legitimately wait this long for an approval).
* `nest_subagents` (default true): nest child threads under the spawning call (see above).
* `subagent_cap` (default 64 MiB): bytes read of a child rollout (decompressed size for `.zst`).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.core.framing import LineFramer
from tailerd.domain import (
    DeadLetter,
    Line,
    LLMCall,
    Message,
    SpanCall,
    SubAgentCall,
    ToolCall,
    Turn,
    Usage,
)
from tailerd.formats.base import Source, TurnParser, decode_object, json_text, parse_time, turn_key

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_ABANDON_CLOSE = 6 * 3600.0
DEFAULT_SUBAGENT_CAP = 64 * 1024 * 1024
MAX_SUBAGENT_DEPTH = 3
SUBAGENT_NAME = "codex-subagent"
AGENT_NAME = "codex"
PROVIDER = "openai"

_THREAD_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_SESSION_ATTRS = (
    "cwd",
    "cli_version",
    "originator",
    "model_provider",
    "forked_from_id",
    "agent_nickname",
    "agent_role",
)
_CALL_TYPES = frozenset(
    {"function_call", "custom_tool_call", "local_shell_call", "tool_search_call"}
)
_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output", "tool_search_output"})
_SAFE_THREAD_ID = re.compile(r"[\w.-]+")  # nothing a glob or a path would interpret
_FALSE = frozenset({"0", "false", "no", "off"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ordinal(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def _content_text(content: Any) -> str:
    """Text of a Responses-API content list (or a single item, or a plain string)."""
    if isinstance(content, str):
        return content
    items = content if isinstance(content, list) else [content]
    parts: list[str] = []
    for item in items:
        d = _dict(item)
        if isinstance(d.get("text"), str):
            parts.append(d["text"])
        elif str(d.get("type", "")).endswith("image"):
            parts.append("[image]")
    return "\n".join(parts)


def _usage(last: dict[str, Any]) -> Usage:
    inp, out = _int(last.get("input_tokens")), _int(last.get("output_tokens"))
    total = last.get("total_tokens")
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=_int(last.get("cached_input_tokens")),
        cache_creation_input_tokens=_int(last.get("cache_write_input_tokens")),
        reasoning_tokens=_int(last.get("reasoning_output_tokens")),
        total_tokens=total if isinstance(total, int) else inp + out,
    )


def _tool_output(output: Any) -> tuple[str, bool, dict[str, Any]]:
    """(result text, is_error, attributes) of a `*_output` payload's `output`."""
    if isinstance(output, str):
        try:
            legacy = orjson.loads(output)
        except orjson.JSONDecodeError:
            return output, False, {}
        # Older CLIs wrap exec results: {"output": ..., "metadata": {"exit_code", ...}}.
        if isinstance(legacy, dict) and isinstance(legacy.get("output"), str):
            code = _dict(legacy.get("metadata")).get("exit_code")
            attrs = {"codex.exit_code": code} if isinstance(code, int) else {}
            return legacy["output"], isinstance(code, int) and code != 0, attrs
        return output, False, {}
    return _content_text(output), False, {}


def _spawned_thread(tool_name: str, output: Any) -> str:
    """The child thread id in a spawn tool's result (`{"agent_id": <thread id>, ...}`)."""
    if "spawn" not in tool_name or not isinstance(output, str):
        return ""
    try:
        agent = _dict(orjson.loads(output)).get("agent_id")
    except orjson.JSONDecodeError:
        return ""
    return agent if isinstance(agent, str) and _THREAD_ID.fullmatch(agent) else ""


@dataclass(slots=True)
class _Tool:
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
class _Request:
    """One model request: the items between two `turn_context` records."""

    model: str
    started_at: datetime | None
    ended_at: datetime | None = None
    inputs: list[Message] = field(default_factory=list)
    outputs: list[Message] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tools: list[_Tool] = field(default_factory=list)
    usage: Usage | None = None
    has_items: bool = False

    @property
    def empty(self) -> bool:
        return not self.has_items and self.usage is None

    def spans(self, span_of: Callable[[_Tool], SpanCall]) -> list[SpanCall]:
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
class _OpenTurn:
    start: int
    end: int
    context: dict[str, Any]  # parser context as it was just before this turn's first line
    implicit_id: str  # from the opening user message's timestamp; used without a turn_id
    turn_id: str = ""
    messages: list[Message] = field(default_factory=list)
    requests: list[_Request] = field(default_factory=list)
    awaiting: dict[str, _Tool] = field(default_factory=dict)  # call_id -> call without output
    started_at: datetime | None = None
    ended_at: datetime | None = None
    final_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        return bool(self.turn_id)

    @property
    def request(self) -> _Request:
        return self.requests[-1]

    def pristine(self) -> bool:
        return all(r.empty and not r.tools for r in self.requests)


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
        self._session_id = _str(ctx.get("session_id"))
        self._attrs: dict[str, Any] = dict(_dict(ctx.get("attrs")))
        self._model = _str(ctx.get("model"))
        self._last_total = _str(ctx.get("last_total"))
        implicit = ctx.get("implicit")
        self._implicit: list[Any] = list(implicit) if isinstance(implicit, list) else ["", 0]
        self._turn: _OpenTurn | None = None
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._abandon = float(source.options.get("abandon_close", DEFAULT_ABANDON_CLOSE))
        self._nested = nested
        self._nest = nested or _flag(source.options.get("nest_subagents"), True)
        self._children = _Children(source, depth) if self._nest else None
        self._spawned = ctx.get("spawned") is True  # a thread started by another's spawn call
        self._history_start = _ordinal(ctx.get("history_start"))
        self._born = parse_time(ctx.get("born"))
        self._born_text = _str(ctx.get("born"))
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
        kind, payload = raw["type"], _dict(raw.get("payload"))
        when = parse_time(raw.get("timestamp"))
        if kind == "session_meta":
            self._session_meta(payload)
        elif self._hidden or self._inherited(raw.get("ordinal"), when):
            self.ignored += 1
            return []
        elif kind == "turn_context":
            self._turn_context(payload)
        elif kind == "event_msg":
            out.extend(self._event(payload, raw.get("timestamp"), when, line))
        elif kind == "response_item":
            self._response_item(payload, when)
        else:
            self.ignored += 1
        if self._turn is not None and self._turn.start <= line.start:
            self._turn.end = max(self._turn.end, line.end)
            self._turn.ended_at = when or self._turn.ended_at
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        t = self._turn
        if t is None:
            return []
        if not t.explicit and not t.awaiting and quiet_for >= self._idle_close:
            return [self._close(interrupted=False)]
        if quiet_for >= self._abandon:
            return [self._close(interrupted=True)]
        return []

    def pending_from(self) -> int | None:
        return None if self._turn is None else self._turn.start

    def snapshot(self) -> dict[str, Any]:
        return dict(self._turn.context) if self._turn is not None else self._context()

    # -- records --------------------------------------------------------------------------

    @property
    def _hidden(self) -> bool:
        """A child thread tailed on its own: its calls are shipped inside its parent's turn."""
        return self._spawned and self._nest and not self._nested

    def _inherited(self, ordinal: Any, when: datetime | None) -> bool:
        """A record of the parent's history, copied into a child rollout."""
        if self._history_start is not None:
            number = _ordinal(ordinal)
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
        }

    def _session_meta(self, p: dict[str, Any]) -> None:
        if self._session_id or not _str(p.get("id")):
            return  # the first session_meta is the identity; forks repeat their parents'
        self._session_id = p["id"]
        for name in _SESSION_ATTRS:
            if isinstance(p.get(name), str) and p[name]:
                self._attrs[f"codex.{name}"] = p[name]
        if p.get("source") is not None:
            self._attrs["codex.source"] = json_text(p["source"])
        spawn = _dict(_dict(p.get("source")).get("subagent")).get("thread_spawn")
        parent = _str(p.get("parent_thread_id")) or _str(_dict(spawn).get("parent_thread_id"))
        if parent:
            self._attrs["codex.parent_thread_id"] = parent
        # Review, compaction or guardian sub-threads have no spawn call to nest under.
        self._spawned = isinstance(spawn, dict)
        base = _dict(p.get("history_base"))
        self._history_start = _ordinal(p.get("subagent_history_start_ordinal"))
        if self._history_start is None:
            self._history_start = _ordinal(base.get("end_ordinal_exclusive"))
        if self._history_start is None and _str(p.get("forked_from_id")):
            self._born = parse_time(p.get("timestamp"))
            self._born_text = _str(p.get("timestamp")) if self._born else ""
        if self._hidden:
            self._turn = None  # records written before the header belong to the parent

    def _turn_context(self, p: dict[str, Any]) -> None:
        self._model = _str(p.get("model")) or self._model
        t = self._turn
        if t is None:
            return
        if t.request.empty:
            t.request.model = self._model
        else:
            t.requests.append(_Request(self._model, t.ended_at))

    def _event(
        self, p: dict[str, Any], stamp: Any, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        kind = _str(p.get("type"))
        if kind in ("task_started", "turn_started"):
            return self._task_started(_str(p.get("turn_id")), when, line)
        if kind in ("task_complete", "turn_complete", "turn_aborted"):
            return self._task_end(p, kind == "turn_aborted", when, line)
        if kind == "user_message":
            return self._prompt(_str(p.get("message")), stamp, when, line)
        item = _dict(p.get("item"))
        if kind == "item_completed" and item.get("type") == "UserMessage":
            return self._prompt(_content_text(item.get("content")), stamp, when, line)
        if kind == "token_count":
            self._token_count(_dict(p.get("info")), when)
        elif kind == "collab_agent_spawn_end" and self._turn is not None:
            self._tag_spawn(p)
        else:
            self.ignored += 1
        return []

    def _task_started(
        self, turn_id: str, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        t = self._turn
        if t is not None and not t.explicit and t.pristine():
            t.turn_id = turn_id or t.implicit_id  # the prompt was written just before this
            return []
        closed: list[Turn | DeadLetter] = []
        if t is not None:
            closed.append(self._close(interrupted=t.explicit))
        context = self._context()
        implicit_id = "" if turn_id else self._next_implicit_id(None, when)
        self._open(line, when, context, turn_id, implicit_id)
        return closed

    def _task_end(
        self, p: dict[str, Any], aborted: bool, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        t = self._turn
        turn_id = _str(p.get("turn_id"))
        if t is None or (t.explicit and turn_id and turn_id != t.turn_id):
            self.ignored += 1
            return []
        t.end, t.ended_at = line.end, when or t.ended_at
        if aborted and _str(p.get("reason")):
            t.attributes["codex.abort_reason"] = p["reason"]
        t.final_message = _str(p.get("last_agent_message"))
        return [self._close(interrupted=aborted)]

    def _prompt(
        self, text: str, stamp: Any, when: datetime | None, line: Line
    ) -> list[Turn | DeadLetter]:
        message = Message("user", text)
        t = self._turn
        if t is not None and t.explicit:
            t.request.inputs.append(message)  # steering input inside a running turn
            t.messages.append(message)
            return []
        closed: list[Turn | DeadLetter] = []
        if t is not None:
            closed.append(self._close(interrupted=bool(t.awaiting)))
        context = self._context()
        opened = self._open(line, when, context, "", self._next_implicit_id(stamp, when))
        opened.messages.append(message)
        opened.request.inputs.append(message)
        return closed

    def _token_count(self, info: dict[str, Any], when: datetime | None) -> None:
        total = info.get("total_token_usage")
        if not info or total is None:
            return
        fingerprint = json_text(total)
        if fingerprint == self._last_total:
            return  # a repeated snapshot, not a new request
        self._last_total = fingerprint
        last = info.get("last_token_usage")
        t = self._turn
        if t is None or not isinstance(last, dict):
            return
        if t.request.usage is not None:
            t.requests.append(_Request(self._model, when))
        t.request.usage = _usage(last)
        t.request.ended_at = when or t.request.ended_at

    def _response_item(self, p: dict[str, Any], when: datetime | None) -> None:
        t = self._turn
        kind = _str(p.get("type"))
        if t is None:
            self.ignored += 1
            return
        r = t.request
        if kind == "message" and p.get("role") == "assistant":
            text = _content_text(p.get("content"))
            r.outputs.append(Message("assistant", text))
            t.final_message = text
        elif kind == "reasoning":
            summary = p.get("summary")
            texts = [_content_text(s) for s in summary] if isinstance(summary, list) else []
            r.reasoning.extend(text for text in texts if text)
        elif kind in _CALL_TYPES or kind == "web_search_call":
            self._tool_call(t, kind, p, when)
        elif kind in _OUTPUT_TYPES:
            self._tool_result(t, p, when)
            return  # an output feeds the next request; it does not belong to this one
        else:
            self.ignored += 1
            return
        r.has_items = True
        r.ended_at = when or r.ended_at

    def _tool_call(self, t: _OpenTurn, kind: str, p: dict[str, Any], when: datetime | None) -> None:
        call_id = _str(p.get("call_id"))
        if kind == "function_call":
            name, args = _str(p.get("name")), json_text(p.get("arguments"))
        elif kind == "custom_tool_call":
            name, args = _str(p.get("name")), json_text(p.get("input"))
        elif kind == "local_shell_call":
            name, args = "local_shell", json_text(p.get("action"))
        elif kind == "tool_search_call":
            name, args = "tool_search", json_text(p.get("arguments"))
        else:
            name, args = "web_search", json_text(p.get("action"))
        tool = _Tool(name, args, call_id, when, attributes={"codex.item_type": kind})
        if isinstance(p.get("status"), str):
            tool.attributes["codex.status"] = p["status"]
        t.request.tools.append(tool)
        if kind == "web_search_call":
            tool.ended_at = when  # no output record: the call item is its own result
        else:
            t.awaiting[call_id] = tool

    def _tool_result(self, t: _OpenTurn, p: dict[str, Any], when: datetime | None) -> None:
        tool = t.awaiting.pop(_str(p.get("call_id")), None)
        if tool is None:
            self.ignored += 1
            return
        if p.get("type") == "tool_search_output":
            tool.result = json_text(p.get("tools"))
        else:
            tool.result, tool.is_error, attrs = _tool_output(p.get("output"))
            tool.attributes.update(attrs)
            child = _spawned_thread(tool.name, p.get("output"))
            if child:  # the default persistence mode does not write collab_agent_spawn_end
                tool.attributes.setdefault("codex.child_thread_id", child)
        tool.ended_at = when

    def _tag_spawn(self, p: dict[str, Any]) -> None:
        assert self._turn is not None
        call_id, child = _str(p.get("call_id")), _str(p.get("new_thread_id"))
        for r in self._turn.requests:
            for tool in r.tools:
                if tool.call_id == call_id and child:
                    tool.attributes["codex.child_thread_id"] = child
                    for field_name in ("new_agent_role", "new_agent_nickname", "model"):
                        if _str(p.get(field_name)):
                            key = field_name.removeprefix("new_")
                            tool.attributes[f"codex.{key}"] = p[field_name]

    # -- turns ----------------------------------------------------------------------------

    def _next_implicit_id(self, stamp: Any, when: datetime | None) -> str:
        """An id from the prompt line's own timestamp, numbered if several lines share it."""
        base = _str(stamp) or (when.isoformat() if when else "")
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
    ) -> _OpenTurn:
        self._turn = _OpenTurn(
            start=line.start,
            end=line.end,
            context=context,
            implicit_id=implicit_id,
            turn_id=turn_id,
            requests=[_Request(self._model, when)],
            started_at=when,
            ended_at=when,
        )
        return self._turn

    def _span_of(self, tool: _Tool) -> SpanCall:
        child = tool.attributes.get("codex.child_thread_id")
        if self._children is None or not isinstance(child, str):
            return tool.build()
        return self._children.call(tool, child)

    def _session(self) -> str:
        if self._session_id:
            return self._session_id
        found = _THREAD_ID.findall(self._source.stable_name)
        return found[-1] if found else self._source.stable_name

    def _close(self, interrupted: bool) -> Turn:
        t = self._turn
        assert t is not None
        self._turn = None
        for tool in t.awaiting.values():
            tool.attributes["codex.output_missing"] = True
        spans = [s for r in t.requests for s in r.spans(self._span_of)]
        models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
        session = self._session()
        attributes = dict(self._attrs)
        attributes.update(t.attributes)
        if t.explicit:
            attributes["codex.turn_id"] = t.turn_id
        output = (Message("assistant", t.final_message),) if t.final_message else ()
        return Turn(
            key=turn_key(AGENT_NAME, session, t.turn_id or t.implicit_id),
            session_id=session,
            start=t.start,
            end=t.end,
            agent_name=self._source.agent_name or AGENT_NAME,
            model=models[-1] if models else self._model,
            messages=tuple(t.messages),
            output_messages=output,
            spans=tuple(spans),
            started_at=t.started_at,
            ended_at=t.ended_at,
            interrupted=interrupted,
            attributes=attributes,
        )


# ---------------------------------------------------------------------------------------------
# Child threads, found through Source.find_related and read through Source.read_related


def _search_root(path: str) -> str:
    """The Codex home holding `sessions/` and `archived_sessions/`, else the file's directory."""
    here = PurePath(path)
    for ancestor in here.parents:
        if ancestor.name in ("sessions", "archived_sessions"):
            return str(ancestor.parent)
    return str(here.parent)


def _unpack(data: bytes, cap: int) -> bytes:
    """Up to `cap` decompressed bytes; a frame cut short (by the read cap) keeps its head."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    chunks: list[bytes] = []
    size = 0
    try:
        while size < cap:
            chunk = reader.read(min(1 << 20, cap - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except zstandard.ZstdError:
        pass
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class _Children:
    """Turns a spawn call into a SubAgentCall holding the child thread's own calls."""

    source: Source
    depth: int

    @property
    def cap(self) -> int:
        return int(self.source.options.get("subagent_cap", DEFAULT_SUBAGENT_CAP))

    def call(self, tool: _Tool, child: str) -> SpanCall:
        if self.depth >= MAX_SUBAGENT_DEPTH:
            return self._plain(tool, "depth_limit")
        path = self._locate(child)
        data = self._read(path) if path else None
        if path is None or data is None:
            return self._plain(tool, "unavailable")
        turns, unfinished = self._child_turns(path, data)
        return self._subagent(tool, child, turns, unfinished)

    def _plain(self, tool: _Tool, why: str) -> ToolCall:
        tool.attributes["codex.subagent_transcript"] = why
        return tool.build()

    def _locate(self, child: str) -> str | None:
        if not _SAFE_THREAD_ID.fullmatch(child):
            return None
        try:
            found = self.source.find_related(
                _search_root(self.source.path), f"rollout-*-{child}.jsonl*"
            )
        except Exception:  # a failing search is a missing child, not a parser crash
            return None
        names = (f"-{child}.jsonl", f"-{child}.jsonl.zst")
        matches = [p for p in found if PurePath(p).name.endswith(names)]
        # Codex prefers the plain file while a compressed copy is being materialised.
        matches.sort(key=lambda p: (p.endswith(".zst"), p))
        return matches[0] if matches else None

    def _read(self, path: str) -> bytes | None:
        try:
            data = self.source.read_related(path, self.cap)
        except Exception:  # an unreadable neighbour is a missing child, not a parser crash
            return None
        if data is None or not path.endswith(".zst"):
            return data
        return _unpack(data, self.cap)

    def _child_turns(self, path: str, data: bytes) -> tuple[list[Turn], bool]:
        """The child's turns as of now, and whether its last one was still running."""
        source = Source(
            path,
            self.source.agent_name,
            self.source.options,
            self.source.read_related,
            self.source.find_related,
        )
        parser = CodexParser(source, None, depth=self.depth + 1, nested=True)
        turns: list[Turn] = []
        for line in LineFramer().feed(data if data.endswith(b"\n") else data + b"\n"):
            if isinstance(line, Line):
                turns.extend(x for x in parser.feed(line) if isinstance(x, Turn))
        unfinished = parser.pending_from() is not None
        turns.extend(parser.close_idle(math.inf))
        return turns, unfinished

    def _subagent(
        self, tool: _Tool, child: str, turns: list[Turn], unfinished: bool
    ) -> SubAgentCall:
        attrs = dict(tool.attributes)
        attrs["codex.spawn_arguments"] = tool.arguments
        attrs["codex.spawn_result"] = tool.result
        attrs["codex.subagent_turns"] = len(turns)
        if unfinished:
            attrs["codex.subagent_unfinished"] = True
        child_attrs = turns[0].attributes if turns else {}
        name = next(
            (
                _str(a.get(k))
                for k in ("codex.agent_role", "codex.agent_nickname")
                for a in (attrs, child_attrs)
                if _str(a.get(k))
            ),
            SUBAGENT_NAME,
        )
        prompt = next((t.messages[:1] for t in turns if t.messages), ())
        answer = next((t.output_messages for t in reversed(turns) if t.output_messages), ())
        starts = [x for x in (tool.started_at, *(t.started_at for t in turns)) if x]
        ends = [x for x in (tool.ended_at, *(t.ended_at for t in turns)) if x]
        return SubAgentCall(
            name=name,
            model=turns[-1].model if turns else _str(attrs.get("codex.model")),
            agent_id=child,
            input_messages=prompt,
            output_messages=answer,
            tool_name=tool.name,
            tool_call_id=tool.call_id,
            spans=tuple(s for t in turns for s in t.spans),
            started_at=min(starts) if starts else None,
            ended_at=max(ends) if ends else None,
            attributes=attrs,
        )


class CodexFormat:
    name = "codex"

    def claims(self, path: PurePath, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        try:
            raw = orjson.loads(first)
        except orjson.JSONDecodeError:
            raw = None
        if isinstance(raw, dict) and "payload" in raw and "timestamp" in raw:
            return raw.get("type") == "session_meta"
        return path.name.startswith("rollout-") and ".jsonl" in path.name

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return CodexParser(source, context)


FORMAT = CodexFormat()
