"""GitHub Copilot CLI: `~/.copilot/session-state/<session id>/events.jsonl` (1.0 and later;
before 1.0 a flat `session-state/<session id>.jsonl` of the same events). `COPILOT_HOME`
moves `~/.copilot` (the agent-engram fixture was written with `COPILOT_HOME=<repo>/.copilot`).

Each line is an event envelope `{type, data, id, timestamp, parentId}`; events are chained by
`parentId` in the order they are appended, so file order is event order. Beside the file,
`workspace.yaml` holds `cwd` and `summary` (the session's title, which the CLI rewrites as the
session goes on): read through `Source.read_related` when a turn is built, giving
`Turn.session_name` and, when `session.start` has no `context.cwd`, the `tailerd.cwd` attribute.
Event shapes: `github/copilot-sdk` `python/copilot/generated/session_events.py`.

What is shipped, per turn (see `turns` for where a turn starts and ends): the prompt (and any
message typed while the agent worked), one LLM span per `assistant.message` (text, reasoning
text, tool requests, `outputTokens`), one tool span per tool call (`tool.execution_start` ..
`tool.execution_complete`, arguments, result, error), a sub-agent span for a tool call that ran
a sub-agent (`subagent.started` .. `subagent.completed`, the sub-agent's own messages and tool
calls nested: they carry `parentToolCallId`), and a "compaction" sub-agent span for
`session.compaction_complete` (its `compactionTokensUsed`).

**Tokens: what Copilot records, and how it is shipped without counting anything twice.**
Copilot writes per call only `outputTokens`. Input, cache-read and cache-write tokens are
written once per CLI process, per model, in `session.shutdown.data.modelMetrics`. So:

* each chat span carries its `outputTokens` and `tailerd.usage.input_recorded = false`;
* an `assistant.usage` event, where a CLI version writes one, gives the latest call its input
  side (then the attribute is dropped);
* at `session.shutdown`, a synthetic turn (`tailerd.synthetic = "session_totals"`, keyed by the
  shutdown event's id) carries one chat span per model with the totals *less* what this
  process's calls already carried (`tailerd.usage.session_totals = true`, plus the request
  count and premium requests). In the 1.0.34 fixture per-call outputs add up to exactly the
  shutdown's `outputTokens` (2,848), so that span ships output 0 and input 186,809.
* Totals are taken to be per process (they restart at `session.start` / `session.resume`), and
  `inputTokens` to include cache reads (OpenAI's convention, Weave's too).
* A session killed without `session.shutdown` has no input tokens anywhere: none are shipped.

Copilot's `requests.cost` counts premium requests, not dollars: it is shipped as
`copilot.premium_requests`, never as `gen_ai.usage.cost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.copilot_cli.turns import CopilotParser
from tailerd.formats.options import SECONDS, OptionSchema

NAME = "copilot-cli"
_START = b'"session.start"'


class CopilotFormat:
    name = NAME

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A file whose first event is Copilot's `session.start` (producer `copilot-agent` or a
        `copilotVersion`), an `events.jsonl` in a `session-state/<id>/` folder, or (before
        1.0) a `<id>.jsonl` directly in `session-state/`."""
        if path.name == "events.jsonl" and path.parent.parent.name == "session-state":
            return True
        if path.parent.name == "session-state" and path.suffix == ".jsonl":  # before 1.0
            return True
        first = head.split(b"\n", 1)[0]
        if _START not in first:
            return False
        try:
            event = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(event, dict) or event.get("type") != "session.start":
            return False
        data = event.get("data")
        return isinstance(data, dict) and (
            data.get("producer") == "copilot-agent" or "copilotVersion" in data
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return CopilotParser(source, context)


FORMAT = CopilotFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {"idle_close": SECONDS, "abandon_close": SECONDS}
