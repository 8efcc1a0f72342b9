"""Codex rollouts: turns, tool pairing and token sums checked against independent counts."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line, LLMCall, ToolCall, Turn
from tailerd.formats import codex
from tailerd.formats.base import Source

REPO = Path(__file__).resolve().parents[2]
AGENTS = REPO / ".." / "shared" / "fixtures" / "agents"
COVERAGE = AGENTS / "_schema_coverage" / "jazzyalex-agent-sessions" / "codex"
GOLDEN = REPO / "tests" / "golden" / "codex" / "schema_coverage.json"
SESSIONS = AGENTS / "codex" / "madshn-localpush" / "raw" / "sessions"
LEGACY = AGENTS / "codex" / "Mai0313-VibeCodingTracker" / "codex-0.39.0.jsonl"
REAL = sorted((AGENTS / "codex").rglob("*.jsonl"))
CALL_TYPES = {"function_call", "custom_tool_call", "local_shell_call", "tool_search_call"}


def lines_of(data: bytes) -> list[Line]:
    out = LineFramer().feed(data)
    assert all(isinstance(x, Line) for x in out)
    return [x for x in out if isinstance(x, Line)]


def run(data: bytes, path: str = "rollout-x.jsonl") -> list[Turn | DeadLetter]:
    parser = codex.FORMAT.new_parser(Source(path), None)
    out: list[Turn | DeadLetter] = []
    for line in lines_of(data):
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))
    return out


def turns_of(out: list[Turn | DeadLetter]) -> list[Turn]:
    return [x for x in out if isinstance(x, Turn)]


def tools_of(turn: Turn) -> list[ToolCall]:
    return [s for s in turn.spans if isinstance(s, ToolCall)]


def usage_by_model(turns: list[Turn]) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for turn in turns:
        for s in turn.spans:
            if isinstance(s, LLMCall):
                u = s.usage
                for i, v in enumerate(
                    (u.input_tokens, u.output_tokens, u.cache_read_input_tokens, u.reasoning_tokens)
                ):
                    sums[s.model][i] += v
    return {m: v for m, v in sums.items() if any(v)}


def raw_expectations(path: Path) -> dict[str, Any]:
    """A deliberately plain count over the raw records, sharing no code with the parser."""
    records = [json.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    events = [r["payload"].get("type") for r in records if r.get("type") == "event_msg"]
    explicit = "task_started" in events
    session = next((r["payload"]["id"] for r in records if r.get("type") == "session_meta"), None)
    model, previous_total, started = "", None, False
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    tools, outputs = 0, set()
    for r in records:
        p = r.get("payload") or {}
        if r.get("type") == "turn_context":
            model = p.get("model") or model
        elif r.get("type") == "event_msg" and p.get("type") in ("task_started", "user_message"):
            started = True
        elif r.get("type") == "response_item" and p.get("type") in CALL_TYPES | {"web_search_call"}:
            tools += 1
        elif r.get("type") == "response_item" and str(p.get("type")).endswith("_output"):
            outputs.add(p["call_id"])
        elif r.get("type") == "event_msg" and p.get("type") == "token_count" and p.get("info"):
            total = p["info"].get("total_token_usage")
            if total == previous_total:
                continue
            previous_total = total
            last = p["info"].get("last_token_usage")
            if started and last:
                row = tokens[model]
                row[0] += last["input_tokens"]
                row[1] += last["output_tokens"]
                row[2] += last.get("cached_input_tokens", 0)
                row[3] += last.get("reasoning_output_tokens", 0)
    return {
        "turns": events.count("task_started") if explicit else events.count("user_message"),
        "interrupted": events.count("task_started") - events.count("task_complete")
        if explicit
        else 0,
        "session": session,
        "tools": tools,
        "paired_ids": outputs,
        "tokens": {m: v for m, v in tokens.items() if any(v)},
    }


def test_fixtures_are_present() -> None:
    assert len(REAL) >= 6, f"Codex fixtures missing under {AGENTS}"
    assert GOLDEN.is_file()


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name[:40])
def test_real_rollouts_match_independent_counts(path: Path) -> None:
    expected = raw_expectations(path)
    out = run(path.read_bytes(), str(path))
    turns = turns_of(out)
    assert not [x for x in out if isinstance(x, DeadLetter)]
    assert len(turns) == expected["turns"]
    assert len({t.key for t in turns}) == len(turns)
    assert sum(t.interrupted for t in turns) == expected["interrupted"]
    assert {t.session_id for t in turns} <= {expected["session"]}
    tools = [c for t in turns for c in tools_of(t)]
    assert len(tools) == expected["tools"]
    paired = [c for c in tools if not c.attributes.get("codex.output_missing")]
    assert {c.tool_call_id for c in paired if c.name != "web_search"} == expected["paired_ids"]
    assert all(c.result for c in paired if c.name != "web_search")
    assert usage_by_model(turns) == expected["tokens"]
    assert all(t.messages and t.messages[0].role == "user" for t in turns)


def test_real_turn_keys_use_task_turn_ids() -> None:
    path = next(SESSIONS.glob("rollout-2026-02-23T12-40-23-*.jsonl"))
    turn_ids = [
        r["payload"]["turn_id"]
        for r in map(json.loads, path.read_bytes().splitlines())
        if r["type"] == "event_msg" and r["payload"]["type"] == "task_started"
    ]
    turns = turns_of(run(path.read_bytes(), str(path)))
    session = "019c8a4c-ed82-79a1-aa28-7738fc5ab61a"
    assert [t.key for t in turns] == [f"codex|{session}|{tid}" for tid in turn_ids]
    assert all(t.attributes["codex.cli_version"] == "0.104.0-alpha.1" for t in turns)
    assert all(t.end > t.start for t in turns)


def test_legacy_rollout_prompt_is_the_user_message_not_injected_context() -> None:
    turns = turns_of(run(LEGACY.read_bytes(), str(LEGACY)))
    assert len(turns) == 1
    assert turns[0].messages[0].content.startswith("# Context from my IDE setup:")
    assert "<environment_context>" not in turns[0].messages[0].content
    assert turns[0].key == "codex|01996135-afde-7911-97f0-d863511eca56|u:2025-09-19T09:02:12.677Z"
    # 0.39 writes one turn_context per request: 19 of them, so 19 LLM calls.
    assert sum(isinstance(s, LLMCall) for s in turns[0].spans) == 19


@pytest.mark.parametrize("name", ["small.jsonl", "large.jsonl", "schema_drift.jsonl"])
def test_schema_coverage_against_golden(name: str) -> None:
    golden = json.loads(GOLDEN.read_text())[name]
    out = run((COVERAGE / name).read_bytes(), str(COVERAGE / name))
    turns = turns_of(out)
    assert sum(isinstance(x, DeadLetter) for x in out) == golden["dead_letters"]
    assert [t.key for t in turns] == [g["key"] for g in golden["turns"]]
    for turn, g in zip(turns, golden["turns"], strict=True):
        assert turn.session_id == golden["session_id"]
        assert turn.interrupted == g["interrupted"]
        if g["prompts"] is not None:
            assert [m.content for m in turn.messages] == g["prompts"]
        tools = [
            [c.name, c.tool_call_id, not c.attributes.get("codex.output_missing")]
            for c in tools_of(turn)
        ]
        assert tools == g["tools"]
        assert usage_by_model([turn]) == g["usage"]


def resumed(lines: list[Line], cut: int, path: str) -> list[Turn]:
    """Feed `cut` lines, restart from snapshot()/pending_from(), skip keys already emitted."""
    fmt = codex.FORMAT
    first = fmt.new_parser(Source(path), None)
    emitted = [t for line in lines[:cut] for t in turns_of(first.feed(line))]
    context = json.loads(json.dumps(first.snapshot()))
    pending = first.pending_from()
    resume_at = (
        cut if pending is None else next(i for i, x in enumerate(lines) if x.start == pending)
    )
    assert resume_at <= cut
    second = fmt.new_parser(Source(path), context)
    seen = {t.key for t in emitted}
    for line in lines[resume_at:]:
        emitted.extend(t for t in turns_of(second.feed(line)) if t.key not in seen)
    emitted.extend(second.close_idle(10**9))
    return emitted


RESTART_FILES = [
    LEGACY,
    next(SESSIONS.glob("rollout-2026-02-23T12-40-23-*.jsonl")),
    COVERAGE / "small.jsonl",
]


@pytest.mark.parametrize("path", RESTART_FILES, ids=lambda p: p.name[:30])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fraction=st.floats(min_value=0, max_value=1))
def test_restart_anywhere_yields_the_same_turns(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    lines = lines_of(data)
    whole = turns_of(run(data, str(path)))
    cut = round(fraction * len(lines))
    assert resumed(lines, cut, str(path)) == whole


def test_zstd_copy_and_archived_path_give_the_same_keys() -> None:
    path = next(SESSIONS.glob("rollout-2026-02-23T12-40-23-*.jsonl"))
    data = path.read_bytes()
    packed = zstandard.ZstdCompressor().compress(data)
    unpacked = zstandard.ZstdDecompressor().decompress(packed, max_output_size=len(data) * 2)
    archived = f"/home/u/.codex/archived_sessions/{path.name}.zst"
    plain = [t.key for t in turns_of(run(data, str(path)))]
    assert plain
    assert [t.key for t in turns_of(run(unpacked, archived))] == plain


def env(kind: str, payload: dict[str, Any], ts: str = "2026-01-01T00:00:00Z") -> bytes:
    return orjson.dumps({"timestamp": ts, "type": kind, "payload": payload}) + b"\n"


def ev(kind: str, **payload: Any) -> bytes:
    return env("event_msg", {"type": kind, **payload})


def item(kind: str, **payload: Any) -> bytes:
    return env("response_item", {"type": kind, **payload})


META = env("session_meta", {"id": "S", "cwd": "/w", "cli_version": "0.1", "originator": "cli"})


def usage(total: int, last: int) -> dict[str, Any]:
    def block(n: int) -> dict[str, int]:
        return {
            "input_tokens": n,
            "cached_input_tokens": 1,
            "output_tokens": 2,
            "total_tokens": n + 2,
        }

    return {"total_token_usage": block(total), "last_token_usage": block(last)}


def test_task_events_bound_turns_and_steering_prompts_join_them() -> None:
    data = b"".join(
        [
            META,
            ev("task_started", turn_id="T1"),
            ev("user_message", message="first"),
            item("message", role="user", content=[{"type": "input_text", "text": "<env/>"}]),
            item("message", role="assistant", content=[{"type": "output_text", "text": "a"}]),
            ev("user_message", message="also this"),
            ev("task_complete", turn_id="T1", last_agent_message="a"),
            ev("task_started", turn_id="T2"),
            ev("user_message", message="second"),
            ev("turn_aborted", turn_id="T2", reason="interrupted"),
        ]
    )
    turns = turns_of(run(data))
    assert [t.key for t in turns] == ["codex|S|T1", "codex|S|T2"]
    assert [m.content for m in turns[0].messages] == ["first", "also this"]
    assert turns[0].output_messages[0].content == "a"
    assert [t.interrupted for t in turns] == [False, True]
    assert turns[1].attributes["codex.abort_reason"] == "interrupted"
    assert turns[0].attributes["codex.cwd"] == "/w"


def test_old_style_turns_end_at_the_next_prompt_or_when_quiet() -> None:
    parser = codex.FORMAT.new_parser(Source("rollout-x.jsonl"), None)
    first_turn = [META, ev("user_message", message="one"), item("message", role="assistant")]
    second = env("event_msg", {"type": "user_message", "message": "two"}, "2026-01-01T00:01:00Z")
    out: list[Turn | DeadLetter] = []
    lines = lines_of(b"".join([*first_turn, second]))
    for line in lines[:-1]:
        out.extend(parser.feed(line))
    assert out == []
    assert parser.pending_from() == lines[1].start
    out = parser.feed(lines[-1])
    assert [t.key for t in turns_of(out)] == ["codex|S|u:2026-01-01T00:00:00Z"]
    assert out[0].end == lines[-1].start
    assert parser.close_idle(29) == []
    closed = parser.close_idle(30)
    assert [t.key for t in closed] == ["codex|S|u:2026-01-01T00:01:00Z"]
    assert not closed[0].interrupted


def test_old_style_turn_waits_for_a_pending_tool_output() -> None:
    parser = codex.FORMAT.new_parser(Source("rollout-x.jsonl"), None)
    data = (
        META + ev("user_message", message="go") + item("function_call", name="shell", call_id="c")
    )
    for line in lines_of(data):
        parser.feed(line)
    assert parser.close_idle(300) == []
    closed = parser.close_idle(codex.DEFAULT_ABANDON_CLOSE)
    assert closed[0].interrupted
    assert tools_of(closed[0])[0].attributes["codex.output_missing"] is True


def test_repeated_and_empty_token_counts_are_not_double_counted() -> None:
    data = b"".join(
        [
            META,
            ev("task_started", turn_id="T"),
            ev("user_message", message="q"),
            env("turn_context", {"model": "m1"}),
            ev("token_count", info=None),
            item("function_call", name="shell", call_id="c1", arguments="{}"),
            ev("token_count", info=usage(10, 10)),
            ev("token_count", info=usage(10, 10)),
            item("function_call_output", call_id="c1", output="ok"),
            env("turn_context", {"model": "m2"}),
            ev("token_count", info=usage(10, 10)),
            item("message", role="assistant", content=[{"type": "output_text", "text": "done"}]),
            ev("token_count", info=usage(17, 7)),
            ev("token_count", info=usage(17, 7)),
            ev("task_complete", turn_id="T"),
        ]
    )
    (turn,) = turns_of(run(data))
    calls = [s for s in turn.spans if isinstance(s, LLMCall)]
    assert [(c.model, c.usage.input_tokens) for c in calls] == [("m1", 10), ("m2", 7)]
    assert calls[0].usage.cache_read_input_tokens == 1
    assert [type(s).__name__ for s in turn.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert tools_of(turn)[0].result == "ok"


def test_subagent_rollout_is_tagged_and_spawn_call_names_its_child() -> None:
    child_meta = env(
        "session_meta",
        {"id": "C", "parent_thread_id": "P", "source": {"subagent": {"thread_spawn": {}}}},
    )
    child = turns_of(run(child_meta + ev("task_started", turn_id="t") + ev("task_complete")))
    assert child[0].attributes["codex.parent_thread_id"] == "P"
    parent = b"".join(
        [
            META,
            ev("task_started", turn_id="T"),
            item("function_call", name="spawn_agent", call_id="s1", arguments="{}"),
            ev("collab_agent_spawn_end", call_id="s1", new_thread_id="C"),
            item("function_call_output", call_id="s1", output="spawned"),
            ev("task_complete", turn_id="T"),
        ]
    )
    (turn,) = turns_of(run(parent))
    assert tools_of(turn)[0].attributes["codex.child_thread_id"] == "C"


def test_encrypted_reasoning_is_never_shipped() -> None:
    data = b"".join(
        [
            META,
            ev("task_started", turn_id="T"),
            item(
                "reasoning",
                summary=[{"type": "summary_text", "text": "thinking"}],
                encrypted_content="SECRETBLOB",
            ),
            ev("task_complete", turn_id="T"),
        ]
    )
    (turn,) = turns_of(run(data))
    assert turn.spans[0].reasoning == "thinking"  # type: ignore[union-attr]
    assert "SECRETBLOB" not in repr(turn)


def test_claims() -> None:
    fmt = codex.FORMAT
    assert fmt.claims(Path("sessions/2026/01/01/rollout-2026-01-01T00-00-00-x.jsonl"), b"")
    assert fmt.claims(Path("x/codex.jsonl"), META)
    assert fmt.claims(Path("x/codex.jsonl"), LEGACY.read_bytes()[:4096])
    gemini_head = b'{"sessionId":"s","projectHash":"h","startTime":"t","kind":"main"}\n'
    assert not fmt.claims(Path("chats/session-1.jsonl"), gemini_head)
    assert not fmt.claims(Path("p/abc.jsonl"), b'{"type":"user","sessionId":"s"}\n')
    assert not fmt.is_auxiliary(Path("sessions/rollout-x.jsonl"))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KINDS = st.sampled_from(["session_meta", "turn_context", "event_msg", "response_item", "x"])
SUBKINDS = st.sampled_from(
    [
        "task_started", "task_complete", "turn_aborted", "user_message", "token_count",
        "item_completed", "collab_agent_spawn_end", "message", "reasoning", "function_call",
        "function_call_output", "custom_tool_call", "web_search_call", "tool_search_output",
    ]
)  # fmt: skip
FIELDS = st.dictionaries(
    st.sampled_from(["turn_id", "message", "info", "call_id", "role", "content", "summary",
                     "output", "item", "id", "source", "model", "arguments", "status"]),
    JSONISH,
    max_size=5,
)  # fmt: skip


@st.composite
def envelope_lines(draw: st.DrawFn) -> bytes:
    payload = draw(FIELDS)
    payload["type"] = draw(SUBKINDS)
    body = {
        "timestamp": draw(JSONISH),
        "type": draw(KINDS),
        "payload": draw(JSONISH | st.just(payload)),
    }
    return orjson.dumps(body) + b"\n"


@settings(max_examples=150, deadline=None)
@given(st.lists(envelope_lines() | st.binary(max_size=40).map(lambda b: b + b"\n"), max_size=25))
def test_parser_never_raises(chunks: list[bytes]) -> None:
    parser = codex.FORMAT.new_parser(Source("rollout-x.jsonl"), None)
    for line in lines_of(b"".join(chunks)):
        parser.feed(line)
        json.dumps(parser.snapshot())
        parser.pending_from()
    parser.close_idle(10**9)
