"""An agent database read once, whole, by the commands that read whole files (`import`,
`preview`, `retry`; tailerd/pipeline.py `whole_file`).

It is the daemon's reader (`DatabaseSource`: one read-only snapshot per read, the format's
`read_session` per session) started from no cursor: every session from its start, so the turns
and their keys, hence span ids, are the daemon's. Nothing is stored: the cursors live in
memory for this one read (these commands keep no checkpoints) and the agent's files are only
opened read-only (see the package docstring).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from tailerd.domain import DeadLetter, Turn
from tailerd.edges.agent_db.protocol import DatabaseFormat
from tailerd.edges.agent_db.source import DatabaseSource
from tailerd.formats.base import Source


class WholeDatabase:
    """Every finished turn of one agent database at `now` (epoch seconds), a session's last
    turn closing after `idle_close` seconds of quiet, as the daemon's `--once` would ship it;
    with `acked` (session id -> stored cursor) only the turns after those cursors."""

    def __init__(
        self,
        path: Path,
        fmt: DatabaseFormat,
        source: Source,
        idle_close: float,
        acked: Mapping[str, str] | None = None,
    ) -> None:
        self._source = DatabaseSource(path, fmt, source, acked or {}, idle_close)

    def turns(self, now: float) -> Iterator[Turn | DeadLetter]:
        """The finished turns and dead letters, streamed in reads of TURNS_PER_POLL turns.
        A database that cannot be opened yields nothing (the reader logs why, once)."""
        while True:
            read = self._source.poll(now)
            for _session, item in read:
                yield item
            if not read or not self._source.more:
                return

    @property
    def open_sessions(self) -> tuple[str, ...]:
        """The sessions whose last turn is not finished yet (after `turns` ran), sorted."""
        return tuple(sorted(self._source.open_sessions))
