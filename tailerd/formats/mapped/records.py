"""Mapped records: what one JSON record says, read through a mapping's compiled expressions.

`Reader(spec, compiled, record).read()` gives a `Record` (session, turn id, boundaries, messages,
LLM and tool calls, tool result) or raises `Unreadable`, whose message becomes the line's
dead-letter reason. Values follow JMESPath truthiness (`present`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tailerd.domain import LLMCall, Message, ToolCall, Usage
from tailerd.formats.base import parse_time
from tailerd.formats.mapped.spec import MappingSpec


class Unreadable(Exception):  # an internal signal: becomes a DeadLetter's reason
    pass


def present(value: Any) -> bool:
    """JMESPath truthiness: null, false, "", [] and {} are absent (0 is present)."""
    return not (value is None or value is False or value in ("", [], {}))


def as_text(value: Any) -> str:
    """Strings as they are, None as "", anything else as sorted-key JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def as_count(value: Any) -> int:
    """A token count: a non-negative int from an int, finite float or digit string; else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return max(0, int(value))
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def optional_count(value: Any) -> int:
    """`as_count` of a present value; 0 when absent."""
    return as_count(value) if present(value) else 0


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A record that is the result of an earlier tool call, by call id."""

    call_id: str
    result: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class Record:
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
    tool_result: ToolResult | None

    @property
    def has_content(self) -> bool:
        return any(
            x is not None
            for x in (self.user, self.assistant, self.llm, self.tool, self.tool_result)
        )


class Reader:
    """Evaluates a mapping's compiled expressions on one record; never raises but `Unreadable`."""

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
            raise Unreadable(f"{where}: {type(exc).__name__}: {exc}") from None

    def flag(self, where: str) -> bool:
        return present(self.get(where))

    def text(self, where: str) -> str | None:
        value = self.get(where)
        return as_text(value) if present(value) else None

    def time(self, where: str) -> datetime | None:
        return parse_time(self.get(where))

    def read(self) -> Record:
        session = self.get("session_id")
        if isinstance(session, bool) or not isinstance(session, (str, int)) or session == "":
            raise Unreadable("no session id (session_id expression gave nothing usable)")
        time = self.time("timestamp")
        tool, awaits = self._tool(time)
        turn_id = self.get("turn_id")
        return Record(
            session_id=str(session),
            session_name=self.text("session_name") or "",
            time=time,
            turn_id=as_text(turn_id) if present(turn_id) else "",
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
        cache_read = optional_count(self.get("llm.cache_read_tokens"))
        cache_write = optional_count(self.get("llm.cache_write_tokens"))
        input_tokens = optional_count(self.get("llm.input_tokens"))
        if not self._spec.input_includes_cache:
            input_tokens += cache_read + cache_write
        response = self.text("llm.response")
        return LLMCall(
            model=self.text("llm.model") or "",
            provider_name=self.text("llm.provider") or "",
            output_messages=(Message("assistant", response),) if response is not None else (),
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=optional_count(self.get("llm.output_tokens")),
                cache_read_input_tokens=cache_read,
                cache_creation_input_tokens=cache_write,
                reasoning_tokens=optional_count(self.get("llm.reasoning_tokens")),
            ),
            started_at=self.time("llm.started_at"),
            ended_at=time,
        )

    def _tool(self, time: datetime | None) -> tuple[ToolCall | None, bool]:
        if self._spec.tool is None or not self.flag("tool.when"):
            return None, False
        call_id = self.text("tool.call_id") or ""
        result = self.get("tool.result")
        awaits = not present(result) and bool(call_id) and self._spec.tool_result is not None
        call = ToolCall(
            name=self.text("tool.name") or "",
            arguments=as_text(self.get("tool.arguments")),
            result=as_text(result) if present(result) else "",
            tool_call_id=call_id,
            is_error=self.flag("tool.is_error"),
            started_at=self.time("tool.started_at") or (time if awaits else None),
            ended_at=None if awaits else time,
        )
        return call, awaits

    def _tool_result(self) -> ToolResult | None:
        if self._spec.tool_result is None or not self.flag("tool_result.when"):
            return None
        result = self.get("tool_result.result")
        return ToolResult(
            call_id=self.text("tool_result.call_id") or "",
            result=as_text(result) if present(result) else "",
            is_error=self.flag("tool_result.is_error"),
        )
