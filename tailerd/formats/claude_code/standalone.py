"""A Claude Code sub-agent transcript tailed on its own, because no parent can ship it.

`layout.is_subagent_file_read_by_parent` leaves a Warmup sidechain, and a sub-agent file whose
session file is missing or empty, to be tailed like any file; `SubagentFileParser` then ships
its calls as one synthetic turn (see `synthetic`) once the file has been quiet for `idle_close`
seconds. Lines appended after that form a later part with a key of its own.

Whether a file is tailed alone is decided when it is discovered, so it is decided again before
shipping: a file whose session file has lines by then (the agent wrote the sub-agent file
first, or tailerd saw it first) is left to that file's parser, which reads or sweeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from tailerd.domain import DeadLetter, Line, Turn
from tailerd.formats.base import Source
from tailerd.formats.claude_code.layout import is_subagent_file_read_by_parent
from tailerd.formats.claude_code.records import as_str, decode_line
from tailerd.formats.claude_code.subagents import Related
from tailerd.formats.claude_code.synthetic import synthetic_turn

DEFAULT_IDLE_CLOSE = 30.0


class SubagentFileParser:
    """TurnParser for a sub-agent transcript: all its records, one synthetic turn when quiet."""

    def __init__(self, source: Source, context: Mapping[str, Any] | None = None) -> None:
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._records: list[dict[str, Any]] = []
        self._start: int | None = None
        self._end = 0

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        try:
            records, dead = decode_line(line)
        except Exception as exc:  # a parser must never raise on its input
            return [DeadLetter(line.start, line.end, f"unprocessable record: {exc!r}"[:300])]
        if records and self._start is None:
            self._start = line.start
        self._records.extend(records)
        self._end = line.end
        return list(dead)

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if self._start is None or quiet_for < self._idle_close:
            return []
        records, start = self._records, self._start
        self._records, self._start = [], None
        if is_subagent_file_read_by_parent(PurePath(self._source.path)):
            return []  # its session file has lines by now: that file's parser ships it
        agent_id = self._source.stable_name.removeprefix("agent-").removesuffix(".jsonl")
        session_id = next((as_str(r.get("sessionId")) for r in records if r.get("sessionId")), "")
        related = Related.of(self._source, session_id)
        part = "" if start == 0 else next((as_str(r.get("uuid")) for r in records), "")
        turn = synthetic_turn(
            related,
            agent_id,
            records,
            offset=start,
            agent_name=self._source.agent_name,
            part=part or (f"offset-{start}" if start else ""),
            end=self._end,
        )
        return [] if turn is None else [turn]

    def pending_from(self) -> int | None:
        return self._start

    def open_turns(self) -> list[tuple[int, str]]:
        """The transcript's unsent part as (first byte, what ships it)."""
        if self._start is None:
            return []
        return [(self._start, f"{self._idle_close:g} s of quiet (a sub-agent file tailed alone)")]

    def snapshot(self) -> dict[str, Any]:
        return {}

    def unknown_types(self) -> dict[str, int]:
        return {}
