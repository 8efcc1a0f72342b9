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
from tailerd.domain import DeadLetter, Line, LLMCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
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


def run(
    data: bytes, path: str = "rollout-x.jsonl", source: Source | None = None
) -> list[Turn | DeadLetter]:
    parser = codex.FORMAT.new_parser(source or Source(path), None)
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


def resumed(lines: list[Line], cut: int, path: str, source: Source | None = None) -> list[Turn]:
    """Feed `cut` lines, restart from snapshot()/pending_from(), skip keys already emitted."""
    fmt = codex.FORMAT
    source = source or Source(path)
    first = fmt.new_parser(source, None)
    emitted = [t for line in lines[:cut] for t in turns_of(first.feed(line))]
    context = json.loads(json.dumps(first.snapshot()))
    pending = first.pending_from()
    resume_at = (
        cut if pending is None else next(i for i, x in enumerate(lines) if x.start == pending)
    )
    assert resume_at <= cut
    second = fmt.new_parser(source, context)
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
    assert turns[0].attributes["tailerd.cwd"] == "/w"  # the session_meta's cwd


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


# -- sub-agent threads -------------------------------------------------------------------------
# No real fixture has a parent/child pair, so this one follows the shapes of the real 0.104 files
# (madshn-localpush) and of the schema-coverage sample (ordinals, collab_agent_spawn_end, the
# child's session_meta with `source.subagent.thread_spawn` and a copied parent prefix).

PARENT_ID = "019c8a70-dda7-7f33-98ea-f30553340001"
CHILD_ID = "019c8a71-2b10-7c02-9a11-0be5d7a90002"
DAY = "sessions/2026/02/23"
PARENT_NAME = f"rollout-2026-02-23T12-40-23-{PARENT_ID}.jsonl"
CHILD_NAME = f"rollout-2026-02-23T12-41-04-{CHILD_ID}.jsonl"


def rec(kind: str, payload: dict[str, Any], second: float, ordinal: int | None = None) -> bytes:
    """A record stamped `second` seconds after 2026-02-23T11:40:00Z (millisecond precision)."""
    ms = round(second * 1000)
    minute, rest = divmod(ms, 60_000)
    stamp = f"2026-02-23T11:{40 + minute:02d}:{rest // 1000:02d}.{rest % 1000:03d}Z"
    body: dict[str, Any] = {"timestamp": stamp}
    if ordinal is not None:
        body["ordinal"] = ordinal
    body.update(type=kind, payload=payload)
    return orjson.dumps(body) + b"\n"


def tokens(last: tuple[int, int, int, int], total: tuple[int, int, int, int]) -> dict[str, Any]:
    def block(v: tuple[int, int, int, int]) -> dict[str, int]:
        inp, cached, out, reasoning = v
        return {
            "input_tokens": inp,
            "cached_input_tokens": cached,
            "output_tokens": out,
            "reasoning_output_tokens": reasoning,
            "total_tokens": inp + out,
        }

    info = {"total_token_usage": block(total), "last_token_usage": block(last)}
    return {"type": "token_count", "info": {**info, "model_context_window": 258400}}


