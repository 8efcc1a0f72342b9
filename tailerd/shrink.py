"""Shrinking a turn's spans for a backend that refused them as too large (HTTP 413).

Pure: spans in, new spans out. The new spans keep everything that makes the turn a turn — trace
and span ids, names, parents, kind, status, start and end times, resource, scope, and every
attribute that is not content (ids, names, models, token counts, finish reasons) — and cut only
content: message text, tool arguments and results, reasoning, system instructions (the GenAI
content keys, `CONTENT_KEYS`, and keys ending in a content suffix, `CONTENT_SUFFIXES`).

Units are characters (`str` length). The *budget* is how many content characters the whole turn
may keep. Cutting is largest first: one cap `L` is found such that every content piece keeps at
most `L` characters and all pieces together keep at most the budget, so small pieces stay whole
while large ones are cut to `L`. A content value holding JSON (the `gen_ai.*.messages` arrays,
tool arguments) is cut inside its string leaves and stays valid JSON; the structural keys of
those leaves (`role`, `type`, `id`, `name`, ...) are never cut. A cut piece ends with the marker
`…[tailerd: cut N of M chars: too large for <sink>]` (N characters cut of its M). The turn's
root span gets `tailerd.shrunk = true` and `tailerd.shrunk_chars` (characters cut in total).

`attempts()` gives the budgets to try, halving: 1/2, 1/4, ... of the turn's content while at
least `MIN_BUDGET`, then 0 (every leaf cut to its marker, JSON kept), then `BARE` (every content
attribute replaced whole by its marker, and so is any other string attribute longer than
`BARE_KEEP` characters unless its key names an id or a name: an agent's own extra attribute).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "BARE",
    "BARE_KEEP",
    "CONTENT_KEYS",
    "MIN_BUDGET",
    "Shrunk",
    "attempts",
    "content_chars",
    "is_content_key",
    "marker",
    "shrink",
]

CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
    }
)
CONTENT_SUFFIXES = (".content", ".messages", ".arguments", ".result", ".reasoning")
# leaves of JSON content that are structure, not content: never cut
_STRUCTURAL = frozenset(
    {"role", "type", "id", "name", "tool_call_id", "finish_reason", "mime_type", "modality"}
)
MIN_BUDGET = 1024  # characters; below this the next budget is 0
BARE = -1  # the budget meaning "replace every content attribute whole by its marker"
BARE_KEEP = 1024  # characters: with BARE, longer non-content strings are replaced too
_IDENTITY_SUFFIXES = ("id", "name", "model", "version")


def is_content_key(key: str) -> bool:
    """True for attribute keys whose string values are content that may be cut."""
    return key in CONTENT_KEYS or key.endswith(CONTENT_SUFFIXES)


def marker(cut: int, of: int, sink: str) -> str:
    """The text that replaces `cut` characters of a piece of `of` characters."""
    return f"…[tailerd: cut {cut} of {of} chars: too large for {sink}]"


@dataclass(frozen=True, slots=True)
class Shrunk:
    """New spans (same order as given) and the characters cut from content in total."""

    spans: list[ReadableSpan]
    cut_chars: int


def content_chars(spans: Sequence[ReadableSpan]) -> int:
    """Characters of content the spans carry (the sum over every content piece)."""
    return sum(len(piece) for span in spans for _, value in _content(span) for piece in value[1])


def attempts(total: int) -> Iterator[int]:
    """Budgets to try for a turn with `total` content characters: total/2, total/4, ... while at
    least MIN_BUDGET, then 0, then BARE."""
    budget = total // 2
    while budget >= MIN_BUDGET:
        yield budget
        budget //= 2
    yield 0
    yield BARE


def shrink(spans: Sequence[ReadableSpan], budget: int, sink: str) -> Shrunk:
    """The spans with their content cut to `budget` characters in total, largest pieces first
    (`BARE`: every content attribute replaced by its marker). `sink` names the refusing sink in
    the markers. The root (the span without a parent; else the first) is marked shrunk."""
    parsed = [_content(span) for span in spans]
    if budget == BARE:
        cap = 0
    else:
        cap = _cap([len(p) for attrs in parsed for _, (_, pieces) in attrs for p in pieces], budget)
    cut_total = 0
    out: list[ReadableSpan] = []
    for span, attrs in zip(spans, parsed, strict=True):
        replaced: dict[str, str] = {}
        for key, (doc, pieces) in attrs:
            value = str((span.attributes or {})[key])
            if budget == BARE:
                replaced[key] = marker(len(value), len(value), sink)
                cut_total += len(value)
                continue
            cut = sum(max(0, len(p) - cap) for p in pieces)
            if not cut:
                continue
            cut_total += cut
            if doc is None:
                replaced[key] = value[:cap] + marker(len(value) - cap, len(value), sink)
            else:
                replaced[key] = orjson.dumps(_cut_leaves(doc, cap, sink)).decode()
        if budget == BARE:
            for key, value in _long_extras(span):
                replaced[key] = marker(len(value), len(value), sink)
                cut_total += len(value)
        out.append(_copy(span, replaced))
    root = next((i for i, s in enumerate(out) if s.parent is None), 0)
    if out:
        out[root] = _copy(out[root], {"tailerd.shrunk": True, "tailerd.shrunk_chars": cut_total})
    return Shrunk(out, cut_total)


# ---- pieces ---------------------------------------------------------------------------------


def _content(span: ReadableSpan) -> list[tuple[str, tuple[Any, list[str]]]]:
    """Per content attribute: (key, (parsed JSON or None, its content pieces))."""
    found: list[tuple[str, tuple[Any, list[str]]]] = []
    for key, value in (span.attributes or {}).items():
        if not isinstance(value, str) or not value or not is_content_key(key):
            continue
        doc = _json(value)
        if doc is None:
            found.append((key, (None, [value])))
        else:
            pieces: list[str] = []
            _leaves(doc, pieces)
            found.append((key, (doc, pieces)))
    return found


def _long_extras(span: ReadableSpan) -> list[tuple[str, str]]:
    """String attributes that are not content, longer than BARE_KEEP, and not ids or names."""
    return [
        (key, value)
        for key, value in (span.attributes or {}).items()
        if isinstance(value, str)
        and len(value) > BARE_KEEP
        and not is_content_key(key)
        and not key.lower().endswith(_IDENTITY_SUFFIXES)
    ]


def _json(value: str) -> Any:
    if value[0] not in "[{":
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, (list, dict)) else None


def _leaves(doc: Any, pieces: list[str]) -> None:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str):
                if k not in _STRUCTURAL:
                    pieces.append(v)
            else:
                _leaves(v, pieces)
    elif isinstance(doc, list):
        for v in doc:
            if isinstance(v, str):
                pieces.append(v)
            else:
                _leaves(v, pieces)


def _cut_leaves(doc: Any, cap: int, sink: str) -> Any:
    def cut(v: str) -> str:
        return v if len(v) <= cap else v[:cap] + marker(len(v) - cap, len(v), sink)

    if isinstance(doc, dict):
        return {
            k: (cut(v) if k not in _STRUCTURAL else v)
            if isinstance(v, str)
            else _cut_leaves(v, cap, sink)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [cut(v) if isinstance(v, str) else _cut_leaves(v, cap, sink) for v in doc]
    return doc


def _cap(lengths: list[int], budget: int) -> int:
    """The largest L with sum(min(length, L)) <= budget (every length if they all fit)."""
    if sum(lengths) <= budget:
        return max(lengths, default=0)
    remaining = budget
    ordered = sorted(lengths)
    for i, length in enumerate(ordered):
        share = remaining // (len(ordered) - i)
        if length > share:
            return share
        remaining -= length
    return ordered[-1]  # unreachable: the sum exceeded the budget


def _copy(span: ReadableSpan, changes: dict[str, Any]) -> ReadableSpan:
    if not changes:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={**(span.attributes or {}), **changes},
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
