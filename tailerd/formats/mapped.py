"""Any other JSONL, by configuration: a `[[mapping]]` in the config file describes a custom shape.

Each field below (except the top-level `name`, `match`, `agent_name` and the booleans and
numbers) is a JMESPath expression evaluated on one JSON record (one line). A record may play
several roles at once (say, a reply that is also an LLM call). The worked example is
`config/custom-agent.example.toml` with `examples/custom/agent.log.jsonl`. An expression that
yields null, false, "" or an empty list/object means "absent" (JMESPath truthiness), so
`user_message = "evt == 'request' && data.text"` is the prompt on request records and absent
elsewhere. Every expression is compiled once, when the config is loaded; a bad one is a
config error naming the mapping and the field.

Top level:

* `name` (required): the format name (`--format NAME`, status output, first part of turn keys).
* `match`: file-name globs this mapping claims (matched on the name without `.gz`/`.zst`).
* `detect`: a file is also claimed when this is truthy on its first JSON record.
  A mapping with neither `match` nor `detect` is used only through `--format NAME`.
* `agent_name`: the agent name on every turn (default: `name`; `--agent-name` overrides it).
* `session_id` (required): the session id. A record where it is absent is a dead letter.
* `session_name`: a session's display name; remembered from whichever record carries it.
* `timestamp`: the record's time: ISO-8601, or epoch seconds or milliseconds.
* `turn_id`: the agent's id of the turn. It keys the turn; without `turn_start`, a record with
  a different `turn_id` than the open turn's starts a new turn.
* `turn_start`: predicate: this record starts a new turn. With it, only such records open
  turns, and records with content outside a turn are dead letters.
* `turn_end`: predicate: this record finishes the turn (it is the turn's last record).
* `end_on_next_start` (true): a turn still open when the next one starts is finished, and not
  marked interrupted; false marks it interrupted.
* `user_message` / `assistant_message`: text of the user's prompt / of the assistant's answer.
  The trailing assistant messages of a turn are its output; earlier ones stay in its input.
* `input_includes_cache` (true): the agent's input token count already includes cache reads
  and writes (OpenAI style). Set false for Anthropic-style counts: the cache tokens are then
  added to `input_tokens`, which is Weave's convention.
* `idle_close` (30 s), `stale_close` (600 s): see "Turn boundaries" below.

`[mapping.llm]`, a record that is one LLM call: `when` (required predicate), `model`,
`provider`, `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`,
`reasoning_tokens`, `response` (the model's text), `started_at` (ended_at is the record's time).

`[mapping.tool]`, a record that is one tool call: `when` (required), `name` (required),
`arguments`, `result`, `call_id`, `is_error`, `started_at`. When `result` is absent, the call has
a `call_id` and `[mapping.tool_result]` is configured, the call waits for its result record.

`[mapping.tool_result]`, a record that is the result of an earlier tool call of the same turn:
`when` (required), `call_id` (required), `result`, `is_error`.

Turn boundaries. Turns are tracked per session (one open turn per session). A turn opens at a
`turn_start` record; without `turn_start`, at the first record with content (a message, an LLM or
tool call) when none is open, or at a record with a new `turn_id`. Records without content never
open a turn. A turn finishes at its `turn_end` record (inclusive), when the next turn of its
session starts, or when the file has been quiet: after `idle_close` seconds when the mapping has
no `turn_end` and no tool call is waiting (the normal end, not interrupted), otherwise after
`stale_close` seconds (marked interrupted: the agent most likely died). `source.options`
(`format_options`) overrides both. A late record naming a recently finished turn id never
reopens it: it is a dead letter if it carries content, ignored otherwise.

A turn's model is its last LLM call's; it spans its first record's start to its last record's
end (its times likewise). Turn keys: `name|session|turn_id`, else
`name|session|<time of the first record>`, else `name|session|<file name>|<start offset>`.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import PurePath
from typing import Annotated, Any

import jmespath
import orjson
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn, Usage
from tailerd.errors import ConfigError
from tailerd.formats.base import (
    COMPRESSION_SUFFIXES,
    Source,
    TurnParser,
    decode_object,
    parse_time,
    turn_key,
)
from tailerd.formats.native import split_output

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 600.0
SENT_IDS = 16  # finished turn ids remembered per session
SESSIONS_REMEMBERED = 64  # sessions whose name and finished turns are remembered
HEAD_RECORDS = 20  # lines of a file's head tried when looking for its first JSON record

Expression = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSpec(_Strict):
    when: Expression
    model: Expression | None = None
    provider: Expression | None = None
    input_tokens: Expression | None = None
    output_tokens: Expression | None = None
    cache_read_tokens: Expression | None = None
    cache_write_tokens: Expression | None = None
    reasoning_tokens: Expression | None = None
    response: Expression | None = None
    started_at: Expression | None = None


class ToolSpec(_Strict):
    when: Expression
    name: Expression
    arguments: Expression | None = None
    result: Expression | None = None
    call_id: Expression | None = None
    is_error: Expression | None = None
    started_at: Expression | None = None


class ToolResultSpec(_Strict):
    when: Expression
    call_id: Expression
    result: Expression | None = None
    is_error: Expression | None = None


class MappingSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    match: tuple[str, ...] = ()
    detect: Expression | None = None
    agent_name: str = ""
    session_id: Expression
    session_name: Expression | None = None
    timestamp: Expression | None = None
    turn_id: Expression | None = None
    turn_start: Expression | None = None
    turn_end: Expression | None = None
    end_on_next_start: bool = True
    user_message: Expression | None = None
    assistant_message: Expression | None = None
    input_includes_cache: bool = True
    idle_close: float = Field(default=DEFAULT_IDLE_CLOSE, gt=0)
    stale_close: float = Field(default=DEFAULT_STALE_CLOSE, gt=0)
    llm: LLMSpec | None = None
    tool: ToolSpec | None = None
    tool_result: ToolResultSpec | None = None


_PLAIN_TEXT = frozenset({"name", "agent_name"})  # the mapping's own strings, not expressions


def _expression_fields(spec: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field name, expression text) of every expression set in the spec."""
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, BaseModel):
            yield from _expression_fields(value, f"{prefix}{name}.")
        elif isinstance(value, str) and (prefix or name not in _PLAIN_TEXT):
            yield f"{prefix}{name}", value


