"""Cut a byte stream into complete `\\n`-terminated lines with exact file offsets.

A partial last line is held until its newline arrives; it is never flushed on a timer, because
writers commonly emit one JSON object in several write() calls. A line longer than `max_line`
is not buffered whole: it is skipped to its newline and reported as an oversized span.
"""

from __future__ import annotations

from dataclasses import dataclass

from tailerd.domain import DeadLetter, Line

DEFAULT_MAX_LINE = 64 * 1024 * 1024


@dataclass(slots=True)
class LineFramer:
    """Stateful but pure: `feed(data)` returns the lines completed by `data`."""

    offset: int = 0  # file offset of the first byte not yet framed into a line
    max_line: int = DEFAULT_MAX_LINE
    _partial: bytearray | None = None
    _skipping: bool = False  # inside an oversized line, discarding until its newline
    _skipped: int = 0

    @property
    def consumed(self) -> int:
        """Offset just past the last complete line (or skipped oversized line)."""
        return self.offset

    @property
    def buffered(self) -> int:
        return self._skipped + (len(self._partial) if self._partial else 0)

    def feed(self, data: bytes) -> list[Line | DeadLetter]:
        out: list[Line | DeadLetter] = []
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._hold(data[pos:])
                break
            self._complete(data[pos : nl + 1], out)
            pos = nl + 1
        return out

    def _hold(self, tail: bytes) -> None:
        if self._skipping:
            self._skipped += len(tail)
            return
        if self._partial is None:
            self._partial = bytearray()
        self._partial += tail
        if len(self._partial) > self.max_line:
            self._skipping, self._skipped, self._partial = True, len(self._partial), None

    def _complete(self, piece: bytes, out: list[Line | DeadLetter]) -> None:
        start = self.offset
        if self._skipping:
            end = start + self._skipped + len(piece)
            self._skipping, self._skipped = False, 0
            out.append(DeadLetter(start, end, f"line longer than {self.max_line} bytes"))
            self.offset = end
            return
        if self._partial:
            self._partial += piece
            data = bytes(self._partial)
            self._partial = None
        else:
            data = piece
        end = start + len(data)
        self.offset = end
        if len(data) > self.max_line + 1:
            out.append(DeadLetter(start, end, f"line longer than {self.max_line} bytes"))
        else:
            out.append(Line(start, end, data))