def say(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def parent_rollout() -> bytes:
    spawn_args = json.dumps({"agent_type": "explorer", "message": "Find the flaky test"})
    ctx = {"turn_id": "pt1", "cwd": "/w", "model": "gpt-5.5", "approval_policy": "on-request"}
    lines: list[tuple[str, dict[str, Any]]] = [
        ("session_meta", {"id": PARENT_ID, "timestamp": "2026-02-23T11:40:23.000Z", "cwd": "/w",
                          "originator": "codex_cli_rs", "cli_version": "0.150.0", "source": "cli",
                          "model_provider": "openai"}),
        ("event_msg", {"type": "task_started", "turn_id": "pt1", "model_context_window": 258400}),
        ("event_msg", {"type": "user_message", "message": "Why is CI red?", "images": []}),
        ("turn_context", ctx),
        ("response_item", {"type": "reasoning", "summary": [], "encrypted_content": "x"}),
        ("response_item", {"type": "function_call", "name": "spawn_agent",
                           "arguments": spawn_args, "call_id": "call_spawn"}),
        ("event_msg", tokens((1000, 200, 50, 10), (1000, 200, 50, 10))),
        ("event_msg", {"type": "collab_agent_spawn_end", "call_id": "call_spawn",
                       "sender_thread_id": PARENT_ID, "new_thread_id": CHILD_ID,
                       "new_agent_nickname": "Ada", "new_agent_role": "explorer",
                       "prompt": "Find the flaky test", "model": "gpt-5.5-mini",
                       "status": "pending_init"}),
        ("response_item", {"type": "function_call_output", "call_id": "call_spawn",
                           "output": json.dumps({"agent_id": CHILD_ID, "nickname": "Ada"})}),
        ("turn_context", ctx),
        ("response_item", {"type": "function_call", "name": "wait",
                           "arguments": json.dumps({"ids": [CHILD_ID]}), "call_id": "call_wait"}),
        ("event_msg", tokens((1300, 1000, 20, 0), (2300, 1200, 70, 10))),
        ("event_msg", {"type": "collab_waiting_end", "sender_thread_id": PARENT_ID,
                       "call_id": "call_wait", "agent_statuses": [], "statuses": {}}),
        ("response_item", {"type": "function_call_output", "call_id": "call_wait",
                           "output": "completed: It is test_retry"}),
        ("turn_context", ctx),
        ("response_item", say("assistant", "CI is red because test_retry is flaky.")),
        ("event_msg", tokens((1500, 1200, 40, 5), (3800, 2400, 110, 15))),
        ("event_msg", {"type": "task_complete", "turn_id": "pt1",
                       "last_agent_message": "CI is red because test_retry is flaky."}),
    ]  # fmt: skip
    return b"".join(rec(kind, payload, i) for i, (kind, payload) in enumerate(lines))


def child_rollout(first: float = 5.5, every: float = 0.4) -> bytes:
    """Own header, a copy of the parent's history (ordinals 1-5), then the child's own turn;
    record i is stamped `first + every * i` seconds after 11:40."""
    spawn = {"parent_thread_id": PARENT_ID, "depth": 1, "agent_path": None,
             "agent_nickname": "Ada", "agent_role": "explorer"}  # fmt: skip
    ctx = {"turn_id": "ct1", "cwd": "/w", "model": "gpt-5.5-mini"}
    lines: list[tuple[str, dict[str, Any]]] = [
        ("session_meta", {"id": CHILD_ID, "session_id": PARENT_ID, "parent_thread_id": PARENT_ID,
                          "forked_from_id": PARENT_ID, "timestamp": "2026-02-23T11:40:05.500Z",
                          "cwd": "/w", "originator": "codex_cli_rs", "cli_version": "0.150.0",
                          "source": {"subagent": {"thread_spawn": spawn}},
                          "agent_nickname": "Ada", "agent_role": "explorer",
                          "model_provider": "openai", "subagent_history_start_ordinal": 6}),
        # the copied parent prefix: must not count (its usage is deliberately huge)
        ("session_meta", {"id": PARENT_ID, "timestamp": "2026-02-23T11:40:23.000Z", "cwd": "/w",
                          "source": "cli"}),
        ("event_msg", {"type": "task_started", "turn_id": "pt1"}),
        ("event_msg", {"type": "user_message", "message": "Why is CI red?"}),
        ("turn_context", {"turn_id": "pt1", "model": "gpt-5.5"}),
        ("event_msg", tokens((5_000_000, 0, 1, 0), (5_000_000, 0, 1, 0))),
        # the child's own history
        ("event_msg", {"type": "task_started", "turn_id": "ct1", "model_context_window": 258400}),
        ("event_msg", {"type": "user_message", "message": "Find the flaky test"}),
        ("turn_context", ctx),
        ("response_item", {"type": "function_call", "name": "exec_command",
                           "arguments": json.dumps({"cmd": "pytest -x"}), "call_id": "call_c1"}),
        ("event_msg", tokens((3000, 2000, 120, 40), (3000, 2000, 120, 40))),
        ("response_item", {"type": "function_call_output", "call_id": "call_c1",
                           "output": "FAILED test_retry"}),
        ("turn_context", ctx),
        ("response_item", say("assistant", "It is test_retry")),
        ("event_msg", tokens((3500, 3000, 80, 0), (6500, 5000, 200, 40))),
        ("event_msg", {"type": "task_complete", "turn_id": "ct1",
                       "last_agent_message": "It is test_retry"}),
    ]  # fmt: skip
    # The child runs while the parent waits for it: its records are stamped from 11:40:05.5 (the
    # spawn call is at :05) every 0.4 s, its task_complete at :11.5, before the parent's wait
    # returns (:13) and the parent's turn ends (:17).
    return b"".join(rec(kind, p, first + every * i, ordinal=i) for i, (kind, p) in enumerate(lines))


# Hand sums of the child's own two requests: (input, output, cache read, reasoning).
CHILD_USAGE = (3000 + 3500, 120 + 80, 2000 + 3000, 40 + 0)
PARENT_USAGE = (1000 + 1300 + 1500, 50 + 20 + 40, 200 + 1000 + 1200, 10 + 0 + 5)


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    day = tmp_path / DAY
    day.mkdir(parents=True)
    (day / PARENT_NAME).write_bytes(parent_rollout())
    (day / CHILD_NAME).write_bytes(child_rollout())
    return tmp_path


def related_source(path: Path, **options: Any) -> Source:
    return Source(str(path), "", options, read_related, find_related)


def llm_sums(spans: tuple[Any, ...] | list[Any]) -> tuple[int, int, int, int]:
    calls = [s for s in spans if isinstance(s, LLMCall)]
    return (
        sum(c.usage.input_tokens for c in calls),
        sum(c.usage.output_tokens for c in calls),
        sum(c.usage.cache_read_input_tokens for c in calls),
        sum(c.usage.reasoning_tokens for c in calls),
    )


def parent_turn(home: Path) -> Turn:
    path = home / DAY / PARENT_NAME
    (turn,) = turns_of(run(path.read_bytes(), str(path), related_source(path)))
    return turn


def test_child_thread_nests_under_the_spawn_call(codex_home: Path) -> None:
    turn = parent_turn(codex_home)
    kinds = [type(s).__name__ for s in turn.spans]
    assert kinds == ["LLMCall", "SubAgentCall", "LLMCall", "ToolCall", "LLMCall"]
    sub = turn.spans[1]
    assert isinstance(sub, SubAgentCall)
    assert (sub.agent_id, sub.name, sub.model) == (CHILD_ID, "explorer", "gpt-5.5-mini")
    assert (sub.tool_name, sub.tool_call_id) == ("spawn_agent", "call_spawn")
    assert [type(s).__name__ for s in sub.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    (child_tool,) = [s for s in sub.spans if isinstance(s, ToolCall)]
    assert (child_tool.tool_call_id, child_tool.result) == ("call_c1", "FAILED test_retry")
    assert llm_sums(sub.spans) == CHILD_USAGE  # the copied 5 000 000-token prefix is skipped
    assert llm_sums(turn.spans) == PARENT_USAGE  # the parent's own calls are unchanged
    assert [m.content for m in sub.input_messages] == ["Find the flaky test"]
    assert [m.content for m in sub.output_messages] == ["It is test_retry"]
    assert sub.started_at is not None and sub.ended_at is not None
    assert sub.started_at <= sub.spans[0].started_at  # type: ignore[operator]
    assert sub.ended_at >= sub.spans[-1].ended_at  # type: ignore[operator]
    assert sub.attributes["codex.child_thread_id"] == CHILD_ID
    assert sub.attributes["codex.subagent_turns"] == 1
    assert "codex.subagent_unfinished" not in sub.attributes


def test_child_rollout_alone_emits_nothing_its_parent_nests(codex_home: Path) -> None:
    """The child's only turn ended (:11.5) before the parent's spawning turn (:17): the parent
    nests it, so the child's own rollout emits nothing, and its checkpoint passes every line."""
    path = codex_home / DAY / CHILD_NAME
    parser = codex.FORMAT.new_parser(related_source(path), None)
    out: list[Turn | DeadLetter] = []
    for line in lines_of(path.read_bytes()):
        out.extend(parser.feed(line))
    assert parser.pending_from() is None
    out.extend(parser.close_idle(10**9))
    assert out == []


def test_child_rollout_emits_its_own_turns_when_nesting_is_off(codex_home: Path) -> None:
    path = codex_home / DAY / CHILD_NAME
    (turn,) = turns_of(
        run(path.read_bytes(), str(path), related_source(path, nest_subagents=False))
    )
    assert turn.key == f"codex|{CHILD_ID}|ct1"
    assert turn.attributes["codex.parent_thread_id"] == PARENT_ID
    assert [m.content for m in turn.messages] == ["Find the flaky test"]
    assert llm_sums(turn.spans) == CHILD_USAGE
    # ... and the parent then keeps the plain spawn call, so nothing is counted twice.
    parent = codex_home / DAY / PARENT_NAME
    source = related_source(parent, nest_subagents="false")
    (top,) = turns_of(run(parent.read_bytes(), str(parent), source))
    spawn = tools_of(top)[0]
    assert spawn.attributes["codex.child_thread_id"] == CHILD_ID
    assert "codex.subagent_transcript" not in spawn.attributes
    assert not any(isinstance(s, SubAgentCall) for s in top.spans)


def test_compressed_archived_child_is_found(codex_home: Path) -> None:
    plain = codex_home / DAY / CHILD_NAME
    archived = codex_home / "archived_sessions" / f"{CHILD_NAME}.zst"
    archived.parent.mkdir()
    archived.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    expected = parent_turn(codex_home)
    plain.unlink()
    turn = parent_turn(codex_home)
    assert turn == expected
    assert llm_sums(turn.spans[1].spans) == CHILD_USAGE  # type: ignore[union-attr]


def test_missing_child_keeps_the_tool_call(codex_home: Path) -> None:
    (codex_home / DAY / CHILD_NAME).unlink()
    turn = parent_turn(codex_home)
    assert not any(isinstance(s, SubAgentCall) for s in turn.spans)
    spawn = tools_of(turn)[0]
    assert spawn.tool_call_id == "call_spawn"
    assert spawn.attributes["codex.subagent_transcript"] == "unavailable"
    assert spawn.attributes["codex.child_thread_id"] == CHILD_ID


def test_without_spawn_events_the_spawn_output_names_the_child(codex_home: Path) -> None:
    """The default persistence mode writes no collab_agent_spawn_end."""
    path = codex_home / DAY / PARENT_NAME
    kept = [x for x in path.read_bytes().splitlines(True) if b"collab_agent_spawn_end" not in x]
    path.write_bytes(b"".join(kept))
    sub = parent_turn(codex_home).spans[1]
    assert isinstance(sub, SubAgentCall)
    assert (sub.agent_id, sub.name) == (CHILD_ID, "explorer")  # the role from the child's header
    assert llm_sums(sub.spans) == CHILD_USAGE


def test_a_sub_thread_no_spawn_call_points_at_still_emits_its_turns() -> None:
    meta = {"id": "R", "parent_thread_id": "P", "source": {"subagent": "review"}}
    data = b"".join(
        [
            rec("session_meta", meta, 0),
            rec("event_msg", {"type": "task_started", "turn_id": "r1"}, 1),
            rec("event_msg", {"type": "task_complete", "turn_id": "r1"}, 2),
        ]
    )
    (turn,) = turns_of(run(data))
    assert turn.key == "codex|R|r1"
    assert turn.attributes["codex.parent_thread_id"] == "P"


def test_a_child_that_spawns_itself_stops_at_the_depth_limit(codex_home: Path) -> None:
    loop = rec(
        "event_msg",
        {"type": "collab_agent_spawn_end", "call_id": "call_c1", "new_thread_id": CHILD_ID},
        30,
        ordinal=99,
    )
    child = codex_home / DAY / CHILD_NAME
    data = child.read_bytes()
    cut = data.index(b'"function_call_output"')
    cut = data.rindex(b"\n", 0, cut) + 1
    child.write_bytes(data[:cut] + loop + data[cut:])
    span: Any = parent_turn(codex_home).spans[1]
    depth = 0
    while isinstance(span, SubAgentCall):
        depth += 1
        span = next(s for s in span.spans if isinstance(s, (SubAgentCall, ToolCall)))
    assert depth == codex.MAX_SUBAGENT_DEPTH
    assert span.attributes["codex.subagent_transcript"] == "depth_limit"


def test_forked_child_without_ordinals_skips_records_older_than_itself() -> None:
    meta = {"id": "C", "parent_thread_id": "P", "forked_from_id": "P",
            "timestamp": "2026-02-23T11:41:00.000Z"}  # fmt: skip
    data = b"".join(
        [
            rec("session_meta", meta, 60),
            rec("event_msg", {"type": "task_started", "turn_id": "copied"}, 5),
            rec("event_msg", tokens((900, 0, 9, 0), (900, 0, 9, 0)), 6),
            rec("event_msg", {"type": "task_complete", "turn_id": "copied"}, 7),
            rec("event_msg", {"type": "task_started", "turn_id": "own"}, 61),
            rec("turn_context", {"model": "m"}, 61),
            rec("event_msg", tokens((10, 0, 2, 0), (910, 0, 11, 0)), 62),
            rec("event_msg", {"type": "task_complete", "turn_id": "own"}, 63),
        ]
    )
    source = Source("rollout-x.jsonl", options={"nest_subagents": False})
    turns = turns_of(run(data, source=source))
    assert [t.key for t in turns] == ["codex|C|own"]
    assert llm_sums(turns[0].spans) == (10, 2, 0, 0)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(min_value=0, max_value=1))
def test_restart_anywhere_in_a_parent_yields_the_same_nested_turn(
    codex_home: Path, fraction: float
) -> None:
    path = codex_home / DAY / PARENT_NAME
    lines = lines_of(path.read_bytes())
    cut = round(fraction * len(lines))
    assert resumed(lines, cut, str(path), related_source(path)) == [parent_turn(codex_home)]


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
                     "output", "item", "id", "source", "model", "arguments", "status",
                     "parent_thread_id", "forked_from_id", "subagent_history_start_ordinal",
                     "timestamp", "new_thread_id"]),
    JSONISH,
    max_size=5,
)  # fmt: skip


