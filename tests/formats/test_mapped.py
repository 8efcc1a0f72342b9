"""Configured JSONL mappings: the worked example, config errors, turn rules, claims, restarts."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path, PurePath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line, LLMCall, ToolCall, Turn
from tailerd.errors import ConfigError
from tailerd.formats.base import Source
from tailerd.formats.mapped import MappedFormat, MappingSpec, formats_from_config
from tailerd.settings import load_file  # tomllib, as the daemon reads its config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "custom-agent.example.toml"
LOG = ROOT / "examples" / "custom" / "agent.log.jsonl"


def example_format() -> MappedFormat:
    [fmt] = formats_from_config(load_file(CONFIG)["mapping"])
    return fmt


def lines_of(data: bytes) -> list[Line]:
    lines = LineFramer().feed(data)
    assert all(isinstance(x, Line) for x in lines)
    return lines  # type: ignore[return-value]


def run(
    fmt: MappedFormat, data: bytes, path: str = "agent.log.jsonl", **options: Any
) -> tuple[list[Turn], list[DeadLetter], Any]:
    parser = fmt.new_parser(Source(path, options=options), None)
    turns: list[Turn] = []
    dead: list[DeadLetter] = []
    for line in lines_of(data):
        for out in parser.feed(line):
            (turns if isinstance(out, Turn) else dead).append(out)  # type: ignore[arg-type]
    return turns, dead, parser


def spec(**fields: Any) -> MappedFormat:
    return MappedFormat(MappingSpec(name="t", session_id="s", timestamp="ts", **fields))


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def tokens_by_model(turns: list[Turn]) -> dict[str, tuple[int, int, int, int]]:
    out: dict[str, tuple[int, int, int, int]] = {}
    for s in (s for t in turns for s in t.spans if isinstance(s, LLMCall)):
        u = s.usage
        a, b, c, d = out.get(s.model, (0, 0, 0, 0))
        out[s.model] = (
            a + u.input_tokens,
            b + u.output_tokens,
            c + u.cache_read_input_tokens,
            d + u.cache_creation_input_tokens,
        )
    return out


def raw_tokens_by_model(data: bytes) -> dict[str, tuple[int, int, int, int]]:
    """Independent count over the raw log: Anthropic-style `in` plus both cache counts."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for text in data.splitlines():
        if not text.startswith(b"{"):
            continue
        rec = json.loads(text)
        if rec["evt"] == "llm.complete":
            t = rec["data"]["tokens"]
            row = sums[rec["data"]["engine"]]
            row[0] += t["in"] + t["cache_r"] + t["cache_w"]
            row[1] += t["out"]
            row[2] += t["cache_r"]
            row[3] += t["cache_w"]
    return {k: (a, b, c, d) for k, (a, b, c, d) in sums.items()}


# -- the worked example ------------------------------------------------------------------------


def test_example_log_by_hand() -> None:
    """Hand count of examples/custom/agent.log.jsonl: 1 session, 3 turns, 5 LLM calls, 2 tools
    (each result in its own record, the second failed), 1 plain-text line."""
    data = LOG.read_bytes()
    turns, dead, parser = run(example_format(), data)
    assert [t.key for t in turns] == [
        "helpdesk|hd-5521|r-001",
        "helpdesk|hd-5521|r-002",
        "helpdesk|hd-5521|r-003",
    ]
    assert {t.session_id for t in turns} == {"hd-5521"}
    assert {t.session_name for t in turns} == {"Billing: duplicate charge on INV-4471"}
    assert {t.agent_name for t in turns} == {"helpdesk-bot"}
    assert [sum(isinstance(s, LLMCall) for s in t.spans) for t in turns] == [2, 2, 1]
    assert [t.model for t in turns] == [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    ]
    assert not any(t.interrupted for t in turns)
    assert parser.pending_from() is None

    tools = [s for t in turns for s in t.spans if isinstance(s, ToolCall)]
    assert [(c.name, c.tool_call_id, c.is_error) for c in tools] == [
        ("lookup_invoice", "c-101", False),
        ("issue_refund", "c-102", True),
    ]
    assert json.loads(tools[0].arguments) == {"invoice": "INV-4471"}
    assert [c["id"] for c in json.loads(tools[0].result)["charges"]] == ["ch_88a", "ch_88b"]
    assert tools[1].result == "refund limit exceeded: needs supervisor approval"
    assert str(tools[1].ended_at) == "2026-03-02 09:14:33.204000+00:00"
    assert [type(s).__name__ for s in turns[0].spans] == ["LLMCall", "ToolCall", "LLMCall"]

    first = turns[0]
    assert [(m.role, m.content[:16]) for m in first.messages] == [("user", "Invoice INV-4471")]
    assert [(m.role, m.content) for m in turns[2].output_messages] == [
        ("assistant", "It's HD-20931.")
    ]
    assert str(first.started_at) == "2026-03-02 09:14:03.120000+00:00"
    assert str(first.ended_at) == "2026-03-02 09:14:08.415000+00:00"
    assert first.start == data.index(b'{"ts":"2026-03-02T09:14:03.120Z"')
    assert first.end == data.index(b"2026-03-02 09:14:09,551")  # the reply line's end

    [garbage] = dead
    assert "invalid JSON" in garbage.reason
    assert data[garbage.start : garbage.end].startswith(b"2026-03-02 09:14:09,551 WARNING")


