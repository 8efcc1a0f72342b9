"""Factory Droid's token totals: `<uuid>.settings.json` beside the session's `<uuid>.jsonl`.

The transcript records no tokens. Droid keeps the session's **cumulative** totals in the
sibling settings file, rewritten in place: `{"model": ..., "providerLock": ...,
"tokenUsage": {"inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens",
"thinkingTokens"}}` (real sample: ../shared/fixtures/agents/droid/; the same fields are read by
robertpelloni/borg agents/agent-sessions/AgentSessions/Services/DroidSessionParser.swift's
neighbours and by ccusage-like tools).

Conventions, from the real sample and a run of the real CLI (droid 0.215.0 against a scripted
server: three calls of 1,500/2,500/2,700 prompt tokens with 300/1,200/1,300 cached gave
`inputTokens` 3,900 and `cacheReadTokens` 2,800): `inputTokens` excludes cache reads, so Weave's
`input_tokens = inputTokens + cacheReadTokens + cacheCreationTokens`;
`outputTokens` includes `thinkingTokens` as in OpenAI's convention (the sample's 1,450 output
tokens hold 1,088 thinking tokens plus about 360 visible ones: five short tool calls and a
six-line answer), so `output_tokens = outputTokens`, `reasoning_tokens = thinkingTokens`.

Droid 0.215 also writes `inclusiveTokenUsage` (this session plus its sub-agent sessions,
`childInclusiveTokenUsageBySessionId`) and `lastCallTokenUsage`; only `tokenUsage`, the
session's own, is read: a sub-agent's session file ships its own tokens.

Attribution without double counting: a turn gets the **delta** between the totals when it
closes and the totals already attributed to earlier turns of the file (kept in the parser's
snapshot, so a restart does not count them again). Live, a turn closes when the next prompt is
written, before that prompt's answer is counted, so each turn gets its own tokens; when a whole
history is read at once, the settings file already holds the session's final totals and the
first turn read gets them all (the session total stays right; the split between its turns is
unknown then). The delta is put on the turn's last chat span, marked
`tailerd.usage.scope = "turn"`; its other chat spans carry `tailerd.usage.recorded = false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tailerd.domain import Usage

SETTINGS_CAP = 1 << 20  # bytes of a settings file read (the real one is 400 bytes)
FIELDS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "thinkingTokens")


def _count(value: Any) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else 0


@dataclass(frozen=True, slots=True)
class Settings:
    """What a settings file says: the session's model, provider and cumulative token totals."""

    model: str = ""
    provider: str = ""
    totals: Mapping[str, int] | None = None  # None: no readable tokenUsage


def settings_path(transcript: str) -> str:
    """`<dir>/<uuid>.settings.json` for `<dir>/<uuid>.jsonl`."""
    return transcript.removesuffix(".jsonl") + ".settings.json"


def parse_settings(data: bytes | None) -> Settings:
    """The settings file's content; an empty Settings when absent or unreadable."""
    if not data:
        return Settings()
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Settings()
    if not isinstance(raw, dict):
        return Settings()
    model = raw.get("model")
    provider = raw.get("providerLock")
    usage = raw.get("tokenUsage")
    totals = {f: _count(usage.get(f)) for f in FIELDS} if isinstance(usage, dict) else None
    return Settings(
        model if isinstance(model, str) else "",
        provider if isinstance(provider, str) else "",
        totals,
    )


def saved_totals(raw: Any) -> dict[str, int]:
    """Totals kept in a snapshot (zeros for anything unreadable)."""
    saved = raw if isinstance(raw, dict) else {}
    return {f: _count(saved.get(f)) for f in FIELDS}


def delta(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per-field growth since `before`; a field that shrank (a reset session) counts from 0."""
    return {f: now[f] - before[f] if now[f] >= before[f] else now[f] for f in FIELDS}


def as_usage(d: Mapping[str, int]) -> Usage:
    """Droid's fields in Weave's convention (see the module docstring)."""
    cache_read, cache_write = d["cacheReadTokens"], d["cacheCreationTokens"]
    return Usage(
        input_tokens=d["inputTokens"] + cache_read + cache_write,
        output_tokens=d["outputTokens"],
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        reasoning_tokens=d["thinkingTokens"],
    )
