"""Per-session cursors of one agent database: how far each session was read, and how far every
sink acknowledged it.

A session's turns are emitted in order; its *acknowledged* cursor (the one stored in
`checkpoints.db`) moves to a turn's cursor only once that turn and every earlier turn of the
session were settled by every sink (delivered, or refused for good and dead-lettered), so a
restart re-reads exactly the turns not yet acknowledged: nothing re-sent, nothing lost. Reading
goes on from the *read* cursor (past the turns in flight), so a turn waiting for its
acknowledgement is not read and emitted twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(slots=True)
class _InFlight:
    key: str
    cursor: str
    settled: bool = False


class SessionCursors:
    """`acked`: session id -> cursor as stored (the starting point of this run)."""

    def __init__(self, acked: Mapping[str, str]) -> None:
        self.acked: dict[str, str] = dict(acked)
        self.read_to: dict[str, str] = dict(acked)
        self._queues: dict[str, deque[_InFlight]] = {}
        self._by_key: dict[str, tuple[str, _InFlight]] = {}
        self._changed: set[str] = set()
        self._forgotten: set[str] = set()

    def emitted(self, session_id: str, key: str, cursor: str) -> None:
        """A turn of `session_id` ending at `cursor` went to the sinks (or was dead-lettered)."""
        entry = _InFlight(key, cursor)
        self._queues.setdefault(session_id, deque()).append(entry)
        self._by_key[key] = (session_id, entry)
        self.read_to[session_id] = cursor

    def moved(self, session_id: str, cursor: str | None) -> None:
        """`session_id` moves to `cursor` with no turn (None: it does not): acknowledged at
        once, or, with turns in flight, right after them."""
        if cursor is None:
            return
        self.read_to[session_id] = cursor
        queue = self._queues.get(session_id)
        if queue:
            queue.append(_InFlight("", cursor, settled=True))
        else:
            self.acked[session_id] = cursor
            self._changed.add(session_id)

    def settled(self, key: str) -> bool:
        """Every sink is done with turn `key`; False if it is not one of these sessions'."""
        found = self._by_key.pop(key, None)
        if found is None:
            return False
        session_id, entry = found
        entry.settled = True
        queue = self._queues[session_id]
        while queue and queue[0].settled:
            self.acked[session_id] = queue.popleft().cursor
            self._changed.add(session_id)
        if not queue:
            del self._queues[session_id]
        return True

    @property
    def in_flight(self) -> int:
        """Turns emitted and not yet settled by every sink."""
        return len(self._by_key)

    def forget_missing(self, present: Collection[str]) -> list[str]:
        """Drop the cursors of sessions not in `present` (deleted from the agent's database)
        and with no turn in flight; the session ids dropped, sorted. `forgotten()` lists them
        until the next `committed()`."""
        gone = sorted(s for s in self.acked.keys() | self.read_to.keys() if s not in present)
        gone = [s for s in gone if s not in self._queues]
        for session_id in gone:
            self.acked.pop(session_id, None)
            self.read_to.pop(session_id, None)
            self._changed.discard(session_id)
            self._forgotten.add(session_id)
        return gone

    def forgotten(self) -> list[str]:
        """Sessions whose stored cursor is to be deleted, since the last `committed()`."""
        return sorted(self._forgotten)

    def changed(self) -> list[tuple[str, str]]:
        """(session id, acknowledged cursor) moved since the last `committed()`."""
        return [(s, self.acked[s]) for s in sorted(self._changed)]

    def committed(self) -> None:
        self._changed.clear()
        self._forgotten.clear()
