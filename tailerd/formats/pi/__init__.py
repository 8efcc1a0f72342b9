"""pi coding agent (badlogic/pi-mono, now earendil-works/pi): `~/.pi/agent/sessions/--<cwd with
separators as dashes>--/<ISO timestamp>_<session uuid>.jsonl`. `PI_CODING_AGENT_DIR` moves
`~/.pi/agent` and `PI_CODING_AGENT_SESSION_DIR` the sessions folder
(`packages/coding-agent/src/config.ts`).

Line 1 is the session header `{type: "session", id, timestamp, cwd}`; v3 adds `version: 3` and
gives every later entry an `id` and a `parentId` (a tree: branches, `compaction`,
`branch_summary`, `session_info`, `label`, `custom` entries); legacy v1 files (pi before
0.11) have no ids and the header also names `provider`, `modelId`, `thinkingLevel`. pi
migrates v1 files to v3 when it opens them. See `entries` for the messages, tokens and cost,
`turns` for where a turn starts and ends.

Shipped: the prompt, one LLM span per assistant message (text, thinking as reasoning, tokens,
pi's own cost as `gen_ai.usage.cost` when positive, stop reason, error message), a tool span
per tool call with its result, `!command` runs as tool spans, a sub-agent span per
compaction / branch summary, the session title (`session_info`) and cwd. pi has no built-in
sub-agents. Not recorded by pi: the summariser's tokens, and the agent's version.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.options import SECONDS, OptionSchema
from tailerd.formats.pi.turns import PiParser

NAME = "pi"


def _is_header(raw: object) -> bool:
    """pi's session header: `type: "session"` with an id and a cwd, and either `version` (v3)
    or `modelId` (v1)."""
    return (
        isinstance(raw, dict)
        and raw.get("type") == "session"
        and isinstance(raw.get("id"), str)
        and "cwd" in raw
        and ("version" in raw or "modelId" in raw)
    )


class PiFormat:
    name = NAME

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A file in `.pi/agent/sessions/--<cwd>--/`, or one whose first line is pi's header."""
        parts = path.parts
        folder = path.parent.name
        if folder.startswith("--") and folder.endswith("--") and "sessions" in parts:
            return True
        first = head.split(b"\n", 1)[0]
        if b'"session"' not in first:
            return False
        try:
            return _is_header(orjson.loads(first))
        except orjson.JSONDecodeError:
            return False

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return PiParser(source, context)


FORMAT = PiFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {"idle_close": SECONDS, "stale_close": SECONDS}
