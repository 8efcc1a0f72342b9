"""Gemini CLI chat recordings: `~/.gemini/tmp/<project>/chats/session-*.jsonl` and legacy `.json`.

JSONL era: line 1 is the session metadata `{sessionId, projectHash, startTime, lastUpdated, kind}`,
then message records `{id, timestamp, type: user|gemini|info|error|warning, content, ...}`,
`{"$set": {...}}` metadata updates and `{"$rewindTo": "<message id>"}`. A message is
re-appended whole every time it changes, so the last write of an id wins (first-seen order is
kept). `$rewindTo` drops that message and everything after it (only inside the open turn: an
emitted turn cannot be recalled).

A turn is a `user` record and every record up to the next `user` record (a `user` record of
only `functionResponse` parts is a tool result inside the turn, not a prompt). A gemini record
can be re-appended with its tool calls after it first appears, so a turn is only finished when the
next user record arrives or the file has been quiet for `idle_close` seconds (option, default
30 s). An `info` record "Request cancelled." marks the turn interrupted.

Each `gemini` record is one LLM call. Its `tokens` map to Weave's convention: Gemini's `input`
(promptTokenCount) already includes `cached` (checked: `total == input + output + thoughts + tool`
in the real sample, with `cached` not added), so `input_tokens = input + tool` (tool-use prompt
tokens are prompt tokens too), `output_tokens = output + thoughts`, `reasoning_tokens = thoughts`,
`cache_read_input_tokens = cached`. Tool calls (`toolCalls`, with their embedded results) follow
their LLM call as tool spans.

`Turn.identities` are the turn's message ids (`gemini:message:<id>`), in both the JSONL and the
legacy path: a resumed legacy session copied into a `.jsonl` is recognised as already shipped
(tailerd/history.py).

Legacy `.json` files are one JSON document rewritten whole on every update, so byte offsets mean
nothing: the daemon routes them to `turns_from_document`, which returns every finished turn of
the document, keyed by message ids so that a re-read can be diffed by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SpanCall, ToolCall, Turn, Usage
from tailerd.formats.base import (
    IdleClosingParser,
    Source,
    TurnParser,
    decode_object,
    json_text,
    messages_document,
    parse_time,
    turn_key,
)
from tailerd.formats.options import IDLE_CLOSE_ONLY

DEFAULT_IDLE_CLOSE = 30.0
AGENT_NAME = "gemini"
PROVIDER = "google"
WHOLE_DOCUMENT_SUFFIX = ".json"
CANCELLED = "Request cancelled."
IDENTITY_PREFIX = "gemini:message:"
_ASSISTANT_TYPES = frozenset({"gemini", "model"})

Record = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(record: Record) -> str:
    """Text of a message: `content` as a string or Gemini parts (legacy drift: `parts`)."""
    content = record.get("content", record.get("parts"))
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    return "\n".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _is_tool_response(record: Record) -> bool:
    """A `user` record holding only `functionResponse` parts: Gemini CLI 0.61 appends one after
    each tool call (the same result is already in the call's `toolCalls[].result`). It belongs
    to the open turn; it is not a prompt."""
    content = record.get("content")
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and "functionResponse" in p for p in content)
    )


def _usage(tokens: Any) -> Usage:
    t = tokens if isinstance(tokens, dict) else {}
    thoughts = _int(t.get("thoughts"))
    total = t.get("total")
    return Usage(
        input_tokens=_int(t.get("input")) + _int(t.get("tool")),
        output_tokens=_int(t.get("output")) + thoughts,
        cache_read_input_tokens=_int(t.get("cached")),
        reasoning_tokens=thoughts,
        total_tokens=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _reasoning(thoughts: Any) -> str:
    items = thoughts if isinstance(thoughts, list) else []
    texts = []
    for th in items:
        if isinstance(th, dict):
            subject, description = _str(th.get("subject")), _str(th.get("description"))
            texts.append(f"{subject}: {description}" if subject else description)
    return "\n\n".join(t for t in texts if t)


def _tool(call: Record, fallback_time: datetime | None) -> ToolCall:
    outputs, error = [], False
    results = call.get("result")
    for r in results if isinstance(results, list) else []:
        response = (
            (r.get("functionResponse") or {}).get("response") if isinstance(r, dict) else None
        )
        if isinstance(response, dict):
            if "error" in response:
                error = True
                outputs.append(json_text(response["error"]))
            else:
                outputs.append(json_text(response.get("output", response)))
    status = _str(call.get("status"))
    attributes = {"gemini.status": status} if status else {}
    if _str(call.get("displayName")):
        attributes["gemini.display_name"] = call["displayName"]
    when = parse_time(call.get("timestamp")) or fallback_time
    return ToolCall(
        name=_str(call.get("name")),
        arguments=json_text(call.get("args")),
        result="\n".join(outputs),
        tool_call_id=_str(call.get("id")),
        is_error=error or status not in ("", "success"),
        started_at=when,
        ended_at=when,
        attributes=attributes,
    )


def _llm(record: Record) -> list[SpanCall]:
    when = parse_time(record.get("timestamp"))
    text = _text(record)
    spans: list[SpanCall] = [
        LLMCall(
            model=_str(record.get("model")),
            provider_name=PROVIDER,
            output_messages=(Message("assistant", text),) if text else (),
            usage=_usage(record.get("tokens")),
            reasoning=_reasoning(record.get("thoughts")),
            response_id=_str(record.get("id")),
            started_at=when,
            ended_at=when,
        )
    ]
    calls = record.get("toolCalls")
    spans.extend(
        _tool(c, when) for c in (calls if isinstance(calls, list) else []) if isinstance(c, dict)
    )
    return spans


def build_turn(
    session_id: str,
    records: list[Record],
    source: Source,
    *,
    start: int,
    end: int,
    attributes: Mapping[str, Any],
) -> Turn:
    """The one turn builder: `records` is a user record and the records that follow it."""
    user, rest = records[0], records[1:]
    spans = [s for r in rest if _str(r.get("type")) in _ASSISTANT_TYPES for s in _llm(r)]
    answers = [_text(r) for r in rest if _str(r.get("type")) in _ASSISTANT_TYPES and _text(r)]
    models = [_str(r.get("model")) for r in rest if _str(r.get("model"))]
    notices = [
        f"{r.get('type')}: {_text(r)}"
        for r in rest
        if r.get("type") in ("info", "error", "warning")
    ]
    attrs = dict(attributes)
    if notices:
        attrs["gemini.notices"] = notices
    times = [t for t in (parse_time(r.get("timestamp")) for r in records) if t is not None]
    return Turn(
        key=turn_key(AGENT_NAME, session_id, _str(user.get("id"))),
        session_id=session_id,
        start=start,
        end=end,
        agent_name=source.agent_name or AGENT_NAME,
        model=models[-1] if models else "",
        messages=(Message("user", _text(user)),),
        output_messages=(Message("assistant", answers[-1]),) if answers else (),
        spans=tuple(spans),
        started_at=times[0] if times else None,
        ended_at=times[-1] if times else None,
        interrupted=any(r.get("type") == "info" and _text(r) == CANCELLED for r in rest),
        attributes=attrs,
        identities=tuple(dict.fromkeys(_identity(r) for r in records if _str(r.get("id")))),
    )


def _identity(record: Record) -> str:
    """A message's identity across files: Gemini CLI keeps message ids when it copies a session
    (a legacy `.json` resumed into a `.jsonl` of the same name repeats every earlier message)."""
    return f"{IDENTITY_PREFIX}{record['id']}"


def _session_attributes(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        f"gemini.{name}": meta[name]
        for name in ("projectHash", "kind")
        if isinstance(meta.get(name), str) and meta[name]
    }


def _fallback_session(source: Source) -> str:
    return source.stable_name.removesuffix(".jsonl").removesuffix(".json")


def turns_from_document(data: bytes, source: Source, *, final: bool) -> list[Turn]:
    """Every finished turn of a legacy whole-file JSON recording ([] while it is half-written).

    The last turn counts as finished only when `final` (the file has been quiet long enough).
    """
    doc = messages_document(data)
    if doc is None:
        return []
    session = _str(doc.get("sessionId")) or _fallback_session(source)
    records = [m for m in doc["messages"] if isinstance(m, dict) and _str(m.get("id"))]
    groups: list[list[Record]] = []
    for record in records:
        if record.get("type") == "user" and not _is_tool_response(record):
            groups.append([record])
        elif groups:
            groups[-1].append(record)
    if groups and not final:
        groups.pop()
    attrs = _session_attributes(doc)
    return [
        build_turn(session, g, source, start=0, end=len(data), attributes=attrs) for g in groups
    ]


class GeminiParser(IdleClosingParser):
    closed_by = "the next user message"

    def __init__(self, source: Source, context: Mapping[str, Any] | None) -> None:
        ctx = dict(context or {})
        self._source = source
        self._session_id = _str(ctx.get("session_id"))
        attrs = ctx.get("attrs")
        self._attrs: dict[str, Any] = dict(attrs) if isinstance(attrs, dict) else {}
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        # The open turn: message id -> last write, in first-seen order (the user record first).
        self._records: dict[str, Record] = {}
        self._start = 0
        self._end = 0
        self.ignored = 0

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        raw = decode_object(line)
        if not isinstance(raw, dict):
            return [] if raw is None else [raw]
        if "$set" in raw:
            self.ignored += 1
        elif "$rewindTo" in raw:
            self._rewind(_str(raw["$rewindTo"]))
        elif "sessionId" in raw and "type" not in raw:
            self._metadata(raw)
        elif _str(raw.get("id")) and _str(raw.get("type")):
            return self._message(raw, line)
        else:
            return [DeadLetter(line.start, line.end, "unknown Gemini record")]
        self._extend(line)
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"session_id": self._session_id, "attrs": dict(self._attrs)}

    def _metadata(self, meta: Record) -> None:
        if not self._session_id and _str(meta.get("sessionId")):
            self._session_id = meta["sessionId"]
            self._attrs = _session_attributes(meta)

    def _message(self, record: Record, line: Line) -> list[Turn | DeadLetter]:
        mid = record["id"]
        if mid in self._records:
            self._records[mid] = record  # re-appended as it grew: last write wins
            self._extend(line)
            return []
        if record.get("type") != "user" or _is_tool_response(record):
            if not self._records:
                self.ignored += 1  # before the first prompt (e.g. "GEMINI.md created")
                return []
            self._records[mid] = record
            self._extend(line)
            return []
        closed: list[Turn | DeadLetter] = [self._close()] if self._records else []
        self._records = {mid: record}
        self._start, self._end = line.start, line.end
        return closed

    def _rewind(self, target: str) -> None:
        if target not in self._records:
            self.ignored += 1
            return
        ids = list(self._records)
        for mid in ids[ids.index(target) :]:
            del self._records[mid]

    def _extend(self, line: Line) -> None:
        if self._records:
            self._end = max(self._end, line.end)

    def _close(self) -> Turn:
        records = list(self._records.values())
        self._records = {}
        session = self._session_id or _fallback_session(self._source)
        return build_turn(
            session, records, self._source, start=self._start, end=self._end, attributes=self._attrs
        )


class GeminiFormat:
    name = "gemini"

    def reads_whole(self, path: PurePath) -> bool:
        """Legacy recordings are rewritten whole: offsets mean nothing, turns are diffed by key."""
        return path.suffix == WHOLE_DOCUMENT_SUFFIX

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        return turns_from_document(data, source, final=final)

    def claims(self, path: PurePath, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        try:
            raw = orjson.loads(first)
        except orjson.JSONDecodeError:
            raw = None
        if isinstance(raw, dict):
            return "sessionId" in raw and "projectHash" in raw and "payload" not in raw
        if path.suffix == WHOLE_DOCUMENT_SUFFIX and head.lstrip().startswith(b"{"):
            return b'"sessionId"' in head and b'"messages"' in head
        return path.name.startswith("session-") and path.parent.name == "chats"

    def is_auxiliary(self, path: PurePath) -> bool:
        return False  # sub-agent recordings (chats/<session>/<id>.jsonl) are tailed on their own

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return GeminiParser(source, context)


FORMAT = GeminiFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
