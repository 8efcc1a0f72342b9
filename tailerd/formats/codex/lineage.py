"""A spawned Codex child thread tailed on its own: which of its turns its parent nests.

A child (`session_meta.source.subagent.thread_spawn`) may outlive the parent turn that spawned
it (a background agent; or later input sent to it). Both sides apply one rule to the child's
finished turns (`children.nests`): a child turn that ended no later than the spawning parent
turn (by their timestamps) is nested under the spawn call when the parent's turn is shipped;
any other child turn is shipped from the child's own rollout when it finishes, in the parent's
conversation (`session_id` = the parent thread id) and tagged with `codex.parent_turn_key`,
`codex.spawn_call_id` and `codex.thread_id`. The rule reads only the two files' contents, so
live tailing and `--once` split the work the same way and every token counts once.

To decide, the child reads its parent's rollout (found by thread id like any child) with a
parser that nests nothing, and finds the turn whose spawn call names the child. While that turn
is still open the child's finished turns are the parent's to nest (it will end later).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from tailerd.domain import Turn
from tailerd.formats.base import Source, TurnParser
from tailerd.formats.codex.children import (
    feed_all,
    locate_thread,
    nests,
    read_thread,
    related_source,
)

# an event_msg opening a turn, as Codex serialises it (inside a string the quotes are escaped)
_TURN_START = re.compile(rb'"type":\s*"(?:task_started|turn_started)"')


@dataclass(frozen=True, slots=True)
class SpawnOrigin:
    """The parent turn that spawned a child thread, as its rollout reads now."""

    parent_session: str
    parent_key: str
    call_id: str
    # Where the spawning turn ends for nesting: its end, or for an aborted turn the time of
    # `turn_aborted` (records it gets while it lingers do not move it); None while it runs
    # or when unknown.
    parent_end: datetime | None
    open: bool  # the spawning turn is still running (not aborted)

    def nests(self, child_turn: Turn) -> bool:
        """True when the parent's spawning turn holds (or will hold) this finished child turn."""
        return self.open or nests(self.parent_end, child_turn)


class SpawnReader(TurnParser, Protocol):
    """A parser of the parent's rollout that nests nothing."""

    def spawn_of(self, child: str) -> SpawnOrigin | None:
        """The turn whose spawn call names thread `child` (finished or open), else None."""
        ...


FlatParserFactory = Callable[[Source], SpawnReader]


def spawn_origin(
    source: Source, child: str, parent: Any, new_parser: FlatParserFactory
) -> SpawnOrigin | None:
    """Where child thread `child` (rollout `source`) was spawned, read from the rollout of
    thread `parent`; None when that rollout or a spawn call naming the child is not found."""
    if not isinstance(parent, str) or not parent or not child:
        return None
    path = locate_thread(source, parent)
    data = read_thread(source, path) if path else None
    if path is None or data is None:
        return None
    data = _from_spawning_turn(data, child.encode())
    if not data:
        return None  # the parent's rollout never names the child
    parser = new_parser(related_source(source, path))
    feed_all(parser, data)
    return parser.spawn_of(child)


def _from_spawning_turn(data: bytes, child: bytes) -> bytes:
    """The parent rollout's first line (its session_meta) and its lines from the last turn start
    before the child's id is first named: the spawning turn reads the same from there as from
    the file's start, at a fraction of the cost. b"" when the child is never named."""
    named = data.find(child)
    if named < 0:
        return b""
    starts = [m.start() for m in _TURN_START.finditer(data, 0, named)]
    head = data.find(b"\n") + 1
    if not starts or head <= 0:
        return data
    line = data.rfind(b"\n", 0, starts[-1]) + 1
    return data if line <= head else data[:head] + data[line:]


def shipped_on_own(turn: Turn, origin: SpawnOrigin | None) -> Turn:
    """A child's turn its parent does not nest, as shipped from the child's rollout: in the
    parent's conversation and tagged with the spawning turn and call (or with
    `codex.spawn_origin = "unavailable"` when the parent's rollout does not name the child)."""
    if origin is None:
        attributes = {**turn.attributes, "codex.spawn_origin": "unavailable"}
        return replace(turn, attributes=attributes)
    attributes = {
        **turn.attributes,
        "codex.thread_id": turn.session_id,
        "codex.parent_turn_key": origin.parent_key,
        "codex.spawn_call_id": origin.call_id,
    }
    return replace(turn, session_id=origin.parent_session, attributes=attributes)
