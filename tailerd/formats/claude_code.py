"""Claude Code transcripts: `~/.claude/projects/<slug>/<sessionId>.jsonl`.

One JSON record per line (see agent-formats.md §1). A turn starts at a real user prompt (or a
slash command that makes the model work, or assistant activity with no prompt before it: a
continuation) and ends at the first of `system/turn_duration`, a Stop hook (`stop_hook_summary`,
`progress`/`attachment` with `hookEvent == "Stop"`), an interruption marker (the turn is marked
interrupted), the next prompt, or quiescence (see `close_idle`). Compaction never ends a turn.

An API response is written as one line per content block sharing `message.id`; the lines are
merged into one `LLMCall` whose usage is the last line's. `tool_use.id` pairs with
`tool_result.tool_use_id`. `Task`/`Agent` calls become `SubAgentCall`s with the sub-agent's own
calls nested, read from `<dir>/<session>/subagents/agent-<id>.jsonl` (2.1.x) or
`<dir>/agent-<id>.jsonl` (2.0.x) through `Source.read_related`.

Options (`source.options`):

* `idle_close` (30.0): seconds of quiet after which an open turn with no tool call waiting for
  its result is finished.
* `stale_close` (21600.0): seconds of quiet after which an open turn is finished even with tool
  calls still waiting (marked interrupted: the agent most likely died).
* `tool_result_cap` (262144): characters kept of a tool result (spilled results included).
* `subagent_cap` (67108864): bytes read of a sub-agent transcript.
* `dedup_window` (50000): record uuids remembered to drop duplicated records.
"""

from __future__ import annotations

import json
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
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
from tailerd.formats.base import Source, TurnParser, parse_time, turn_key

NAME = "claude-code"
PROVIDER = "anthropic"
DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 6 * 3600.0
DEFAULT_TOOL_RESULT_CAP = 256 * 1024
DEFAULT_SUBAGENT_CAP = 64 * 1024 * 1024
DEFAULT_DEDUP_WINDOW = 50_000
SNAPSHOT_SEEN = 1000  # uuids carried across a restart (those before the resume offset)
MAX_SUBAGENT_DEPTH = 3
MAX_RECOVERY_BYTES = 4 * 1024 * 1024  # a longer invalid line is dropped without looking inside
MAX_RECOVERY_ATTEMPTS = 256
SYNTHETIC_MODEL = "<synthetic>"
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})

KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "summary",
        "file-history-snapshot",
        "queue-operation",
        "progress",
        "attachment",
        "last-prompt",
        "custom-title",
        "ai-title",
        "agent-name",
        "permission-mode",
        "mode",
        "pr-link",
        "frame-link",
        "worktree-state",
        "relocated",
        "bridge-session",
        "started",
        "result",
        "tag",
        "agent-setting",
    }
)
# Records that identify a transcript even without a uuid.
_HEADER_TYPES = frozenset({"summary", "file-history-snapshot", "queue-operation"})
_TITLE_RANK = {"summary": 1, "ai-title": 2, "custom-title": 3}

_INTERRUPT_PREFIX = "[Request interrupted by user"
_COMMAND_PREFIXES = ("<command-name>", "<command-message>", "<bash-input>")
_COMMAND_OUTPUT_PREFIXES = (
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<bash-stdout>",
    "<bash-stderr>",
)
_META_PREFIXES = ("<local-command-caveat>", "Caveat: The messages below were generated")
_USER_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    ((_INTERRUPT_PREFIX,), "interrupt"),
    (_COMMAND_OUTPUT_PREFIXES, "command_output"),
    (_META_PREFIXES, "meta"),
    (_COMMAND_PREFIXES, "command"),
)
_PERSISTED_PREFIX = "<persisted-output>"
_PERSISTED_PATH = re.compile(r"saved to:\s*(\S+)")
_AGENT_ID_IN_TEXT = re.compile(r"agentId:\s*([A-Za-z0-9_-]+)")


# ---------------------------------------------------------------------------------------------
# Reading records


