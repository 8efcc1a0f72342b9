"""Gemini CLI recordings (JSONL and legacy whole-file JSON) against independent counts."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line, LLMCall, ToolCall, Turn
from tailerd.formats import gemini
from tailerd.formats.base import Source

REPO = Path(__file__).resolve().parents[2]
AGENTS = REPO / ".." / "shared" / "fixtures" / "agents"
COVERAGE = AGENTS / "_schema_coverage" / "jazzyalex-agent-sessions" / "gemini"
REAL_JSONL = AGENTS / "gemini" / "Mai0313-VibeCodingTracker" / "gemini-session-2026-04.jsonl"
REAL_JSON = AGENTS / "gemini" / "Mai0313-VibeCodingTracker" / "gemini-session-2025-10.legacy.json"
JSONL_FILES = [REAL_JSONL, COVERAGE / "jsonl_v040.jsonl"]
JSON_FILES = [
    REAL_JSON,
    COVERAGE / "small.json",
    COVERAGE / "large.json",
    COVERAGE / "schema_drift.json",
]


def lines_of(data: bytes) -> list[Line]:
    return [x for x in LineFramer().feed(data) if isinstance(x, Line)]


def run(data: bytes, path: str = "chats/session-x.jsonl") -> list[Turn | DeadLetter]:
    parser = gemini.FORMAT.new_parser(Source(path), None)
    out: list[Turn | DeadLetter] = []
    for line in lines_of(data):
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))
    return out


def turns_of(out: list[Turn | DeadLetter]) -> list[Turn]:
    return [x for x in out if isinstance(x, Turn)]


def summary(turns: list[Turn]) -> dict[str, Any]:
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    tools = 0
    for turn in turns:
        for s in turn.spans:
            if isinstance(s, LLMCall):
                row = tokens[s.model]
                row[0] += s.usage.input_tokens
                row[1] += s.usage.output_tokens
                row[2] += s.usage.cache_read_input_tokens
            elif isinstance(s, ToolCall):
                tools += 1
                assert s.tool_call_id and s.result  # every call carries its embedded result
    return {
        "turns": len(turns),
        "sessions": {t.session_id for t in turns},
        "tools": tools,
        "tokens": dict(tokens),
        "interrupted": sum(t.interrupted for t in turns),
    }


def plain_count(session: str | None, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliberately simple: final versions of the records, counted after the first user record."""
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    seen_user, turns, tools, cancelled = False, 0, 0, 0
    for m in messages:
        if m["type"] == "user":
            seen_user, turns = True, turns + 1
        elif seen_user and m["type"] in ("gemini", "model"):
            tools += len(m.get("toolCalls", []))
            t = m.get("tokens", {})
            row = tokens[m.get("model", "")]
            row[0] += t.get("input", 0) + t.get("tool", 0)
            row[1] += t.get("output", 0) + t.get("thoughts", 0)
            row[2] += t.get("cached", 0)
        elif seen_user and m["type"] == "info" and m["content"] == "Request cancelled.":
            cancelled += 1
    return {
        "turns": turns,
        "sessions": {session} if turns else set(),
        "tools": tools,
        "tokens": dict(tokens),
        "interrupted": cancelled,
    }


