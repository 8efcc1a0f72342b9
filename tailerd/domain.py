"""The nouns shared by every stage: lines in, turns out, outcomes back.

Everything here is a frozen value. The pipeline is

    file bytes -> Line -> (format parser) -> Turn -> (emitter) -> spans -> (sink) -> Outcome

and a file's checkpoint moves only over turns whose Outcome was Delivered or Rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Line:
    """One complete, newline-terminated line: bytes [start, end) of its file (end past the \\n)."""

    start: int
    end: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "user" | "assistant" | "system" | "tool"
    content: str = ""
    tool_call_id: str = ""
    tool_name: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts, in Weave's convention: input_tokens includes cache reads and writes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class LLMCall:
    model: str = ""
    provider_name: str = ""
    input_messages: tuple[Message, ...] = ()
    output_messages: tuple[Message, ...] = ()
    usage: Usage = field(default_factory=Usage)
    reasoning: str = ""
    response_id: str = ""
    finish_reasons: tuple[str, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str = ""
    arguments: str = ""
    result: str = ""
    tool_call_id: str = ""
    is_error: bool = False
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubAgentCall:
    """A delegated agent. Its own LLM and tool calls are nested under it in `spans`."""

    name: str = ""
    model: str = ""
    agent_id: str = ""
    input_messages: tuple[Message, ...] = ()
    output_messages: tuple[Message, ...] = ()
    tool_name: str = ""
    tool_call_id: str = ""
    spans: tuple[SpanCall, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


SpanCall = Union[LLMCall, ToolCall, SubAgentCall]  # noqa: UP007 - a runtime alias, valid on 3.10


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished turn, shaped for `weave.log_turn`.

    `key` is stable across restarts, re-imports and hosts: the trace and span ids derive from it.
    `start`/`end` are the byte range of the source file the turn was assembled from.
    """

    key: str
    session_id: str
    start: int
    end: int
    agent_name: str = ""
    model: str = ""
    session_name: str = ""
    messages: tuple[Message, ...] = ()
    output_messages: tuple[Message, ...] = ()
    spans: tuple[SpanCall, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    interrupted: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # The agent's own identities of what this turn is made of ("<agent>:<kind>:<id>": a Claude
    # Code prompt record's uuid, a Gemini message id, a Codex turn id). A turn whose identities
    # were all shipped before, from any file of this host, is history copied into another file
    # (a resume, a fork, a migration) and is not shipped again. Empty: never deduplicated.
    identities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not become part of a turn. Counted, reported, skipped; never fatal."""

    start: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: send the same thing again later."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent failure: the turn is dead-lettered and does not block the file.

    `too_large`: the backend refused the payload for its size (HTTP 413); delivery then sends
    a single turn again with its content cut (`tailerd.shrink`) before dead-lettering it."""

    reason: str
    too_large: bool = False


Outcome = Union[Delivered, Retry, Rejected]  # noqa: UP007