def decode_line(line: Line) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """The records of one line. A torn record glued to the next one is cut off and reported."""
    data = line.data.replace(b"\x00", b"").strip()
    if not data:
        return [], []
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        if len(data) > MAX_RECOVERY_BYTES:
            return [], [DeadLetter(line.start, line.end, "invalid JSON (too long to recover)")]
        return _recover_glued(data.decode("utf-8", "replace"), line)
    if isinstance(value, dict):
        return [value], []
    return [], [DeadLetter(line.start, line.end, "record is not a JSON object")]


def _recover_glued(text: str, line: Line) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    """Split `{...}{...}` and `{"torn…{"whole":…}`: keep every whole record, drop the rest."""
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    lost = 0
    pos = 0
    for _attempt in range(MAX_RECOVERY_ATTEMPTS):
        if pos >= len(text):
            break
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            value, end = None, pos
        if isinstance(value, dict) and "type" in value:
            records.append(value)
            pos = len(text) - len(text[end:].lstrip())
            continue
        nxt = text.find('{"', max(end, pos + 1))
        lost += (nxt if nxt >= 0 else len(text)) - pos
        if nxt < 0:
            pos = len(text)
            break
        pos = nxt
    lost += len(text) - pos  # whatever the attempts did not reach
    dead = []
    if lost:
        reason = f"invalid JSON ({lost} chars dropped, {len(records)} glued records recovered)"
        dead.append(DeadLetter(line.start, line.end, reason))
    return records, dead


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message(rec: Mapping[str, Any]) -> dict[str, Any]:
    return _dict(rec.get("message"))


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def image_marker(block: Mapping[str, Any]) -> str:
    """What an image block becomes: never its base64 payload."""
    source = _dict(block.get("source"))
    media = _str(source.get("media_type")) or "unknown"
    data = _str(source.get("data"))
    size = len(data) * 3 // 4 - data[-2:].count("=") if data else 0
    return f"[image {media} {size} bytes]"


def content_text(content: object) -> str:
    """Plain text of a message or tool-result content: text blocks joined, images as markers."""
    parts: list[str] = []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            parts.append(_str(block.get("text")))
        elif kind == "image":
            parts.append(image_marker(block))
        elif kind == "tool_reference":
            parts.append(f"[tool {_str(block.get('tool_name'))}]")
    return "\n".join(p for p in parts if p)


def _capped(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return f"{text[:cap]}\n[truncated at {cap} characters]"


def user_kind(rec: Mapping[str, Any]) -> str:
    """prompt | command | command_output | interrupt | tool_result | meta."""
    content = _message(rec).get("content")
    if any(b.get("type") == "tool_result" for b in _blocks(content)):
        return "tool_result"
    text = content_text(content).lstrip()
    if rec.get("isMeta") or rec.get("isCompactSummary") or not text:
        return "meta"
    return next((kind for prefixes, kind in _USER_PREFIXES if text.startswith(prefixes)), "prompt")


def _origin(rec: Mapping[str, Any], text: str) -> str:
    kind = _str(_dict(rec.get("origin")).get("kind"))
    if kind:
        return kind
    return "task-notification" if text.lstrip().startswith("<task-notification>") else "human"


def _usage(raw: Mapping[str, Any]) -> Usage:
    fresh = _int(raw.get("input_tokens"))
    cache_read = _int(raw.get("cache_read_input_tokens"))
    cache_write = _int(raw.get("cache_creation_input_tokens"))
    output = _int(raw.get("output_tokens"))
    prompt = fresh + cache_read + cache_write
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        total_tokens=prompt + output,
    )


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Building the spans of one turn (or of one sub-agent transcript)


