"""Billed calls no turn claims: the compaction summariser, warm-up calls, orphan sub-agents.

Every billed LLM call in a session's files reaches the backend once:

* **Compaction summariser** (`<session>/subagents/agent-acompact-<id>.jsonl`): the transcript's
  `system/compact_boundary` record names no agent, so at the boundary the parser takes the
  session's not yet claimed summariser whose last call ended closest before the boundary (at
  most `SUMMARISER_SLACK` seconds after it) and nests it in the open turn as a sub-agent span
  named "compaction" (`summariser_span`).
* **Sweep**: once the session file has been quiet for `idle_close` with no turn open, its
  parser lists the session's sub-agent transcripts (`<session>/subagents/**/agent-*.jsonl`;
  in the ≤2.0 layout `<dir>/agent-*.jsonl` whose records carry this sessionId) and ships each
  one no turn read (not in `Related.claimed`) as a synthetic turn (`sweep`). The parent's
  parser does it because only it knows which agent ids its turns read; doing it when the file
  goes quiet (not at each turn's end) lets a later turn's Task call still claim its file.
* A transcript is tailed **on its own** (`standalone.SubagentFileParser`) when no parent can
  sweep it: a Warmup sidechain (≤2.0 writes it before the session file has a line; many of
  those session files stay empty) or a sub-agent whose session file is missing or empty; see
  `layout.is_subagent_file_read_by_parent`.

A synthetic turn holds one sub-agent span with the transcript's calls nested; the turn and the
span carry `tailerd.synthetic` = "warmup" | "compaction" | "orphan_subagent". Its key is
`claude-code|<session>|synthetic|<agent id>` (plus `|<first uuid>` for a later part of a file
tailed on its own), the same whichever file ships it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

from tailerd.domain import Message, SubAgentCall, Turn
from tailerd.formats.base import parse_time, turn_key
from tailerd.formats.claude_code.records import (
    NAME,
    as_dict,
    as_str,
    content_text,
    message_of,
)
from tailerd.formats.claude_code.subagents import (
    Related,
    feed_records,
    transcript_finished,
    transcript_records,
)

WARMUP_PROMPT = "Warmup"
SUMMARISER_SLACK = timedelta(seconds=5)
_HEAD_BYTES = 64 * 1024
_FLAT_TTL = 10.0  # seconds a ≤2.0 directory listing is reused
_FLAT_DIRS = 256  # directory listings kept
_FLAT_CACHE: OrderedDict[str, tuple[float, dict[str, tuple[str, str]]]] = OrderedDict()


def agent_id_of(path: str) -> str:
    """`agent-<id>.jsonl` -> `<id>`."""
    return PurePath(path).name.removeprefix("agent-").removesuffix(".jsonl")


def first_prompt(records: Sequence[Mapping[str, Any]]) -> str:
    """Text of a transcript's first user record ("" if none)."""
    for rec in records:
        if rec.get("type") == "user":
            return content_text(message_of(rec).get("content"))
    return ""


def is_warmup(records: Sequence[Mapping[str, Any]]) -> bool:
    """A ≤2.0 cache pre-warm: the sidechain's first user message is exactly "Warmup"."""
    return first_prompt(records).strip() == WARMUP_PROMPT


def kind_of(agent_id: str, records: Sequence[Mapping[str, Any]], background: bool = False) -> str:
    """warmup | compaction | background_subagent | orphan_subagent."""
    if agent_id.startswith("acompact"):
        return "compaction"
    if background:
        return "background_subagent"
    return "warmup" if is_warmup(records) else "orphan_subagent"


