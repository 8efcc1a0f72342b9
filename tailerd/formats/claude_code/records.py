"""Claude Code records: decoding one line into JSON records and reading their typed pieces.

Everything here looks at one record at a time: which records exist (`KNOWN_TYPES`), what kind of
user record a line is (`user_kind`), a message's plain text (`content_text`), its token usage
(`usage_of`). Lenient accessors (`as_str`, `as_int`, `as_dict`) turn a missing or mistyped field
into an empty value, so a record never raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from tailerd.domain import DeadLetter, Line, Usage

NAME = "claude-code"
PROVIDER = "anthropic"
MAX_RECOVERY_BYTES = 4 * 1024 * 1024  # a longer invalid line is dropped without looking inside
MAX_RECOVERY_ATTEMPTS = 256
SYNTHETIC_MODEL = "<synthetic>"

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


def as_str(value: object) -> str:
    """The value if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def as_int(value: object) -> int:
    """The value if it is an int (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_dict(value: object) -> dict[str, Any]:
    """The value if it is a JSON object, else {}."""
    return value if isinstance(value, dict) else {}


def message_of(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A record's `message` object ({} when absent)."""
    return as_dict(rec.get("message"))


def blocks_of(content: object) -> list[dict[str, Any]]:
    """Content blocks of a message: a bare string is one text block; non-objects dropped."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def image_marker(block: Mapping[str, Any]) -> str:
    """What an image block becomes: never its base64 payload."""
    source = as_dict(block.get("source"))
    media = as_str(source.get("media_type")) or "unknown"
    data = as_str(source.get("data"))
    size = len(data) * 3 // 4 - data[-2:].count("=") if data else 0
    return f"[image {media} {size} bytes]"


def content_text(content: object) -> str:
    """Plain text of a message or tool-result content: text blocks joined, images as markers."""
    parts: list[str] = []
    for block in blocks_of(content):
        kind = block.get("type")
        if kind == "text":
            parts.append(as_str(block.get("text")))
        elif kind == "image":
            parts.append(image_marker(block))
        elif kind == "tool_reference":
            parts.append(f"[tool {as_str(block.get('tool_name'))}]")
    return "\n".join(p for p in parts if p)


def capped(text: str, cap: int) -> str:
    """At most `cap` characters of text, with a marker saying it was cut."""
    if len(text) <= cap:
        return text
    return f"{text[:cap]}\n[truncated at {cap} characters]"


def user_kind(rec: Mapping[str, Any]) -> str:
    """prompt | command | command_output | interrupt | tool_result | meta."""
    content = message_of(rec).get("content")
    if any(b.get("type") == "tool_result" for b in blocks_of(content)):
        return "tool_result"
    text = content_text(content).lstrip()
    if rec.get("isMeta") or rec.get("isCompactSummary") or not text:
        return "meta"
    return next((kind for prefixes, kind in _USER_PREFIXES if text.startswith(prefixes)), "prompt")


def prompt_origin(rec: Mapping[str, Any], text: str) -> str:
    """Who wrote a prompt: the record's `origin.kind`, else task-notification | human."""
    kind = as_str(as_dict(rec.get("origin")).get("kind"))
    if kind:
        return kind
    return "task-notification" if text.lstrip().startswith("<task-notification>") else "human"


def usage_of(raw: Mapping[str, Any]) -> Usage:
    """Anthropic usage (input excludes cache) as weave `Usage` (input includes cache), tokens."""
    fresh = as_int(raw.get("input_tokens"))
    cache_read = as_int(raw.get("cache_read_input_tokens"))
    cache_write = as_int(raw.get("cache_creation_input_tokens"))
    output = as_int(raw.get("output_tokens"))
    prompt = fresh + cache_read + cache_write
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        total_tokens=prompt + output,
    )


def as_json_text(value: object) -> str:
    """Strings as they are, anything else as sorted-key JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
