"""A turn too large for the backend is not lost (issue 8 kind 8).

Three levels: the pure shrinking of spans (hand-counted cuts), delivery retrying a turn a sink
refuses as too large (an in-memory sink with a size limit), and `tailerd --once` against a real
OTLP receiver that answers 413 above a body size, with 2 MB tool results in some turns.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode

from tailerd.delivery import Delivery, Pending
from tailerd.domain import Delivered, Outcome, Rejected, Turn
from tailerd.shrink import BARE, attempts, content_chars, marker, shrink
from tailerd.sinks.otlp import OtlpSink
from tailerd.sinks.weave import WeaveSink
from tests.conftest import run_tailerd
from tests.live_daemon import LABEL, append, has_labels, otlp_daemon, turn_line
from tests.otlp_receiver import Receiver

TRACE = 0xABC
MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hello"}]}])


def turn_spans(result: str = "R" * 1000, arguments: str = "A" * 100) -> list[ReadableSpan]:
    """A root with one user message ("hello": 5 content chars) and a tool span with `arguments`
    and `result`, plus a chat span with token counts and no content."""
    root = ReadableSpan(
        name="invoke_agent bot",
        context=SpanContext(TRACE, 1, is_remote=False),
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.conversation.id": "s1",
            "gen_ai.input.messages": MESSAGES,
        },
        start_time=1_000,
        end_time=9_000,
    )
    chat = ReadableSpan(
        name="chat m",
        context=SpanContext(TRACE, 2, is_remote=False),
        parent=root.context,
        attributes={"gen_ai.usage.input_tokens": 1234, "gen_ai.usage.output_tokens": 56},
        start_time=2_000,
        end_time=3_000,
    )
    tool = ReadableSpan(
        name="execute_tool grep",
        context=SpanContext(TRACE, 3, is_remote=False),
        parent=root.context,
        attributes={
            "gen_ai.tool.name": "grep",
            "gen_ai.tool.call.id": "call-" + "9" * 300,  # a long id is never cut
            "gen_ai.tool.call.arguments": arguments,
            "gen_ai.tool.call.result": result,
        },
        status=Status(StatusCode.ERROR, "tool failed"),
        start_time=4_000,
        end_time=5_000,
    )
    return [root, chat, tool]


# ---- shrinking, by hand counts ---------------------------------------------------------------


def test_content_is_counted_by_piece_and_ids_are_not_content():
    # "hello" (5) + arguments (100) + result (1000); the 305-char call id and names are not content
    assert content_chars(turn_spans()) == 1105


def test_the_largest_piece_is_cut_first_and_the_rest_of_the_turn_is_unchanged():
    spans = turn_spans()
    out = shrink(spans, 300, "otlp")
    # pieces 5, 100, 1000 under a budget of 300: 5 and 100 fit whole (195 left), the result
    # keeps 195 chars, so 805 are cut
    result = out.spans[2].attributes["gen_ai.tool.call.result"]  # type: ignore[index]
    assert result == "R" * 195 + "…[tailerd: cut 805 of 1000 chars: too large for otlp]"
    assert out.spans[2].attributes["gen_ai.tool.call.arguments"] == "A" * 100  # type: ignore[index]
    assert out.spans[0].attributes["gen_ai.input.messages"] == MESSAGES  # type: ignore[index]
    assert out.cut_chars == 805
    assert out.spans[0].attributes["tailerd.shrunk"] is True  # type: ignore[index]
    assert out.spans[0].attributes["tailerd.shrunk_chars"] == 805  # type: ignore[index]
    for before, after in zip(spans, out.spans, strict=True):
        assert (after.name, after.context, after.parent) == (
            before.name,
            before.context,
            before.parent,
        )
        assert (after.start_time, after.end_time) == (before.start_time, before.end_time)
        assert after.status.status_code == before.status.status_code
    assert out.spans[1].attributes == spans[1].attributes  # token counts untouched
    assert out.spans[2].attributes["gen_ai.tool.call.id"] == "call-" + "9" * 300  # type: ignore[index]
    assert "tailerd.shrunk" not in (spans[0].attributes or {})  # the input is not changed


def test_json_content_is_cut_inside_its_strings_and_stays_json():
    # budget 0: every content piece is cut whole, JSON keeps its structure (role, type)
    out = shrink(turn_spans(), 0, "weave")
    messages = orjson.loads(out.spans[0].attributes["gen_ai.input.messages"])  # type: ignore[index]
    assert messages == [
        {
            "role": "user",
            "parts": [{"type": "text", "content": marker(5, 5, "weave")}],
        }
    ]
    assert out.cut_chars == 1105
    assert out.spans[2].attributes["gen_ai.tool.call.arguments"] == marker(100, 100, "weave")  # type: ignore[index]


def test_bare_replaces_every_content_attribute_whole():
    out = shrink(turn_spans(), BARE, "otlp")
    assert out.spans[0].attributes["gen_ai.input.messages"] == marker(  # type: ignore[index]
        len(MESSAGES), len(MESSAGES), "otlp"
    )
    assert out.cut_chars == len(MESSAGES) + 100 + 1000


def test_bare_also_replaces_a_long_extra_attribute_but_no_id_or_name():
    spans = turn_spans()
    extra = {"notes": "n" * 5000, "agent.session_id": "i" * 2000, "short": "s" * 1024}
    root = ReadableSpan(
        name=spans[0].name,
        context=spans[0].context,
        attributes={**(spans[0].attributes or {}), **extra},
    )
    out = shrink([root, *spans[1:]], BARE, "otlp")
    attrs = out.spans[0].attributes or {}
    assert attrs["notes"] == marker(5000, 5000, "otlp")
    assert attrs["agent.session_id"] == "i" * 2000  # an id: kept
    assert attrs["short"] == "s" * 1024  # not longer than BARE_KEEP (1024): kept
    # the call id of 305 chars stays too; cut: the messages JSON, 100, 1000 and 5000
    assert out.cut_chars == len(MESSAGES) + 100 + 1000 + 5000
    assert shrink([root], 0, "otlp").spans[0].attributes["notes"] == "n" * 5000  # type: ignore[index]


def test_attempts_halve_down_to_the_floor_then_cut_everything():
    assert list(attempts(8192)) == [4096, 2048, 1024, 0, BARE]
    assert list(attempts(1105)) == [0, BARE]  # half of it is already under the 1024 floor


# ---- delivery retries a single turn refused as too large ------------------------------------


class LimitSink:
    """Refuses as too large any batch carrying more than `limit` content chars; refuses the
    turn whose root has span id `never` (1-based root ids per turn below) whatever its size."""

    def __init__(self, name: str, limit: int, never: int = 0) -> None:
        self.name = name
        self.limit = limit
        self.never = never
        self.sent: list[tuple[list[int], int]] = []  # per send: trace ids, content chars
        self.taken: list[int] = []

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        traces = list(dict.fromkeys(s.context.trace_id for s in spans))
        chars = content_chars(spans)
        self.sent.append((traces, chars))
        if chars > self.limit or self.never in traces:
            return Rejected("HTTP 413", too_large=True)
        self.taken.extend(traces)
        return Delivered()

    def close(self) -> None:
        return None


def spans_of_turn(n: int, result_chars: int) -> list[ReadableSpan]:
    spans = turn_spans(result="R" * result_chars)
    return [
        ReadableSpan(
            name=s.name,
            context=SpanContext(n, s.context.span_id, is_remote=False),
            parent=SpanContext(n, s.parent.span_id, is_remote=False) if s.parent else None,
            attributes=s.attributes,
            start_time=s.start_time,
            end_time=s.end_time,
        )
        for s in spans
    ]


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])
def test_delivery_sends_a_too_large_turn_again_smaller_and_keeps_the_order(threaded: bool):
    settled: list[tuple[int, str, str]] = []

    def on_settled(p: Pending, sink: str, outcome: Outcome) -> None:
        settled.append((int(p.turn.key), sink, type(outcome).__name__))

    small = LimitSink("small", limit=5000, never=4)
    roomy = LimitSink("roomy", limit=10**9)
    delivery = Delivery([small, roomy], 100, 10**6, on_settled, lambda: None, threaded=threaded)
    sizes = {1: 10, 2: 100_000, 3: 10, 4: 10}  # result chars per turn
    for n, size in sizes.items():
        delivery.add(
            None, Turn(key=str(n), session_id="s", start=n, end=n + 1), spans_of_turn(n, size)
        )
    assert delivery.drain(20)
    delivery.close()
    assert [(n, o) for n, s, o in settled if s == "small"] == [
        (1, "Delivered"),
        (2, "Delivered"),
        (3, "Delivered"),
        (4, "Rejected"),
    ]
    assert [(n, o) for n, s, o in settled if s == "roomy"] == [(n, "Delivered") for n in sizes]
    assert small.taken == [1, 2, 3] and roomy.taken == [1, 2, 3, 4]
    # the batch of all four is refused and split. Turn 2 alone carries 5 + 100 + 100,000 =
    # 100,105 content chars: refused; then budgets 50,052, 25,026, 12,513 and 6,256 (plus a
    # marker of about 50 chars) are refused, 3,128 is taken: 6 sends of it alone
    assert small.sent[0][0] == [1, 2, 3, 4]
    alone = [chars for traces, chars in small.sent if traces == [2]]
    assert alone[0] == 100_105
    assert len(alone) == 6 and alone[-1] <= 5000 < alone[-2]
    # turn 4 (115 content chars, under the 1024 floor at once) is refused whole, then at
    # budget 0 and BARE: three sends of it alone
    assert sum(1 for traces, _ in small.sent if traces == [4]) == 3
    report = delivery.report()
    assert (report["small"]["shrunk"], report["small"]["rejected"]) == (1, 1)
    assert (report["roomy"]["shrunk"], report["roomy"]["rejected"]) == (0, 0)
    assert Counter((n, s) for n, s, _ in settled) == Counter(
        {(n, s): 1 for n in sizes for s in ("small", "roomy")}
    )


# ---- end to end: tailerd --once against a receiver that answers 413 above a size ------------

HUGE = 2_000_000  # chars of a huge tool result
MAX_BODY = 256 * 1024  # bytes the receiver accepts per request (decompressed)
CUT = re.compile(r"…\[tailerd: cut (\d+) of (\d+) chars: too large for otlp\]")


def huge_turn(label: str, input_tokens: int, output_tokens: int) -> bytes:
    tool = {"type": "tool", "name": "cat", "arguments": '{"path": "big.log"}', "result": "x" * HUGE}
    llm = {
        "type": "llm",
        "model": "m",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return turn_line("s", label, spans=[llm, tool])


def write_session(logs: Path, lines: list[bytes]) -> Path:
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / "session.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def once(tmp_path: Path, logs: Path, url: str) -> tuple[int, str]:
    config = tmp_path / "tailerd.toml"
    # the redaction cap would cut the 2 MB result before any sink: lift it so the backend's
    # limit is what is tested; "full" content keeps the scan out of the way
    config.write_text('[redaction]\ncontent = "full"\nmax_attribute_chars = 4000000\n')
    done = run_tailerd(
        "--watch",
        logs,
        "--state-dir",
        tmp_path / "state",
        "--data-dir",
        tmp_path / "data",
        "--sink",
        "local",
        "--sink",
        "otlp",
        "--otlp-endpoint",
        url,
        "--config",
        config,
        "--once",
        timeout=300,
    )
    return done.returncode, done.stderr


def by_label(receiver: Receiver) -> dict[str, list[dict[str, object]]]:
    roots = {r["trace_id"]: str(r["attributes"].get(LABEL)) for r in receiver.roots()}
    out: dict[str, list[dict[str, object]]] = {}
    for span in receiver.spans:
        out.setdefault(roots[span["trace_id"]], []).append(span)
    return out


def test_once_every_turn_arrives_the_huge_ones_shrunk_with_tokens_intact(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.max_body = MAX_BODY
    logs = tmp_path / "logs"
    lines = [
        turn_line("s", "t0"),
        huge_turn("h1", 4321, 87),
        turn_line("s", "t2"),
        huge_turn("h3", 999, 11),
        turn_line("s", "t4"),
    ]
    write_session(logs, lines)
    code, stderr = once(tmp_path, logs, receiver.url)
    assert code == 0, stderr
    labels = [str(r["attributes"].get(LABEL)) for r in receiver.roots()]
    assert labels == ["t0", "h1", "t2", "h3", "t4"]  # each once, in order
    ids = receiver.span_ids()
    assert len(ids) == len(set(ids))
    # turn_line: a root and one chat span; huge turns: a root, a chat span and a tool span
    assert Counter(map(len, by_label(receiver).values())) == Counter({2: 3, 3: 2})
    turns = by_label(receiver)
    for label, tokens in (("h1", (4321, 87)), ("h3", (999, 11))):
        root, chat, tool = turns[label]
        attrs = tool["attributes"]
        assert isinstance(attrs, dict)
        result = attrs["gen_ai.tool.call.result"]
        found = CUT.search(result)
        assert found and int(found.group(2)) == HUGE
        kept = result[: found.start()]
        assert kept == "x" * len(kept) and len(kept) + int(found.group(1)) == HUGE
        assert root["attributes"]["tailerd.shrunk"] is True  # type: ignore[index]
        cut_total = sum(
            int(m.group(1))
            for s in turns[label]
            for v in s["attributes"].values()  # type: ignore[union-attr]
            if isinstance(v, str)
            for m in CUT.finditer(v)
        )
        assert root["attributes"]["tailerd.shrunk_chars"] == cut_total  # type: ignore[index]
        chat_attrs = chat["attributes"]
        assert isinstance(chat_attrs, dict)
        got = (chat_attrs["gen_ai.usage.input_tokens"], chat_attrs["gen_ai.usage.output_tokens"])
        assert got == tokens
        assert attrs["gen_ai.tool.name"] == "cat"
    for label in ("t0", "t2", "t4"):
        assert "tailerd.shrunk" not in turns[label][0]["attributes"]  # type: ignore[operator]
    accepted = [r["size"] for r in receiver.requests if r["code"] == 200]
    assert max(accepted) <= MAX_BODY
    letters = dead_letters(tmp_path)
    assert letters == []
    # the local store keeps the whole turn: the result of each huge turn, uncut
    with sqlite3.connect(tmp_path / "data" / "tailerd.db") as db:
        stored = [json.loads(a) for (a,) in db.execute("SELECT attributes FROM spans")]
    results = [a["gen_ai.tool.call.result"] for a in stored if "gen_ai.tool.call.result" in a]
    assert sorted(map(len, results)) == [HUGE, HUGE]


def dead_letters(tmp_path: Path) -> list[dict[str, object]]:
    done = run_tailerd("dead-letters", "--state-dir", tmp_path / "state", "--json")
    letters = json.loads(done.stdout)
    assert isinstance(letters, list)
    return letters


def test_once_a_turn_refused_even_empty_is_dead_lettered_and_the_rest_arrive(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.max_body = MAX_BODY
    receiver.too_large_if = lambda span: span["attributes"].get(LABEL) == "never"
    logs = tmp_path / "logs"
    lines = [
        turn_line("s", "t0"),
        huge_turn("never", 5, 5),
        huge_turn("h2", 7, 7),
        turn_line("s", "t3"),
    ]
    path = write_session(logs, lines)
    code, stderr = once(tmp_path, logs, receiver.url)
    assert code == 0, stderr
    assert [str(r["attributes"].get(LABEL)) for r in receiver.roots()] == ["t0", "h2", "t3"]
    letters = dead_letters(tmp_path)
    start = len(lines[0])
    assert [(d["path"], d["start"], d["end"]) for d in letters] == [
        (str(path), start, start + len(lines[1]))
    ]
    reason = str(letters[0]["reason"])
    assert "HTTP 413" in reason and "still too large with all its content cut" in reason


def test_the_weave_sink_reports_413_as_too_large(receiver: Receiver) -> None:
    receiver.max_body = 10
    sink = WeaveSink(receiver.url, "key", "entity", "project")
    outcome = sink.send(turn_spans())
    assert isinstance(outcome, Rejected) and outcome.too_large and "HTTP 413" in outcome.reason
    receiver.max_body = None
    receiver.script = [400]
    outcome = OtlpSink(receiver.url).send(turn_spans())
    assert isinstance(outcome, Rejected) and not outcome.too_large


def test_a_shutdown_stops_the_smaller_attempts() -> None:
    """close() while the first send of a too-large turn is under way: no smaller attempt
    follows (the turn is re-read on the next start)."""

    class GatedTooLarge:
        name = "gated"

        def __init__(self) -> None:
            self.started, self.gate, self.answered = (threading.Event() for _ in range(3))
            self.sends = 0

        def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
            self.sends += 1
            self.started.set()
            self.gate.wait(30)
            self.answered.set()
            return Rejected("HTTP 413", too_large=True)

        def close(self) -> None:
            return None

    sink = GatedTooLarge()
    delivery = Delivery([sink], 100, 10**6, lambda *_: None, lambda: None)  # type: ignore[list-item]
    delivery.add(None, Turn(key="1", session_id="s", start=0, end=1), spans_of_turn(1, 100_000))
    delivery.deliver()
    assert sink.started.wait(10)
    delivery.close()  # the worker is inside send(): close gives up on it after JOIN_TIMEOUT
    sink.gate.set()
    assert sink.answered.wait(10)
    time.sleep(0.3)  # time enough for a next attempt, were one made
    assert sink.sends == 1


def test_live_a_huge_turn_appended_arrives_shrunk_and_the_next_one_whole(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.max_body = MAX_BODY
    logs = tmp_path / "logs"
    session = write_session(logs, [turn_line("s", "t0")])
    config = tmp_path / "tailerd.toml"
    config.write_text('[redaction]\ncontent = "full"\nmax_attribute_chars = 4000000\n')
    daemon = otlp_daemon(logs, tmp_path / "state", receiver.url, "--config", config)
    try:
        assert receiver.wait_for(has_labels({"t0"}), timeout=30), daemon.log
        append(session, huge_turn("h1", 321, 45) + turn_line("s", "t2"))
        assert receiver.wait_for(has_labels({"t0", "h1", "t2"}), timeout=60), daemon.log
        assert daemon.terminate(timeout=20)[0] == 0
    finally:
        daemon.stop()
    assert [str(r["attributes"].get(LABEL)) for r in receiver.roots()] == ["t0", "h1", "t2"]
    ids = receiver.span_ids()
    assert len(ids) == len(set(ids))
    root, chat, _tool = by_label(receiver)["h1"]
    assert root["attributes"]["tailerd.shrunk"] is True  # type: ignore[index]
    attrs = chat["attributes"]
    assert isinstance(attrs, dict)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (321, 45)
    assert dead_letters(tmp_path) == []
