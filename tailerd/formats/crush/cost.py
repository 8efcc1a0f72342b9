"""What Crush and opencode-go record of a session's spending, and how tailerd ships it.

`sessions.cost` is the session's cost in USD as the agent computed it from its model table,
cumulative: each call's cost is added (`sess.Cost += cost` in opencode-go
`internal/llm/agent/agent.go` `TrackUsage`, charmbracelet/crush `internal/agent`), and a
sub-agent session's cost is added to its parent's when it ends (`parentSession.Cost +=
updatedSession.Cost` in their agent tool), so a top-level session's cost includes its
sub-agents'. `sessions.prompt_tokens` / `completion_tokens` are NOT totals: the same function
assigns them the last call's counts (`sess.PromptTokens = usage.InputTokens +
usage.CacheCreationTokens`, `sess.CompletionTokens = usage.OutputTokens +
usage.CacheReadTokens`), the context gauge of the agent's status bar; in the real fixture a
42-message session ends with completion 21. Per-call tokens are recorded nowhere, so tailerd
ships no tokens for these agents, only the cost: its growth since the cursor, once, on a
session-totals chat span (`tailerd.usage.session_totals = true`, `gen_ai.usage.cost`,
`tailerd.cost.source = "agent"`, zero tokens; `tailerd.usage.recorded` is left out so that
readers that skip unrecorded calls, e.g. `tailerd show`, still see its cost). A cost that
went down means the agent rewrote its total (nothing in its source lowers it): nothing is
shipped for it, and the new value is the baseline later growth is counted from.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from tailerd.domain import LLMCall, Usage

log = logging.getLogger(__name__)

_PROVIDERS = (("claude", "anthropic"), ("gpt", "openai"), ("o1", "openai"), ("o3", "openai"),
              ("o4", "openai"), ("gemini", "gcp.gemini"), ("grok", "x_ai"))  # fmt: skip


def shipped_cost(cursor: str | None) -> tuple[float, str | None]:
    """(cost already shipped, message cursor) of a cursor `"$<cost>|<created_at>|<id>"`."""
    if not cursor or not cursor.startswith("$"):
        return 0.0, cursor
    cost_text, _, rest = cursor[1:].partition("|")
    try:
        cost = float(cost_text)
    except ValueError:
        return 0.0, rest
    return (cost if math.isfinite(cost) and cost >= 0 else 0.0), rest


def cost_growth(total: float, shipped: float, session_id: str) -> float:
    """USD to ship for a session whose cumulative cost is `total` after `shipped` was: the
    growth, or 0 when it went down (the agent rewrote its total; logged at DEBUG, and the
    caller takes `total` as the new baseline)."""
    if total < shipped:
        log.debug(
            "session %s: cost went down from %r to %r USD; nothing shipped, %r is the new baseline",
            session_id, shipped, total, total,
        )  # fmt: skip
        return 0.0
    return total - shipped


def totals_span(grown: float, model: str, when: datetime | None) -> LLMCall:
    """A chat span of `grown` USD of the session's cost: the agent's own (`tailerd.cost.source
    = "agent"`), no tokens (the agent keeps only the last call's, see the module docstring)."""
    return LLMCall(
        model=model,
        provider_name=provider_of(model),
        usage=Usage(),
        started_at=when,
        ended_at=when,
        attributes={
            "tailerd.usage.session_totals": True,
            "gen_ai.usage.cost": grown,
            "tailerd.cost.source": "agent",
        },
    )


def provider_of(model: str) -> str:
    """The OTel provider name of a model id of these agents' tables, by prefix ("" unknown)."""
    lowered = model.lower()
    return next((p for prefix, p in _PROVIDERS if lowered.startswith(prefix)), "")
