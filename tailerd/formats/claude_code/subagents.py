"""Claude Code neighbours: sub-agent transcripts and spilled tool results of a session.

A `Task`/`Agent` call becomes a `SubAgentCall` with the sub-agent's own calls nested, read from
`<dir>/<session>/subagents/agent-<id>.jsonl` (2.1.x) or `<dir>/agent-<id>.jsonl` (2.0.x);
spilled tool results from `<dir>/<session>/tool-results/`. All reads go through
`Source.read_related`; a neighbour that cannot be read marks the span, never fails the turn.

Sub-agents may spawn sub-agents to any depth: there is no depth cap, only a cycle guard (an
agent id already being read further up the chain is not read again; the span says "cycle").
When a transcript is missing, the sub-agent's calls are taken from the `agent_progress` records
of the parent (they embed each record of the sub-agent); the span says "progress". Every agent
id a turn reads is added to `Related.claimed`, so the session's sweep (see `synthetic`) knows
which sub-agent files no turn shipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.core.framing import LineFramer
from tailerd.domain import Line, Message, SpanCall, SubAgentCall
from tailerd.formats.base import Source, parse_time
from tailerd.formats.claude_code.records import (
    as_dict,
    as_str,
    decode_line,
    message_of,
    user_kind,
)
from tailerd.formats.claude_code.spans import SpanBuilder, ToolDraft

DEFAULT_TOOL_RESULT_CAP = 256 * 1024
DEFAULT_SUBAGENT_CAP = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Related:
    """Where a session's neighbouring files live, and how to read them."""

    source: Source
    session_dirs: tuple[str, ...]  # <dir>/<session>, for subagents/ and tool-results/
    flat_dir: str  # <dir>, for the 2.0.x agent-<id>.jsonl layout
    result_cap: int
    subagent_cap: int
    claimed: set[str] = field(default_factory=set)  # agent ids some turn read (shared, mutable)
    # agent ids launched in the background (2.1.198+: the Agent tool answered "Async agent
    # launched" at once): their transcript is shipped by the sweep once it has finished
    background: set[str] = field(default_factory=set)

    @classmethod
    def of(
        cls,
        source: Source,
        session_id: str,
        claimed: set[str] | None = None,
        background: set[str] | None = None,
    ) -> Related:
        path = PurePath(source.path)
        stem = source.stable_name.removesuffix(".jsonl")
        names = dict.fromkeys(n for n in (stem, session_id) if n)
        return cls(
            source,
            tuple(str(path.parent / n) for n in names),
            str(path.parent),
            int(source.options.get("tool_result_cap", DEFAULT_TOOL_RESULT_CAP)),
            int(source.options.get("subagent_cap", DEFAULT_SUBAGENT_CAP)),
            set() if claimed is None else claimed,
            set() if background is None else background,
        )

    def read(self, path: str, cap: int) -> bytes | None:
        try:
            return self.source.read_related(path, cap)
        except Exception:  # a neighbour that cannot be read is not fatal
            return None

    def spilled(self, name: str, tool_call_id: str) -> str | None:
        for base in self.session_dirs:
            for file_name in dict.fromkeys((name, f"{tool_call_id}.txt")):
                data = self.read(f"{base}/tool-results/{file_name}", self.result_cap + 1)
                if data is not None:
                    return data.decode("utf-8", "replace")
        return None

    def subagent_paths(self, agent_id: str) -> Iterator[str]:
        for base in self.session_dirs:
            yield f"{base}/subagents/agent-{agent_id}.jsonl"
        yield f"{self.flat_dir}/agent-{agent_id}.jsonl"

    def agent_type(self, agent_id: str) -> str:
        for base in self.session_dirs:
            data = self.read(f"{base}/subagents/agent-{agent_id}.meta.json", 64 * 1024)
            if data is not None:
                try:
                    return as_str(as_dict(orjson.loads(data)).get("agentType"))
                except orjson.JSONDecodeError:
                    return ""
        return ""

    def builder(self, chain: tuple[str, ...] = ()) -> SpanBuilder:
        """A span builder whose Task/Agent calls read their sub-agents; `chain` is the agent ids
        being read above it (the cycle guard)."""
        return SpanBuilder(lambda tool: self.subagent(tool, chain), self.spilled, self.result_cap)

    def subagent(self, tool: ToolDraft, chain: tuple[str, ...]) -> SubAgentCall:
        args = tool.arguments if isinstance(tool.arguments, dict) else {}
        prompt = as_str(args.get("prompt"))
        attributes: dict[str, Any] = dict(tool.attributes)
        if as_str(args.get("description")):
            attributes["claude_code.description"] = args["description"]
        spans: tuple[SpanCall, ...] = ()
        model = ""
        cycle = bool(tool.agent_id) and tool.agent_id in chain
        if tool.agent_id and launched_in_background(tool.result or ""):
            # The sub-agent has only started: its work is shipped when its transcript has
            # finished (synthetic.sweep), not read half-written now.
            self.background.add(tool.agent_id)
            attributes["claude_code.subagent_transcript"] = "background"
            return SubAgentCall(
                name=as_str(args.get("subagent_type")) or "general-purpose",
                agent_id=tool.agent_id,
                input_messages=(Message("user", prompt),) if prompt else (),
                output_messages=(Message("assistant", tool.result),) if tool.result else (),
                tool_name=tool.name,
                tool_call_id=tool.tool_call_id,
                started_at=tool.started_at,
                ended_at=tool.ended_at,
                attributes=attributes,
            )
        if tool.agent_id:
            self.claimed.add(tool.agent_id)
        data = None if cycle else self._subagent_bytes(tool.agent_id)
        builder = self.builder((*chain, tool.agent_id) if tool.agent_id else chain)
        if data is not None:
            feed_subagent(builder, data)
        elif tool.progress and not cycle:
            feed_records(builder, tool.progress)
            attributes["claude_code.subagent_transcript"] = "progress"
        elif cycle:
            attributes["claude_code.subagent_transcript"] = "cycle"
        else:
            attributes["claude_code.subagent_transcript"] = (
                "unavailable" if tool.agent_id else "unresolved"
            )
        if builder.has_activity():
            spans, model = builder.build(), builder.last_model()
        name = as_str(args.get("subagent_type"))
        if not name and tool.agent_id:
            name = self.agent_type(tool.agent_id)
        return SubAgentCall(
            name=name or "general-purpose",
            model=model,
            agent_id=tool.agent_id,
            input_messages=(Message("user", prompt),) if prompt else (),
            output_messages=(Message("assistant", tool.result),) if tool.result else (),
            tool_name=tool.name,
            tool_call_id=tool.tool_call_id,
            spans=spans,
            started_at=tool.started_at,
            ended_at=tool.ended_at,
            attributes=attributes,
        )

    def _subagent_bytes(self, agent_id: str) -> bytes | None:
        if not agent_id or agent_id.startswith("acompact"):
            return None
        for path in self.subagent_paths(agent_id):
            data = self.read(path, self.subagent_cap)
            if data is not None:
                return data
        return None