@st.composite
def envelope_lines(draw: st.DrawFn) -> bytes:
    payload = draw(FIELDS)
    payload["type"] = draw(SUBKINDS)
    body = {
        "timestamp": draw(JSONISH),
        "ordinal": draw(JSONISH),
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


# -- issue 8, kind 6: Codex edge records ---------------------------------------------------------


def at(second: int, kind: str, payload: dict[str, Any]) -> bytes:
    return env(kind, payload, f"2026-01-01T00:00:{second:02d}Z")


def aborted_rollout() -> list[bytes]:
    """Turn A is aborted while its second request is in flight; that request's token_count and
    its tool's output are written after `turn_aborted`; turn B follows."""
    return [
        META,
        at(1, "event_msg", {"type": "task_started", "turn_id": "A"}),
        at(1, "event_msg", {"type": "user_message", "message": "refactor it"}),
        at(1, "turn_context", {"model": "m"}),
        at(2, "response_item", {"type": "function_call", "name": "shell", "call_id": "c1"}),
        at(2, "event_msg", {"type": "token_count", "info": usage(100, 100)}),
        at(3, "turn_context", {"model": "m"}),
        at(4, "event_msg", {"type": "turn_aborted", "turn_id": "A", "reason": "interrupted"}),
        at(4, "response_item", {"type": "function_call_output", "call_id": "c1", "output": "x"}),
        at(4, "event_msg", {"type": "token_count", "info": usage(130, 30)}),
        at(9, "event_msg", {"type": "task_started", "turn_id": "B"}),
        at(9, "event_msg", {"type": "user_message", "message": "next"}),
        at(9, "event_msg", {"type": "token_count", "info": usage(137, 7)}),
        at(9, "event_msg", {"type": "task_complete", "turn_id": "B"}),
    ]


def test_token_count_after_turn_aborted_counts_in_the_aborted_turn() -> None:
    # By hand: A's requests used 100 then 30 input tokens (the 30 arrives after the abort),
    # 2 output tokens each; B used 7. Total input 137 = B's last total_token_usage.
    turns = turns_of(run(b"".join(aborted_rollout())))
    assert [t.key for t in turns] == ["codex|S|A", "codex|S|B"]
    a, b = turns
    assert a.interrupted and a.attributes["codex.abort_reason"] == "interrupted"
    assert [c.usage.input_tokens for c in a.spans if isinstance(c, LLMCall)] == [100, 30]
    assert llm_sums(a.spans)[:2] == (130, 4)
    assert llm_sums(b.spans)[:2] == (7, 2)
    (shell,) = tools_of(a)
    assert shell.result == "x" and "codex.output_missing" not in shell.attributes


def test_an_aborted_turn_waits_abort_grace_then_late_usage_is_a_continuation() -> None:
    parser = codex.FORMAT.new_parser(Source("rollout-x.jsonl"), None)
    lines = lines_of(b"".join(aborted_rollout()))
    out: list[Turn | DeadLetter] = []
    for line in lines[:8]:  # up to and including turn_aborted
        out.extend(parser.feed(line))
    assert out == [] and parser.pending_from() == lines[1].start
    assert parser.close_idle(codex.DEFAULT_ABORT_GRACE - 1) == []
    (a,) = parser.close_idle(codex.DEFAULT_ABORT_GRACE)
    assert a.key == "codex|S|A" and a.interrupted
    assert llm_sums(a.spans)[:2] == (100, 2)  # the second request's usage is not written yet
    assert parser.pending_from() is None
    late: list[Turn | DeadLetter] = []
    for line in lines[8:10]:  # the tool output (nothing to pair it with) and the token_count
        late.extend(parser.feed(line))
    (cont,) = turns_of(late)
    assert cont.attributes["tailerd.synthetic"] == "late_usage"
    assert cont.attributes["codex.continues_turn"] == "codex|S|A"
    assert llm_sums(cont.spans)[:2] == (30, 2)  # 130 - 100: counted once, in the continuation
    assert cont.identities[0].startswith("codex:turn:A#usage:")
    rest = [t for line in lines[10:] for t in turns_of(parser.feed(line))]
    assert [t.key for t in rest] == ["codex|S|B"]


def test_five_prompts_without_user_message_events_are_five_turns() -> None:
    # large.jsonl, counted by hand: line 2 is the user_message "Start" (line 4 is its echo);
    # lines 11, 13, 15, 17, 19 are response_item user messages "Step 1".."Step 5" with no
    # user_message event, each after an assistant answer; line 10 is <environment_context>.
    # So 1 + 5 = 6 prompts, one turn each.
    path = COVERAGE / "large.jsonl"
    turns = turns_of(run(path.read_bytes(), str(path)))
    assert [[m.content for m in t.messages] for t in turns] == [
        ["Start"],
        ["Step 1"],
        ["Step 2"],
        ["Step 3"],
        ["Step 4"],
        ["Step 5"],
    ]
    assert [t.output_messages[0].content for t in turns[1:]] == ["Ok"] * 5
    assert len({t.identities for t in turns}) == 6


def test_an_echo_written_before_its_user_message_is_one_prompt() -> None:
    data = b"".join(
        [
            META,
            ev("user_message", message="one"),
            item("message", role="assistant", content=[{"type": "output_text", "text": "a"}]),
            item("message", role="user", content=[{"type": "input_text", "text": "two"}]),
            ev("user_message", message="two"),
            item("message", role="assistant", content=[{"type": "output_text", "text": "b"}]),
        ]
    )
    turns = turns_of(run(data))
    assert [[m.content for m in t.messages] for t in turns] == [["one"], ["two"]]


def test_unreadable_timestamps_are_unknown_not_now() -> None:
    def bad(kind: str, payload: dict[str, Any]) -> bytes:
        return env(kind, payload, "[trimmed for fixture]")

    data = b"".join(
        [
            META,
            bad("event_msg", {"type": "task_started", "turn_id": "T"}),
            bad("event_msg", {"type": "user_message", "message": "q"}),
            bad("response_item", say("assistant", "a")),
            bad("event_msg", {"type": "task_complete", "turn_id": "T"}),
        ]
    )
    (turn,) = turns_of(run(data))
    assert turn.started_at is None and turn.ended_at is None
    assert turn.attributes["tailerd.timestamp_unknown"] is True
    assert turn.attributes["codex.unreadable_timestamps"] == 4  # the 4 records of the turn
    assert all(s.started_at is None for s in turn.spans)


# -- issue 8, kind 1: forks replay their parent's records --------------------------------------
# SOURCE: the parent is the real 0.104 rollout madshn-localpush 2026-02-23T12-40-23 (and, for
# turns without turn ids, the real 0.39 rollout Mai0313-VibeCodingTracker codex-0.39.0). The
# fork is built as Codex writes one: its own session_meta (new id, `forked_from_id` = the
# parent), then every parent record replayed verbatim but re-stamped after the fork's creation,
# then the fork's own new turns.

FORK_ID = "019c8b00-0000-7000-8000-00000000f0c4"


def forked(parent: bytes, new_turns: list[tuple[str, dict[str, Any]]]) -> bytes:
    records = [json.loads(x) for x in parent.splitlines() if x.strip()]
    header = dict(records[0]["payload"], id=FORK_ID, forked_from_id=records[0]["payload"]["id"])
    born = "2026-03-01T09:00:00.000Z"
    out = [{"timestamp": born, "type": "session_meta", "payload": {**header, "timestamp": born}}]
    for i, r in enumerate(records):  # re-stamped at or after the fork's creation
        out.append({**r, "timestamp": f"2026-03-01T09:00:{i // 1000:02d}.{i % 1000:03d}Z"})
    for kind, payload in new_turns:
        out.append({"timestamp": "2026-03-01T10:00:00.000Z", "type": kind, "payload": payload})
    return b"".join(orjson.dumps(r) + b"\n" for r in out)


def test_a_forks_replayed_turns_carry_the_parents_identities() -> None:
    parent = next(SESSIONS.glob("rollout-2026-02-23T12-40-23-*.jsonl"))
    data = parent.read_bytes()
    turn_ids = [  # from the raw records, not the parser
        r["payload"]["turn_id"]
        for r in map(json.loads, data.splitlines())
        if r["type"] == "event_msg" and r["payload"]["type"] == "task_started"
    ]
    new = [
        ("event_msg", {"type": "task_started", "turn_id": "fork-1"}),
        ("event_msg", {"type": "user_message", "message": "now try the other way"}),
        ("event_msg", {"type": "task_complete", "turn_id": "fork-1"}),
    ]
    fork_path = f"rollout-2026-03-01T10-00-00-{FORK_ID}.jsonl"
    parent_turns = turns_of(run(data, str(parent)))
    fork_turns = turns_of(run(forked(data, new), fork_path))
    expected = [(f"codex:turn:{tid}",) for tid in turn_ids]
    assert [t.identities for t in parent_turns] == expected
    assert [t.identities for t in fork_turns] == [*expected, ("codex:turn:fork-1",)]
    # keys (and so trace ids) differ: only identities can recognise the replay
    assert not {t.key for t in parent_turns} & {t.key for t in fork_turns}
    assert {t.session_id for t in fork_turns} == {FORK_ID}


def test_a_forks_replayed_turns_without_turn_ids_share_content_identities() -> None:
    data = LEGACY.read_bytes()  # 0.39: no task events, turn_id null, one turn
    new = [
        ("event_msg", {"type": "user_message", "message": "and the tests?"}),
        ("response_item", say("assistant", "They pass.")),
    ]
    fork_path = f"rollout-2026-03-01T10-00-00-{FORK_ID}.jsonl"
    (parent_turn,) = turns_of(run(data, str(LEGACY)))
    replayed, own = turns_of(run(forked(data, new), fork_path))
    assert parent_turn.identities[0].startswith("codex:content:")
    assert replayed.identities == parent_turn.identities  # re-stamped, yet the same identity
    assert replayed.key != parent_turn.key  # the key holds the prompt's (new) timestamp
    assert own.identities != parent_turn.identities
    assert [m.content for m in own.messages] == ["and the tests?"]


def test_identical_exchanges_in_one_rollout_have_distinct_content_identities() -> None:
    answer = item("message", role="assistant", content=[{"type": "output_text", "text": "Ok"}])
    data = META + ev("user_message", message="go on") + answer
    data += env("event_msg", {"type": "user_message", "message": "go on"}, "2026-01-01T00:01Z")
    data += answer
    first, second = turns_of(run(data))
    assert first.identities != second.identities


# -- issue 8, kind 3: a child that outlives its parent's turn ----------------------------------
# The parent's turn ends at :17 (task_complete); the child's records are stamped from :20.


def test_a_child_finishing_after_its_parents_turn_ships_from_its_own_rollout(
    codex_home: Path,
) -> None:
    (codex_home / DAY / CHILD_NAME).write_bytes(child_rollout(first=20.0, every=1.0))
    turn = parent_turn(codex_home)
    assert [type(s).__name__ for s in turn.spans] == [
        "LLMCall", "ToolCall", "LLMCall", "ToolCall", "LLMCall"
    ]  # fmt: skip
    spawn = tools_of(turn)[0]
    assert spawn.attributes["codex.subagent_transcript"] == "shipped_separately"
    assert llm_sums(turn.spans) == PARENT_USAGE  # no child token inside the parent
    path = codex_home / DAY / CHILD_NAME
    (own,) = turns_of(run(path.read_bytes(), str(path), related_source(path)))
    assert own.key == f"codex|{CHILD_ID}|ct1"
    assert own.session_id == PARENT_ID  # gen_ai.conversation.id: the parent's session
    assert own.attributes["codex.parent_turn_key"] == f"codex|{PARENT_ID}|pt1"
    assert own.attributes["codex.spawn_call_id"] == "call_spawn"
    assert own.attributes["codex.thread_id"] == CHILD_ID
    assert llm_sums(own.spans) == CHILD_USAGE  # the copied 5 000 000-token prefix is skipped


def test_a_growing_child_is_held_while_its_parent_runs_and_shipped_after(
    codex_home: Path,
) -> None:
    """Live order: the child's rollout is read while the parent's turn is still open (nothing
    to ship: the parent will nest what finishes before it), then the parent's turn ends and
    the child's turn finishes later: shipped from the child's rollout."""
    parent = codex_home / DAY / PARENT_NAME
    whole_parent = parent.read_bytes()
    parent.write_bytes(whole_parent[: whole_parent.index(b'"task_complete"')].rsplit(b"\n", 1)[0])
    child = codex_home / DAY / CHILD_NAME
    lines = lines_of(child_rollout(first=20.0, every=1.0))
    parser = codex.FORMAT.new_parser(related_source(child), None)
    out: list[Turn | DeadLetter] = []
    for line in lines[:-1]:  # all but the child's task_complete
        out.extend(parser.feed(line))
    assert out == [] and parser.pending_from() is not None
    parent.write_bytes(whole_parent)  # the parent's turn ends (:17), the child still runs
    assert parser.close_idle(60) == []  # an explicit turn waits for its task_complete
    (own,) = turns_of(parser.feed(lines[-1]))
    assert own.attributes["codex.parent_turn_key"] == f"codex|{PARENT_ID}|pt1"
    assert llm_sums(own.spans) == CHILD_USAGE
    assert parser.pending_from() is None


def test_a_child_with_turns_before_and_after_its_parents_end_counts_each_once(
    codex_home: Path,
) -> None:
    """ct1 ends at :11.5 (nested in the parent's turn, which ends at :17); the parent then
    sends the child more work: ct2 runs :30-:33 (shipped from the child's rollout)."""
    second = [
        rec("event_msg", {"type": "task_started", "turn_id": "ct2"}, 30, ordinal=16),
        rec("event_msg", {"type": "user_message", "message": "and fix it"}, 30, ordinal=17),
        rec("turn_context", {"turn_id": "ct2", "model": "gpt-5.5-mini"}, 31, ordinal=18),
        rec("event_msg", tokens((700, 600, 9, 1), (7200, 5600, 209, 41)), 32, ordinal=19),
        rec("event_msg", {"type": "task_complete", "turn_id": "ct2"}, 33, ordinal=20),
    ]
    child = codex_home / DAY / CHILD_NAME
    child.write_bytes(child.read_bytes() + b"".join(second))
    turn = parent_turn(codex_home)
    sub = turn.spans[1]
    assert isinstance(sub, SubAgentCall)
    assert sub.attributes["codex.subagent_turns"] == 1
    assert sub.attributes["codex.subagent_later_turns"] == "shipped_separately"
    assert llm_sums(sub.spans) == CHILD_USAGE
    (own,) = turns_of(run(child.read_bytes(), str(child), related_source(child)))
    assert own.key == f"codex|{CHILD_ID}|ct2"
    assert llm_sums(own.spans) == (700, 9, 600, 1)
    # Every billed request once: parent 3 + ct1 2 + ct2 1 LLM calls.
    shipped = [*turn.spans, *sub.spans, *own.spans]
    assert sum(isinstance(s, LLMCall) for s in shipped) == 6


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(min_value=0, max_value=1))
def test_restart_anywhere_in_a_late_child_yields_the_same_turn(
    codex_home: Path, fraction: float
) -> None:
    path = codex_home / DAY / CHILD_NAME
    path.write_bytes(child_rollout(first=20.0, every=1.0))
    lines = lines_of(path.read_bytes())
    whole = turns_of(run(path.read_bytes(), str(path), related_source(path)))
    assert [t.key for t in whole] == [f"codex|{CHILD_ID}|ct1"]
    cut = round(fraction * len(lines))
    assert resumed(lines, cut, str(path), related_source(path)) == whole


