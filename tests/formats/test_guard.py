"""The format guard, driven by a deliberately broken format (the guard's input, so a fake is
right here), plus the registry: every format it hands out is guarded."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import pytest

from tailerd import formats
from tailerd.domain import DeadLetter, Line, Turn
from tailerd.edges.related_files import as_document
from tailerd.formats import gemini, native
from tailerd.formats.base import Source, TurnParser
from tailerd.formats.guard import (
    QUARANTINE_CONSECUTIVE,
    FormatStartError,
    GuardedDocumentFormat,
    GuardedFormat,
    GuardedParser,
    guard,
    unguarded,
)
from tailerd.settings import load_file

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Source("/logs/broken.jsonl")


class Broken(Exception):
    pass


class FakeParser:
    """Lines are commands: `open` opens a turn, `close` finishes it, `boom` raises, `drop`
    forgets the open turn and raises (as a format failing while building the turn it closes),
    anything else is ignored. `fail` names methods (close_idle, pending_from, snapshot) that
    raise."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.open_at: int | None = None
        self.calls = 0
        self.unknown_types = {"odd": 2}

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        self.calls += 1
        cmd = line.data.strip()
        if cmd == b"boom":
            raise Broken("bad record")
        if cmd == b"drop":
            self.open_at = None
            raise Broken("lost it")
        if cmd == b"open":
            self.open_at = line.start
        if cmd == b"close" and self.open_at is not None:
            turn = Turn(key=f"k{self.open_at}", session_id="s", start=self.open_at, end=line.end)
            self.open_at = None
            return [turn]
        return []

    def close_idle(self, quiet_for: float) -> list[Turn]:
        if "close_idle" in self.fail:
            self.open_at = None
            raise Broken("cannot close")
        return []

    def pending_from(self) -> int | None:
        if "pending_from" in self.fail:
            raise Broken("no idea")
        return self.open_at

    def snapshot(self) -> dict[str, Any]:
        if "snapshot" in self.fail:
            raise Broken("cannot save")
        return {"open_at": self.open_at}


class FakeFormat:
    name = "fake"

    def __init__(self, *fail: str) -> None:
        self.fail = set(fail)
        self.parsers: list[FakeParser] = []
        self.colour = "red"  # an extra attribute the wrapper must pass through

    def claims(self, path: PurePath, head: bytes) -> bool:
        if "claims" in self.fail:
            raise Broken("cannot tell")
        return path.name == "broken.jsonl"

    def is_auxiliary(self, path: PurePath) -> bool:
        if "is_auxiliary" in self.fail:
            raise Broken("cannot tell")
        return path.name.startswith("agent-")

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        if "new_parser" in self.fail:
            raise Broken("no parser today")
        parser = FakeParser(self.fail)
        self.parsers.append(parser)
        return parser


class FakeDocumentFormat(FakeFormat):
    def reads_whole(self, path: PurePath) -> bool:
        return path.suffix == ".json"

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        if b"boom" in data:
            raise Broken("bad document")
        return [Turn(key="doc", session_id="s", start=0, end=len(data))]


def lines(*commands: str) -> list[Line]:
    """One Line per command, with the byte offsets the commands have in a file (hand made:
    each command plus its newline)."""
    out, offset = [], 0
    for cmd in commands:
        data = cmd.encode() + b"\n"
        out.append(Line(offset, offset + len(data), data))
        offset += len(data)
    return out


def feed_all(parser: TurnParser, items: list[Line]) -> list[Turn | DeadLetter]:
    return [out for line in items for out in parser.feed(line)]


def test_a_record_that_raises_is_a_dead_letter_over_its_line_and_the_file_goes_on():
    parser = guard(FakeFormat()).new_parser(SOURCE, None)
    # offsets: open 0-5, close 5-11, boom 11-16, open 16-21, close 21-27
    out = feed_all(parser, lines("open", "close", "boom", "open", "close"))
    assert out == [
        Turn(key="k0", session_id="s", start=0, end=11),
        DeadLetter(11, 16, "fake failed on this record: Broken: bad record"),
        Turn(key="k16", session_id="s", start=16, end=27),
    ]
    assert isinstance(parser, GuardedParser)
    assert (parser.failures, parser.quarantined) == (1, None)


def test_a_failure_inside_an_open_turn_keeps_that_turn_open():
    parser = guard(FakeFormat()).new_parser(SOURCE, None)
    # open 0-5, boom 5-10, close 10-16: the format kept its state, the turn finishes
    out = feed_all(parser, lines("open", "boom", "close"))
    assert out == [
        DeadLetter(5, 10, "fake failed on this record: Broken: bad record"),
        Turn(key="k0", session_id="s", start=0, end=16),
    ]