def test_example_tokens_follow_weaves_convention() -> None:
    """input_includes_cache = false: cache reads and writes are added to input_tokens."""
    data = LOG.read_bytes()
    turns, _, _ = run(example_format(), data)
    hand = {  # (input incl. cache, output, cache read, cache write), summed by hand
        "claude-haiku-4-5": (2220 + 1860, 38 + 22, 1800, 1800),
        "claude-sonnet-4-5": (2410 + 2505 + 2670, 142 + 51 + 88, 1800 + 2410 + 2410, 120),
    }
    assert tokens_by_model(turns) == hand
    assert raw_tokens_by_model(data) == hand


def test_input_already_including_cache_is_kept_as_is() -> None:
    fmt = spec(
        turn_id="t",
        llm={"when": "m", "model": "m", "input_tokens": "i", "cache_read_tokens": "c"},
    )
    turns, _, parser = run(fmt, jsonl({"s": "a", "t": "1", "m": "gpt", "i": 100, "c": 60}))
    turns += parser.close_idle(30)
    assert tokens_by_model(turns) == {"gpt": (100, 0, 60, 0)}


# -- configuration errors ----------------------------------------------------------------------


def example_table() -> dict[str, Any]:
    table: dict[str, Any] = load_file(CONFIG)["mapping"][0]
    return table


def test_bad_expression_is_a_one_line_config_error_naming_mapping_and_field() -> None:
    table = example_table()
    table["llm"] = {**table["llm"], "model": "data..engine"}
    with pytest.raises(ConfigError) as err:
        formats_from_config([table])
    message = str(err.value)
    assert message.startswith("mapping 'helpdesk': llm.model: invalid JMESPath 'data..engine'")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"session_id": None}, "invalid mapping[0] (helpdesk): session_id: Field required"),
        ({"turn_ends": "x"}, "invalid mapping[0] (helpdesk): turn_ends: Extra inputs"),
        ({"name": "has space"}, "invalid mapping[0] (has space): name: String should match"),
        ({"tool": {"when": "x"}}, "invalid mapping[0] (helpdesk): tool.name: Field required"),
        ({"idle_close": 0}, "invalid mapping[0] (helpdesk): idle_close: Input should be greater"),
    ],
)
def test_invalid_tables_are_one_line_config_errors(change: dict[str, Any], expected: str) -> None:
    table = {**example_table(), **change}
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        formats_from_config([table])
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_duplicate_names_and_non_arrays_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'helpdesk' is used by an earlier mapping"):
        formats_from_config([example_table(), example_table()])
    with pytest.raises(ConfigError, match=r"array of tables"):
        formats_from_config(example_table())


# -- turn rules --------------------------------------------------------------------------------


def test_turn_id_alone_groups_records_and_quiet_closes_them() -> None:
    """No turn_start/turn_end: a new turn_id starts a turn; the last one ends when quiet."""
    fmt = spec(turn_id="t", user_message="u", assistant_message="a")
    data = jsonl(
        {"s": "a", "t": "1", "u": "hi"},
        {"s": "a", "t": "1", "a": "hello"},
        {"s": "a", "t": "2", "u": "bye"},
        {"s": "a", "a": "see you"},  # no id: belongs to the open turn
        {"s": "a", "t": "1", "a": "late"},  # a finished turn's id: never reopens it
    )
    turns, dead, parser = run(fmt, data)
    lines = lines_of(data)
    assert [(t.key, t.end, t.interrupted) for t in turns] == [("t|a|1", lines[1].end, False)]
    assert [m.content for m in turns[0].output_messages] == ["hello"]
    assert [(d.start, d.reason) for d in dead] == [(lines[4].start, "record of finished turn '1'")]
    assert parser.pending_from() == lines[2].start
    assert parser.close_idle(29.9) == []
    [last] = parser.close_idle(30.0)
    assert (last.key, last.end, last.interrupted) == ("t|a|2", lines[3].end, False)
    assert [m.content for m in last.output_messages] == ["see you"]