def _compile(spec: MappingSpec) -> dict[str, Any]:
    compiled: dict[str, Any] = {}
    for where, text in _expression_fields(spec):
        try:
            compiled[where] = jmespath.compile(text)
        except JMESPathError as exc:
            first = str(exc).splitlines()[0].removesuffix(", for expression:").rstrip(":")
            raise ConfigError(
                f"mapping {spec.name!r}: {where}: invalid JMESPath {text!r}: {first}"
            ) from None
    return compiled


class _Unreadable(Exception):  # an internal signal: becomes a DeadLetter's reason
    pass


def _present(value: Any) -> bool:
    """JMESPath truthiness: null, false, "", [] and {} are absent (0 is present)."""
    return not (value is None or value is False or value in ("", [], {}))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return max(0, int(value))
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _optional_count(value: Any) -> int:
    return _count(value) if _present(value) else 0


@dataclass(frozen=True, slots=True)
class _ToolResult:
    call_id: str
    result: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class _Record:
    """What one line says, read through the mapping."""

    session_id: str
    session_name: str
    time: datetime | None
    turn_id: str
    starts: bool
    ends: bool
    user: str | None
    assistant: str | None
    llm: LLMCall | None
    tool: ToolCall | None
    awaits_result: bool
    tool_result: _ToolResult | None

    @property
    def has_content(self) -> bool:
        return any(
            x is not None
            for x in (self.user, self.assistant, self.llm, self.tool, self.tool_result)
        )


