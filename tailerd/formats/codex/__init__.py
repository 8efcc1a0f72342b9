"""OpenAI Codex CLI rollouts: `sessions/YYYY/MM/DD/rollout-*.jsonl` (also archived, `.jsonl.zst`).

Every line is an envelope `{"timestamp", ["ordinal"], "type", "payload"}`.

Turns. `event_msg/task_started{turn_id}` opens a turn; `task_complete` finishes it and
`turn_aborted` finishes it as interrupted. Files older than the task events (<= 0.4x) only have
`event_msg/user_message`: a user message opens a turn and the next one finishes the previous
turn. A user message that arrives while an explicit (task_started) turn is open is a steering
message and joins that turn; one that precedes its `task_started` is adopted by it. Prompts come
only from `user_message` (or paginated `item_completed{UserMessage}`) events, never from the
`response_item` user messages, which carry injected context (environment, AGENTS.md, ...).

LLM calls. Each `turn_context` marks a new model request (0.39 writes the request's
`token_count` before its items, 0.104 after them, so token events alone cannot place the cut).
A request's usage is its distinct `token_count.info.last_token_usage`: `info: null` and repeats
of the previous `total_token_usage` are ignored. Usage is in Weave's convention already
(`input_tokens` includes `cached_input_tokens`, `output_tokens` includes reasoning).
`encrypted_content` is never read.

Tool calls: `function_call`, `custom_tool_call`, `local_shell_call`, `tool_search_call` paired with
their outputs by `call_id`; `web_search_call` has no output record.

Sub-agents. A child thread has its own rollout, `rollout-<local time>-<child id>.jsonl[.zst]`,
somewhere under the Codex home (`sessions/` or `archived_sessions/`); its first `session_meta`
names the parent (`parent_thread_id` or `source.subagent.thread_spawn.parent_thread_id`). The
parent's spawn call is tied to the child by `collab_agent_spawn_end{call_id, new_thread_id}`
(written in the extended persistence mode only) or by the call's own output
`{"agent_id": <child id>}`. When the parent's turn finishes, the child's rollout is found
through `Source.find_related` (searched from the directory holding `sessions/`, else from the
parent's directory), read through `Source.read_related` and parsed by a nested parser; the
spawn call becomes a `SubAgentCall` holding every LLM and tool call of the child's turns, in
order (grandchildren nest the same way, at most 3 levels deep). The child is read as it is at
that moment: child turns written after the parent's turn closed are not shipped. A child that
cannot be found or read leaves the plain tool call, tagged
`codex.subagent_transcript = "unavailable"`.
Since a spawned child's calls travel inside its parent's turn, its own rollout
(`source.subagent.thread_spawn`) emits no turns when tailed: it is read and checkpointed, and
nothing else. Other sub-threads (review, compaction, guardian: no spawn call points at them)
emit their own turns, tagged `codex.parent_thread_id`; with `nest_subagents = false` every
child does, and nothing is nested.
In a child rollout the copy of the parent's history is skipped: records whose `ordinal` is
below the header's `subagent_history_start_ordinal` (or `history_base.end_ordinal_exclusive`),
or, in a fork without ordinals (`forked_from_id`), records stamped before the child's creation.

Options (`source.options`):
* `idle_close` (default 30 s): quiet time after which an old-style turn (no task events) with
  no tool call awaiting its output is finished.
* `abandon_close` (default 6 h): quiet time after which any open turn is closed as interrupted
  (an explicit turn may legitimately wait this long for an approval).
* `nest_subagents` (default true): nest child threads under the spawning call (see above).
* `subagent_cap` (default 64 MiB): bytes read of a child rollout (decompressed size for `.zst`).

This package: `records` (one envelope's pieces), `spans` (requests and tool calls of a turn),
`children` (child threads nested under spawn calls), `turns` (the state machine); the format
itself is below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.codex.children import DEFAULT_SUBAGENT_CAP, MAX_SUBAGENT_DEPTH
from tailerd.formats.codex.turns import DEFAULT_ABANDON_CLOSE, DEFAULT_IDLE_CLOSE, CodexParser

__all__ = [
    "DEFAULT_ABANDON_CLOSE",
    "DEFAULT_IDLE_CLOSE",
    "DEFAULT_SUBAGENT_CAP",
    "FORMAT",
    "MAX_SUBAGENT_DEPTH",
    "CodexFormat",
    "CodexParser",
]


class CodexFormat:
    name = "codex"

    def claims(self, path: PurePath, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        try:
            raw = orjson.loads(first)
        except orjson.JSONDecodeError:
            raw = None
        if isinstance(raw, dict) and "payload" in raw and "timestamp" in raw:
            return raw.get("type") == "session_meta"
        return path.name.startswith("rollout-") and ".jsonl" in path.name

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return CodexParser(source, context)


FORMAT = CodexFormat()
