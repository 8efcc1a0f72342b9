"""Anthropic-style message content blocks, as Cursor, Droid and Cline write them.

A record's `message.content` is a string (one text block) or a list of blocks
`{"type": "text", "text"}`, `{"type": "tool_use", "id", "name", "input"}`,
`{"type": "tool_result", "tool_use_id", "content", "is_error"?}`, ... Every helper takes
whatever JSON it is given: a value of the wrong type reads as empty, never raises.
"""

from __future__ import annotations

from typing import Any

from tailerd.domain import ToolCall
from tailerd.formats.base import json_text, parse_time

Record = dict[str, Any]
# tool_use id -> (result text, is_error, the result's timestamp as written)
ToolResults = dict[str, tuple[str, bool, Any]]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def message_blocks(record: Record) -> list[Record]:
    """The blocks of `record["message"]["content"]` (a string content is one text block)."""
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def block_text(blocks: list[Record]) -> str:
    """The non-empty `text` blocks' texts, one a line."""
    return "\n".join(
        _str(b.get("text")) for b in blocks if b.get("type") == "text" and b.get("text")
    )


def result_text(content: Any) -> str:
    """A `tool_result`'s content as text: a list's text parts one a line, else its JSON."""
    if isinstance(content, list):
        return "\n".join(
            _str(c.get("text")) if isinstance(c, dict) else json_text(c) for c in content
        )
    return json_text(content)


def tool_calls(blocks: list[Record], results: ToolResults, when: Any) -> list[ToolCall]:
    """A ToolCall per `tool_use` block, with its result from `results` (by id; none: empty,
    not an error) and times: started at `when` (a datetime or None), ended at the result's."""
    calls: list[ToolCall] = []
    for b in blocks:
        if b.get("type") != "tool_use":
            continue
        call_id = _str(b.get("id"))
        result, is_error, done = results.get(call_id, ("", False, None))
        calls.append(
            ToolCall(
                name=_str(b.get("name")),
                arguments=json_text(b.get("input")),
                result=result,
                tool_call_id=call_id,
                is_error=is_error,
                started_at=when,
                ended_at=parse_time(done) or when,
            )
        )
    return calls
