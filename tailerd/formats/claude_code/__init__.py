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
`<dir>/agent-<id>.jsonl` (2.0.x) through `Source.read_related`, to any depth (a cycle guard, no
depth cap). Billed calls no turn holds (the compaction summariser, Warmup sidechains, sub-agents
whose parent turn is missing) are nested in the interrupted turn or shipped as synthetic turns
marked `tailerd.synthetic` (see `synthetic`). Only a Claude Code sidechain file named
`agent-*.jsonl` whose session file can ship it is auxiliary (see `layout`); a Warmup or
parentless sub-agent file is tailed on its own (see `standalone`).

Options (`source.options`):

* `idle_close` (30.0): seconds of quiet after which an open turn with no tool call waiting for
  its result is finished.
* `stale_close` (21600.0): seconds of quiet after which an open turn is finished even with tool
  calls still waiting (marked interrupted: the agent most likely died).
* `tool_result_cap` (262144): characters kept of a tool result (spilled results included).
* `subagent_cap` (67108864): bytes read of a sub-agent transcript.
* `dedup_window` (50000): record uuids remembered to drop duplicated records.

This package: `records` (one record), `spans` (LLM/tool calls of a turn), `subagents`
(neighbouring files), `synthetic` (calls no turn holds), `layout` (which files are auxiliary),
`standalone` (a sub-agent file tailed alone), `turns` (the state machine); the format is below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.claude_code.layout import is_subagent_file, is_subagent_file_read_by_parent
from tailerd.formats.claude_code.records import KNOWN_TYPES, NAME
from tailerd.formats.claude_code.standalone import SubagentFileParser
from tailerd.formats.claude_code.turns import ClaudeCodeParser
from tailerd.formats.options import COUNT, SECONDS, OptionSchema

__all__ = ["FORMAT", "NAME", "ClaudeCodeFormat", "ClaudeCodeParser"]

# Records that identify a transcript even without a uuid.
_HEADER_TYPES = frozenset({"summary", "file-history-snapshot", "queue-operation"})


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
        """A sub-agent transcript its session's parser reads (looks at the file's first line
        and its session file's size; see `layout`)."""
        return is_subagent_file_read_by_parent(path)

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        """A sub-agent file tailed on its own (named `agent-*`, first record a sidechain
        record) gets a SubagentFileParser; any other file the turn parser."""
        if is_subagent_file(PurePath(source.path)):
            return SubagentFileParser(source, context)
        return ClaudeCodeParser(source, context)


FORMAT = ClaudeCodeFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {
    "idle_close": SECONDS,
    "stale_close": SECONDS,
    "dedup_window": COUNT,
    "tool_result_cap": COUNT,
    "subagent_cap": COUNT,
}