@dataclass(slots=True)
class _CallDraft:
    """One API response, merged from its per-block lines."""

    key: str
    model: str
    started_at: datetime | None
    response_id: str = ""
    request_id: str = ""
    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_uses: list[Message] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""
    ended_at: datetime | None = None
    input_messages: tuple[Message, ...] = ()

    def build(self) -> LLMCall:
        output = [Message("assistant", "\n\n".join(self.texts))] if self.texts else []
        attributes = {"claude_code.request_id": self.request_id} if self.request_id else {}
        return LLMCall(
            model=self.model,
            provider_name=PROVIDER,
            input_messages=self.input_messages,
            output_messages=(*output, *self.tool_uses),
            usage=_usage(self.usage),
            reasoning="\n\n".join(self.reasoning),
            response_id=self.response_id,
            finish_reasons=(self.stop_reason,) if self.stop_reason else (),
            started_at=self.started_at,
            ended_at=self.ended_at,
            attributes=attributes,
        )


@dataclass(slots=True)
class _ToolDraft:
    tool_call_id: str
    name: str
    arguments: dict[str, Any] | str
    started_at: datetime | None
    result: str | None = None
    is_error: bool = False
    ended_at: datetime | None = None
    agent_id: str = ""
    subagent: SubAgentCall | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_subagent(self) -> bool:
        return self.name in SUBAGENT_TOOLS

    def build(self) -> SpanCall:
        if self.subagent is not None:
            return self.subagent
        return ToolCall(
            name=self.name,
            arguments=_json_text(self.arguments),
            result=self.result or "",
            tool_call_id=self.tool_call_id,
            is_error=self.is_error,
            started_at=self.started_at,
            ended_at=self.ended_at,
            attributes=self.attributes,
        )


SubAgentResolver = Callable[["_ToolDraft"], SubAgentCall]
SpilledReader = Callable[[str, str], str | None]