class _Reader:
    """Evaluates a mapping's compiled expressions on one record; never raises but `_Unreadable`."""

    def __init__(
        self, spec: MappingSpec, compiled: Mapping[str, Any], record: dict[str, Any]
    ) -> None:
        self._spec = spec
        self._compiled = compiled
        self._record = record

    def get(self, where: str) -> Any:
        expression = self._compiled.get(where)
        if expression is None:
            return None
        try:
            return expression.search(self._record)
        # an operator's expression over arbitrary data fails in ways jmespath does not always
        # wrap (`<` on a string and a number raises TypeError): any failure is this line's
        except Exception as exc:
            raise _Unreadable(f"{where}: {type(exc).__name__}: {exc}") from None

    def flag(self, where: str) -> bool:
        return _present(self.get(where))

    def text(self, where: str) -> str | None:
        value = self.get(where)
        return _text(value) if _present(value) else None

    def time(self, where: str) -> datetime | None:
        return parse_time(self.get(where))

    def read(self) -> _Record:
        session = self.get("session_id")
        if isinstance(session, bool) or not isinstance(session, (str, int)) or session == "":
            raise _Unreadable("no session id (session_id expression gave nothing usable)")
        time = self.time("timestamp")
        tool, awaits = self._tool(time)
        turn_id = self.get("turn_id")
        return _Record(
            session_id=str(session),
            session_name=self.text("session_name") or "",
            time=time,
            turn_id=_text(turn_id) if _present(turn_id) else "",
            starts=self.flag("turn_start"),
            ends=self.flag("turn_end"),
            user=self.text("user_message"),
            assistant=self.text("assistant_message"),
            llm=self._llm(time),
            tool=tool,
            awaits_result=awaits,
            tool_result=self._tool_result(),
        )

    def _llm(self, time: datetime | None) -> LLMCall | None:
        if self._spec.llm is None or not self.flag("llm.when"):
            return None
        cache_read = _optional_count(self.get("llm.cache_read_tokens"))
        cache_write = _optional_count(self.get("llm.cache_write_tokens"))
        input_tokens = _optional_count(self.get("llm.input_tokens"))
        if not self._spec.input_includes_cache:
            input_tokens += cache_read + cache_write
        response = self.text("llm.response")
        return LLMCall(
            model=self.text("llm.model") or "",
            provider_name=self.text("llm.provider") or "",
            output_messages=(Message("assistant", response),) if response is not None else (),
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=_optional_count(self.get("llm.output_tokens")),
                cache_read_input_tokens=cache_read,
                cache_creation_input_tokens=cache_write,
                reasoning_tokens=_optional_count(self.get("llm.reasoning_tokens")),
            ),
            started_at=self.time("llm.started_at"),
            ended_at=time,
        )

    def _tool(self, time: datetime | None) -> tuple[ToolCall | None, bool]:
        if self._spec.tool is None or not self.flag("tool.when"):
            return None, False
        call_id = self.text("tool.call_id") or ""
        result = self.get("tool.result")
        awaits = not _present(result) and bool(call_id) and self._spec.tool_result is not None
        call = ToolCall(
            name=self.text("tool.name") or "",
            arguments=_text(self.get("tool.arguments")),
            result=_text(result) if _present(result) else "",
            tool_call_id=call_id,
            is_error=self.flag("tool.is_error"),
            started_at=self.time("tool.started_at") or (time if awaits else None),
            ended_at=None if awaits else time,
        )
        return call, awaits

    def _tool_result(self) -> _ToolResult | None:
        if self._spec.tool_result is None or not self.flag("tool_result.when"):
            return None
        result = self.get("tool_result.result")
        return _ToolResult(
            call_id=self.text("tool_result.call_id") or "",
            result=_text(result) if _present(result) else "",
            is_error=self.flag("tool_result.is_error"),
        )


@dataclass(slots=True)
class _OpenTurn:
    start: int
    end: int
    turn_id: str
    started_at: datetime | None
    ended_at: datetime | None
    messages: list[Message] = field(default_factory=list)
    spans: list[SpanCall] = field(default_factory=list)
    awaiting: dict[str, int] = field(default_factory=dict)  # call id -> index in spans


