"""Claude Code format: real transcripts checked against a separate, deliberately simple reading
of the same files (and hand-checked numbers in tests/golden/claude_code/expected.json)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd.core.framing import LineFramer
from tailerd.domain import DeadLetter, Line, LLMCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source, turn_key
from tailerd.formats.claude_code import FORMAT, ClaudeCodeParser

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / ".." / "shared" / "fixtures" / "agents"
GOLDEN = json.loads((ROOT / "tests" / "golden" / "claude_code" / "expected.json").read_text())
FIXTURE_DIRS = ("claude-code", "_schema_coverage/jazzyalex-agent-sessions/claude")


def session_files() -> list[str]:
    assert AGENTS.is_dir(), f"fixtures missing: {AGENTS}"
    found = []
    for folder in FIXTURE_DIRS:
        for path in sorted((AGENTS / folder).rglob("*.jsonl")):
            rel = path.relative_to(AGENTS)
            # Sub-agent transcripts (agent-*.jsonl) are checked by their own tests: Warmup and
            # parentless ones are tailed alone as synthetic turns, not session transcripts.
            # is_auxiliary looks at the file, so it is given the real path.
            if not path.name.startswith("agent-") and not FORMAT.is_auxiliary(path):
                found.append(rel.as_posix())
    return found


SESSIONS = session_files()


def read_disk(path: str, cap: int) -> bytes | None:
    try:
        return Path(path).read_bytes()[:cap]
    except OSError:
        return None


def lines_of(data: bytes) -> list[Line]:
    out = LineFramer().feed(data if data.endswith(b"\n") or not data else data + b"\n")
    assert all(isinstance(x, Line) for x in out)
    return [x for x in out if isinstance(x, Line)]


def source_for(rel: str, **options: Any) -> Source:
    return Source(str(AGENTS / rel), options=options, read_related=read_disk)


def run(
    source: Source, lines: Iterable[Line], context: Mapping[str, Any] | None = None
) -> tuple[list[Turn], list[DeadLetter], ClaudeCodeParser]:
    parser = FORMAT.new_parser(source, context)
    assert isinstance(parser, ClaudeCodeParser)
    out: list[Turn | DeadLetter] = []
    for line in lines:
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))
    turns = [t for t in out if isinstance(t, Turn)]
    dead = [d for d in out if isinstance(d, DeadLetter)]
    return turns, dead, parser


def parse_file(rel: str) -> tuple[list[Turn], list[DeadLetter], ClaudeCodeParser]:
    return run(source_for(rel), lines_of((AGENTS / rel).read_bytes()))


# ---------------------------------------------------------------------------------------------
# The independent reading: one flat pass, no turn logic


@dataclass
class RawFacts:
    prompt_uuids: list[str] = field(default_factory=list)
    prompt_sessions: set[str] = field(default_factory=set)
    tool_use_ids: list[str] = field(default_factory=list)
    anonymous_tool_uses: int = 0
    result_ids: set[str] = field(default_factory=set)
    output_by_model: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    agent_by_tool: dict[str, str] = field(default_factory=dict)


NOT_PROMPTS = ("[Request interrupted", "<command-", "<local-command", "<bash-", "Caveat:")


def raw_records(data: bytes, main_file: bool = True) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for raw in data.splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        uuid = rec.get("uuid")
        if uuid in seen:
            continue
        if uuid:
            seen.add(uuid)
        if main_file and rec.get("isSidechain") is True:
            continue
        out.append(rec)
    return out


def raw_facts(data: bytes, main_file: bool = True) -> RawFacts:
    facts = RawFacts()
    last_usage: dict[str, tuple[str, int]] = {}
    for rec in raw_records(data, main_file):
        message: dict[str, Any] = rec["message"] if isinstance(rec.get("message"), dict) else {}
        content = message.get("content")
        blocks: list[dict[str, Any]] = (
            [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        )
        if rec.get("type") == "user":
            results = [b for b in blocks if b.get("type") == "tool_result"]
            for b in results:
                facts.result_ids.add(str(b.get("tool_use_id")))
                tur = rec.get("toolUseResult")
                if isinstance(tur, dict) and tur.get("agentId"):
                    facts.agent_by_tool[str(b.get("tool_use_id"))] = tur["agentId"]
            text = content if isinstance(content, str) else ""
            text = text or "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            if (
                not results
                and text.strip()
                and not rec.get("isMeta")
                and not rec.get("isCompactSummary")
                and not text.lstrip().startswith(NOT_PROMPTS)
            ):
                facts.prompt_uuids.append(rec["uuid"])
                facts.prompt_sessions.add(rec["sessionId"])
        if rec.get("type") == "assistant" and message.get("model") != "<synthetic>":
            for b in blocks:
                if b.get("type") == "tool_use":
                    if b.get("id"):
                        facts.tool_use_ids.append(b["id"])
                    else:
                        facts.anonymous_tool_uses += 1
            key = str(message.get("id") or rec.get("uuid"))
            usage = message.get("usage") or {}
            last_usage[key] = (message.get("model", ""), usage.get("output_tokens", 0))
    for model, output in last_usage.values():
        facts.output_by_model[model] += output
    facts.calls = len(last_usage)
    return facts


def top_spans(turns: list[Turn]) -> list[Any]:
    return [s for t in turns for s in t.spans]


# ---------------------------------------------------------------------------------------------
# Every fixture transcript


def test_every_fixture_session_has_golden_numbers() -> None:
    assert len(SESSIONS) >= 19
    assert set(SESSIONS) == {k for k in GOLDEN if not k.startswith("_how")}


@pytest.mark.parametrize("rel", SESSIONS)
def test_turns_match_the_raw_file(rel: str) -> None:
    data = (AGENTS / rel).read_bytes()
    facts = raw_facts(data)
    golden = GOLDEN[rel]
    turns, dead, _ = parse_file(rel)

    assert dead == []
    assert len(turns) == golden["turns"]
    assert sum(t.interrupted for t in turns) == golden["interrupted"]
    # every plain prompt starts exactly one turn, keyed by its own uuid
    keys = [t.key for t in turns]
    assert len(set(keys)) == len(keys)
    sessions, uuids = facts.prompt_sessions, facts.prompt_uuids
    prompt_keys = {turn_key("claude-code", s, u) for s in sessions for u in uuids}
    started_by_prompt = [k for k in keys if k in prompt_keys]
    assert len(started_by_prompt) == len(facts.prompt_uuids)
    assert len(turns) - len(started_by_prompt) == golden["extra_turns"]
    assert {t.session_id for t in turns} <= facts.prompt_sessions | {
        r.get("sessionId") for r in raw_records(data)
    }
    assert all(t.agent_name == "claude-code" for t in turns)
    assert all(t.start < t.end for t in turns)
    assert [t.start for t in turns] == sorted(t.start for t in turns)

    spans = top_spans(turns)
    calls = [s for s in spans if isinstance(s, LLMCall)]
    tools = [s for s in spans if isinstance(s, (ToolCall, SubAgentCall))]
    assert len(calls) == facts.calls
    by_model: Counter[str] = Counter()
    for c in calls:
        by_model[c.model] += c.usage.output_tokens
        assert c.provider_name == "anthropic"
    assert +by_model == +facts.output_by_model

    assert len(tools) == len(facts.tool_use_ids) + facts.anonymous_tool_uses
    assert [t.tool_call_id for t in tools if t.tool_call_id] == facts.tool_use_ids
    for tool in tools:
        if tool.tool_call_id in facts.result_ids:
            assert tool.ended_at is not None, tool.tool_call_id
            assert tool.started_at is not None and tool.started_at <= tool.ended_at
            if isinstance(tool, ToolCall):
                assert tool.arguments.startswith("{")


def progress_calls(data: bytes, tool_use_id: str) -> dict[str, int]:
    """message.id -> output tokens (its last line's) of the sub-agent assistant records that
    agent_progress records of `tool_use_id` embed (`data.message`)."""
    out: dict[str, int] = {}
    for raw in data.splitlines():
        rec = json.loads(raw)
        body = rec.get("data") or {}
        if rec.get("type") != "progress" or body.get("type") != "agent_progress":
            continue
        if rec.get("parentToolUseID") != tool_use_id:
            continue
        inner = body.get("message") or {}
        msg = inner.get("message") or {}
        if inner.get("type") == "assistant" and msg.get("id"):
            out[msg["id"]] = msg["usage"]["output_tokens"]
    return out


@pytest.mark.parametrize("rel", SESSIONS)
def test_subagents_nest_their_own_calls(rel: str) -> None:
    expected = GOLDEN[rel]["subagents"]
    facts = raw_facts((AGENTS / rel).read_bytes())
    turns, _, _ = parse_file(rel)
    subagents = {s.tool_call_id: s for s in top_spans(turns) if isinstance(s, SubAgentCall)}
    assert set(subagents) == set(expected)
    session_dir = (AGENTS / rel).with_suffix("")
    for tool_id, want in expected.items():
        sub = subagents[tool_id]
        assert sub.agent_id == want["agent_id"] == facts.agent_by_tool.get(tool_id, "")
        if want["transcript"] != "read":
            # No transcript file: the calls the parent's agent_progress records embed are the
            # sub-agent's (issue 8 kind 2: billed calls must not be dropped); counted here
            # straight from the raw records.
            embedded = progress_calls((AGENTS / rel).read_bytes(), tool_id)
            if not embedded:
                assert sub.spans == ()
                assert sub.attributes["claude_code.subagent_transcript"] == want["transcript"]
                continue
            assert sub.attributes["claude_code.subagent_transcript"] == "progress"
            calls = [s for s in sub.spans if isinstance(s, LLMCall)]
            assert {c.response_id: c.usage.output_tokens for c in calls} == embedded
            continue
        assert sub.input_messages and sub.input_messages[0].content
        candidates = [
            session_dir / "subagents" / f"agent-{sub.agent_id}.jsonl",
            session_dir.parent / f"agent-{sub.agent_id}.jsonl",
        ]
        child = next(p for p in candidates if p.exists()).read_bytes()
        child_facts = raw_facts(child, main_file=False)
        nested_calls = [s for s in sub.spans if isinstance(s, LLMCall)]
        nested_tools = [s for s in sub.spans if not isinstance(s, LLMCall)]
        assert len(nested_calls) == child_facts.calls > 0
        assert len(nested_tools) == len(child_facts.tool_use_ids)
        assert sum(c.usage.output_tokens for c in nested_calls) == sum(
            child_facts.output_by_model.values()
        )
        assert sub.model in child_facts.output_by_model


def test_long_session_boundaries_and_compaction() -> None:
    """4d5611e5: compaction at line 754 sits inside the turn that runs from line 280 to 1500."""
    rel = "claude-code/marot-spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
    data = (AGENTS / rel).read_bytes()
    starts = [0]
    for raw in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(raw))
    turns, _, _ = parse_file(rel)
    line_no = [starts.index(t.start) + 1 for t in turns]
    assert line_no == [7, 280, 1502]
    compaction = starts[753]
    assert turns[1].start < compaction < turns[1].end
    assert turns[1].model == "claude-opus-4-6"
    assert turns[1].attributes["claude_code.cwd"].endswith("spotter-dov")
    assert turns[1].attributes["tailerd.cwd"] == turns[1].attributes["claude_code.cwd"]
    assert turns[1].attributes["claude_code.git_branch"] == "spotter-dov"
    assert turns[1].attributes["claude_code.version"] == "2.1.39"
    assert turns[2].attributes["claude_code.origin"] == "task-notification"
    assert turns[0].output_messages and turns[0].output_messages[0].role == "assistant"


def test_session_names_come_from_title_records() -> None:
    turns, _, _ = parse_file("_schema_coverage/jazzyalex-agent-sessions/claude/small.jsonl")
    assert turns[0].session_name == "Stage0 small fixture"  # custom-title outranks ai-title
    _, _, drift_parser = parse_file(
        "_schema_coverage/jazzyalex-agent-sessions/claude/schema_drift.jsonl"
    )
    assert drift_parser.unknown_types() == {"1.9.0:tool_use": 1, "1.9.0:tool_result": 1}
    kf, _, _ = parse_file(
        "claude-code/kfischer-okarin-scripts-and-tools/-Users-user-project/"
        "b3edadab-bca0-4054-9b41-f7ffa6941260.jsonl"
    )
    assert kf[-1].session_name == "Test file creation and agent thread handling"


# ---------------------------------------------------------------------------------------------
# Restart in the middle: same turns as one pass


def restarted(rel: str, cut: int, chunks: list[int]) -> list[Turn]:
    data = (AGENTS / rel).read_bytes()
    lines = lines_of(data)
    source = source_for(rel)
    first = FORMAT.new_parser(source, None)
    emitted: list[Turn] = []
    for line in lines[:cut]:
        emitted.extend(t for t in first.feed(line) if isinstance(t, Turn))
    resume_at = first.pending_from()
    if resume_at is None:
        resume_at = lines[cut - 1].end if cut else 0
    context = json.loads(json.dumps(first.snapshot()))
    framer = LineFramer(offset=resume_at)
    rest = data[resume_at:]
    pieces: list[Line] = []
    pos = 0
    for size in [*chunks, len(rest)]:
        pieces.extend(x for x in framer.feed(rest[pos : pos + size]) if isinstance(x, Line))
        pos += size
    again, _, _ = run(source, pieces, context)
    done = {t.key for t in emitted}
    return emitted + [t for t in again if t.key not in done]


RESTART_FILES = [
    "claude-code/marot-spotter/short.jsonl",
    "claude-code/marot-spotter/tool_heavy.jsonl",
    "claude-code/marot-spotter/subagent.jsonl",
    "claude-code/kfischer-okarin-scripts-and-tools/-Users-user-project/b3edadab-bca0-4054-9b41-f7ffa6941260.jsonl",
    "claude-code/Mai0313-VibeCodingTracker/claude_code-1.0.95.jsonl",
    "_schema_coverage/jazzyalex-agent-sessions/claude/small.jsonl",
    "_schema_coverage/jazzyalex-agent-sessions/claude/schema_drift.jsonl",
]
ONE_PASS = {rel: parse_file(rel)[0] for rel in RESTART_FILES}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rel=st.sampled_from(RESTART_FILES),
    where=st.floats(0, 1),
    chunks=st.lists(st.integers(1, 5000), max_size=8),
)
def test_restart_anywhere_gives_the_same_turns(rel: str, where: float, chunks: list[int]) -> None:
    count = len(lines_of((AGENTS / rel).read_bytes()))
    cut = round(where * count)
    assert restarted(rel, cut, chunks) == ONE_PASS[rel]


@pytest.mark.parametrize("cut", [277, 278, 700, 760, 1501])
def test_restart_in_the_long_session(cut: int) -> None:
    """After the Stop hook (before the late turn_duration), mid-turn, after compaction."""
    rel = "claude-code/marot-spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
    assert restarted(rel, cut, []) == parse_file(rel)[0]


# ---------------------------------------------------------------------------------------------
# Robustness


CLAUDE_KEYS = st.sampled_from(
    [
        "type",
        "uuid",
        "sessionId",
        "message",
        "content",
        "subtype",
        "isMeta",
        "timestamp",
        "data",
        "toolUseResult",
        "isSidechain",
        "version",
        "attachment",
        "id",
        "usage",
        "model",
    ]
)
CLAUDE_VALUES = st.sampled_from(
    [
        "user",
        "assistant",
        "system",
        "progress",
        "attachment",
        "turn_duration",
        "tool_use",
        "tool_result",
        "text",
        "thinking",
        "image",
        "Task",
        "[Request interrupted by user]",
        "<command-name>/x</command-name>",
        "<local-command-stdout>",
        "2026-01-01T00:00:00Z",
        "u1",
    ]
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | CLAUDE_VALUES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CLAUDE_KEYS, inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=200) | JSONISH.map(lambda v: json.dumps(v).encode()), max_size=12)
)
def test_never_raises_on_arbitrary_input(blobs: list[bytes]) -> None:
    parser = FORMAT.new_parser(Source("/x/s.jsonl", read_related=lambda p, c: b"{}{"), None)
    pos = 0
    for blob in blobs:
        line = Line(pos, pos + len(blob) + 1, blob + b"\n")
        pos = line.end
        for item in parser.feed(line):
            assert isinstance(item, (Turn, DeadLetter))
    parser.close_idle(10**9)
    parser.pending_from()
    json.dumps(parser.snapshot())


# ---------------------------------------------------------------------------------------------
# Small synthetic cases, shaped like real 2.1.x records

SID = "11111111-2222-3333-4444-555555555555"


def rec(kind: str, uuid: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {
        "parentUuid": None,
        "isSidechain": False,
        "cwd": "/w",
        "sessionId": SID,
        "version": "2.1.39",
        "gitBranch": "main",
        "type": kind,
        "uuid": uuid,
        "timestamp": f"2026-02-12T16:00:{ts:02d}.000Z",
        **fields,
    }


def prompt(uuid: str, ts: int, text: str = "do it") -> dict[str, Any]:
    return rec("user", uuid, ts, message={"role": "user", "content": text})


def block(uuid: str, ts: int, msg_id: str, content: dict[str, Any], out: int = 5) -> dict[str, Any]:
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": out,
    }
    message = {
        "model": "claude-opus-4-6",
        "id": msg_id,
        "role": "assistant",
        "content": [content],
        "stop_reason": None,
        "usage": usage,
    }
    return rec("assistant", uuid, ts, message=message, requestId="req_" + msg_id)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_use(tool_id: str, name: str = "Bash", **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": args}


def result(uuid: str, ts: int, tool_id: str, content: Any = "ok", **fields: Any) -> dict[str, Any]:
    body = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    return rec("user", uuid, ts, message={"role": "user", "content": [body]}, **fields)


def system(uuid: str, ts: int, subtype: str) -> dict[str, Any]:
    return rec("system", uuid, ts, subtype=subtype)


def feed_records(
    records: list[dict[str, Any]], reader: Mapping[str, bytes] | None = None, **options: Any
) -> tuple[list[Turn], list[DeadLetter], ClaudeCodeParser, list[str]]:
    asked: list[str] = []
    files = dict(reader or {})

    def read(path: str, cap: int) -> bytes | None:
        asked.append(path)
        return files[path][:cap] if path in files else None

    source = Source(f"/home/u/.claude/projects/-w/{SID}.jsonl", options=options, read_related=read)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    turns, dead, parser = run(source, lines_of(data))
    return turns, dead, parser, asked


def test_lines_of_one_response_merge_into_one_call_with_the_last_usage() -> None:
    turns, _, _, _ = feed_records(
        [
            prompt("p1", 0),
            block("a1", 1, "msg_1", {"type": "thinking", "thinking": "hmm"}, out=8),
            block("a2", 2, "msg_1", text("Let me look."), out=8),
            block("a3", 3, "msg_1", tool_use("toolu_1", command="ls"), out=472),
            result("r1", 4, "toolu_1", "a.txt"),
            block("a4", 5, "msg_2", text("Done."), out=7),
            system("s1", 6, "turn_duration"),
        ]
    )
    (turn,) = turns
    call, tool, last = turn.spans
    assert isinstance(call, LLMCall) and isinstance(tool, ToolCall) and isinstance(last, LLMCall)
    assert call.usage.output_tokens == 472
    assert call.usage.input_tokens == 3 + 100 + 1000
    assert (call.usage.cache_read_input_tokens, call.usage.cache_creation_input_tokens) == (
        1000,
        100,
    )
    assert call.reasoning == "hmm"
    assert call.response_id == "msg_1"
    assert call.output_messages[0].content == "Let me look."
    assert call.input_messages[0].content == "do it"
    assert tool.result == "a.txt" and json.loads(tool.arguments) == {"command": "ls"}
    assert tool.started_at is not None and tool.ended_at is not None
    assert (tool.ended_at - tool.started_at).total_seconds() == 1
    assert turn.output_messages[0].content == "Done."
    assert turn.messages[0].content == "do it"
    assert turn.key == turn_key("claude-code", SID, "p1")
    assert turn.ended_at is not None and turn.ended_at.second == 6


def test_interruption_ends_the_turn_as_interrupted() -> None:
    turns, _, _, _ = feed_records(
        [
            prompt("p1", 0),
            block("a1", 1, "msg_1", tool_use("toolu_1")),
            result(
                "r1",
                2,
                "toolu_1",
                "The user doesn't want to proceed",
            ),
            rec(
                "user",
                "i1",
                3,
                message={
                    "role": "user",
                    "content": [text("[Request interrupted by user for tool use]")],
                },
            ),
            prompt("p2", 4, "next"),
            block("a2", 5, "msg_2", text("ok")),
        ]
    )
    assert [t.interrupted for t in turns] == [True, False]
    assert turns[0].attributes["claude_code.ended_by"] == "interrupt"


def test_compaction_does_not_split_a_turn() -> None:
    turns, _, _, _ = feed_records(
        [
            prompt("p1", 0),
            block("a1", 1, "msg_1", tool_use("toolu_1")),
            system("c1", 2, "compact_boundary"),
            rec(
                "user",
                "cs",
                3,
                isCompactSummary=True,
                isVisibleInTranscriptOnly=True,
                message={"role": "user", "content": "This session is being continued..."},
            ),
            result("r1", 4, "toolu_1"),
            block("a2", 5, "msg_2", text("finished")),
            system("s1", 6, "stop_hook_summary"),
            system("s2", 7, "turn_duration"),
        ]
    )
    (turn,) = turns
    assert len([s for s in turn.spans if isinstance(s, LLMCall)]) == 2
    assert turn.attributes["claude_code.ended_by"] == "stop_hook_summary"


def test_turn_duration_after_the_stop_hook_is_skipped() -> None:
    records = [
        prompt("p1", 0),
        block("a1", 1, "msg_1", text("hi")),
        system("s1", 2, "stop_hook_summary"),
    ]
    source = Source(f"/p/{SID}.jsonl")
    parser = FORMAT.new_parser(source, None)
    lines = lines_of(
        b"".join(
            json.dumps(r).encode() + b"\n" for r in [*records, system("s2", 8, "turn_duration")]
        )
    )
    out = [x for line in lines[:3] for x in parser.feed(line)]
    assert len(out) == 1 and isinstance(out[0], Turn) and out[0].end == lines[2].end
    # No turn is open; until the file is quiet a sweep for unclaimed sub-agent files is owed,
    # which holds the checkpoint at the start of the last line only.
    assert parser.pending_from() == lines[2].start
    assert parser.feed(lines[3]) == []
    assert parser.pending_from() == lines[3].start
    assert parser.close_idle(10**9) == []
    assert parser.pending_from() is None


def test_duplicate_uuid_is_processed_once() -> None:
    p1, a1 = prompt("p1", 0), block("a1", 1, "msg_1", text("hi"), out=9)
    turns, _, _, _ = feed_records([p1, a1, a1, system("s1", 2, "turn_duration"), p1, a1])
    (turn,) = turns
    (call,) = turn.spans
    assert isinstance(call, LLMCall) and call.usage.output_tokens == 9


def test_idle_close_waits_for_tool_results() -> None:
    parser = FORMAT.new_parser(Source(f"/p/{SID}.jsonl", options={"idle_close": 5}), None)
    lines = lines_of(
        b"".join(
            json.dumps(r).encode() + b"\n"
            for r in [
                prompt("p1", 0),
                block("a1", 1, "msg_1", tool_use("toolu_1")),
                result("r1", 2, "toolu_1"),
            ]
        )
    )
    parser.feed(lines[0])
    parser.feed(lines[1])
    assert parser.close_idle(60) == []  # the tool is still running
    assert parser.pending_from() == 0
    parser.feed(lines[2])
    assert parser.close_idle(4) == []
    (turn,) = parser.close_idle(5)
    assert not turn.interrupted and turn.attributes["claude_code.ended_by"] == "idle"
    assert parser.pending_from() is None


def test_local_command_is_not_a_turn_but_a_slash_command_that_runs_is() -> None:
    turns, _, _, _ = feed_records(
        [
            rec(
                "user",
                "m0",
                0,
                isMeta=True,
                message={
                    "role": "user",
                    "content": "<local-command-caveat>Caveat: ...</local-command-caveat>",
                },
            ),
            rec(
                "user",
                "c1",
                0,
                message={
                    "role": "user",
                    "content": "<command-name>/mcp</command-name>\n<command-message>mcp",
                },
            ),
            rec(
                "user",
                "o1",
                0,
                message={
                    "role": "user",
                    "content": "<local-command-stdout>Reconnected</local-command-stdout>",
                },
            ),
            rec(
                "user",
                "c2",
                1,
                message={
                    "role": "user",
                    "content": "<command-message>review</command-message>\n<command-name>/review",
                },
            ),
            rec(
                "user",
                "m2",
                1,
                isMeta=True,
                message={"role": "user", "content": [text("Review it")]},
            ),
            block("a1", 2, "msg_1", text("Looks fine.")),
            system("s1", 3, "turn_duration"),
        ]
    )
    (turn,) = turns
    assert turn.key == turn_key("claude-code", SID, "c2")
    assert [m.content for m in turn.messages][1] == "Review it"
    assert turn.attributes["claude_code.origin"] == "command"


def test_glued_and_torn_lines() -> None:
    a, b = prompt("p1", 0), block("a1", 1, "msg_1", text("hi"))
    glued = json.dumps(a).encode() + json.dumps(b).encode() + b"\n"
    torn = (
        b'{"type":"pr-link","prNu' + json.dumps(system("s1", 2, "turn_duration")).encode() + b"\n"
    )
    parser = FORMAT.new_parser(Source(f"/p/{SID}.jsonl"), None)
    first = parser.feed(Line(0, len(glued), glued))
    assert first == []
    second = parser.feed(Line(len(glued), len(glued) + len(torn), torn))
    dead = [x for x in second if isinstance(x, DeadLetter)]
    turns = [x for x in second if isinstance(x, Turn)]
    assert len(dead) == 1 and len(turns) == 1
    assert turns[0].attributes["claude_code.ended_by"] == "turn_duration"
    (bad,) = parser.feed(Line(999, 1010, b"not json\n"))
    assert isinstance(bad, DeadLetter) and bad.reason.startswith("invalid JSON")


def test_images_become_markers_and_spilled_results_are_read() -> None:
    png = base64.b64encode(b"\x89PNG" + bytes(1000)).decode()
    spilled = (
        "<persisted-output>\nOutput too large (141KB). Full output saved to: "
        f"/h/.claude/projects/-w/{SID}/tool-results/toolu_2.txt\n\nPreview (first 2KB): abc"
    )
    session_dir = f"/home/u/.claude/projects/-w/{SID}"
    turns, _, _, asked = feed_records(
        [
            rec(
                "user",
                "p1",
                0,
                message={
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": png},
                        },
                        text("what is this?"),
                    ],
                },
            ),
            block("a1", 1, "msg_1", tool_use("toolu_1", "Read")),
            block("a2", 1, "msg_1", tool_use("toolu_2")),
            result(
                "r1",
                2,
                "toolu_1",
                [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"},
                    }
                ],
            ),
            result("r2", 3, "toolu_2", spilled),
        ],
        reader={f"{session_dir}/tool-results/toolu_2.txt": b"x" * 50},
        tool_result_cap=30,
    )
    (turn,) = turns
    assert turn.messages[0].content == "[image image/png 1004 bytes]\nwhat is this?"
    tools = [s for s in turn.spans if isinstance(s, ToolCall)]
    assert tools[0].result == "[image image/jpeg 3 bytes]"
    assert tools[1].result == "x" * 30 + "\n[truncated at 30 characters]"
    assert f"{session_dir}/tool-results/toolu_2.txt" in asked


@pytest.mark.parametrize("layout", ["2.1", "2.0"])
def test_subagent_file_is_read_from_the_computed_path(layout: str) -> None:
    child = [
        rec(
            "user",
            "c1",
            1,
            isSidechain=True,
            agentId="ab12",
            message={"role": "user", "content": "look"},
        ),
        block("c2", 2, "msg_c", tool_use("toolu_c", "Read")) | {"isSidechain": True},
        result("c3", 3, "toolu_c", "file") | {"isSidechain": True},
        block("c4", 4, "msg_d", text("found it")) | {"isSidechain": True},
    ]
    child_bytes = b"".join(json.dumps(r).encode() + b"\n" for r in child)
    base = "/home/u/.claude/projects/-w"
    path = (
        f"{base}/{SID}/subagents/agent-ab12.jsonl"
        if layout == "2.1"
        else f"{base}/agent-ab12.jsonl"
    )
    turns, _, _, asked = feed_records(
        [
            prompt("p1", 0),
            block(
                "a1",
                1,
                "msg_1",
                tool_use(
                    "toolu_t",
                    "Agent",
                    subagent_type="Explore",
                    description="explore",
                    prompt="look",
                ),
            ),
            result(
                "r1",
                5,
                "toolu_t",
                [text("found it")],
                toolUseResult={"status": "completed", "agentId": "ab12", "totalTokens": 10},
            ),
            block("a2", 6, "msg_2", text("done")),
        ],
        reader={path: child_bytes},
    )
    (turn,) = turns
    sub = turn.spans[1]
    assert isinstance(sub, SubAgentCall)
    assert (sub.name, sub.agent_id, sub.tool_name) == ("Explore", "ab12", "Agent")
    assert [type(s).__name__ for s in sub.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert path in asked
    assert sub.attributes["claude_code.totalTokens"] == 10


def test_format_claims_and_auxiliary_files(tmp_path: Path) -> None:
    head = json.dumps(prompt("p1", 0)).encode() + b"\n"
    assert FORMAT.claims(PurePath("/x/s.jsonl"), head)
    assert FORMAT.claims(PurePath("/h/.claude/projects/-w/s.jsonl"), b"")
    assert not FORMAT.claims(PurePath("/x/s.jsonl"), b'{"type":"session_meta","payload":{}}\n')
    assert not FORMAT.claims(PurePath("/x/s.jsonl"), b'{"type":"turn","session_id":"s"}\n')
    assert not FORMAT.claims(PurePath("/x/s.json"), head)
    # is_auxiliary looks at the file's first record and at its session file
    side = rec("user", "c1", 1, isSidechain=True, agentId="a1", message={"content": "look"})
    warm = side | {"message": {"role": "user", "content": "Warmup"}}
    session = tmp_path / f"{SID}.jsonl"
    nested = tmp_path / SID / "subagents" / "agent-a1.jsonl"
    flat, warmup, native = (tmp_path / f"agent-{n}.jsonl" for n in ("a1", "w1", "2026-09-06"))
    nested.parent.mkdir(parents=True)
    for path, record in ((nested, side), (flat, side), (warmup, warm)):
        path.write_text(json.dumps(record) + "\n")
    native.write_text('{"type":"turn","session_id":"s","turn_id":"t1"}\n')
    assert not FORMAT.is_auxiliary(nested)  # no session file yet: tailed on its own
    session.write_text("")
    assert not FORMAT.is_auxiliary(flat)  # an empty session file ships nothing either
    session.write_text(json.dumps(prompt("p1", 0)) + "\n")
    assert FORMAT.is_auxiliary(nested)
    assert FORMAT.is_auxiliary(flat)
    assert not FORMAT.is_auxiliary(warmup)  # Warmup sidechains are tailed on their own
    assert not FORMAT.is_auxiliary(native)  # another agent's file named agent-*
    assert not FORMAT.is_auxiliary(session)
    assert FORMAT.is_auxiliary(PurePath("/h/.claude/projects/-w/agent-a1.jsonl.zst"))
    assert not FORMAT.is_auxiliary(PurePath("/var/log/agents/agent-a1.jsonl.zst"))


def test_agent_name_override() -> None:
    parser = FORMAT.new_parser(Source(f"/p/{SID}.jsonl", agent_name="mine"), None)
    lines = lines_of(json.dumps(prompt("p1", 0)).encode() + b"\n")
    parser.feed(lines[0])
    (turn,) = parser.close_idle(10**9)
    assert turn.agent_name == "mine"


# ---- billed calls no turn holds (issue 8 kind 2) ----------------------------------------------


def real_source(path: Path, **options: Any) -> Source:
    return Source(str(path), options=options, read_related=read_related, find_related=find_related)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def run_parser(parser: Any, data: bytes, quiet: float = 1e9) -> list[Turn]:
    out = [t for line in lines_of(data) for t in parser.feed(line) if isinstance(t, Turn)]
    return out + list(parser.close_idle(quiet))


def sidechain(agent_id: str, msg_id: str, out: int, first: str = "look") -> list[dict[str, Any]]:
    extra = {"isSidechain": True, "agentId": agent_id}
    return [
        rec("user", f"{agent_id}-u", 1, message={"role": "user", "content": first}) | extra,
        block(f"{agent_id}-a", 2, msg_id, text("found"), out=out) | extra,
    ]


def test_unclaimed_subagent_files_become_synthetic_turns_once(tmp_path: Path) -> None:
    session = tmp_path / f"{SID}.jsonl"
    subagents = tmp_path / SID / "subagents"
    spawn = tool_use("toolu_t", "Agent", prompt="look")
    write_jsonl(
        session,
        [
            prompt("p1", 0),
            block("a1", 1, "msg_1", spawn),
            result("r1", 5, "toolu_t", "found", toolUseResult={"agentId": "ab12"}),
            block("a2", 6, "msg_2", text("done")),
            system("s1", 7, "turn_duration"),
        ],
    )
    write_jsonl(subagents / "agent-ab12.jsonl", sidechain("ab12", "msg_c", 7))  # read by Agent
    write_jsonl(subagents / "agent-zz99.jsonl", sidechain("zz99", "msg_o", 11))  # no parent turn
    # a summariser with no compact_boundary inside a turn to nest it in
    write_jsonl(subagents / "agent-acompact-77.jsonl", sidechain("acompact-77", "msg_k", 13))
    assert FORMAT.is_auxiliary(subagents / "agent-zz99.jsonl")
    parser = FORMAT.new_parser(real_source(session), None)
    data = session.read_bytes()
    (turn,) = run_parser(parser, data, quiet=5)  # quiet < idle_close: no sweep yet
    assert parser.pending_from() == lines_of(data)[-1].start
    synthetic = parser.close_idle(1e9)
    assert parser.pending_from() is None and parser.close_idle(1e9) == []
    kinds = {t.key: t.attributes["tailerd.synthetic"] for t in synthetic}
    assert kinds == {
        f"claude-code|{SID}|synthetic|acompact-77": "compaction",
        f"claude-code|{SID}|synthetic|zz99": "orphan_subagent",
    }
    for t in synthetic:
        (sub,) = t.spans
        assert isinstance(sub, SubAgentCall) and sub.attributes["tailerd.synthetic"]
        assert t.session_id == SID and t.start == t.end == lines_of(data)[-1].start
    # hand count: each block() is 3 + 100 + 1000 = 1103 input; outputs as written above
    outputs = sorted(c.usage.output_tokens for t in [turn, *synthetic] for c in all_calls(t.spans))
    assert outputs == [5, 5, 7, 11, 13]
    assert turn.identities == (
        "claude-code:prompt:p1",
        "claude-code:message:msg_1",
        "claude-code:message:msg_2",
    )
    # after a restart, files already shipped are not shipped again
    resumed = FORMAT.new_parser(real_source(session), parser.snapshot())
    more = [
        prompt("p2", 8),
        block("a3", 9, "msg_3", text("again")),
        system("s2", 10, "turn_duration"),
    ]
    again = run_parser(resumed, b"".join(json.dumps(r).encode() + b"\n" for r in more))
    assert [t.key for t in again] == [f"claude-code|{SID}|p2"]


def all_calls(spans: Iterable[Any]) -> Iterable[LLMCall]:
    for span in spans:
        if isinstance(span, LLMCall):
            yield span
        elif isinstance(span, SubAgentCall):
            yield from all_calls(span.spans)


def test_warmup_sidechain_is_tailed_alone_as_a_synthetic_turn() -> None:
    """kfischer 2.0.74: agent-a02a5b8.jsonl is a Warmup (its session file has no turn)."""
    path = AGENTS / "claude-code/kfischer-okarin-scripts-and-tools/-Users-user-project"
    warmup = (path / "agent-a02a5b8.jsonl").resolve()
    assert not FORMAT.is_auxiliary(warmup)
    parser = FORMAT.new_parser(real_source(warmup), None)
    data = warmup.read_bytes()
    assert run_parser(parser, data, quiet=5) == []  # not quiet long enough yet
    assert parser.pending_from() == 0
    (turn,) = parser.close_idle(1e9)
    assert turn.attributes["tailerd.synthetic"] == "warmup"
    assert turn.key == "claude-code|3f6ddfee-788c-48a5-8f7a-d43377b51472|synthetic|a02a5b8"
    assert turn.messages[0].content == "Warmup"
    # read off the file: one call, input_tokens 1417 (no cache), output_tokens 115
    (call,) = all_calls(turn.spans)
    assert (call.usage.input_tokens, call.usage.output_tokens) == (1417, 115)
    assert turn.identities == ("claude-code:message:msg_01Vcot53dDRMGNgdz9YCH1Z8",)
    assert parser.pending_from() is None


def test_inline_1_0_sidechain_calls_are_nested_in_their_turn() -> None:
    side = {"isSidechain": True}
    turns, _, _, _ = feed_records(
        [
            prompt("p1", 0),
            block("a1", 1, "msg_1", tool_use("toolu_t", "Task", prompt="look")),
            rec("user", "s1", 2, message={"role": "user", "content": "look"}) | side,
            block("s2", 3, "msg_s", text("seen"), out=9) | side,
            result("r1", 4, "toolu_t", "seen"),
            block("a2", 5, "msg_2", text("done")),
            system("e1", 6, "turn_duration"),
        ]
    )
    (turn,) = turns
    # hand count: main calls msg_1 and msg_2 (5 each), the inline sidechain's msg_s (9)
    assert sorted(c.usage.output_tokens for c in all_calls(turn.spans)) == [5, 5, 9]
    inline = [s for s in turn.spans if isinstance(s, SubAgentCall) and s.name == "sidechain"]
    assert len(inline) == 1 and inline[0].attributes == {"claude_code.inline_sidechain": True}
    assert turn.identities == (
        "claude-code:prompt:p1",
        "claude-code:message:msg_1",
        "claude-code:message:msg_2",
    )


def test_flat_2_0_layout_orphan_is_swept_by_its_own_session_only(tmp_path: Path) -> None:
    old = {"version": "2.0.74"}
    session = tmp_path / f"{SID}.jsonl"
    write_jsonl(session, [prompt("p1", 0) | old, block("a1", 1, "msg_1", text("hi")) | old])
    write_jsonl(tmp_path / "agent-f1.jsonl", [r | old for r in sidechain("f1", "msg_f", 17)])
    other = [r | old | {"sessionId": "another"} for r in sidechain("f2", "msg_g", 19)]
    write_jsonl(tmp_path / "agent-f2.jsonl", other)  # another session's orphan
    assert FORMAT.is_auxiliary(tmp_path / "agent-f1.jsonl")
    assert not FORMAT.is_auxiliary(tmp_path / "agent-f2.jsonl")  # its session file is missing
    parser = FORMAT.new_parser(real_source(session), None)
    data = session.read_bytes()
    assert run_parser(parser, data, quiet=5) == []
    assert [start for start, _ in parser.open_turns()] == [0]  # the turn, not yet quiet
    main, synthetic = parser.close_idle(1e9)
    assert main.key == f"claude-code|{SID}|p1"
    assert parser.open_turns() == []
    assert synthetic.key == f"claude-code|{SID}|synthetic|f1"
    assert synthetic.attributes["tailerd.synthetic"] == "orphan_subagent"
    assert [c.usage.output_tokens for c in all_calls(synthetic.spans)] == [17]


def test_a_main_session_named_agent_is_parsed_as_turns(tmp_path: Path) -> None:
    """The agent-* name means a sub-agent file only if its first record is a sidechain one."""
    path = tmp_path / "agent-notes.jsonl"
    write_jsonl(path, [prompt("p1", 0), block("a1", 1, "msg_1", text("hi"))])
    assert not FORMAT.is_auxiliary(path)
    parser = FORMAT.new_parser(real_source(path), None)
    (turn,) = run_parser(parser, path.read_bytes())
    assert turn.key == f"claude-code|{SID}|p1"
    assert "tailerd.synthetic" not in turn.attributes


def test_a_file_tailed_alone_is_left_to_its_session_once_that_has_lines(tmp_path: Path) -> None:
    """Seen before its session file had a line (tailed alone), shipped by the session's parser
    if that file has lines when this one goes quiet: never by both."""
    child = tmp_path / SID / "subagents" / "agent-ab12.jsonl"
    write_jsonl(child, sidechain("ab12", "msg_c", 7))
    assert not FORMAT.is_auxiliary(child)
    parser = FORMAT.new_parser(real_source(child), None)
    assert run_parser(parser, child.read_bytes(), quiet=5) == []
    write_jsonl(tmp_path / f"{SID}.jsonl", [prompt("p1", 0)])
    assert parser.close_idle(1e9) == []
    assert parser.pending_from() is None


def test_a_background_subagent_ships_once_when_its_transcript_has_finished(
    tmp_path: Path,
) -> None:
    """2.1.198+: the Agent tool answers "Async agent launched" at once, the parent turn ends,
    the sub-agent writes on; its result arrives later as a <task-notification> prompt. Hand
    count: the spawning turn has 2 calls (tool_use, then text) and no nested ones; nothing of
    the child ships while its last call still asks for a tool; once it has answered, one
    synthetic `background_subagent` turn carries its 2 calls (5 output tokens each)."""
    project = tmp_path / "projects" / "-w"
    child_path = project / SID / "subagents" / "agent-bg1.jsonl"
    child_path.parent.mkdir(parents=True)
    side = {"isSidechain": True, "agentId": "bg1"}
    child_start = [
        rec("user", "c1", 2, message={"role": "user", "content": "dig"}) | side,
        block("c2", 3, "msg_c1", tool_use("toolu_c", "Read")) | side,
    ]
    child_end = [
        result("c3", 4, "toolu_c", "file") | side,
        block("c4", 20, "msg_c2", text("dug it")) | side,
    ]
    launch = "Async agent launched successfully.\nagentId: bg1 (runs in the background)"
    spawn_turn = [
        prompt("p1", 0),
        block(
            "a1", 1, "msg_1", tool_use("toolu_a", "Agent", subagent_type="Explore", prompt="dig")
        ),
        result("r1", 1, "toolu_a", [text(launch)], toolUseResult={"agentId": "bg1"}),
        block("a2", 2, "msg_2", text("started it")),
        system("s1", 3, "turn_duration"),
    ]
    notification = [
        prompt("p2", 21, "<task-notification>\n<task-id>bg1</task-id>\n<status>completed"),
        block("a3", 22, "msg_3", text("the agent dug it")),
        system("s2", 23, "turn_duration"),
    ]

    def write(path: Path, records: list[dict[str, Any]]) -> list[Line]:
        data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
        start = path.stat().st_size if path.exists() else 0
        with path.open("ab") as fh:
            fh.write(data)
        return LineFramer(offset=start).feed(data)  # type: ignore[return-value]

    source = Source(
        str(project / f"{SID}.jsonl"), read_related=read_related, find_related=find_related
    )
    parser = FORMAT.new_parser(source, None)
    out: list[Turn | DeadLetter] = []
    write(child_path, child_start)
    for line in write(Path(source.path), spawn_turn):
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))  # the session is quiet; the child is still running
    first = [t for t in out if isinstance(t, Turn)]
    assert len(first) == 1
    spawn = first[0].spans[1]
    assert isinstance(spawn, SubAgentCall) and spawn.spans == ()
    assert spawn.attributes["claude_code.subagent_transcript"] == "background"

    write(child_path, child_end)
    for line in write(Path(source.path), notification):
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))
    turns = [t for t in out if isinstance(t, Turn)]
    synthetic = [t for t in turns if t.attributes.get("tailerd.synthetic")]
    assert len(turns) == 3 and len(synthetic) == 1
    assert synthetic[0].attributes["tailerd.synthetic"] == "background_subagent"
    (agent,) = synthetic[0].spans
    assert isinstance(agent, SubAgentCall)
    calls = [s for s in agent.spans if isinstance(s, LLMCall)]
    assert [c.usage.output_tokens for c in calls] == [5, 5]
    every_call = [s for t in turns for s in t.spans if isinstance(s, LLMCall)]
    assert len(every_call) == 3  # the parent's own: 2 in the spawning turn, 1 after