def test_late_records_of_a_finished_turn_never_reopen_it() -> None:
    fmt = spec(turn_id="t", turn_end="e", user_message="u")
    data = jsonl(
        {"s": "a", "t": "1", "u": "hi", "e": True},
        {"s": "a", "t": "1", "u": "again"},
        {"s": "a", "t": "1", "noise": 1},
    )
    turns, dead, parser = run(fmt, data)
    assert [t.key for t in turns] == ["t|a|1"]
    assert [d.reason for d in dead] == ["record of finished turn '1'"]
    assert parser.pending_from() is None


def test_turn_start_closes_the_previous_turn_unless_told_not_to() -> None:
    data = jsonl({"s": "a", "ts": 1772442843, "u": "one"}, {"s": "a", "ts": 1772442850, "u": "two"})
    for end_on_next_start in (True, False):
        fmt = spec(turn_start="u", user_message="u", end_on_next_start=end_on_next_start)
        turns, _, _ = run(fmt, data)
        assert [(t.key, t.interrupted) for t in turns] == [
            # keyed by its first time, within this host's file (a bare Source has no host)
            ("t|a||.|agent.log.jsonl|2026-03-02T09:14:03+00:00", not end_on_next_start)
        ]


def test_turn_without_id_or_time_is_keyed_by_file_name_and_offset() -> None:
    fmt = MappedFormat(MappingSpec(name="t", session_id="s", user_message="u", turn_end="u"))
    turns, _, _ = run(fmt, jsonl({"s": "a", "x": 1}, {"s": "a", "u": "hi"}), path="/x/l.jsonl.gz")
    assert [t.key for t in turns] == ["t|a||/x|l.jsonl|19"]  # 19 = len of the first line


def test_content_outside_a_started_turn_is_a_dead_letter_and_contentless_records_are_ignored() -> (
    None
):
    fmt = spec(turn_start="st", turn_end="en", user_message="u")
    data = jsonl({"s": "a", "u": "stray"}, {"s": "a", "noise": 1}, {"s": "a", "st": 1, "en": 1})
    turns, dead, _ = run(fmt, data)
    assert len(turns) == 1
    assert [d.reason for d in dead] == ["record with content outside a turn"]


def test_a_tool_waiting_for_its_result_holds_the_turn_until_stale_close() -> None:
    fmt = spec(
        turn_id="t",
        tool={"when": "call", "name": "call", "call_id": "id"},
        tool_result={"when": "ret", "call_id": "id", "result": "ret"},
    )
    data = jsonl(
        {"s": "a", "t": "1", "call": "grep", "id": "c1"}, {"s": "a", "ret": "x", "id": "c9"}
    )
    turns, dead, parser = run(fmt, data, stale_close=100)
    assert turns == []
    assert [d.reason for d in dead] == ["tool result for no waiting call 'c9'"]
    assert parser.close_idle(99) == []
    [turn] = parser.close_idle(100)
    assert turn.interrupted
    [call] = turn.spans
    assert isinstance(call, ToolCall)
    assert (call.result, dict(call.attributes)) == ("", {"result_missing": True})


def test_idle_close_comes_from_the_spec_and_source_options_override_it() -> None:
    fmt = spec(turn_id="t", user_message="u", idle_close=5)
    data = jsonl({"s": "a", "t": "1", "u": "hi"})
    assert len(run(fmt, data)[2].close_idle(5)) == 1
    assert run(fmt, data, idle_close=50)[2].close_idle(5) == []


def test_unreadable_records_are_dead_letters_with_a_reason() -> None:
    fmt = spec(
        turn_id="t", user_message="u", llm={"when": "m", "model": "m", "input_tokens": "i < t"}
    )
    data = b"[1]\n" + jsonl({"t": "1", "u": "no session"}, {"s": "a", "t": "1", "m": "x", "i": 3})
    turns, dead, _ = run(fmt, data)
    assert turns == []
    assert dead[0].reason == "not a JSON object: list"
    assert dead[1].reason.startswith("mapping 't': no session id")
    assert dead[2].reason.startswith("mapping 't': llm.input_tokens: TypeError")


# -- claims ------------------------------------------------------------------------------------


def test_claims_by_glob_and_by_detect() -> None:
    fmt = example_format()
    first_records = LOG.read_bytes()[:400]
    assert fmt.claims(PurePath("/logs/agent.log.jsonl"), b"")
    assert fmt.claims(PurePath("/archive/agent.log.2026-03-01.jsonl.zst"), b"")
    assert fmt.claims(PurePath("/logs/other.jsonl"), first_records)
    assert fmt.claims(PurePath("/logs/other.jsonl"), b"Starting helpdesk v2\n" + first_records)
    assert not fmt.claims(PurePath("/logs/other.jsonl"), b'{"type":"turn","session_id":"s"}\n')
    assert not fmt.claims(PurePath("/logs/other.jsonl"), b"not json at all\n")
    assert not fmt.is_auxiliary(PurePath("/logs/agent.log.jsonl"))
    failing = spec(detect="abs(evt) > `1`")
    assert not failing.claims(PurePath("x.jsonl"), b'{"evt":"request"}\n')
    glob_only = spec(match=["*.acme.jsonl"])
    assert not glob_only.claims(PurePath("x.jsonl"), first_records)