@dataclass(slots=True)
class _Session:
    """What a file has said about a session before the current line; carried across restarts."""

    name: str = ""
    sent_until: int = 0  # end offset of its last finished turn: earlier lines are a re-read
    sent_ids: list[str] = field(default_factory=list)  # its last finished turn ids

    def finished(self, turn: _OpenTurn) -> None:
        self.sent_until = turn.end
        if turn.turn_id:
            self.sent_ids = [*self.sent_ids, turn.turn_id][-SENT_IDS:]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sent_until": self.sent_until, "sent_ids": self.sent_ids}

    @classmethod
    def from_json(cls, raw: object) -> _Session:
        if not isinstance(raw, dict):
            return cls()
        ids = raw.get("sent_ids")
        until = raw.get("sent_until")
        return cls(
            name=str(raw.get("name") or ""),
            sent_until=until if isinstance(until, int) else 0,
            sent_ids=[str(i) for i in ids] if isinstance(ids, list) else [],
        )


def _sessions_from(context: Mapping[str, Any] | None) -> OrderedDict[str, _Session]:
    raw = (context or {}).get("sessions")
    if not isinstance(raw, dict):
        return OrderedDict()
    return OrderedDict((str(k), _Session.from_json(v)) for k, v in raw.items())


class MappedParser:
    def __init__(
        self, fmt: MappedFormat, source: Source, context: Mapping[str, Any] | None
    ) -> None:
        self._fmt = fmt
        self._spec = fmt.spec
        self._source = source
        self._open: dict[str, _OpenTurn] = {}
        self._sessions = _sessions_from(context)
        self._idle_close = float(source.options.get("idle_close", self._spec.idle_close))
        self._stale_close = float(source.options.get("stale_close", self._spec.stale_close))

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        try:
            record = _Reader(self._spec, self._fmt.compiled, raw).read()
        except _Unreadable as exc:
            return [DeadLetter(line.start, line.end, f"mapping {self._spec.name!r}: {exc}")]
        return self._apply(record, line)

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > SESSIONS_REMEMBERED:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(session_id)
        return session

    def _apply(self, r: _Record, line: Line) -> list[Turn | DeadLetter]:
        session = self._session(r.session_id)
        if line.start < session.sent_until:
            return []  # re-read after a restart: this line's turn was already sent
        session.name = r.session_name or session.name
        if r.turn_id and r.turn_id in session.sent_ids:
            reason = f"record of finished turn {r.turn_id!r}"
            return [DeadLetter(line.start, line.end, reason)] if r.has_content else []
        out: list[Turn | DeadLetter] = []
        turn = self._open.get(r.session_id)
        if self._opens_turn(r, turn):
            if turn is not None:
                out.append(self._close(r.session_id, not self._spec.end_on_next_start))
            turn = self._open[r.session_id] = _OpenTurn(
                line.start, line.end, r.turn_id, r.time, r.time
            )
        if turn is None:
            if r.has_content:
                out.append(DeadLetter(line.start, line.end, "record with content outside a turn"))
            return out
        turn.end, turn.ended_at = line.end, r.time or turn.ended_at
        turn.turn_id = turn.turn_id or r.turn_id
        dead = self._add(turn, r)
        if dead:
            out.append(DeadLetter(line.start, line.end, dead))
        if r.ends:
            out.append(self._close(r.session_id, interrupted=False))
        return out

    def _opens_turn(self, r: _Record, turn: _OpenTurn | None) -> bool:
        if self._spec.turn_start is not None:
            return r.starts
        if turn is not None:
            return bool(r.turn_id and turn.turn_id and r.turn_id != turn.turn_id)
        return r.has_content and r.tool_result is None

    def _add(self, turn: _OpenTurn, r: _Record) -> str:
        """Adds the record's content to its turn; returns a dead-letter reason or ""."""
        if r.user is not None:
            turn.messages.append(Message("user", r.user))
        if r.llm is not None:
            turn.spans.append(r.llm)
        if r.tool is not None:
            if r.awaits_result:
                turn.awaiting[r.tool.tool_call_id] = len(turn.spans)
            turn.spans.append(r.tool)
        if r.assistant is not None:
            turn.messages.append(Message("assistant", r.assistant))
        if r.tool_result is None:
            return ""
        index = turn.awaiting.pop(r.tool_result.call_id, None)
        if index is None:
            return f"tool result for no waiting call {r.tool_result.call_id!r}"
        call = turn.spans[index]
        if isinstance(call, ToolCall):  # always: `awaiting` indexes tool calls only
            turn.spans[index] = replace(
                call, result=r.tool_result.result, is_error=r.tool_result.is_error, ended_at=r.time
            )
        return ""

    def _key(self, session_id: str, turn: _OpenTurn) -> str:
        if turn.turn_id:
            return turn_key(self._spec.name, session_id, turn.turn_id)
        if turn.started_at is not None:
            return turn_key(self._spec.name, session_id, turn.started_at.isoformat())
        return turn_key(self._spec.name, session_id, self._source.stable_name, turn.start)

    def _close(self, session_id: str, interrupted: bool) -> Turn:
        t = self._open.pop(session_id)
        session = self._session(session_id)
        session.finished(t)
        spans = list(t.spans)
        for index in t.awaiting.values():
            spans[index] = replace(spans[index], attributes={"result_missing": True})
        messages, output = split_output(tuple(t.messages), None)
        models = [s.model for s in spans if isinstance(s, LLMCall) and s.model]
        return Turn(
            key=self._key(session_id, t),
            session_id=session_id,
            start=t.start,
            end=t.end,
            agent_name=self._source.agent_name or self._spec.agent_name or self._spec.name,
            model=models[-1] if models else "",
            session_name=session.name,
            messages=messages,
            output_messages=output,
            spans=tuple(spans),
            started_at=t.started_at,
            ended_at=t.ended_at,
            interrupted=interrupted,
        )

    def close_idle(self, quiet_for: float) -> list[Turn]:
        out: list[Turn] = []
        for session_id in sorted(self._open, key=lambda s: self._open[s].start):
            unfinished = self._spec.turn_end is not None or bool(self._open[session_id].awaiting)
            if quiet_for >= (self._stale_close if unfinished else self._idle_close):
                out.append(self._close(session_id, interrupted=unfinished))
        return out

    def pending_from(self) -> int | None:
        return min((t.start for t in self._open.values()), default=None)

    def snapshot(self) -> dict[str, Any]:
        # a session's name may come from a header before the resume offset, and a finished turn
        # of another session may straddle it: re-read, its lines must not become a new turn
        return {"sessions": {k: v.to_json() for k, v in self._sessions.items()}}


