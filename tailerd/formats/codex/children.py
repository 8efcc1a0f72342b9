"""Codex child threads: a spawn call becomes a SubAgentCall holding the child thread's calls.

The child's rollout is found through `Source.find_related` (searched from the Codex home holding
`sessions/`, else from the parent's directory), read through `Source.read_related` (`.zst`
decompressed up to `subagent_cap`) and parsed by a nested parser, at most `MAX_SUBAGENT_DEPTH`
levels deep. A child that cannot be found or read leaves the plain tool call, tagged
`codex.subagent_transcript`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from tailerd.core.framing import LineFramer
from tailerd.domain import Line, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.formats.base import Source, TurnParser
from tailerd.formats.codex.records import as_str
from tailerd.formats.codex.spans import ToolDraft

DEFAULT_SUBAGENT_CAP = 64 * 1024 * 1024
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

    @property
    def cap(self) -> int:
        return int(self.source.options.get("subagent_cap", DEFAULT_SUBAGENT_CAP))

    def call(self, tool: ToolDraft, child: str) -> SpanCall:
        """The spawn call as a SubAgentCall, or the plain call tagged why it is not nested."""
        if self.depth >= MAX_SUBAGENT_DEPTH:
            return self._plain(tool, "depth_limit")
        path = self._locate(child)
        data = self._read(path) if path else None
        if path is None or data is None:
            return self._plain(tool, "unavailable")
        turns, unfinished = self._child_turns(path, data)
        return self._subagent(tool, child, turns, unfinished)

    def _plain(self, tool: ToolDraft, why: str) -> ToolCall:
        tool.attributes["codex.subagent_transcript"] = why
        return tool.build()

    def _locate(self, child: str) -> str | None:
        if not _SAFE_THREAD_ID.fullmatch(child):
            return None
        try:
            found = self.source.find_related(
                _search_root(self.source.path), f"rollout-*-{child}.jsonl*"
            )
        except Exception:  # a failing search is a missing child, not a parser crash
            return None
        names = (f"-{child}.jsonl", f"-{child}.jsonl.zst")
        matches = [p for p in found if PurePath(p).name.endswith(names)]
        # Codex prefers the plain file while a compressed copy is being materialised.
        matches.sort(key=lambda p: (p.endswith(".zst"), p))
        return matches[0] if matches else None

    def _read(self, path: str) -> bytes | None:
        try:
            data = self.source.read_related(path, self.cap)
        except Exception:  # an unreadable neighbour is a missing child, not a parser crash
            return None
        if data is None or not path.endswith(".zst"):
            return data
        return _unpack(data, self.cap)

    def _child_turns(self, path: str, data: bytes) -> tuple[list[Turn], bool]:
        """The child's turns as of now, and whether its last one was still running."""
        source = Source(
            path,
            self.source.agent_name,
            self.source.options,
            self.source.read_related,
            self.source.find_related,
        )
        parser = self.new_parser(source, self.depth + 1)
        turns: list[Turn] = []
        for line in LineFramer().feed(data if data.endswith(b"\n") else data + b"\n"):
            if isinstance(line, Line):
                turns.extend(x for x in parser.feed(line) if isinstance(x, Turn))
        unfinished = parser.pending_from() is not None
        turns.extend(parser.close_idle(math.inf))
        return turns, unfinished

    def _subagent(
        self, tool: ToolDraft, child: str, turns: list[Turn], unfinished: bool
    ) -> SubAgentCall:
        attrs = dict(tool.attributes)
        attrs["codex.spawn_arguments"] = tool.arguments
        attrs["codex.spawn_result"] = tool.result
        attrs["codex.subagent_turns"] = len(turns)
        if unfinished:
            attrs["codex.subagent_unfinished"] = True
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
