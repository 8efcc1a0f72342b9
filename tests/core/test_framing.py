"""Line framing: exact offsets, partial lines held, oversized lines skipped, any chunking."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line

payloads = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20)


def frame(
    chunks: list[bytes], max_line: int = 1 << 20
) -> tuple[list[Line | DeadLetter], LineFramer]:
    framer = LineFramer(max_line=max_line)
    out: list[Line | DeadLetter] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out, framer


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(
    payloads,
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
    st.lists(st.integers(0, 10_000)),
)
def test_any_chunking_yields_the_same_lines_and_offsets(lines, tail, cuts):
    """However the bytes arrive, the same complete lines come out, with exact byte offsets."""
    data = b"".join(line + b"\n" for line in lines) + tail
    out, framer = frame(split_at(data, cuts))
    assert [o.data for o in out] == [line + b"\n" for line in lines]
    offset = 0
    for o in out:
        assert (o.start, o.end) == (offset, offset + len(o.data))
        assert data[o.start : o.end] == o.data
        offset = o.end
    assert framer.consumed == len(data) - len(tail)
    assert framer.buffered == len(tail)


def test_partial_last_line_waits_for_its_newline():
    """A line written in two writes is emitted once, whole, when its newline arrives."""
    framer = LineFramer()
    assert framer.feed(b'{"a":') == []
    assert framer.consumed == 0
    assert framer.feed(b"1}\n") == [Line(0, 8, b'{"a":1}\n')]


@given(st.integers(1, 200), st.lists(st.integers(0, 10_000)))
def test_oversized_line_is_skipped_and_reported_without_losing_neighbours(big, cuts):
    """A line over the cap becomes one dead letter spanning it; lines around it are intact."""
    data = b"ok1\n" + b"x" * (16 + big) + b"\nok2\n"
    out, framer = frame(split_at(data, cuts), max_line=16)
    assert [type(o) for o in out] == [Line, DeadLetter, Line]
    assert out[0].data == b"ok1\n" and out[2].data == b"ok2\n"
    assert (out[1].start, out[1].end) == (4, 4 + 16 + big + 1)
    assert framer.consumed == len(data)