class SpanBuilder:
    """LLM and tool calls in the order they began; tool results paired as they arrive."""

    def __init__(
        self, resolve_subagent: SubAgentResolver, read_spilled: SpilledReader, result_cap: int
    ) -> None:
        self._resolve_subagent = resolve_subagent
        self._read_spilled = read_spilled
        self._result_cap = result_cap
        self._slots: list[_CallDraft | _ToolDraft] = []
        self._calls: dict[str, _CallDraft] = {}
        self._tools: dict[str, _ToolDraft] = {}
        self._anonymous: deque[_ToolDraft] = deque()  # tool_use blocks without an id
        self._agent_ids: dict[str, str] = {}  # tool_use id -> agentId, from progress records
        self.pending_input: tuple[Message, ...] = ()  # input of the next new LLM call

    @property
    def calls(self) -> list[_CallDraft]:
        return list(self._calls.values())

    def has_activity(self) -> bool:
        return bool(self._slots)

    def pending_tools(self) -> int:
        return sum(1 for s in self._slots if isinstance(s, _ToolDraft) and s.result is None)

    def add_assistant(self, rec: Mapping[str, Any], ts: datetime | None) -> None:
        msg = _message(rec)
        model = _str(msg.get("model"))
        if model == SYNTHETIC_MODEL:
            return
        key = _str(msg.get("id")) or f"uuid:{_str(rec.get('uuid'))}"
        call = self._calls.get(key)
        if call is None:
            call = _CallDraft(key, model, ts, _str(msg.get("id")), _str(rec.get("requestId")))
            call.input_messages, self.pending_input = self.pending_input, ()
            self._calls[key] = call
            self._slots.append(call)
        call.model = model or call.model
        call.ended_at = ts or call.ended_at
        if isinstance(msg.get("usage"), dict) and msg["usage"]:
            call.usage = msg["usage"]
        call.stop_reason = _str(msg.get("stop_reason")) or call.stop_reason
        for block in _blocks(msg.get("content")):
            self._add_block(call, block, ts)

    def _add_block(self, call: _CallDraft, block: dict[str, Any], ts: datetime | None) -> None:
        kind = block.get("type")
        if kind == "text" and _str(block.get("text")).strip():
            call.texts.append(_str(block.get("text")))
        elif kind == "thinking":
            call.reasoning.append(_str(block.get("thinking")))
        elif kind == "redacted_thinking":
            call.reasoning.append("[redacted thinking]")
        elif kind == "tool_use":
            self._add_tool_use(call, block, ts)

    def _add_tool_use(self, call: _CallDraft, block: dict[str, Any], ts: datetime | None) -> None:
        tool_id = _str(block.get("id"))
        if tool_id and tool_id in self._tools:
            return
        raw_input = block.get("input")
        arguments = raw_input if isinstance(raw_input, (dict, str)) else {}
        tool = _ToolDraft(tool_id, _str(block.get("name")), arguments, ts)
        call.tool_uses.append(Message("assistant", _json_text(arguments), tool_id, tool.name))
        self._slots.append(tool)
        if tool_id:
            self._tools[tool_id] = tool
        else:
            self._anonymous.append(tool)

    def note_agent(self, tool_use_id: str, agent_id: str) -> None:
        if tool_use_id and agent_id:
            self._agent_ids.setdefault(tool_use_id, agent_id)

    def add_results(self, rec: Mapping[str, Any], ts: datetime | None) -> None:
        for block in _blocks(_message(rec).get("content")):
            if block.get("type") != "tool_result":
                continue
            tool_id = _str(block.get("tool_use_id"))
            tool = self._tools.get(tool_id) if tool_id else self._next_anonymous()
            if tool is None or tool.result is not None:
                continue
            self._finish_tool(tool, rec, block, ts)

    def _next_anonymous(self) -> _ToolDraft | None:
        return self._anonymous.popleft() if self._anonymous else None

    def _finish_tool(
        self, tool: _ToolDraft, rec: Mapping[str, Any], block: dict[str, Any], ts: datetime | None
    ) -> None:
        text = content_text(block.get("content"))
        if text.startswith(_PERSISTED_PREFIX):
            text = self._unspill(tool, text)
        tool.result = _capped(text, self._result_cap)
        tool.is_error = block.get("is_error") is True
        tool.ended_at = ts
        if tool.is_subagent:
            structured = _dict(rec.get("toolUseResult"))
            tool.agent_id = (
                _str(structured.get("agentId"))
                or self._agent_ids.get(tool.tool_call_id, "")
                or _agent_id_in(text)
            )
            tool.attributes.update(_subagent_totals(structured))
            tool.subagent = self._resolve_subagent(tool)

    def _unspill(self, tool: _ToolDraft, preview: str) -> str:
        found = _PERSISTED_PATH.search(preview)
        name = PurePath(found.group(1)).name if found else f"{tool.tool_call_id}.txt"
        full = self._read_spilled(name, tool.tool_call_id)
        if full is None:
            tool.attributes["claude_code.persisted_output_unavailable"] = True
            return preview
        return full

    def build(self) -> tuple[SpanCall, ...]:
        spans: list[SpanCall] = []
        for slot in self._slots:
            if isinstance(slot, _ToolDraft) and slot.is_subagent and slot.subagent is None:
                slot.agent_id = slot.agent_id or self._agent_ids.get(slot.tool_call_id, "")
                slot.subagent = self._resolve_subagent(slot)
            spans.append(slot.build())
        return tuple(spans)

    def final_text(self) -> str:
        for call in reversed(self._calls.values()):
            if call.texts:
                return "\n\n".join(call.texts)
        return ""

    def last_model(self) -> str:
        return next((c.model for c in reversed(self._calls.values()) if c.model), "")


def _agent_id_in(text: str) -> str:
    found = _AGENT_ID_IN_TEXT.search(text)
    return found.group(1) if found else ""


