"""OpenAI Codex CLI rollouts: `sessions/YYYY/MM/DD/rollout-*.jsonl` (also archived, `.jsonl.zst`).

Every line is an envelope `{"timestamp", ["ordinal"], "type", "payload"}`.

Turns. `event_msg/task_started{turn_id}` opens a turn; `task_complete` finishes it.
`turn_aborted` marks it interrupted, but the request in flight when the user interrupted may
still write its `token_count` (and tool outputs) after it: the aborted turn lingers until the
next turn opens, its `task_complete` arrives, or `abort_grace` seconds of quiet, so that usage is
counted in the turn it belongs to. (Waiting is chosen over a separate turn because the usage
belongs to a request of that turn, and the wait is short and ends at once when work goes on.)
Usage written later still (after the grace, or after the turn was acknowledged) is not dropped:
it becomes a synthetic continuation turn holding one LLM call, tagged
`tailerd.synthetic = "late_usage"` and `codex.continues_turn = <the turn's key>`.
Files older than the task events (<= 0.4x) only have `event_msg/user_message`: a user message
opens a turn and the next one finishes the previous turn. A user message that arrives while an
explicit (task_started) turn is open is a steering message and joins that turn; one that
precedes its `task_started` is adopted by it. Prompts come from `user_message` (or paginated
`item_completed{UserMessage}`) events; `response_item` user messages mostly carry injected
context (environment, AGENTS.md, ...) or echo the event. Some writers record prompts only as
`response_item` user messages: in a turn without task events, a user item that is not injected
context (no leading `<tag>` or AGENTS.md header) and arrives after the model answered, with no
tool output pending, is such a prompt and opens the next turn (a `user_message` event that
follows it before any answer is its own record and replaces it).

Timestamps. A record whose timestamp is missing or unreadable has no time: a turn whose first
record has none has no `started_at` (never the time it was read) and is tagged
`tailerd.timestamp_unknown = true`; `codex.unreadable_timestamps` counts such records in a turn.

Identities (`Turn.identities`, for the host-wide "already shipped" index). A fork
(`session_meta.forked_from_id`) replays its parent's records into its own rollout, re-stamped at
or after its creation, so neither keys nor timestamps mark the copy. Every turn carries
`codex:turn:<turn_id>` when its records name one, else `codex:content:<hash>` of its prompts,
model outputs and call ids chained to the previous turn's identity (module `identity`): a
replayed turn has the same identity as in the parent's rollout, the fork's new turns new ones.

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
`{"agent_id": <child id>}`. A child may outlive the parent turn that spawned it (a background
agent, or more input sent to it later), so each finished child turn goes to exactly one place,
by one rule both files give the same answer to, live or `--once`: a child turn that ended no
later than the spawning parent turn (by their timestamps) is nested; any other is shipped from
the child's own rollout (module `lineage`).
* When the parent's turn finishes, the child's rollout is found through `Source.find_related`
  (searched from the directory holding `sessions/`, else from the parent's directory), read
  through `Source.read_related` and parsed by a nested parser; the spawn call becomes a
  `SubAgentCall` holding every LLM and tool call of the child turns that ended by then, in order
  (grandchildren nest the same way, at most 3 levels deep); `codex.subagent_later_turns =
  "shipped_separately"` says the child had more. With no such child turn the spawn call stays a
  plain tool call tagged `codex.subagent_transcript = "shipped_separately"` (or
  `"unavailable"` when the child cannot be found or read); an unfinished child is never nested.
* The child's rollout (`source.subagent.thread_spawn`) is tailed like any file. When one of its
  turns finishes, the child reads its parent's rollout: while the spawning turn is still open,
  or if it ended later than the child's turn, the parent nests that turn and the child emits
  nothing for it; otherwise the turn is shipped on its own, in the parent's conversation
  (`session_id`, hence `gen_ai.conversation.id`, is the parent thread id), tagged
  `codex.parent_turn_key`, `codex.spawn_call_id` and `codex.thread_id` (the child's id). If the
  parent's rollout or its spawn call cannot be found, the turn is shipped tagged
  `codex.spawn_origin = "unavailable"`. Tokens count once either way.
* What the Weave Agents view shows: a child that finished while its parent waited is a
  sub-agent inside the parent's turn, under the spawn call, as before. A background child's work
  is one more turn of the parent's conversation, at the time it finished, agent name `codex`,
  whose attributes name the parent turn and the spawn call; the parent's turn shows the spawn
  call as a tool call whose result is the spawn acknowledgement.
Other sub-threads (review, compaction, guardian: no spawn call points at them) emit their own
turns, tagged `codex.parent_thread_id`; with `nest_subagents = false` every child does, and
nothing is nested.
In a child rollout the copy of the parent's history is skipped: records whose `ordinal` is
below the header's `subagent_history_start_ordinal` (or `history_base.end_ordinal_exclusive`),
or, in a fork without ordinals (`forked_from_id`), records stamped before the child's creation.

Options (`source.options`):
* `idle_close` (default 30 s): quiet time after which an old-style turn (no task events) with
  no tool call awaiting its output is finished.
* `abandon_close` (default 6 h): quiet time after which any open turn is closed as interrupted
  (an explicit turn may legitimately wait this long for an approval).
* `abort_grace` (default 5 s): quiet time an aborted turn waits for its late `token_count`.
* `nest_subagents` (default true): nest child threads under the spawning call (see above).
* `subagent_cap` (default 64 MiB): bytes read of a child rollout (decompressed size for `.zst`).

This package: `records` (one envelope's pieces), `spans` (requests and tool calls of a turn),
`children` (child threads nested under spawn calls), `lineage` (a child tailed on its own),
`identity` (turn identities), `continuation` (late usage), `turns` (the state machine); the
format itself is below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.codex.children import (
    DEFAULT_ABORT_GRACE,
    DEFAULT_SUBAGENT_CAP,
    MAX_SUBAGENT_DEPTH,
)
from tailerd.formats.codex.turns import DEFAULT_ABANDON_CLOSE, DEFAULT_IDLE_CLOSE, CodexParser
from tailerd.formats.options import COUNT, FLAG, SECONDS, OptionSchema

__all__ = [
    "DEFAULT_ABANDON_CLOSE",
    "DEFAULT_ABORT_GRACE",
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
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {
    "idle_close": SECONDS,
    "abandon_close": SECONDS,
    "abort_grace": SECONDS,
    "nest_subagents": FLAG,
    "subagent_cap": COUNT,
}