def test_an_open_turn_the_failure_dropped_becomes_a_dead_letter_too():
    parser = guard(FakeFormat()).new_parser(SOURCE, None)
    # open 0-5, x 5-7, drop 7-12: bytes 0-7 were the open turn, now lost
    out = feed_all(parser, lines("open", "x", "drop"))
    assert out == [
        DeadLetter(0, 7, "fake dropped this open turn: Broken: lost it"),
        DeadLetter(7, 12, "fake failed on this record: Broken: lost it"),
    ]
    assert parser.pending_from() is None


def test_claims_and_is_auxiliary_raising_mean_no_and_are_counted():
    fmt = guard(FakeFormat("claims", "is_auxiliary"))
    assert fmt.claims(PurePath("/logs/broken.jsonl"), b"{}\n") is False
    assert fmt.is_auxiliary(PurePath("/logs/agent-1.jsonl")) is False
    assert fmt.failures == 2
    # Through the registry: the broken mapping is skipped, the built-in native format claims.
    head = b'{"type":"turn","session_id":"s","turn_id":"1"}\n'
    chosen = formats.choose(PurePath("/logs/broken.jsonl"), head, extra=(FakeFormat("claims"),))
    assert chosen is not None and chosen.name == "native"
    assert isinstance(chosen, GuardedFormat)