# -- properties --------------------------------------------------------------------------------

MODE_B_LOG = jsonl(
    {"s": "x", "ts": "2026-01-01T00:00:00Z", "title": "Session X"},
    {"s": "x", "t": "1", "u": "q1"},
    {"s": "y", "t": "1", "u": "other session"},
    {"s": "x", "t": "1", "call": "ls", "id": "c1"},
    {"s": "x", "t": "1", "ret": "a b", "id": "c1"},
    {"s": "x", "t": "2", "u": "q2"},
    {"s": "y", "t": "1", "a": "y's turn 1 straddles the start of x's turn 2"},
    {"s": "y", "t": "2", "u": "y2"},
    {"s": "x", "t": "1", "a": "late: a dead letter"},
    {"s": "x", "t": "2", "a": "done"},
)


def mode_b_format() -> MappedFormat:
    return spec(
        turn_id="t",
        session_name="title",
        user_message="u",
        assistant_message="a",
        tool={"when": "call", "name": "call", "call_id": "id"},
        tool_result={"when": "ret", "call_id": "id", "result": "ret"},
    )


def resumed(fmt: MappedFormat, lines: list[Line], cut: int) -> tuple[list[Turn], set[DeadLetter]]:
    """Feed `cut` lines, restart from snapshot()/pending_from(), skip keys already emitted."""
    first = fmt.new_parser(Source("agent.log.jsonl"), None)
    outs = [x for line in lines[:cut] for x in first.feed(line)]
    context = json.loads(json.dumps(first.snapshot()))
    pending = first.pending_from()
    resume_at = (
        cut if pending is None else next(i for i, x in enumerate(lines) if x.start == pending)
    )
    assert resume_at <= cut
    second = fmt.new_parser(Source("agent.log.jsonl"), context)
    seen = {x.key for x in outs if isinstance(x, Turn)}
    for line in lines[resume_at:]:
        outs.extend(x for x in second.feed(line) if not (isinstance(x, Turn) and x.key in seen))
    outs.extend(second.close_idle(10**9))
    return [x for x in outs if isinstance(x, Turn)], {x for x in outs if isinstance(x, DeadLetter)}


@pytest.mark.parametrize("which", ["example", "turn-id-only"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fraction=st.floats(min_value=0, max_value=1))
def test_restart_anywhere_yields_the_same_turns(which: str, fraction: float) -> None:
    fmt, data = (
        (example_format(), LOG.read_bytes())
        if which == "example"
        else (mode_b_format(), MODE_B_LOG)
    )
    lines = lines_of(data)
    whole = resumed(fmt, lines, len(lines))
    assert (len(whole[0]), len(whole[1])) == ((3, 1) if which == "example" else (4, 1))
    assert resumed(fmt, lines, round(fraction * len(lines))) == whole


def test_session_name_from_a_header_survives_a_restart_through_the_snapshot() -> None:
    lines = lines_of(MODE_B_LOG)
    first = mode_b_format().new_parser(Source("l"), None)
    for line in lines[:2]:
        first.feed(line)
    assert first.snapshot()["sessions"]["x"]["name"] == "Session X"
    second = mode_b_format().new_parser(Source("l"), first.snapshot())
    for line in lines[1:]:
        second.feed(line)
    assert {t.session_name for t in second.close_idle(10**9) if t.session_id == "x"} == {
        "Session X"
    }


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["request", "reply", "llm.complete", "tool.invoke", "tool.return", "c-1"])
)
KEYS = st.sampled_from(["evt", "ctx", "sid", "req", "data", "text", "ts", "tokens", "in", "call"])
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
RECORDS = st.dictionaries(st.sampled_from(["evt", "ctx", "data", "ts", "s", "t", "u"]), JSON)


@settings(max_examples=150, deadline=None)
@given(st.lists(RECORDS, max_size=8))
def test_parser_never_raises_on_arbitrary_json_objects(records: list[dict[str, Any]]) -> None:
    for fmt in (example_format(), mode_b_format()):
        _, dead, parser = run(fmt, jsonl(*records))
        json.dumps(parser.snapshot())
        parser.pending_from()
        parser.close_idle(10**9)
        assert all(isinstance(d.reason, str) for d in dead)


@given(st.binary(max_size=200))
def test_parser_and_claims_never_raise_on_any_bytes(data: bytes) -> None:
    fmt = example_format()
    run(fmt, data + b"\n")
    fmt.claims(PurePath("x.jsonl"), data)
