"""file_times: only turns whose format says it records no times get the file's mtime."""

from __future__ import annotations

from datetime import datetime, timezone

from tailerd.domain import DeadLetter, Turn
from tailerd.file_times import with_file_time

MTIME = 1_750_000_000.5  # epoch seconds: 2025-06-15T15:06:40.5Z
AT = datetime(2025, 6, 15, 15, 6, 40, 500000, tzinfo=timezone.utc)


def test_only_a_timeless_turn_of_a_format_without_times_is_stamped() -> None:
    cursor = Turn("k1", "s", 0, 10, attributes={"tailerd.timestamps.recorded": False})
    unreadable = Turn("k2", "s", 10, 20, attributes={"tailerd.timestamp_unknown": True})
    stamped_by_agent = Turn(
        "k3", "s", 20, 30, started_at=AT.replace(year=2024), attributes=dict(cursor.attributes)
    )
    letter = DeadLetter(30, 40, "bad line")
    out = with_file_time([cursor, unreadable, stamped_by_agent, letter], MTIME)
    assert out[0] == Turn(
        "k1",
        "s",
        0,
        10,
        started_at=AT,
        ended_at=AT,
        attributes={**cursor.attributes, "tailerd.timestamps.source": "file_mtime"},
    )
    assert out[1:] == [unreadable, stamped_by_agent, letter]  # a Codex turn keeps no time
    assert with_file_time([cursor], None) == [cursor]  # mtime unknown: nothing invented