def test_a_late_child_finds_its_spawning_turn_after_earlier_turns(codex_home: Path) -> None:
    """The parent has an earlier turn pt0 (whose tool output quotes a task_started record)
    before pt1 spawns the child; the child's late turn names pt1 and is counted once."""
    quoted = json.dumps({"type": "task_started", "turn_id": "not-a-turn"})
    earlier = [
        rec("event_msg", {"type": "task_started", "turn_id": "pt0"}, 0.1),
        rec("event_msg", {"type": "user_message", "message": "hi"}, 0.2),
        rec("response_item", {"type": "function_call", "name": "cat", "call_id": "c0"}, 0.3),
        rec("response_item", {"type": "function_call_output", "call_id": "c0", "output": quoted},
            0.4),
        rec("event_msg", {"type": "task_complete", "turn_id": "pt0"}, 0.5),
    ]  # fmt: skip
    parent = codex_home / DAY / PARENT_NAME
    head, rest = parent.read_bytes().split(b"\n", 1)
    parent.write_bytes(head + b"\n" + b"".join(earlier) + rest)
    child = codex_home / DAY / CHILD_NAME
    child.write_bytes(child_rollout(first=20.0, every=1.0))
    (own,) = turns_of(run(child.read_bytes(), str(child), related_source(child)))
    assert own.attributes["codex.parent_turn_key"] == f"codex|{PARENT_ID}|pt1"
    assert llm_sums(own.spans) == CHILD_USAGE