def _flat_layout(version: str) -> bool:
    """≤2.0 (or unknown) versions put sub-agent files beside the session files."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) < (2, 1)


def session_agent_files(related: Related, session_id: str, version: str) -> dict[str, str]:
    """agent id -> path of this session's sub-agent transcripts, Warmup ones excluded (those
    are tailed on their own)."""
    found: dict[str, str] = {}
    find = related.source.find_related
    for base in related.session_dirs:
        for path in find(f"{base}/subagents", "agent-*.jsonl"):
            found.setdefault(agent_id_of(path), path)
    if _flat_layout(version):
        for agent_id, (path, owner) in _flat_files(related).items():
            if owner == session_id:
                found.setdefault(agent_id, path)
    return found


def _flat_files(related: Related) -> dict[str, tuple[str, str]]:
    """agent id -> (path, sessionId of its first record) of the ≤2.0 `<dir>/agent-*.jsonl`.

    Every session of a directory sweeps it, so a listing is reused for `_FLAT_TTL` seconds
    (a backfill of N sessions lists and reads the directory once, not N times)."""
    now = time.monotonic()
    hit = _FLAT_CACHE.get(related.flat_dir)
    if hit is not None and now - hit[0] < _FLAT_TTL:
        return hit[1]
    flat = PurePath(related.flat_dir)
    listing: dict[str, tuple[str, str]] = {}
    for path in related.source.find_related(related.flat_dir, "agent-*.jsonl"):
        if PurePath(path).parent != flat:
            continue
        head = related.read(path, _HEAD_BYTES)
        records = transcript_records(head.split(b"\n", 1)[0]) if head else []
        listing[agent_id_of(path)] = (path, as_str(records[0].get("sessionId")) if records else "")
    _FLAT_CACHE[related.flat_dir] = (now, listing)
    _FLAT_CACHE.move_to_end(related.flat_dir)
    while len(_FLAT_CACHE) > _FLAT_DIRS:
        _FLAT_CACHE.popitem(last=False)
    return listing


def _read_records(related: Related, path: str) -> list[dict[str, Any]]:
    data = related.read(path, related.subagent_cap)
    return transcript_records(data) if data else []


def subagent_span(
    related: Related,
    agent_id: str,
    records: Sequence[Mapping[str, Any]],
    kind: str,
    attributes: Mapping[str, Any] | None = None,
) -> SubAgentCall | None:
    """A sub-agent span holding the transcript's calls, named after its agent type or `kind`;
    None when it holds no LLM call. `attributes` default to `tailerd.synthetic = kind`."""
    builder = related.builder((agent_id,) if agent_id else ())
    feed_records(builder, records)
    if not builder.calls:
        return None
    times = [t for t in (parse_time(r.get("timestamp")) for r in records) if t is not None]
    prompt = first_prompt(records)
    final = builder.final_text()
    return SubAgentCall(
        name=(related.agent_type(agent_id) if agent_id else "") or kind,
        model=builder.last_model(),
        agent_id=agent_id,
        input_messages=(Message("user", prompt),) if prompt else (),
        output_messages=(Message("assistant", final),) if final else (),
        spans=builder.build(),
        started_at=min(times, default=None),
        ended_at=max(times, default=None),
        attributes={"tailerd.synthetic": kind} if attributes is None else dict(attributes),
    )


def inline_sidechain_span(
    related: Related, records: Sequence[Mapping[str, Any]]
) -> SubAgentCall | None:
    """The calls of 1.0.x sidechain records written inline in a turn, as one sub-agent span
    marked `claude_code.inline_sidechain`; None when they hold no LLM call."""
    agent_id = next((as_str(r.get("agentId")) for r in records if r.get("agentId")), "")
    marker = {"claude_code.inline_sidechain": True}
    return subagent_span(related, agent_id, records, "sidechain", marker)


def synthetic_turn(
    related: Related,
    agent_id: str,
    records: Sequence[Mapping[str, Any]],
    *,
    offset: int,
    agent_name: str,
    part: str = "",
    end: int | None = None,
) -> Turn | None:
    """The synthetic turn of one unclaimed sub-agent transcript (or `part` of it); None when
    it holds no LLM call. [`offset`, `end`) is the byte range it is filed at in the shipping
    file (empty, at `offset`, when a parent files it)."""
    kind = kind_of(agent_id, records, agent_id in related.background)
    span = subagent_span(related, agent_id, records, kind)
    if span is None:
        return None
    session_id = next((as_str(r.get("sessionId")) for r in records if r.get("sessionId")), "")
    session_id = session_id or related.session_dirs[0].rsplit("/", 1)[-1]
    ids = (agent_id, part) if part else (agent_id,)
    return Turn(
        key=turn_key(NAME, session_id, "synthetic", *ids),
        session_id=session_id,
        start=offset,
        end=offset if end is None else max(end, offset),
        agent_name=agent_name or NAME,
        model=span.model,
        messages=span.input_messages,
        output_messages=span.output_messages,
        spans=(span,),
        started_at=span.started_at,
        ended_at=span.ended_at,
        attributes={
            "tailerd.synthetic": kind,
            "claude_code.origin": "synthetic",
            "claude_code.agent_id": agent_id,
        },
        identities=message_identities(records),
    )


def message_identities(records: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """`claude-code:message:<message.id>` of each distinct LLM call in the records."""
    ids = (as_str(message_of(r).get("id")) for r in records if r.get("type") == "assistant")
    return tuple(dict.fromkeys(f"{NAME}:message:{i}" for i in ids if i))


def sweep(
    related: Related, session_id: str, version: str, offset: int, agent_name: str
) -> list[Turn]:
    """Synthetic turns for the session's sub-agent transcripts no turn claimed; claims them."""
    turns: list[Turn] = []
    for agent_id, path in sorted(session_agent_files(related, session_id, version).items()):
        if agent_id in related.claimed:
            continue
        records = _read_records(related, path)
        if not records or is_warmup(records):
            continue  # a Warmup file is tailed on its own
        if agent_id in related.background and not transcript_finished(records):
            continue  # still running: its <task-notification> turn brings the next sweep
        related.claimed.add(agent_id)
        turn = synthetic_turn(related, agent_id, records, offset=offset, agent_name=agent_name)
        if turn is not None:
            turns.append(turn)
    return turns


def summariser_span(
    related: Related, boundary: Mapping[str, Any], session_id: str, version: str
) -> SubAgentCall | None:
    """The compaction summariser's call for a `compact_boundary` record, claimed: the
    unclaimed summariser transcript whose last call ended latest, but no later than
    `SUMMARISER_SLACK` after the boundary. None when there is none."""
    at = parse_time(boundary.get("timestamp"))
    if at is None:
        return None
    best: tuple[datetime, str, list[dict[str, Any]]] | None = None
    for agent_id, path in session_agent_files(related, session_id, version).items():
        if not agent_id.startswith("acompact") or agent_id in related.claimed:
            continue
        records = _read_records(related, path)
        ends = [parse_time(r.get("timestamp")) for r in records if r.get("type") == "assistant"]
        end = max((t for t in ends if t is not None), default=None)
        if end is not None and end <= at + SUMMARISER_SLACK and (best is None or end > best[0]):
            best = (end, agent_id, records)
    if best is None:
        return None
    _, agent_id, records = best
    related.claimed.add(agent_id)
    span = subagent_span(related, agent_id, records, "compaction")
    if span is None:
        return None
    trigger = as_str(as_dict(boundary.get("compactMetadata")).get("trigger"))
    attributes: dict[str, Any] = {"claude_code.compaction": True}
    if trigger:
        attributes["claude_code.compaction_trigger"] = trigger
    return SubAgentCall(
        name="compaction",
        model=span.model,
        agent_id=agent_id,
        input_messages=span.input_messages,
        output_messages=span.output_messages,
        spans=span.spans,
        started_at=span.started_at,
        ended_at=span.ended_at,
        attributes=attributes,
    )