def _first_record(head: bytes) -> dict[str, Any] | None:
    for text in head.split(b"\n")[:HEAD_RECORDS]:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(raw, dict):
            return raw
    return None


class MappedFormat:
    """A format described by a `MappingSpec`; every expression compiled once, here."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.compiled = _compile(spec)

    def claims(self, path: PurePath, head: bytes) -> bool:
        name = path.name
        for suffix in COMPRESSION_SUFFIXES:
            name = name.removesuffix(suffix)
        if any(fnmatchcase(name, glob) for glob in self.spec.match):
            return True
        detect = self.compiled.get("detect")
        if detect is None:
            return False
        record = _first_record(head)
        if record is None:
            return False
        try:
            return _present(detect.search(record))
        except Exception:  # a detect failing on a foreign file means "not mine"
            return False

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return MappedParser(self, source, context)


def formats_from_config(raw: object) -> list[MappedFormat]:
    """The formats of the config file's `[[mapping]]` array; ConfigError (one line) if invalid."""
    if not isinstance(raw, list):
        raise ConfigError("mapping must be an array of tables ([[mapping]])")
    formats: list[MappedFormat] = []
    for index, item in enumerate(raw):
        label = f"mapping[{index}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        try:
            spec = MappingSpec.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "table"
            raise ConfigError(f"invalid {label}: {where}: {first['msg']}") from None
        if any(f.name == spec.name for f in formats):
            raise ConfigError(f"invalid {label}: name {spec.name!r} is used by an earlier mapping")
        formats.append(MappedFormat(spec))
    return formats