def jsonl_expectations(path: Path) -> dict[str, Any]:
    records = [json.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    latest: dict[str, dict[str, Any]] = {}
    for r in records[1:]:
        if "id" in r:
            latest[r["id"]] = r  # dicts keep first-insertion order: last write, first position
    return plain_count(records[0]["sessionId"], list(latest.values()))


def test_fixtures_are_present() -> None:
    for path in JSONL_FILES + JSON_FILES:
        assert path.is_file(), f"Gemini fixture missing: {path}"


@pytest.mark.parametrize("path", JSONL_FILES, ids=lambda p: p.name)
def test_jsonl_recordings_match_independent_counts(path: Path) -> None:
    out = run(path.read_bytes(), str(path))
    assert not [x for x in out if isinstance(x, DeadLetter)]
    turns = turns_of(out)
    assert summary(turns) == jsonl_expectations(path)
    assert len({t.key for t in turns}) == len(turns)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_legacy_documents_match_independent_counts(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    expected = plain_count(doc.get("sessionId"), doc.get("messages", []))
    turns = gemini.turns_from_document(path.read_bytes(), Source(str(path)), final=True)
    assert summary(turns) == expected


def test_real_jsonl_turns_by_hand() -> None:
    turns = turns_of(run(REAL_JSONL.read_bytes(), str(REAL_JSONL)))
    session = "0ab84937-9fe7-4284-986a-33c832af0b6a"
    assert [t.key for t in turns] == [
        f"gemini|{session}|8828dd6a-d778-464f-8160-eb2e1604a122",
        f"gemini|{session}|1b8df650-1638-435e-b736-1f1f42357da9",
        f"gemini|{session}|231038fa-bbfb-4b43-9a30-b8b7fcf54895",
    ]
    # The first turn's five gemini records: 52e62e67 re-appended with 5 tool calls, etc.
    assert [sum(isinstance(s, ToolCall) for s in t.spans) for t in turns] == [10, 0, 2]
    assert [t.model for t in turns][-1] == "gemini-3.1-pro-preview"
    assert turns[2].interrupted
    first_llm = turns[0].spans[0]
    assert isinstance(first_llm, LLMCall)
    assert first_llm.usage.total_tokens == 14397
    assert first_llm.usage.input_tokens + first_llm.usage.output_tokens == 14397


def test_restart_in_the_middle_yields_the_same_turns() -> None:
    data = REAL_JSONL.read_bytes()
    lines = lines_of(data)
    whole = turns_of(run(data, str(REAL_JSONL)))
    for cut in range(0, len(lines) + 1, 3):
        first = gemini.FORMAT.new_parser(Source(str(REAL_JSONL)), None)
        emitted = [t for line in lines[:cut] for t in turns_of(first.feed(line))]
        context = json.loads(json.dumps(first.snapshot()))
        pending = first.pending_from()
        resume_at = cut if pending is None else [x.start for x in lines].index(pending)
        second = gemini.FORMAT.new_parser(Source(str(REAL_JSONL)), context)
        seen = {t.key for t in emitted}
        for line in lines[resume_at:]:
            emitted.extend(t for t in turns_of(second.feed(line)) if t.key not in seen)
        emitted.extend(second.close_idle(10**9))
        assert emitted == whole, cut


def rec(**fields: Any) -> bytes:
    return orjson.dumps(fields) + b"\n"


META = rec(sessionId="S", projectHash="h", startTime="2026-01-01T00:00:00Z", kind="main")


def test_last_write_wins_and_a_turn_waits_for_the_next_prompt() -> None:
    parser = gemini.FORMAT.new_parser(Source("chats/session-x.jsonl"), None)
    response = {"functionResponse": {"id": "c1", "response": {"output": "a.txt"}}}
    call = {"id": "c1", "name": "ls", "args": {}, "status": "success", "result": [response]}
    lines = lines_of(
        b"".join(
            [
                META,
                rec(id="u1", type="user", content="hi"),
                rec(id="g1", type="gemini", content="first", model="m"),
                rec(id="g1", type="gemini", content="final", model="m", toolCalls=[call]),
                rec(id="u2", type="user", content="next"),
            ]
        )
    )
    out = [x for line in lines[:-1] for x in parser.feed(line)]
    assert out == []
    assert parser.pending_from() == lines[1].start
    (turn,) = turns_of(parser.feed(lines[-1]))
    assert turn.key == "gemini|S|u1"
    assert turn.output_messages[0].content == "final"
    assert [type(s).__name__ for s in turn.spans] == ["LLMCall", "ToolCall"]
    assert turn.spans[1].result == "a.txt"  # type: ignore[union-attr]
    assert turn.end == lines[3].end
    assert parser.close_idle(29) == []
    assert [t.key for t in parser.close_idle(30)] == ["gemini|S|u2"]


def test_rewind_drops_the_target_and_what_follows() -> None:
    data = b"".join(
        [
            META,
            rec(id="u1", type="user", content="one"),
            rec(id="g1", type="gemini", content="a"),
            rec(id="g2", type="gemini", content="b"),
            rec(**{"$rewindTo": "g2"}),
            rec(**{"$set": {"lastUpdated": "x"}}),
            rec(id="u2", type="user", content="two"),
            rec(id="g3", type="gemini", content="c"),
            rec(**{"$rewindTo": "u2"}),
            rec(id="u3", type="user", content="three"),
        ]
    )
    turns = turns_of(run(data))
    assert [t.key for t in turns] == ["gemini|S|u1", "gemini|S|u3"]
    assert [len(t.spans) for t in turns] == [1, 0]
    assert turns[0].output_messages[0].content == "a"


def test_legacy_document_growth_never_resends_or_changes_a_sent_turn() -> None:
    doc = json.loads(REAL_JSON.read_bytes())
    doc["messages"].append({"id": "late-user", "type": "user", "content": "more",
                            "timestamp": "2025-10-11T14:00:00Z"})  # fmt: skip
    doc["messages"].append({"id": "late-gemini", "type": "gemini", "content": "ok"})
    source = Source(str(REAL_JSON))
    sent: dict[str, Turn] = {}
    for n in range(len(doc["messages"]) + 1):
        grown = dict(doc, messages=doc["messages"][:n])
        data = json.dumps(grown, indent=2).encode()
        for turn in gemini.turns_from_document(data, source, final=False):
            if turn.key in sent:
                assert turn.spans == sent[turn.key].spans
            sent[turn.key] = turn
        assert gemini.turns_from_document(data[: len(data) // 2], source, final=False) == []
    final = gemini.turns_from_document(json.dumps(doc).encode(), source, final=True)
    assert len(sent) == 1 and len(final) == 2
    assert list(sent) == [t.key for t in final[:1]]


def test_jsonl_and_document_share_one_turn_builder() -> None:
    doc = json.loads((COVERAGE / "large.json").read_bytes())
    meta = {k: v for k, v in doc.items() if k != "messages"}
    jsonl = rec(**meta) + b"".join(rec(**m) for m in doc["messages"])
    from_lines = turns_of(run(jsonl))
    from_doc = gemini.turns_from_document(orjson.dumps(doc), Source("x.json"), final=True)
    strip = [(t.key, t.messages, t.output_messages, t.spans, t.interrupted) for t in from_lines]
    assert strip == [
        (t.key, t.messages, t.output_messages, t.spans, t.interrupted) for t in from_doc
    ]


def test_claims() -> None:
    fmt = gemini.FORMAT
    assert fmt.claims(Path("chats/session-1.jsonl"), META)
    assert fmt.claims(Path("chats/session-1.json"), REAL_JSON.read_bytes()[:2048])
    assert fmt.claims(Path("x/small.json"), (COVERAGE / "small.json").read_bytes())
    codex_head = b'{"timestamp":"t","type":"session_meta","payload":{"id":"x"}}\n'
    assert not fmt.claims(Path("sessions/rollout-1.jsonl"), codex_head)
    assert not fmt.claims(Path("p/abc.jsonl"), b'{"type":"user","sessionId":"s"}\n')
    assert gemini.WHOLE_DOCUMENT_SUFFIX == ".json"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
RECORDS = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c"]), "type": st.sampled_from(["user", "gemini", "info"])},
    optional={
        "content": JSONISH, "tokens": JSONISH, "toolCalls": JSONISH, "thoughts": JSONISH,
        "model": JSONISH, "timestamp": JSONISH, "$rewindTo": JSONISH, "$set": JSONISH,
    },
)  # fmt: skip


LINES = RECORDS.map(lambda d: orjson.dumps(d) + b"\n") | st.binary(max_size=30).map(
    lambda b: b + b"\n"
)


def decoded(chunk: bytes) -> Any:
    try:
        return orjson.loads(chunk)
    except orjson.JSONDecodeError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, max_size=20))
def test_parser_and_document_never_raise(chunks: list[bytes]) -> None:
    parser = gemini.FORMAT.new_parser(Source("chats/session-x.jsonl"), None)
    for line in lines_of(META + b"".join(chunks)):
        parser.feed(line)
        json.dumps(parser.snapshot())
    parser.close_idle(10**9)
    messages = [decoded(c) for c in chunks]
    doc = orjson.dumps({"sessionId": "S", "messages": messages})
    gemini.turns_from_document(doc, Source("x.json"), final=True)