def transcript_records(data: bytes) -> list[dict[str, Any]]:
    """The JSON records of a transcript's bytes, in file order (unreadable lines dropped)."""
    lines = LineFramer().feed(data if data.endswith(b"\n") else data + b"\n")
    return [rec for line in lines if isinstance(line, Line) for rec in decode_line(line)[0]]


ASYNC_LAUNCH = "Async agent launched"


def launched_in_background(result: str) -> bool:
    """The Agent tool's immediate answer when it runs the sub-agent in the background."""
    return result.lstrip().startswith(ASYNC_LAUNCH)


def transcript_finished(records: Sequence[Mapping[str, Any]]) -> bool:
    """True when a sub-agent transcript's last LLM call asked for no tool: it has answered."""
    for rec in reversed(records):
        if rec.get("type") != "assistant":
            continue
        content = message_of(rec).get("content")
        blocks = content if isinstance(content, list) else []
        return not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks)
    return False


def feed_subagent(builder: SpanBuilder, data: bytes) -> None:
    """Every LLM and tool call of a sub-agent transcript, in file order, duplicates dropped."""
    feed_records(builder, transcript_records(data))


def feed_records(builder: SpanBuilder, records: Iterable[Mapping[str, Any]]) -> None:
    """Every LLM and tool call of a sub-agent's records, in order, duplicated uuids dropped."""
    seen: set[str] = set()
    for rec in records:
        uuid = as_str(rec.get("uuid"))
        if uuid and uuid in seen:
            continue
        seen.add(uuid)
        ts = parse_time(rec.get("timestamp"))
        kind = rec.get("type")
        if kind == "assistant":
            builder.add_assistant(rec, ts)
        elif kind == "user" and user_kind(rec) == "tool_result":
            builder.add_results(rec, ts)
        elif kind == "progress":
            note_progress(builder, rec)


def note_progress(builder: SpanBuilder, rec: Mapping[str, Any]) -> None:
    """Remember the agentId an `agent_progress` record gives a Task/Agent tool call, and the
    sub-agent record it embeds (`data.message`)."""
    data = as_dict(rec.get("data"))
    if data.get("type") == "agent_progress":
        tool_use_id = as_str(rec.get("parentToolUseID"))
        builder.note_agent(tool_use_id, as_str(data.get("agentId")))
        embedded = as_dict(data.get("message"))
        if embedded.get("type") in ("assistant", "user"):
            builder.note_progress_record(tool_use_id, embedded)
