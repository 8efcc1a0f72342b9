"""What the Copilot parser keeps: the session context that outlives a turn, the open turn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tailerd.domain import Message, SpanCall
from tailerd.formats.copilot_cli.events import Tokens, ToolState, as_dict, as_str

# events that carry nothing a turn ships (counted as ignored only when unknown)
IGNORED = frozenset(
    {
        "hook.start",
        "hook.end",
        "session.info",
        "session.mode_changed",
        "session.truncation",
        "session.usage_checkpoint",
        "session.auto_mode_resolved",
        "session.compaction_start",
        "session.idle",
        "system.message",
        "system.notification",
        "assistant.reasoning",
        "assistant.intent",
        "tool.user_requested",
        "tool.execution_partial_result",
        "tool.execution_progress",
        "session.plan_changed",
        "session.workspace_file_changed",
        "session.title_changed",
        "session.context_changed",
    }
)


@dataclass(slots=True)
class Context:
    """What outlives a turn; snapshot() saves it as it was where the open turn began."""

    session_id: str = ""
    version: str = ""
    cwd: str = ""
    model: str = ""
    recorded: dict[str, Tokens] = field(default_factory=dict)

    def copy(self) -> Context:
        return Context(
            self.session_id,
            self.version,
            self.cwd,
            self.model,
            {m: Tokens(*t.to_json()) for m, t in self.recorded.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "version": self.version,
            "cwd": self.cwd,
            "model": self.model,
            "recorded": {m: t.to_json() for m, t in self.recorded.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Context:
        recorded = {m: Tokens.from_json(t) for m, t in as_dict(raw.get("recorded")).items()}
        return cls(
            as_str(raw.get("session_id")),
            as_str(raw.get("version")),
            as_str(raw.get("cwd")),
            as_str(raw.get("model")),
            recorded,
        )


@dataclass(slots=True)
class OpenTurn:
    anchor: str  # the event id the turn is keyed by (its first user.message, or first event)
    start: int
    end: int
    started_at: datetime | None
    interaction_id: str = ""
    messages: list[Message] = field(default_factory=list)
    items: list[SpanCall | ToolState] = field(default_factory=list)
    tools: dict[str, ToolState] = field(default_factory=dict)
    identities: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    final: bool = False  # the latest top-level message requested no tool
    task_complete: str | None = None
    interrupted: bool = False
    stalled: bool = False  # a session.error since the agent last did anything
    model: str = ""
