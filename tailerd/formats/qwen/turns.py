"""The Qwen Code parser: chat records in, finished turns out.

A turn starts at a `user` record that is a prompt (no subtype, or a subtype other than the two
below) and holds every record up to the next prompt. A `user/mid_turn_user_message` (typed
while the agent works) joins the open turn; a `user/notification` (a background task's
message) joins it too, or starts a turn when it was delivered to the model (`deliveredTurn`).
Qwen writes no end-of-turn record in 0.18 (later versions write `system/turn_result`, which
closes the turn), so a turn finishes at the next prompt, at `turn_result`, or after
`idle_close` (30 s) of quiet once the model has answered (the last record is a reply with no
tool call waiting, or the request failed); while the model or a tool is still at work only
`stale_close` (6 h, interrupted) ends it. A reply written after its turn was closed opens a
continuation turn (`qwen.continuation`). `system/rewind` drops the open turn's records after
its `targetUuid` (an emitted turn cannot be recalled). Records of a sub-agent (`isSidechain`,
`agentId`) become a sub-agent span per agent id in the open turn. `system/custom_title` is the
session's title (a manual `/rename` beats an automatic one). Every record's `cwd` becomes
`tailerd.cwd`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, SubAgentCall, Turn
from tailerd.formats.base import Source, turn_key
from tailerd.formats.claude_code.records import decode_line
from tailerd.formats.json_values import as_dict, as_str
from tailerd.formats.qwen.records import (
    Record,
    merged,
    prompt_text,
    spans_of,
    time_of,
    waiting_calls,
)
from tailerd.formats.qwen.subagents import nest, task_calls

AGENT_NAME = "qwen-code"
DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 21600.0
IDENTITY_PREFIX = "qwen:record:"
JOINS_TURN = frozenset({"mid_turn_user_message", "notification"})
_SYSTEM_KEPT = frozenset({"chat_compression"})
# system subtypes of ChatRecord (chatRecordingService.ts) that carry nothing a turn ships
KNOWN_SYSTEM = frozenset(
    {
        "custom_title", "rewind", "turn_result", "ui_telemetry", "session_notes",
        "slash_command", "at_command", "attribution_snapshot", "cron", "parent_session",
        "session_source", "session_execution_engine", "omni_recall", "session_model",
        "session_approval_mode", "agent_bootstrap", "agent_launch_prompt", "agent_retry",
        "agent_session_ready", "file_history_snapshot", "user_text_elements",
        "session_artifact_event", "session_artifact_snapshot", "session_sources_snapshot",
        "branch_checkpoint", "goal_state", "goal_runtime", "goal_turn_end", "realtime_message",
        "background_task_completed", "managed_session_header_v1", "managed_session_event_v1",
        "managed_session_commit_v1",
    }
)  # fmt: skip


@dataclass(slots=True)
class _Open:
    start: int
    end: int
    records: dict[str, Record] = field(default_factory=dict)  # uuid -> record, in order
    agents: dict[str, list[Record]] = field(default_factory=dict)  # sidechain agent id
    # a title set on this turn's branch, and the title before it (a rewind may drop the branch)
    title_parent: str = ""
    title_before: tuple[str, bool] | None = None
    continuation: bool = False  # opened by a reply, not a prompt
    api_error: bool = False  # the latest model request failed (ui_telemetry api_error)


class QwenParser:
    def __init__(self, source: Source, context: Mapping[str, Any] | None) -> None:
        ctx = as_dict(context)
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._stale_close = float(source.options.get("stale_close", DEFAULT_STALE_CLOSE))
        self._session_id = as_str(ctx.get("session_id"))
        self._title = as_str(ctx.get("title"))
        self._title_manual = ctx.get("title_manual") is True
        self._open: _Open | None = None
        self._at_open: dict[str, Any] = self._context()
        self.ignored = 0
        self._unknown: Counter[str] = Counter()  # record types and subtypes not understood

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        records, dead = decode_line(line)  # two records glued on one line are both kept
        out: list[Turn | DeadLetter] = list(dead)
        for record in records:
            self._record(record, line, out)
        return out

    def _record(self, record: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        kind, uuid = record.get("type"), as_str(record.get("uuid"))
        if kind not in ("user", "assistant", "tool_result", "system"):
            self._unknown[f"{as_str(record.get('version')) or '?'}:{kind}"] += 1
            return
        self._session_id = self._session_id or as_str(record.get("sessionId"))
        subtype = record.get("subtype")
        turn = self._open
        if record.get("isSidechain") is True:
            if turn is not None:
                turn.agents.setdefault(as_str(record.get("agentId")), []).append(record)
            else:
                self.ignored += 1
        elif kind == "user" and (
            subtype not in JOINS_TURN or (turn is None and record.get("deliveredTurn") is True)
        ):
            if turn is not None:
                out.append(self._close())
            self._at_open = self._context()
            turn = self._open = _Open(line.start, line.end)
            turn.records[uuid or f"@{line.start}"] = record
        elif kind == "system" and subtype not in _SYSTEM_KEPT:
            if subtype not in KNOWN_SYSTEM:
                self._unknown[f"{as_str(record.get('version')) or '?'}:system/{subtype}"] += 1
            self._system(record, subtype, out)
            if subtype == "ui_telemetry" and self._open is not None:  # durations for spans
                self._open.records[uuid or f"@{line.start}"] = record
        else:
            if turn is None:  # a reply after its turn was closed: a continuation turn
                self._at_open = self._context()
                turn = self._open = _Open(line.start, line.end, continuation=True)
            key = uuid or f"@{line.start}"
            old = turn.records.get(key)
            turn.records[key] = record if old is None else merged(old, record)
            turn.api_error = False
        if self._open is not None:
            self._open.end = max(self._open.end, line.end)

    def close_idle(self, quiet_for: float) -> list[Turn]:
        turn = self._open
        if turn is None:
            return []
        if self._answered(turn) and quiet_for >= self._idle_close:
            return [self._close()]
        if quiet_for >= self._stale_close:
            return [self._close(interrupted=True)]
        return []

    @staticmethod
    def _answered(turn: _Open) -> bool:
        """The model has had its say: the last record is a reply with no tool call left
        waiting, or the request failed. Until then the model or a tool is still at work (a
        slow model may take minutes to answer; quiet time alone does not end its turn)."""
        if turn.api_error:
            return True
        kinds = [r.get("type") for r in turn.records.values() if r.get("type") != "system"]
        return bool(kinds) and kinds[-1] == "assistant" and not waiting_calls(turn.records.values())

    def pending_from(self) -> int | None:
        return self._open.start if self._open is not None else None

    def open_turns(self) -> list[tuple[int, str]]:
        if self._open is None:
            return []
        rule = f"the next prompt or {self._idle_close:g} s of quiet after the model's answer"
        return [(self._open.start, rule)]

    def unknown_types(self) -> dict[str, int]:
        """Record types met and not understood, as "<version>:<type>" -> count."""
        return dict(self._unknown)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._at_open) if self._open is not None else self._context()

    def _context(self) -> dict[str, Any]:
        return {
            "session_id": self._session_id,
            "title": self._title,
            "title_manual": self._title_manual,
        }

    def _system(self, record: Record, subtype: Any, out: list[Turn | DeadLetter]) -> None:
        payload = as_dict(record.get("systemPayload"))
        if subtype == "custom_title":
            title = as_str(payload.get("customTitle"))
            manual = payload.get("titleSource") != "auto"  # absent: manual (Qwen's rule)
            if title and (manual or not self._title_manual):
                if (
                    self._open is not None
                    and as_str(record.get("parentUuid")) in self._open.records
                ):
                    self._open.title_before = (self._title, self._title_manual)
                    self._open.title_parent = as_str(record.get("parentUuid"))
                self._title, self._title_manual = title, manual
        elif subtype == "rewind" and self._open is not None:
            target = as_str(payload.get("targetUuid"))
            uuids = list(self._open.records)
            if target in uuids:
                dropped = uuids[uuids.index(target) + 1 :]
                for uuid in dropped:
                    del self._open.records[uuid]
                if self._open.title_before is not None and self._open.title_parent in dropped:
                    self._title, self._title_manual = self._open.title_before  # its branch went
            else:
                self.ignored += 1
        elif subtype == "turn_result" and self._open is not None:
            out.append(self._close())
        elif subtype == "ui_telemetry" and self._open is not None:
            event = as_str(as_dict(payload.get("uiEvent")).get("event.name"))
            self._open.api_error = self._open.api_error or event.endswith("api_error")

    def _close(self, interrupted: bool = False) -> Turn:
        turn = self._open
        assert turn is not None
        self._open = None
        records = list(turn.records.values())
        session = self._session_id or PurePath(self._source.path).name.split(".")[0]
        spans = spans_of(records)
        calls = task_calls(records)
        if calls:
            spans = nest(spans, calls, self._source, session)
        for agent_id, agent_records in turn.agents.items():
            named = next((as_str(r.get("agentName")) for r in agent_records), "")
            inner = spans_of(agent_records)
            times = [t for t in (time_of(r) for r in agent_records) if t is not None]
            spans.append(
                SubAgentCall(
                    name=named or "subagent",
                    model=next(
                        (as_str(r.get("model")) for r in agent_records if r.get("model")), ""
                    ),
                    agent_id=agent_id,
                    spans=tuple(inner),
                    started_at=times[0] if times else None,
                    ended_at=times[-1] if times else None,
                )
            )
        # the prompt, then what the user typed mid-turn (a background notification joining the
        # turn is not the user's words; it is a prompt only when it started the turn)
        users = [
            r
            for i, r in enumerate(records)
            if r.get("type") == "user" and (i == 0 or r.get("subtype") != "notification")
        ]
        answers = [
            m.content
            for s in spans
            if isinstance(s, LLMCall)
            for m in s.output_messages
            if m.content
        ]
        times = [t for t in (time_of(r) for r in records) if t is not None]
        models = [as_str(r.get("model")) for r in records if as_str(r.get("model"))]
        cwds = [as_str(r.get("cwd")) for r in records if as_str(r.get("cwd"))]
        versions = [as_str(r.get("version")) for r in records if as_str(r.get("version"))]
        attributes: dict[str, Any] = {}
        if cwds:
            attributes["tailerd.cwd"] = cwds[-1]
        if versions:
            attributes["qwen.version"] = versions[-1]
        if turn.continuation:
            attributes["qwen.continuation"] = True
        first = as_str((users or records or [{}])[0].get("uuid"))
        return Turn(
            key=turn_key(AGENT_NAME, session, first or self._source.local_key(turn.start)),
            session_id=session,
            start=turn.start,
            end=turn.end,
            agent_name=self._source.agent_name or AGENT_NAME,
            model=models[-1] if models else "",
            session_name=self._title,
            messages=tuple(Message("user", prompt_text(r)) for r in users),
            output_messages=(Message("assistant", answers[-1]),) if answers else (),
            spans=tuple(spans),
            started_at=times[0] if times else None,
            ended_at=times[-1] if times else None,
            interrupted=interrupted,
            attributes=attributes,
            identities=tuple(
                IDENTITY_PREFIX + as_str(r.get("uuid")) for r in users if as_str(r.get("uuid"))
            ),
        )
