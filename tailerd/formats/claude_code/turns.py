"""Claude Code turn assembly: the per-file state machine that cuts records into finished turns.

A turn starts at a real user prompt (or a slash command that makes the model work, or assistant
activity with no prompt before it: a continuation) and ends at the first of
`system/turn_duration`, a Stop hook, an interruption marker (the turn is marked interrupted), the
next prompt, or quiescence (`close_idle`). Records are deduplicated by uuid; `snapshot` carries
the session context, recent uuids and the sub-agent ids already shipped across a restart.

Billed calls outside the turns (see `synthetic`): at a `compact_boundary` inside a turn the
compaction summariser's call is nested in that turn; once the file has been quiet for
`idle_close` with no turn open, the session's sub-agent transcripts no turn read are shipped as
synthetic turns. Until then `pending_from` holds the checkpoint at the start of the last line:
after a restart that one line is read again (with no turn open it starts none) and arms the
sweep again, so the sweep state needs no snapshot.

Every turn carries the agent's own identities (`Turn.identities`): `claude-code:prompt:<uuid>`
of the record that opened it (when a user record did) and `claude-code:message:<message.id>`
of each of its main-thread LLM calls. Claude Code's `--resume` copies records verbatim (same
uuid, same message.id, sometimes another sessionId), so a copied turn has exactly the
identities of the original. Nested sub-agent calls are left out on purpose: a copy in another
session's file cannot see the original session's sub-agent files, so they would differ.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailerd.domain import DeadLetter, Line, Message, Turn
from tailerd.formats.base import Source, parse_time, turn_key
from tailerd.formats.claude_code.records import (
    KNOWN_TYPES,
    NAME,
    SYNTHETIC_MODEL,
    as_dict,
    as_int,
    as_str,
    content_text,
    decode_line,
    message_of,
    prompt_origin,
    user_kind,
)
from tailerd.formats.claude_code.spans import SpanBuilder
from tailerd.formats.claude_code.subagents import Related, note_progress
from tailerd.formats.claude_code.synthetic import inline_sidechain_span, summariser_span, sweep

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 6 * 3600.0
DEFAULT_DEDUP_WINDOW = 50_000
SNAPSHOT_SEEN = 1000  # uuids carried across a restart (those before the resume offset)
SNAPSHOT_CLAIMED = 5000  # sub-agent ids already shipped, carried across a restart
_TITLE_RANK = {"summary": 1, "ai-title": 2, "custom-title": 3}


@dataclass(slots=True)
class _OpenTurn:
    start: int
    end: int
    key_uuid: str
    session_id: str
    origin: str  # human | task-notification | command | continuation | ...
    builder: SpanBuilder
    related: Related
    prompt_uuid: str = ""  # the user record that opened the turn, if one did
    inline: list[dict[str, Any]] | None = None  # 1.0.x sidechain records written in the file
    messages: list[Message] = field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def inline_sidechain(self) -> list[dict[str, Any]]:
        if self.inline is None:
            self.inline = []
        return self.inline

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
            as_str(raw.get("session_id")),
            as_str(raw.get("version")),
            as_str(raw.get("session_name")),
            as_int(raw.get("name_rank")),
        )


class ClaudeCodeParser:
    def __init__(self, source: Source, context: Mapping[str, Any] | None = None) -> None:
        ctx = as_dict(context)
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._stale_close = float(source.options.get("stale_close", DEFAULT_STALE_CLOSE))
        self._dedup_window = int(source.options.get("dedup_window", DEFAULT_DEDUP_WINDOW))
        self._ctx = _Context.from_json(as_dict(ctx.get("context")))
        self._ctx_at_open = _Context()
        self._seen: OrderedDict[str, int] = OrderedDict()
        for uuid in ctx.get("seen") or ():
            if isinstance(uuid, str):
                self._seen[uuid] = -1
        self._open: _OpenTurn | None = None
        self._unknown: Counter[str] = Counter()
        claimed = ctx.get("claimed")
        self._claimed: set[str] = {a for a in claimed if isinstance(a, str)} if claimed else set()
        background = ctx.get("background")
        self._background: set[str] = (
            {a for a in background if isinstance(a, str)} if background else set()
        )
        self._sweep_at: int | None = None  # start of the last line while a sweep is owed

    # -- the TurnParser protocol --------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        try:
            records, out = decode_line(line)
            result: list[Turn | DeadLetter] = list(out)
            for rec in records:
                result.extend(self._apply(rec, line))
            self._sweep_at = line.start  # new lines may come with new sub-agent files
        except Exception as exc:  # a parser must never raise on its input
            return [DeadLetter(line.start, line.end, f"unprocessable record: {exc!r}"[:300])]
        return result

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if quiet_for < self._idle_close:
            return []
        out: list[Turn] = []
        turn = self._open
        if turn is not None:
            pending = turn.builder.pending_tools()
            if pending and quiet_for < self._stale_close:
                return []
            out = self._close(turn.end, "stale" if pending else "idle", interrupted=bool(pending))
        if self._open is None and self._sweep_at is not None:
            out.extend(self._sweep(self._sweep_at))
            self._sweep_at = None
        return out

    def pending_from(self) -> int | None:
        return self._open.start if self._open is not None else self._sweep_at

    def open_turns(self) -> list[tuple[int, str]]:
        """The open turn as (first byte, what closes it); a sweep still owed is not a turn."""
        if self._open is None:
            return []
        idle, stale = f"{self._idle_close:g} s", f"{self._stale_close:g} s"
        rule = (
            "turn_duration, a Stop hook, an interruption or the next prompt; else"
            f" {idle} of quiet with no tool call waiting ({stale} with one)"
        )
        return [(self._open.start, rule)]

    def snapshot(self) -> dict[str, Any]:
        limit = self.pending_from()
        ctx = self._ctx if self._open is None else self._ctx_at_open
        seen = [u for u, at in self._seen.items() if limit is None or at < limit]
        return {
            "context": ctx.to_json(),
            "seen": seen[-SNAPSHOT_SEEN:],
            "claimed": sorted(self._claimed)[-SNAPSHOT_CLAIMED:],
            "background": sorted(self._background - self._claimed)[-SNAPSHOT_CLAIMED:],
        }

    def unknown_types(self) -> dict[str, int]:
        return dict(self._unknown)

    # -- records -------------------------------------------------------------------------------

    def _apply(self, rec: dict[str, Any], line: Line) -> list[Turn | DeadLetter]:
        uuid = as_str(rec.get("uuid"))
        if uuid:
            if uuid in self._seen:
                return []
            self._remember(uuid, line.start)
        kind = as_str(rec.get("type"))
        self._ctx.version = as_str(rec.get("version")) or self._ctx.version
        self._ctx.session_id = as_str(rec.get("sessionId")) or self._ctx.session_id
        ts = parse_time(rec.get("timestamp"))
        if kind not in KNOWN_TYPES:
            self._unknown[f"{self._ctx.version or '?'}:{kind or '?'}"] += 1
        elif rec.get("isSidechain") is True:
            # 1.0.x wrote sub-agent lines inline: their calls are billed, nested in the turn
            if self._open is not None and kind in ("assistant", "user"):
                self._open.inline_sidechain().append(rec)
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
                return self._end(line, ts, as_str(subtype))
            if subtype == "compact_boundary" and self._open is not None:
                turn = self._open
                span = summariser_span(turn.related, rec, turn.session_id, self._ctx.version)
                if span is not None:
                    turn.builder.add_span(span)
        elif kind == "progress":
            data = as_dict(rec.get("data"))
            if data.get("hookEvent") == "Stop":
                return self._end(line, ts, "stop_hook")
            if self._open is not None:
                note_progress(self._open.builder, rec)
        elif kind == "attachment":
            attachment = as_dict(rec.get("attachment"))
            if attachment.get("hookEvent") == "Stop":
                return self._end(line, ts, "stop_hook")
        elif kind in _TITLE_RANK:
            self._name(kind, rec)
        return None

    def _name(self, kind: str, rec: Mapping[str, Any]) -> None:
        title = as_str(rec.get("summary") or rec.get("customTitle") or rec.get("aiTitle")).strip()
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
            text = content_text(message_of(rec).get("content"))
            if text:
                turn.messages.append(Message("user", text))
                turn.builder.pending_input = tuple(turn.messages)
        return None

    def _assistant(
        self, rec: dict[str, Any], line: Line, ts: datetime | None
    ) -> list[Turn | DeadLetter] | None:
        if self._open is None:
            if as_str(message_of(rec).get("model")) == SYNTHETIC_MODEL:
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
        session_id = as_str(rec.get("sessionId")) or self._ctx.session_id or self._stem()
        related = Related.of(self._source, session_id, self._claimed, self._background)
        turn = _OpenTurn(
            start=line.start,
            end=line.end,
            key_uuid=as_str(rec.get("uuid")) or f"offset-{line.start}",
            session_id=session_id,
            origin=origin,
            builder=related.builder(),
            related=related,
            started_at=ts,
            ended_at=ts,
            attributes=_turn_attributes(rec, self._ctx.version),
        )
        if rec.get("type") == "user":
            turn.prompt_uuid = as_str(rec.get("uuid"))
            text = content_text(message_of(rec).get("content"))
            turn.origin = origin or prompt_origin(rec, text)
            turn.messages.append(Message("user", text))
            turn.builder.pending_input = tuple(turn.messages)
        turn.attributes["claude_code.origin"] = turn.origin
        self._open = turn

    def _sweep(self, offset: int) -> list[Turn]:
        session_id = self._ctx.session_id or self._stem()
        related = Related.of(self._source, session_id, self._claimed, self._background)
        name = self._source.agent_name
        return sweep(related, session_id, self._ctx.version, offset, name)

    def _stem(self) -> str:
        return self._source.stable_name.removesuffix(".jsonl")

    def _close(self, end: int, why: str, interrupted: bool = False) -> list[Turn]:
        turn, self._open = self._open, None
        if turn is None:
            return []
        if turn.origin == "command" and not turn.builder.has_activity():
            return []  # a local slash command (/clear, /mcp...): nothing ran
        spans = turn.builder.build()
        inline = inline_sidechain_span(turn.related, turn.inline) if turn.inline else None
        if inline is not None:
            spans = (*spans, inline)
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
                identities=_identities(turn),
            )
        ]


def _identities(turn: _OpenTurn) -> tuple[str, ...]:
    prompt = (f"{NAME}:prompt:{turn.prompt_uuid}",) if turn.prompt_uuid else ()
    calls = (f"{NAME}:message:{m}" for m in turn.builder.message_ids())
    return (*prompt, *dict.fromkeys(calls))


def _turn_attributes(rec: Mapping[str, Any], version: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, name in (("cwd", "cwd"), ("gitBranch", "git_branch"), ("promptId", "prompt_id")):
        if as_str(rec.get(key)):
            attributes[f"claude_code.{name}"] = rec[key]
    if version:
        attributes["claude_code.version"] = version
    if "claude_code.cwd" in attributes:  # the working directory, under every format's name
        attributes["tailerd.cwd"] = attributes["claude_code.cwd"]
    return attributes