@pytest.mark.parametrize("late_usage", [False, True])
def test_a_child_of_an_aborted_parent_turn_is_shipped_once(
    codex_home: Path, late_usage: bool
) -> None:
    """The parent's turn is aborted at :17 (no task_complete); the child's turn ends at :35.
    Nesting ends at the abort, whatever the aborted turn still receives while it lingers (a
    token_count at :40 in one variant: 100 more input tokens for the parent, by hand)."""
    parent = codex_home / DAY / PARENT_NAME
    lines = parent.read_bytes().splitlines(keepends=True)
    assert b'"task_complete"' in lines[-1]
    ending = [rec("event_msg", {"type": "turn_aborted", "turn_id": "pt1"}, 17)]
    if late_usage:
        ending.append(rec("event_msg", tokens((100, 0, 5, 0), (3900, 2400, 115, 15)), 40))
    parent.write_bytes(b"".join(lines[:-1] + ending))
    child = codex_home / DAY / CHILD_NAME
    child.write_bytes(child_rollout(first=20.0, every=1.0))
    # the child reads the parent's rollout, where the aborted turn still lingers (nothing
    # after it closes it): its nesting end is already fixed at :17
    (own,) = turns_of(run(child.read_bytes(), str(child), related_source(child)))
    assert own.attributes["codex.parent_turn_key"] == f"codex|{PARENT_ID}|pt1"
    assert llm_sums(own.spans) == CHILD_USAGE
    turn = parent_turn(codex_home)
    assert turn.interrupted
    assert tools_of(turn)[0].attributes["codex.subagent_transcript"] == "shipped_separately"
    extra = 100 if late_usage else 0
    assert llm_sums(turn.spans)[0] == PARENT_USAGE[0] + extra
