"""The native tailerd JSONL format: both styles, bad lines, unknown keys, and its schema."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line, LLMCall, SubAgentCall, ToolCall, Turn
from tailerd.formats import native
from tailerd.formats.base import Source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "logs"


def parse(
    data: bytes, path: str = "x.jsonl"
) -> tuple[list[Turn], list[DeadLetter], native.NativeParser]:
    parser = native.NativeParser(Source(path))
    turns: list[Turn] = []
    dead: list[DeadLetter] = []
    for line in LineFramer().feed(data):
        assert isinstance(line, Line)
        for out in parser.feed(line):
            (turns if isinstance(out, Turn) else dead).append(out)  # type: ignore[arg-type]
    return turns, dead, parser


def test_one_line_per_turn_example():
    """Hand count of examples/logs/weather-bot: 3 turns in 2 sessions, 3 tools, 5 LLM calls."""
    turns, dead, _ = parse((EXAMPLES / "weather-bot" / "2026-11-24.jsonl").read_bytes())
    assert dead == []
    assert [t.session_id for t in turns] == ["wb-7f3a", "wb-7f3a", "wb-91c2"]
    assert sum(isinstance(s, ToolCall) for t in turns for s in t.spans) == 3
    assert sum(isinstance(s, LLMCall) for t in turns for s in t.spans) == 5
    first = turns[0]
    assert first.messages[0].content == "What is the weather in Tokyo?"
    assert first.output_messages[0].content == "It is 24°C and sunny in Tokyo."
    assert [m.role for m in first.messages] == ["user"]
    assert turns[2].attributes == {"user_tier": "free"}  # unknown keys are kept
    assert turns[1].spans[1].arguments == '{"city": "Osaka"}'  # type: ignore[union-attr]


def test_event_lines_example():
    """examples/logs/research-agent: 2 finished turns, a third still open at its turn_start."""
    data = (EXAMPLES / "research-agent" / "session-r1.jsonl").read_bytes()
    turns, dead, parser = parse(data)
    assert dead == []
    assert [t.key for t in turns] == ["native|ra-0001|t1", "native|ra-0001|t2"]
    sub = turns[0].spans[1]
    assert isinstance(sub, SubAgentCall)
    assert [type(s) for s in sub.spans] == [LLMCall, ToolCall]
    assert turns[0].session_name == "Survey of log shippers"
    assert turns[1].output_messages[0].content == "Ack first, then checkpoint."
    t3_start = data.index(b'{"type":"turn_start","session_id":"ra-0001","turn_id":"t3"')
    assert parser.pending_from() == t3_start
    assert turns[1].end == data.index(b'{"type":"turn_start","session_id":"ra-0001","turn_id":"t3"')


def test_invalid_lines_are_dead_letters_and_later_turns_still_come():
    good = b'{"type":"turn","session_id":"s","turn_id":"%d"}\n'
    data = (
        (good % 1)
        + b"{not json\n"
        + b'{"type":"turn"}\n'
        + b'{"type":"bogus","session_id":"s"}\n'
        + (good % 2)
    )
    turns, dead, _ = parse(data)
    assert [t.key for t in turns] == ["native|s|1", "native|s|2"]
    assert len(dead) == 3
    assert "invalid JSON" in dead[0].reason
    assert "session_id" in dead[1].reason
    assert "unknown record type 'bogus'" in dead[2].reason
    assert (dead[0].start, dead[0].end) == (len(good % 1), len(good % 1) + 10)


def test_turn_without_id_is_keyed_by_host_file_and_offset():
    """An offset is unique only within one file of one host (a bare Source has no host)."""
    turns, _, _ = parse(b'{"type":"turn","session_id":"s"}\n', path="/a/b/log.jsonl.zst")
    assert turns[0].key == "native|s||/a/b|log.jsonl|0"


def test_hosts_writing_the_same_session_and_file_name_mint_different_keys():
    """Three hosts, native logs under the same session name, no turn ids (issue 11's fleet)."""
    line = Line(0, 33, b'{"type":"turn","session_id":"s"}\n')
    keys = set()
    for host in ("h1", "h2", "h3"):
        parser = native.FORMAT.new_parser(Source("/var/log/agents/a.jsonl", host=host), None)
        [turn] = [t for t in parser.feed(line) if isinstance(t, Turn)]
        keys.add(turn.key)
    assert len(keys) == 3


def test_session_end_closes_open_turns_as_interrupted():
    data = (
        b'{"type":"turn_start","session_id":"s","turn_id":"a"}\n'
        b'{"type":"session_end","session_id":"s"}\n'
    )
    turns, _, parser = parse(data)
    assert [(t.key, t.interrupted) for t in turns] == [("native|s|a", True)]
    assert parser.pending_from() is None


def test_idle_turn_is_closed_interrupted_after_the_configured_quiet_time():
    parser = native.NativeParser(Source("x", options={"idle_close": 5}))
    parser.feed(Line(0, 10, b'{"type":"turn_start","session_id":"s","turn_id":"a"}\n'))
    assert parser.close_idle(4.9) == []
    [turn] = parser.close_idle(5.0)
    assert turn.interrupted


@given(st.binary(max_size=300))
def test_parser_never_raises_on_any_bytes(data):
    parse(data + b"\n")


@given(
    st.dictionaries(
        st.sampled_from(["type", "session_id", "turn_id", "messages", "spans", "started_at"]),
        st.one_of(
            st.none(),
            st.text(max_size=5),
            st.integers(),
            st.lists(st.integers(), max_size=2),
            st.sampled_from(["turn", "turn_start", "llm", "turn_end"]),
        ),
    )
)
def test_parser_never_raises_on_any_json_object(obj):
    parse(json.dumps(obj).encode() + b"\n")


def test_checked_in_schema_is_generated_from_the_models():
    """Regenerate with `python -m tailerd.formats.native` after changing the models."""
    assert json.loads(native.SCHEMA_PATH.read_text()) == json.loads(
        json.dumps(native.json_schema())
    )