def _subagent_totals(structured: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("totalDurationMs", "totalTokens", "totalToolUseCount", "status")
    return {f"claude_code.{k}": structured[k] for k in keys if k in structured}


# ---------------------------------------------------------------------------------------------
# Sub-agents and spilled tool results, read through Source.read_related


@dataclass(frozen=True, slots=True)
class _Related:
    """Where a session's neighbouring files live, and how to read them."""

    source: Source
    session_dirs: tuple[str, ...]  # <dir>/<session>, for subagents/ and tool-results/
    flat_dir: str  # <dir>, for the 2.0.x agent-<id>.jsonl layout
    result_cap: int
    subagent_cap: int

    @classmethod
    def of(cls, source: Source, session_id: str) -> _Related:
        path = PurePath(source.path)
        stem = source.stable_name.removesuffix(".jsonl")
        names = dict.fromkeys(n for n in (stem, session_id) if n)
        return cls(
            source,
            tuple(str(path.parent / n) for n in names),
            str(path.parent),
            int(source.options.get("tool_result_cap", DEFAULT_TOOL_RESULT_CAP)),
            int(source.options.get("subagent_cap", DEFAULT_SUBAGENT_CAP)),
        )

    def read(self, path: str, cap: int) -> bytes | None:
        try:
            return self.source.read_related(path, cap)
        except Exception:  # a neighbour that cannot be read is not fatal
            return None

    def spilled(self, name: str, tool_call_id: str) -> str | None:
        for base in self.session_dirs:
            for file_name in dict.fromkeys((name, f"{tool_call_id}.txt")):
                data = self.read(f"{base}/tool-results/{file_name}", self.result_cap + 1)
                if data is not None:
                    return data.decode("utf-8", "replace")
        return None

    def subagent_paths(self, agent_id: str) -> Iterator[str]:
        for base in self.session_dirs:
            yield f"{base}/subagents/agent-{agent_id}.jsonl"
        yield f"{self.flat_dir}/agent-{agent_id}.jsonl"

    def agent_type(self, agent_id: str) -> str:
        for base in self.session_dirs:
            data = self.read(f"{base}/subagents/agent-{agent_id}.meta.json", 64 * 1024)
            if data is not None:
                try:
                    return _str(_dict(orjson.loads(data)).get("agentType"))
                except orjson.JSONDecodeError:
                    return ""
        return ""

    def builder(self, depth: int) -> SpanBuilder:
        return SpanBuilder(lambda tool: self.subagent(tool, depth), self.spilled, self.result_cap)

    def subagent(self, tool: _ToolDraft, depth: int) -> SubAgentCall:
        args = tool.arguments if isinstance(tool.arguments, dict) else {}
        prompt = _str(args.get("prompt"))
        attributes: dict[str, Any] = dict(tool.attributes)
        if _str(args.get("description")):
            attributes["claude_code.description"] = args["description"]
        spans: tuple[SpanCall, ...] = ()
        model = ""
        data = self._subagent_bytes(tool.agent_id) if depth < MAX_SUBAGENT_DEPTH else None
        if data is None:
            attributes["claude_code.subagent_transcript"] = (
                "unavailable" if tool.agent_id else "unresolved"
            )
        else:
            builder = self.builder(depth + 1)
            feed_subagent(builder, data)
            spans, model = builder.build(), builder.last_model()
        name = _str(args.get("subagent_type"))
        if not name and tool.agent_id:
            name = self.agent_type(tool.agent_id)
        return SubAgentCall(
            name=name or "general-purpose",
            model=model,
            agent_id=tool.agent_id,
            input_messages=(Message("user", prompt),) if prompt else (),
            output_messages=(Message("assistant", tool.result),) if tool.result else (),
            tool_name=tool.name,
            tool_call_id=tool.tool_call_id,
            spans=spans,
            started_at=tool.started_at,
            ended_at=tool.ended_at,
            attributes=attributes,
        )

    def _subagent_bytes(self, agent_id: str) -> bytes | None:
        if not agent_id or agent_id.startswith("acompact"):
            return None
        for path in self.subagent_paths(agent_id):
            data = self.read(path, self.subagent_cap)
            if data is not None:
                return data
        return None


def feed_subagent(builder: SpanBuilder, data: bytes) -> None:
    """Every LLM and tool call of a sub-agent transcript, in file order, duplicates dropped."""
    framer = LineFramer()
    lines = framer.feed(data if data.endswith(b"\n") else data + b"\n")
    seen: set[str] = set()
    for line in lines:
        if not isinstance(line, Line):
            continue
        for rec in decode_line(line)[0]:
            uuid = _str(rec.get("uuid"))
            if uuid and uuid in seen:
                continue
            seen.add(uuid)
            ts = parse_time(rec.get("timestamp"))
            kind = rec.get("type")
            if kind == "assistant":
                builder.add_assistant(rec, ts)
            elif kind == "user" and user_kind(rec) == "tool_result":
                builder.add_results(rec, ts)
            elif kind == "progress":
                _note_progress(builder, rec)


def _note_progress(builder: SpanBuilder, rec: Mapping[str, Any]) -> None:
    data = _dict(rec.get("data"))
    if data.get("type") == "agent_progress":
        builder.note_agent(_str(rec.get("parentToolUseID")), _str(data.get("agentId")))


# ---------------------------------------------------------------------------------------------
# The turn state machine


@dataclass(slots=True)
class _OpenTurn:
    start: int
    end: int
    key_uuid: str
    session_id: str
    origin: str  # human | task-notification | command | continuation | ...
    builder: SpanBuilder
    messages: list[Message] = field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def touch(self, line: Line, ts: datetime | None) -> None:
        self.end = max(self.end, line.end)
        self.ended_at = ts or self.ended_at


@dataclass(slots=True)
class _Context:
    """What outlives a turn; snapshot() saves it as it was where the oldest open turn began."""

    session_id: str = ""
    version: str = ""
    session_name: str = ""
    name_rank: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "version": self.version,
            "session_name": self.session_name,
            "name_rank": self.name_rank,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> _Context:
        return cls(
            _str(raw.get("session_id")),
            _str(raw.get("version")),
            _str(raw.get("session_name")),
            _int(raw.get("name_rank")),
        )


class ClaudeCodeParser:
    def __init__(self, source: Source, context: Mapping[str, Any] | None = None) -> None:
        ctx = _dict(context)
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._stale_close = float(source.options.get("stale_close", DEFAULT_STALE_CLOSE))
        self._dedup_window = int(source.options.get("dedup_window", DEFAULT_DEDUP_WINDOW))
        self._ctx = _Context.from_json(_dict(ctx.get("context")))
        self._ctx_at_open = _Context()
        self._seen: OrderedDict[str, int] = OrderedDict()
        for uuid in ctx.get("seen") or ():
            if isinstance(uuid, str):
                self._seen[uuid] = -1
        self._open: _OpenTurn | None = None
        self._unknown: Counter[str] = Counter()

    # -- the TurnParser protocol --------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        try:
            records, out = decode_line(line)
            result: list[Turn | DeadLetter] = list(out)
            for rec in records:
                result.extend(self._apply(rec, line))
        except Exception as exc:  # a parser must never raise on its input
            return [DeadLetter(line.start, line.end, f"unprocessable record: {exc!r}"[:300])]
        return result

    def close_idle(self, quiet_for: float) -> list[Turn]:
        turn = self._open
        if turn is None or quiet_for < self._idle_close:
            return []
        pending = turn.builder.pending_tools()
        if pending and quiet_for < self._stale_close:
            return []
        return self._close(turn.end, "stale" if pending else "idle", interrupted=bool(pending))

    def pending_from(self) -> int | None:
        return None if self._open is None else self._open.start

    def snapshot(self) -> dict[str, Any]:
        limit = self.pending_from()
        ctx = self._ctx if self._open is None else self._ctx_at_open
        seen = [u for u, at in self._seen.items() if limit is None or at < limit]
        return {"context": ctx.to_json(), "seen": seen[-SNAPSHOT_SEEN:]}

    def unknown_types(self) -> dict[str, int]:
        return dict(self._unknown)

    # -- records -------------------------------------------------------------------------------

    def _apply(self, rec: dict[str, Any], line: Line) -> list[Turn | DeadLetter]:
        uuid = _str(rec.get("uuid"))
        if uuid:
            if uuid in self._seen:
                return []
            self._remember(uuid, line.start)
        kind = _str(rec.get("type"))
        self._ctx.version = _str(rec.get("version")) or self._ctx.version
        self._ctx.session_id = _str(rec.get("sessionId")) or self._ctx.session_id
        ts = parse_time(rec.get("timestamp"))
        if kind not in KNOWN_TYPES:
            self._unknown[f"{self._ctx.version or '?'}:{kind or '?'}"] += 1
        elif rec.get("isSidechain") is True:
            pass  # 1.0.x wrote sub-agent lines inline; they belong to the sub-agent, not the turn
        else:
            out = self._dispatch(kind, rec, line, ts)
            if out is not None:
                return out
        if self._open is not None:
            self._open.touch(line, ts)
        return []

    def _remember(self, uuid: str, start: int) -> None:
        self._seen[uuid] = start
        while len(self._seen) > self._dedup_window:
            self._seen.popitem(last=False)

    def _dispatch(
        self, kind: str, rec: dict[str, Any], line: Line, ts: datetime | None
    ) -> list[Turn | DeadLetter] | None:
        """Handle one record; a returned list means the record was consumed as a boundary."""
        if kind == "user":
            return self._user(rec, line, ts)
        if kind == "assistant":
            return self._assistant(rec, line, ts)
        if kind == "system":
            subtype = rec.get("subtype")
            if subtype in ("turn_duration", "stop_hook_summary"):
                return self._end(line, ts, _str(subtype))
        elif kind == "progress":
            data = _dict(rec.get("data"))
            if data.get("hookEvent") == "Stop":
                return self._end(line, ts, "stop_hook")
            if self._open is not None:
                _note_progress(self._open.builder, rec)
        elif kind == "attachment":
            attachment = _dict(rec.get("attachment"))
            if attachment.get("hookEvent") == "Stop":
                return self._end(line, ts, "stop_hook")
        elif kind in _TITLE_RANK:
            self._name(kind, rec)
        return None

    def _name(self, kind: str, rec: Mapping[str, Any]) -> None:
        title = _str(rec.get("summary") or rec.get("customTitle") or rec.get("aiTitle")).strip()
        rank = _TITLE_RANK[kind]
        if title and rank >= self._ctx.name_rank:
            self._ctx.session_name, self._ctx.name_rank = title, rank

    def _user(
        self, rec: dict[str, Any], line: Line, ts: datetime | None
    ) -> list[Turn | DeadLetter] | None:
        kind = user_kind(rec)
        turn = self._open
        if kind in ("prompt", "command"):
            out: list[Turn | DeadLetter] = list(self._close(line.start, "next_prompt"))
            self._start(rec, line, ts, "command" if kind == "command" else "")
            return out
        if turn is None:
            return []
        if kind == "interrupt":
            turn.touch(line, ts)
            return list(self._close(line.end, "interrupt", interrupted=True))
        if kind == "command_output" and turn.origin == "command":
            turn.touch(line, ts)
            return list(self._close(line.end, "command_output"))
        if kind == "tool_result":
            turn.builder.add_results(rec, ts)
        elif kind == "meta" and not turn.builder.has_activity() and rec.get("isMeta"):
            # the expanded body of a slash command: part of what the user asked
            text = content_text(_message(rec).get("content"))
            if text:
                turn.messages.append(Message("user", text))
                turn.builder.pending_input = tuple(turn.messages)
        return None

    def _assistant(
        self, rec: dict[str, Any], line: Line, ts: datetime | None
    ) -> list[Turn | DeadLetter] | None:
        if self._open is None:
            if _str(_message(rec).get("model")) == SYNTHETIC_MODEL:
                return []
            self._start(rec, line, ts, "continuation")
        assert self._open is not None
        self._open.builder.add_assistant(rec, ts)
        return None

    def _end(self, line: Line, ts: datetime | None, why: str) -> list[Turn | DeadLetter]:
        if self._open is None:
            return []  # a late end marker of a turn already finished
        self._open.touch(line, ts)
        return list(self._close(line.end, why))

    # -- turns -------------------------------------------------------------------------------

    def _start(self, rec: dict[str, Any], line: Line, ts: datetime | None, origin: str) -> None:
        self._ctx_at_open = _Context(**self._ctx.to_json())
        session_id = _str(rec.get("sessionId")) or self._ctx.session_id or self._stem()
        related = _Related.of(self._source, session_id)
        turn = _OpenTurn(
            start=line.start,
            end=line.end,
            key_uuid=_str(rec.get("uuid")) or f"offset-{line.start}",
            session_id=session_id,
            origin=origin,
            builder=related.builder(0),
            started_at=ts,
            ended_at=ts,
            attributes=_turn_attributes(rec, self._ctx.version),
        )
        if rec.get("type") == "user":
            text = content_text(_message(rec).get("content"))
            turn.origin = origin or _origin(rec, text)
            turn.messages.append(Message("user", text))
            turn.builder.pending_input = tuple(turn.messages)
        turn.attributes["claude_code.origin"] = turn.origin
        self._open = turn

    def _stem(self) -> str:
        return self._source.stable_name.removesuffix(".jsonl")

    def _close(self, end: int, why: str, interrupted: bool = False) -> list[Turn]:
        turn, self._open = self._open, None
        if turn is None:
            return []
        if turn.origin == "command" and not turn.builder.has_activity():
            return []  # a local slash command (/clear, /mcp...): nothing ran
        spans = turn.builder.build()
        final = turn.builder.final_text()
        attributes = {**turn.attributes, "claude_code.ended_by": why}
        return [
            Turn(
                key=turn_key(NAME, turn.session_id, turn.key_uuid),
                session_id=turn.session_id,
                start=turn.start,
                end=max(end, turn.start),
                agent_name=self._source.agent_name or NAME,
                model=turn.builder.last_model(),
                session_name=self._ctx.session_name,
                messages=tuple(turn.messages),
                output_messages=(Message("assistant", final),) if final else (),
                spans=spans,
                started_at=turn.started_at,
                ended_at=turn.ended_at,
                interrupted=interrupted,
                attributes=attributes,
            )
        ]


def _turn_attributes(rec: Mapping[str, Any], version: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, name in (("cwd", "cwd"), ("gitBranch", "git_branch"), ("promptId", "prompt_id")):
        if _str(rec.get(key)):
            attributes[f"claude_code.{name}"] = rec[key]
    if version:
        attributes["claude_code.version"] = version
    return attributes


# ---------------------------------------------------------------------------------------------
# The format


def _is_claude_record(raw: object) -> bool:
    if not isinstance(raw, dict):
        return False
    kind = raw.get("type")
    if kind not in KNOWN_TYPES:
        return False
    if kind in _HEADER_TYPES:
        return True
    return "uuid" in raw and ("sessionId" in raw or "parentUuid" in raw)


_HEAD_TYPE = re.compile(rb'"type":\s*"(user|assistant|system|progress|attachment)"')


def _looks_like_claude_record(prefix: bytes) -> bool:
    return bool(_HEAD_TYPE.search(prefix)) and b'"sessionId":' in prefix and b'"uuid":' in prefix


class ClaudeCodeFormat:
    name = NAME

    def claims(self, path: PurePath, head: bytes) -> bool:
        if not Source(str(path)).stable_name.endswith(".jsonl"):
            return False
        parts = path.parts
        if any(parts[i : i + 2] == (".claude", "projects") for i in range(len(parts) - 1)):
            return True
        first = next((ln for ln in head.split(b"\n") if ln.strip()), b"")
        try:
            return _is_claude_record(orjson.loads(first))
        except orjson.JSONDecodeError:
            return _looks_like_claude_record(first)  # a first line longer than the head

    def is_auxiliary(self, path: PurePath) -> bool:
        if "subagents" in path.parts or "tool-results" in path.parts:
            return True
        return path.name.startswith("agent-") and path.name.endswith(".jsonl")

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return ClaudeCodeParser(source, context)


FORMAT = ClaudeCodeFormat()
