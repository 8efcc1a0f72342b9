"""Times for the turns of an agent that records none (Cursor's transcripts: no timestamp on any
line, see tailerd/formats/cursor): the file's modification time when its bytes were read.

A format says its turns have no recorded times with the turn attribute
`tailerd.timestamps.recorded = false` and leaves `started_at`/`ended_at` unset (a parser never
stats files). The pipeline, which is handed the file's bytes together with its mtime, then sets
both to that mtime and marks the turn `tailerd.timestamps.source = "file_mtime"`. It is an upper
bound on when the turn ended: the last write before the read, which may be a later turn's. Turns
of other formats with unset times (a Codex record with an unreadable timestamp) are left as
they are.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from tailerd.domain import DeadLetter, Turn

RECORDED = "tailerd.timestamps.recorded"
SOURCE = "tailerd.timestamps.source"


def with_file_time(items: list[Turn | DeadLetter], mtime: float | None) -> list[Turn | DeadLetter]:
    """`items` with each timeless turn of a format that records no times given `mtime` (epoch
    seconds, the file's st_mtime when read; None: unknown, nothing changes) as its start and
    end, marked with SOURCE = "file_mtime". Dead letters and other turns pass unchanged."""
    if not items or mtime is None:
        return items
    when = datetime.fromtimestamp(mtime, tz=timezone.utc)
    return [_stamped(item, when) if isinstance(item, Turn) else item for item in items]


def _stamped(turn: Turn, when: datetime) -> Turn:
    if turn.started_at is not None or turn.ended_at is not None:
        return turn
    if turn.attributes.get(RECORDED) is not False:
        return turn
    attributes = {**turn.attributes, SOURCE: "file_mtime"}
    return replace(turn, started_at=when, ended_at=when, attributes=attributes)
