"""Codex child threads: a spawn call becomes a SubAgentCall holding the child thread's calls.

The child's rollout is found through `Source.find_related` (searched from the Codex home holding
`sessions/`, else from the parent's directory), read through `Source.read_related` (`.zst`
decompressed up to `subagent_cap`) and parsed by a nested parser, at most `MAX_SUBAGENT_DEPTH`
levels deep. Only the child's turns that finished no later than the parent's turn (by their
timestamps) are nested; the others are shipped from the child's own rollout (see `lineage`), so
live reading and `--once` split the child's work the same way. A spawn call with no child turn
to nest stays a plain tool call, tagged `codex.subagent_transcript` ("shipped_separately",
"unavailable" when the child cannot be found or read, "depth_limit").
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from tailerd.core.framing import LineFramer
from tailerd.domain import Line, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.formats.base import Source, TurnParser
from tailerd.formats.codex.records import as_str
from tailerd.formats.codex.spans import ToolDraft

DEFAULT_SUBAGENT_CAP = 64 * 1024 * 1024
DEFAULT_ABORT_GRACE = 5.0
MAX_SUBAGENT_DEPTH = 3
SUBAGENT_NAME = "codex-subagent"
_SAFE_THREAD_ID = re.compile(r"[\w.-]+")  # nothing a glob or a path would interpret

# (child rollout's source, nesting depth) -> a parser reading it for its parent
NestedParserFactory = Callable[[Source, int], TurnParser]


def _search_root(path: str) -> str:
    """The Codex home holding `sessions/` and `archived_sessions/`, else the file's directory."""
    here = PurePath(path)
    for ancestor in here.parents:
        if ancestor.name in ("sessions", "archived_sessions"):
            return str(ancestor.parent)
    return str(here.parent)


def nests(parent_end: datetime | None, child_turn: Turn) -> bool:
    """True when a parent turn ending at `parent_end` holds this finished child turn: both
    times known and the child's end not later. The one rule both sides apply."""
    end = child_turn.ended_at
    return parent_end is not None and end is not None and end <= parent_end


def locate_thread(source: Source, thread: str) -> str | None:
    """The rollout of Codex thread `thread` (plain preferred over `.zst`), or None."""
    if not _SAFE_THREAD_ID.fullmatch(thread):
        return None
    try:
        found = source.find_related(_search_root(source.path), f"rollout-*-{thread}.jsonl*")
    except Exception:  # a failing search is a missing thread, not a parser crash
        return None
    names = (f"-{thread}.jsonl", f"-{thread}.jsonl.zst")
    matches = [p for p in found if PurePath(p).name.endswith(names)]
    # Codex prefers the plain file while a compressed copy is being materialised.
    matches.sort(key=lambda p: (p.endswith(".zst"), p))
    return matches[0] if matches else None


def read_thread(source: Source, path: str) -> bytes | None:
    """A rollout's bytes (decompressed), up to the `subagent_cap` option; None if unreadable."""
    cap = int(source.options.get("subagent_cap", DEFAULT_SUBAGENT_CAP))
    try:
        data = source.read_related(path, cap)
    except Exception:  # an unreadable neighbour is a missing thread, not a parser crash
        return None
    if data is None or not path.endswith(".zst"):
        return data
    return _unpack(data, cap)


def related_source(source: Source, path: str, **options: object) -> Source:
    """The Source of a neighbouring rollout, with the same options (and `options` on top)."""
    return Source(
        path,
        source.agent_name,
        {**source.options, **options},
        source.read_related,
        source.find_related,
    )


def feed_all(parser: TurnParser, data: bytes) -> list[Turn]:
    """Feed a whole rollout; its finished turns."""
    turns: list[Turn] = []
    for line in LineFramer().feed(data if data.endswith(b"\n") else data + b"\n"):
        if isinstance(line, Line):
            turns.extend(x for x in parser.feed(line) if isinstance(x, Turn))
    return turns


def _unpack(data: bytes, cap: int) -> bytes:
    """Up to `cap` decompressed bytes; a frame cut short (by the read cap) keeps its head."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    chunks: list[bytes] = []
    size = 0
    try:
        while size < cap:
            chunk = reader.read(min(1 << 20, cap - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except zstandard.ZstdError:
        pass
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Children:
    """Turns a spawn call into a SubAgentCall holding the child thread's own calls."""

    source: Source
    depth: int
    new_parser: NestedParserFactory

    def call(self, tool: ToolDraft, child: str, parent_end: datetime | None) -> SpanCall:
        """The spawn call as a SubAgentCall holding the child's turns that finished by
        `parent_end` (the parent turn's end), or the plain call tagged why nothing is nested."""
        if self.depth >= MAX_SUBAGENT_DEPTH:
            return self._plain(tool, "depth_limit")
        path = locate_thread(self.source, child)
        data = read_thread(self.source, path) if path else None
        if path is None or data is None:
            return self._plain(tool, "unavailable")
        turns, later = self._child_turns(path, data, parent_end)
        if not turns:
            return self._plain(tool, "shipped_separately")
        return self._subagent(tool, child, turns, later)

    def _plain(self, tool: ToolDraft, why: str) -> ToolCall:
        tool.attributes["codex.subagent_transcript"] = why
        return tool.build()

    def _child_turns(
        self, path: str, data: bytes, parent_end: datetime | None
    ) -> tuple[list[Turn], bool]:
        """The child's turns that finished by `parent_end`, and whether it has later work
        (turns finished after it, or one still running: shipped from the child's rollout)."""
        parser = self.new_parser(related_source(self.source, path), self.depth + 1)
        turns = feed_all(parser, data)
        # a turn aborted without its closing record is over (as `abort_grace` closes it live)
        grace = float(self.source.options.get("abort_grace", DEFAULT_ABORT_GRACE))
        turns.extend(x for x in parser.close_idle(grace) if x.interrupted)
        nested = [t for t in turns if nests(parent_end, t)]
        return nested, len(nested) < len(turns) or parser.pending_from() is not None

    def _subagent(
        self, tool: ToolDraft, child: str, turns: list[Turn], later: bool
    ) -> SubAgentCall:
        attrs = dict(tool.attributes)
        attrs["codex.spawn_arguments"] = tool.arguments
        attrs["codex.spawn_result"] = tool.result
        attrs["codex.subagent_turns"] = len(turns)
        if later:
            attrs["codex.subagent_later_turns"] = "shipped_separately"
        child_attrs = turns[0].attributes if turns else {}
        name = next(
            (
                as_str(a.get(k))
                for k in ("codex.agent_role", "codex.agent_nickname")
                for a in (attrs, child_attrs)
                if as_str(a.get(k))
            ),
            SUBAGENT_NAME,
        )
        prompt = next((t.messages[:1] for t in turns if t.messages), ())
        answer = next((t.output_messages for t in reversed(turns) if t.output_messages), ())
        starts = [x for x in (tool.started_at, *(t.started_at for t in turns)) if x]
        ends = [x for x in (tool.ended_at, *(t.ended_at for t in turns)) if x]
        return SubAgentCall(
            name=name,
            model=turns[-1].model if turns else as_str(attrs.get("codex.model")),
            agent_id=child,
            input_messages=prompt,
            output_messages=answer,
            tool_name=tool.name,
            tool_call_id=tool.call_id,
            spans=tuple(s for t in turns for s in t.spans),
            started_at=min(starts) if starts else None,
            ended_at=max(ends) if ends else None,
            attributes=attrs,
        )
