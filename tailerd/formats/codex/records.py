"""Codex records: the typed pieces of one rollout envelope's payload.

Lenient accessors (`as_str`, `as_int`, `as_dict`, `ordinal`) turn a missing or mistyped field into
an empty value; `content_text` reads Responses-API content; `usage_of` a `last_token_usage`;
`tool_output` a `*_output` payload; `spawned_thread` the child thread id in a spawn call's result;
`injected_context` tells injected user items from prompts; `thread_header` reads a `session_meta`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tailerd.domain import Usage
from tailerd.formats.base import json_text

AGENT_NAME = "codex"
PROVIDER = "openai"

THREAD_ID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
SESSION_ATTRS = (
    "cwd",
    "cli_version",
    "originator",
    "model_provider",
    "forked_from_id",
    "agent_nickname",
    "agent_role",
)
CALL_TYPES = frozenset(
    {"function_call", "custom_tool_call", "local_shell_call", "tool_search_call"}
)
OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output", "tool_search_output"})
_SAFE_THREAD_ID = re.compile(r"[\w.-]+")  # nothing a glob or a path would interpret
# Context Codex injects as user messages: `<environment_context>`, `<user_instructions>`,
# `<permissions instructions>`, ... and the AGENTS.md block.
_INJECTED = re.compile(r"\s*(?:<[A-Za-z_][\w -]*>|# AGENTS\.md instructions)")
_FALSE = frozenset({"0", "false", "no", "off"})


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else {}."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    """The value if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    """The value if it is an int (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def ordinal(value: Any) -> int | None:
    """A record ordinal (an int, not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flag(value: Any, default: bool) -> bool:
    """An option as a bool: "0"/"false"/"no"/"off" are false; None is `default`."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def injected_context(text: str) -> bool:
    """True for a user message that is context Codex injected (or empty), not a prompt."""
    return not text.strip() or _INJECTED.match(text) is not None


def content_text(content: Any) -> str:
    """Text of a Responses-API content list (or a single item, or a plain string)."""
    if isinstance(content, str):
        return content
    items = content if isinstance(content, list) else [content]
    parts: list[str] = []
    for item in items:
        d = as_dict(item)
        if isinstance(d.get("text"), str):
            parts.append(d["text"])
        elif str(d.get("type", "")).endswith("image"):
            parts.append("[image]")
    return "\n".join(parts)


def usage_of(last: dict[str, Any]) -> Usage:
    """A `last_token_usage` object as weave `Usage`, in tokens (already weave's convention)."""
    inp, out = as_int(last.get("input_tokens")), as_int(last.get("output_tokens"))
    total = last.get("total_tokens")
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=as_int(last.get("cached_input_tokens")),
        cache_creation_input_tokens=as_int(last.get("cache_write_input_tokens")),
        reasoning_tokens=as_int(last.get("reasoning_output_tokens")),
        total_tokens=total if isinstance(total, int) else inp + out,
    )


def tool_output(output: Any) -> tuple[str, bool, dict[str, Any]]:
    """(result text, is_error, attributes) of a `*_output` payload's `output`."""
    if isinstance(output, str):
        try:
            legacy = orjson.loads(output)
        except orjson.JSONDecodeError:
            return output, False, {}
        # Older CLIs wrap exec results: {"output": ..., "metadata": {"exit_code", ...}}.
        if isinstance(legacy, dict) and isinstance(legacy.get("output"), str):
            code = as_dict(legacy.get("metadata")).get("exit_code")
            attrs = {"codex.exit_code": code} if isinstance(code, int) else {}
            return legacy["output"], isinstance(code, int) and code != 0, attrs
        return output, False, {}
    return content_text(output), False, {}


def spawned_thread(tool_name: str, output: Any) -> str:
    """The child thread id in a spawn tool's result (`{"agent_id": <thread id>, ...}`)."""
    if "spawn" not in tool_name or not isinstance(output, str):
        return ""
    try:
        agent = as_dict(orjson.loads(output)).get("agent_id")
    except orjson.JSONDecodeError:
        return ""
    return agent if isinstance(agent, str) and THREAD_ID.fullmatch(agent) else ""


@dataclass(frozen=True, slots=True)
class ThreadHeader:
    """A rollout's first `session_meta`: the thread's identity and lineage."""

    thread_id: str
    attributes: dict[str, Any] = field(default_factory=dict)  # codex.cwd, ...parent_thread_id
    spawned: bool = False  # started by a spawn call (`source.subagent.thread_spawn`)
    history_start: int | None = None  # first ordinal of the thread's own records
    forked: bool = False  # `forked_from_id`: the parent's records are replayed into it
    created: str = ""  # the header's own `timestamp`


def thread_header(p: dict[str, Any]) -> ThreadHeader:
    """The ThreadHeader of a `session_meta` payload that has an `id`."""
    attrs: dict[str, Any] = {}
    for name in SESSION_ATTRS:
        if isinstance(p.get(name), str) and p[name]:
            attrs[f"codex.{name}"] = p[name]
    if "codex.cwd" in attrs:  # the working directory, under every format's name
        attrs["tailerd.cwd"] = attrs["codex.cwd"]
    if p.get("source") is not None:
        attrs["codex.source"] = json_text(p["source"])
    spawn = as_dict(as_dict(p.get("source")).get("subagent")).get("thread_spawn")
    parent = as_str(p.get("parent_thread_id")) or as_str(as_dict(spawn).get("parent_thread_id"))
    if parent:
        attrs["codex.parent_thread_id"] = parent
    start = ordinal(p.get("subagent_history_start_ordinal"))
    if start is None:
        start = ordinal(as_dict(p.get("history_base")).get("end_ordinal_exclusive"))
    return ThreadHeader(
        thread_id=as_str(p.get("id")),
        attributes=attrs,
        # Review, compaction or guardian sub-threads have no spawn call to nest under.
        spawned=isinstance(spawn, dict),
        history_start=start,
        forked=bool(as_str(p.get("forked_from_id"))),
        created=as_str(p.get("timestamp")),
    )