def test_a_format_that_cannot_make_a_parser_raises_a_config_error_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A start failure is a configuration problem: no dead letters (they would move the
    # checkpoint past every line), one ERROR line for the format however many files it meets.
    caplog.set_level(logging.ERROR, logger="tailerd")
    fmt = guard(FakeFormat("new_parser"))
    for _ in range(3):
        with pytest.raises(FormatStartError) as caught:
            fmt.new_parser(SOURCE, None)
        assert str(caught.value) == "fake could not start: Broken: no parser today"
        assert caught.value.exit_code == 78
    assert fmt.start_failures == 3
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith("fake could not start: Broken: no parser today")


def test_close_idle_raising_gives_no_turns_and_the_lost_turn_a_dead_letter_before_moving_on():
    parser = guard(FakeFormat("close_idle")).new_parser(SOURCE, None)
    assert isinstance(parser, GuardedParser)
    feed_all(parser, lines("x", "open", "y"))  # x 0-2, open 2-7, y 7-9
    assert parser.close_idle(1e9) == []
    assert parser.failures == 1
    # The format forgot the turn, but the checkpoint must not pass it until it is reported.
    assert parser.pending_from() == 2
    # open 9-14 (offsets continue after the lines above)
    [letter, *_] = parser.feed(Line(9, 14, b"open\n"))
    assert letter == DeadLetter(2, 9, "fake failed closing this turn: Broken: cannot close")
    assert parser.pending_from() == 9  # the new open turn; the lost one was handed out
    assert parser.take_dead_letters() == []


def test_pending_from_raising_never_lets_the_checkpoint_pass_an_open_turn():
    fake = FakeFormat()
    parser = guard(fake).new_parser(SOURCE, None)
    feed_all(parser, lines("x", "open"))  # x 0-2, open 2-7
    assert parser.pending_from() == 2
    fake.parsers[0].fail.add("pending_from")
    assert parser.pending_from() == 2  # the last value it returned
    fake.parsers[0].fail.discard("pending_from")
    feed_all(parser, lines("x", "open", "close"))  # offsets restart at 0: close ends at 13
    assert parser.pending_from() is None
    # Nothing was open at the last good answer; lines fed since then might have opened one.
    parser.feed(Line(20, 25, b"open\n"))
    fake.parsers[0].fail.add("pending_from")
    assert parser.pending_from() == 20
    assert parser.failures == 2


def test_snapshot_raising_is_an_empty_context():
    fake = FakeFormat()
    parser = guard(fake).new_parser(SOURCE, None)
    parser.feed(Line(0, 5, b"open\n"))
    assert parser.snapshot() == {"open_at": 0}
    fake.parsers[0].fail.add("snapshot")
    assert parser.snapshot() == {}


def test_fifty_failures_in_a_row_quarantine_the_file_and_the_format_is_not_called_again(caplog):
    caplog.set_level(logging.WARNING, logger="tailerd")
    fake = FakeFormat()
    parser = guard(fake).new_parser(SOURCE, None)
    assert isinstance(parser, GuardedParser)
    # open 0-5, then 50 x "boom" (5 bytes each) from 5 to 255, then 3 more lines
    items = lines("open", *["boom"] * 50, "close", "open", "close")
    out = feed_all(parser, items)
    failed = [d for d in out if isinstance(d, DeadLetter) and "on this record" in d.reason]
    assert len(failed) == 50
    reason = "fake failed on 50 records in a row (last: Broken: bad record)"
    assert parser.quarantined == reason
    assert parser.failures == 50
    assert fake.parsers[0].calls == 51  # open + 50 booms; nothing after the quarantine
    assert DeadLetter(0, 250, f"quarantined: {reason}; open turn abandoned") in out
    assert out[-3:] == [
        DeadLetter(255, 261, f"quarantined: {reason}"),
        DeadLetter(261, 266, f"quarantined: {reason}"),
        DeadLetter(266, 272, f"quarantined: {reason}"),
    ]
    assert parser.pending_from() is None  # every byte is a dead letter: the checkpoint moves
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "path=/logs/broken.jsonl" in warnings[0] and "format=fake" in warnings[0]
    assert QUARANTINE_CONSECUTIVE == 50


def test_a_majority_of_failures_in_the_first_200_records_quarantines():
    parser = guard(FakeFormat()).new_parser(SOURCE, None)
    assert isinstance(parser, GuardedParser)
    # Two of every three records fail: after record n, n - n//3 failures. Record 151 is the
    # first with more than 100 (151 - 50 = 101).
    pattern = ["boom" if n % 3 else "x" for n in range(1, 400)]
    n = 0
    for n, line in enumerate(lines(*pattern), start=1):  # noqa: B007 - n is the answer
        parser.feed(line)
        if parser.quarantined:
            break
    assert n == 151
    assert (
        parser.quarantined
        == "fake failed on 101 of the first 151 records (last: Broken: bad record)"
    )


def test_half_of_the_records_failing_is_not_enough_to_quarantine():
    parser = guard(FakeFormat()).new_parser(SOURCE, None)
    assert isinstance(parser, GuardedParser)
    out = feed_all(parser, lines(*["boom", "x"] * 300))
    assert parser.quarantined is None
    assert len(out) == 300 and parser.failures == 300


def test_the_wrapper_is_transparent():
    fake = FakeFormat()
    fmt = guard(fake)
    assert guard(fmt) is fmt
    assert unguarded(fmt) is fake
    assert (fmt.name, fmt.colour) == ("fake", "red")
    assert fmt.is_auxiliary(PurePath("/logs/agent-1.jsonl")) is True
    parser = fmt.new_parser(SOURCE, None)
    assert parser.unknown_types == {"odd": 2}
    assert parser.quarantined is None and parser.failures == 0
    with pytest.raises(AttributeError):
        _ = parser.no_such_thing


def test_only_document_formats_have_the_document_methods():
    assert isinstance(guard(gemini.FORMAT), GuardedDocumentFormat)
    assert not hasattr(guard(native.FORMAT), "reads_whole")
    assert not hasattr(guard(FakeFormat()), "document_turns")
    wrapped = guard(FakeDocumentFormat())
    assert as_document(wrapped, Path("/logs/session-1.json")) is wrapped
    assert as_document(wrapped, Path("/logs/session-1.jsonl")) is None
    assert as_document(guard(native.FORMAT), Path("/logs/session-1.json")) is None


def test_a_document_that_raises_is_no_turns_and_one_dead_letter_for_the_whole(caplog):
    caplog.set_level(logging.WARNING, logger="tailerd")
    fmt = guard(FakeDocumentFormat())
    assert isinstance(fmt, GuardedDocumentFormat)
    doc = Source("/logs/session-1.json")
    assert fmt.document_items(b'{"a": "boom"}', doc, final=True) == [
        DeadLetter(0, 13, "fake failed on this document: Broken: bad document")
    ]
    assert fmt.document_turns(b'{"a": "boom"}', doc, final=True) == []
    assert fmt.document_turns(b'{"a": "boom"}', doc, final=True) == []  # re-read: same content
    assert fmt.document_turns(b'{"a": "ok"}', doc, final=True) == [
        Turn(key="doc", session_id="s", start=0, end=11)
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "dead letter path=/logs/session-1.json offset=0 "
        "reason=fake failed on this document: Broken: bad document"
    ]
    assert fmt.failures == 3


def test_the_exception_is_logged_at_debug_with_its_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="tailerd")
    guard(FakeFormat()).new_parser(SOURCE, None).feed(Line(0, 5, b"boom\n"))
    [record] = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert record.exc_info is not None and record.exc_info[0] is Broken
    assert "fake" in record.getMessage() and "feed" in record.getMessage()


def test_the_registry_hands_out_only_guarded_formats():
    assert all(isinstance(f, GuardedFormat) for f in formats.FORMATS)
    assert all(isinstance(f, GuardedFormat) for f in formats.BY_NAME.values())
    mapped = formats.configured(
        load_file(ROOT / "config" / "custom-agent.example.toml")["mapping"], None
    )
    assert [f.name for f in mapped] == ["helpdesk"]
    assert all(isinstance(f, GuardedFormat) for f in mapped)
    head = (ROOT / "examples" / "custom" / "agent.log.jsonl").read_bytes()[:65536]
    chosen = formats.choose(PurePath("/x/agent.log.jsonl"), head, extra=mapped)
    assert chosen is mapped[0]
    forced = formats.choose(PurePath("/x/a.jsonl"), b"", "gemini")
    assert isinstance(forced, GuardedDocumentFormat)
