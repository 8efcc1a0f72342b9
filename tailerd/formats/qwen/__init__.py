"""Qwen Code: `~/.qwen/projects/<sanitised cwd>/chats/<session id>.jsonl` (`QWEN_HOME`
moves `~/.qwen`; `QWEN_RUNTIME_DIR`, when set, holds `projects/`: QwenLM/qwen-code
`packages/core/src/config/storage.ts`). A fork of Gemini CLI whose session files look like
Claude Code's (`uuid`/`parentUuid`/`sessionId`/`type`/`cwd`/`version` on every record) with
Gemini's message parts and `usageMetadata`: see `records` for the record shapes and the token
mapping, `turns` for where a turn starts and ends.

Shipped: the prompt, one LLM span per assistant record (text, thought parts as reasoning,
`usageMetadata` tokens), one tool span per `functionCall` with the `tool_result` record's
`functionResponse`, a sub-agent span per sidechain agent, a "compaction" span per
`system/chat_compression` (Qwen does not record the summariser's tokens:
`tailerd.usage.recorded = false`), the session title (`system/custom_title`) and `cwd`.
Qwen records no cost; its `ui_telemetry` records repeat the usage and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.options import SECONDS, OptionSchema
from tailerd.formats.qwen.subagents import is_subagent_file
from tailerd.formats.qwen.turns import QwenParser

NAME = "qwen-code"
_TYPES = frozenset({"user", "assistant", "tool_result", "system"})


def _is_qwen_record(raw: object) -> bool:
    """A Qwen chat record: Claude-like keys, but Gemini `message.parts` or a `systemPayload`
    (Claude Code's records have `message.content` and no `systemPayload`)."""
    if not isinstance(raw, dict) or raw.get("type") not in _TYPES:
        return False
    if "uuid" not in raw or "sessionId" not in raw:
        return False
    message = raw.get("message")
    return "systemPayload" in raw or (
        isinstance(message, dict) and isinstance(message.get("parts"), list)
    )


class QwenFormat:
    name = NAME

    def claims(self, path: PurePath, head: bytes) -> bool:
        """`.qwen/projects/*/chats/*.jsonl`, or a first record shaped like Qwen's."""
        parts = path.parts
        if path.parent.name == "chats" and any(
            parts[i : i + 2] == (".qwen", "projects") for i in range(len(parts) - 1)
        ):
            return True
        first = next((ln for ln in head.split(b"\n") if ln.strip()), b"")
        try:
            return _is_qwen_record(orjson.loads(first))
        except orjson.JSONDecodeError:  # a first line glued to the next, or longer than head
            return (
                b'"uuid":' in first
                and b'"sessionId":' in first
                and (b'"parts":' in first or b'"systemPayload":' in first)
            )

    def is_auxiliary(self, path: PurePath) -> bool:
        """A sub-agent transcript, read through the session that spawned it (`subagents`)."""
        return is_subagent_file(path)

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return QwenParser(source, context)


FORMAT = QwenFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {"idle_close": SECONDS, "stale_close": SECONDS}
