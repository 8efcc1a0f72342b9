"""Qwen Code chat files, against ../shared/fixtures/agents/qwen/ (written by a real Qwen Code
0.18.1 against a mock model server) and the schema-coverage samples of later versions.

Hand counts on qwen_code.jsonl (F; 8 lines):
  `jq -r '[.type, .subtype] | join("/")' F` -> user, system/attribution_snapshot,
      system/ui_telemetry, assistant, system/ui_telemetry, tool_result, system/ui_telemetry,
      assistant: 1 prompt, 2 assistant records (one LLM call each), 1 tool result.
  `jq -c 'select(.type=="assistant")|.usageMetadata' F` ->
      {prompt 500, candidates 20, thoughts 0, total 520, cached 0},
      {prompt 600, candidates 5, thoughts 0, total 605, cached 50}
      so input 500 + 600 = 1100 (prompt counts include the cached 50: 600 + 5 = 605),
      output 20 + 5 = 25, cache reads 50.
  `jq -c 'select(.type=="tool_result")|.toolCallResult.status' F` -> "error"
      (list_directory: "Path must be absolute: ."); final answer "Done.".
  The ui_telemetry records repeat the same numbers (input_token_count 500 / 600): not counted.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePath

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.qwen import FORMAT
from tests.conftest import FIXTURES
from tests.formats.test_wrong_types import Sample, check_wrong_types, once_into_store

SAMPLE = (
    FIXTURES / "qwen" / "Piebald-AI-splitrail" / "src/analyzers/tests/source_data/qwen_code.jsonl"
)
SESSION = "69f0814a-8bfc-4c8e-93d3-05757f17b96f"
COVERAGE = FIXTURES / "_schema_coverage" / "jazzyalex-agent-sessions" / "qwen"


def parse(path: Path, data: bytes | None = None, quiet: float = 1e9) -> list[Turn]:
    parser = FORMAT.new_parser(Source(str(path)), None)
    out: list[Turn] = []
    for item in LineFramer().feed(path.read_bytes() if data is None else data):
        assert isinstance(item, Line)
        out.extend(t for t in parser.feed(item) if isinstance(t, Turn))
    out.extend(parser.close_idle(quiet))
    return out


def test_real_session_by_hand() -> None:
    (turn,) = parse(SAMPLE)
    chats = [s for s in turn.spans if isinstance(s, LLMCall)]
    tools = [s for s in turn.spans if isinstance(s, ToolCall)]
    assert len(chats) == 2 and len(tools) == 1
    assert sum(c.usage.input_tokens for c in chats) == 1100
    assert sum(c.usage.output_tokens for c in chats) == 25
    assert sum(c.usage.cache_read_input_tokens for c in chats) == 50
    assert [c.usage.total_tokens for c in chats] == [520, 605]
    (tool,) = tools
    assert tool.name == "list_directory" and tool.tool_call_id == "call_1"
    assert tool.is_error and tool.result == "Path must be absolute: ."
    assert json.loads(tool.arguments) == {"path": "."}
    assert turn.messages[0].content == "List the files here."
    assert turn.output_messages[0].content == "Done."
    assert turn.model == "coder-model" and turn.session_id == SESSION
    assert turn.attributes["tailerd.cwd"] == "/tmp/qwentest"
    assert turn.key == f"qwen-code|{SESSION}|e3ef2de4-34c8-4f79-abf7-11c67af7659d"
    assert turn.identities == ("qwen:record:e3ef2de4-34c8-4f79-abf7-11c67af7659d",)


def test_a_turn_waits_for_quiet_or_the_next_prompt() -> None:
    assert parse(SAMPLE, quiet=10.0) == []  # the default idle_close is 30 s
    assert len(parse(SAMPLE, quiet=30.0)) == 1
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    # cut after the functionCall (line 4): the call waits for its result, so quiet time alone
    # closes the turn only after stale_close (6 h), as interrupted
    head = b"".join(lines[:4])
    assert parse(SAMPLE, head, quiet=3600.0) == []
    (turn,) = parse(SAMPLE, head, quiet=21600.0)
    assert turn.interrupted
    # the prompt alone (lines 1-3): the model has not answered; a slow model may take minutes
    # (the real 0.24.4 CLI of tests/agents_cli wrote its first reply 4 s after the prompt)
    assert parse(SAMPLE, b"".join(lines[:3]), quiet=3600.0) == []
    second = lines[0].replace(b"e3ef2de4", b"f00dbeef").replace(b"List the files", b"Again")
    turns = parse(SAMPLE, b"".join(lines) + second, quiet=0.0)
    assert len(turns) == 1  # the next prompt closes the first; the second stays open


def test_later_versions_rewind_title_glued_line_hook_context() -> None:
    """The schema-coverage samples of 0.21.13 (synthetic, built from real record shapes)."""
    # 004: a reply and a manual title on a branch that `system/rewind` (target: the prompt)
    # drops; a mid-turn message; one reply written as two fragments of the same uuid (thought,
    # then a call and text with usage 12/4); then an automatic title.
    (turn,) = parse(COVERAGE / "019f0000-0000-7000-8000-000000000004.jsonl")
    chats = [s for s in turn.spans if isinstance(s, LLMCall)]
    assert [c.output_messages[0].content for c in chats] == ["Active branch answer."]
    assert chats[0].reasoning == "Reason over the active branch."
    assert (chats[0].usage.input_tokens, chats[0].usage.output_tokens) == (12, 4)
    assert turn.session_name == "Active branch title"
    assert [m.content for m in turn.messages] == [
        "Begin the active-chain fixture.",
        "Continue from the rewound branch.",
    ]
    # 005: the prompt and the reply glued on one line: both kept
    (glued,) = parse(COVERAGE / "019f0000-0000-7000-8000-000000000005.jsonl")
    assert glued.output_messages[0].content == "Recovered both synthetic objects."
    # 001: the hook's context is in the model-bound parts, not in what the user typed; the
    # background notification after the answer is not a user message
    (hooked,) = parse(COVERAGE / "019f0000-0000-7000-8000-000000000001.jsonl")
    assert [m.content for m in hooked.messages] == ["Inspect the synthetic fixture."]
    assert hooked.spans[0].reasoning == "I should read the synthetic file."  # type: ignore[union-attr]


def test_sidechain_records_are_a_sub_agent(tmp_path: Path) -> None:
    lines = SAMPLE.read_bytes().splitlines()
    side = json.loads(lines[7])  # the "Done." reply, as written by a sub-agent instead
    side.update(uuid="s1", isSidechain=True, agentId="explore-7f3c", agentName="Explore")
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join([*lines[:7], json.dumps(side).encode(), lines[7]]) + b"\n")
    (turn,) = parse(path)
    (agent,) = [s for s in turn.spans if isinstance(s, SubAgentCall)]
    assert agent.name == "Explore" and agent.agent_id == "explore-7f3c"
    (inner,) = agent.spans
    assert isinstance(inner, LLMCall) and inner.usage.output_tokens == 5


def test_claims_qwen_not_claude() -> None:
    head = SAMPLE.read_bytes()[:65536]
    fmt = formats.choose(PurePath(SAMPLE), head)
    assert fmt is not None and fmt.name == "qwen-code"
    claude = FIXTURES / "claude-code" / "marot-spotter" / "short.jsonl"
    assert not FORMAT.claims(PurePath(claude), claude.read_bytes()[:65536])
    fmt = formats.choose(PurePath(claude), claude.read_bytes()[:65536])
    assert fmt is not None and fmt.name == "claude-code"


def test_no_wrong_type_escapes() -> None:
    sample = Sample("qwen-code", SAMPLE)
    check_wrong_types(sample, 80)


def test_once_ships_the_session_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    chats = home / ".qwen" / "projects" / "-tmp-qwentest" / "chats"
    chats.mkdir(parents=True)
    shutil.copyfile(SAMPLE, chats / f"{SESSION}.jsonl")
    old = 1_700_000_000  # well past the 30 s of quiet that closes the turn
    for p in home.rglob("*"):
        os.utime(p, (old, old))
    with sqlite3.connect(once_into_store(home / ".qwen", tmp_path)) as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    ops = sorted(op for op, _, _ in rows)
    assert ops.count("chat") == 2 and ops.count("execute_tool") == 1
    assert len(rows) == 4  # the turn's root + 2 chat + 1 tool span
    assert {sid for _, sid, _ in rows} == {SESSION}
    chat_inputs = [
        json.loads(a).get("gen_ai.usage.input_tokens") for op, _, a in rows if op == "chat"
    ]
    assert sorted(chat_inputs) == [500, 600]


def test_a_reply_after_its_turn_closed_is_a_continuation_not_lost() -> None:
    """If quiet time closed a turn and the CLI then writes more (after 6 h, a reply at last),
    the reply is shipped as a continuation turn of the session, not dropped."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    parser = FORMAT.new_parser(Source(str(SAMPLE)), None)
    framed = [x for x in LineFramer().feed(b"".join(lines)) if isinstance(x, Line)]
    for item in framed[:3]:
        assert parser.feed(item) == []
    (first,) = parser.close_idle(21600.0)
    assert first.interrupted and not first.spans
    for item in framed[3:]:
        assert parser.feed(item) == []
    (rest,) = parser.close_idle(30.0)
    assert rest.attributes["qwen.continuation"] is True
    assert [s.usage.output_tokens for s in rest.spans if isinstance(s, LLMCall)] == [20, 5]
    assert rest.key == f"qwen-code|{SESSION}|c5a42b61-a532-4784-88a1-fb5f254241f9"


def test_unknown_record_types_are_counted_for_status() -> None:
    parser = FORMAT.new_parser(Source(str(SAMPLE)), None)
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    extra = [
        lines[1].replace(b'"attribution_snapshot"', b'"brand_new_subtype"'),
        b'{"type":"brand_new","uuid":"u9","sessionId":"s","version":"0.18.1"}\n',
    ]
    for item in LineFramer().feed(b"".join([*lines, *extra])):
        assert isinstance(item, Line)
        assert not [x for x in parser.feed(item) if not isinstance(x, Turn)]
    assert parser.unknown_types() == {  # type: ignore[attr-defined]
        "0.18.1:system/brand_new_subtype": 1,
        "0.18.1:brand_new": 1,
    }


def test_span_durations_from_ui_telemetry() -> None:
    """`jq -c 'select(.subtype=="ui_telemetry")|.systemPayload.uiEvent|[."event.name",
    .duration_ms]' F` -> api_response 47 ms, tool_call 0 ms, api_response 13 ms; the replies
    are written at 14:40:22.909 and 22.976, the tool result at 22.950."""
    (turn,) = parse(SAMPLE)
    first, second = (s for s in turn.spans if isinstance(s, LLMCall))
    (tool,) = (s for s in turn.spans if isinstance(s, ToolCall))
    at = datetime(2026, 6, 15, 14, 40, 22, tzinfo=timezone.utc)
    assert (first.started_at, first.ended_at) == (at + ms(862), at + ms(909))
    assert (second.started_at, second.ended_at) == (at + ms(963), at + ms(976))
    assert tool.ended_at == at + ms(950)


def ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


def _rec(kind: str, n: int, **fields: object) -> bytes:
    base = {"uuid": f"u{n}", "sessionId": "S", "timestamp": f"2026-11-30T22:16:{n:02d}.000Z"}
    return json.dumps({**base, "type": kind, "version": "0.24.4", **fields}).encode() + b"\n"


def _parts(*parts: object) -> dict[str, object]:
    return {"role": "model", "parts": list(parts)}


def test_a_sub_agent_transcript_is_nested_under_its_call(tmp_path: Path) -> None:
    """The shapes Qwen Code 0.24.4 wrote in tests/agents_cli (scripted model): the parent calls
    `agent` (call_q03); the sub-agent's records go to subagents/<session>/agent-<name>-<call>
    .jsonl, a round's usage on an assistant record with no parts, its call on the next."""
    project = tmp_path / ".qwen" / "projects" / "-w"
    chats, subs = project / "chats", project / "subagents" / "S"
    chats.mkdir(parents=True)
    subs.mkdir(parents=True)
    call = {"functionCall": {"id": "call_q03", "name": "agent", "args": {"prompt": "Count"}}}
    answer = {"functionResponse": {"id": "call_q03", "name": "agent", "response": {"output": "2"}}}
    display = {"type": "task_execution", "subagentName": "general-purpose", "taskPrompt": "Count"}
    usage = {"promptTokenCount": 429, "candidatesTokenCount": 33}
    (chats / "S.jsonl").write_bytes(
        _rec("user", 1, message={"role": "user", "parts": [{"text": "go"}]})
        + _rec("assistant", 2, message=_parts(call), usageMetadata=usage)
        + _rec(
            "tool_result", 8, message={"role": "user", "parts": [answer]},
            toolCallResult={"callId": "call_q03", "status": "success", "resultDisplay": display},
        )
        + _rec("assistant", 9, message=_parts({"text": "It has 2 lines."}), usageMetadata=usage)
    )  # fmt: skip
    side = {"isSidechain": True, "agentId": "general-purpose-call_q03"}
    shell = {"functionCall": {"id": "call_q04", "name": "run_shell_command", "args": {}}}
    shell_out = {"functionResponse": {"id": "call_q04", "response": {"output": "2 notes.txt"}}}
    sub = subs / "agent-general-purpose-call_q03.jsonl"
    sub.write_bytes(
        _rec("user", 3, message={"role": "user", "parts": [{"text": "Count"}]}, **side)
        + _rec("assistant", 4, message=_parts(), agentRound=1, **side,
               usageMetadata={"promptTokenCount": 401, "candidatesTokenCount": 43})
        + _rec("assistant", 5, message=_parts(shell), **side)
        + _rec("tool_result", 6, message={"role": "user", "parts": [shell_out]}, **side)
        + _rec("assistant", 7, message=_parts({"text": "2 lines."}), agentRound=2, **side,
               usageMetadata={"promptTokenCount": 565, "candidatesTokenCount": 53})
    )  # fmt: skip
    assert FORMAT.is_auxiliary(PurePath(sub)) and not FORMAT.is_auxiliary(chats / "S.jsonl")
    parser = FORMAT.new_parser(
        Source(str(chats / "S.jsonl"), read_related=read_related, find_related=find_related), None
    )
    for item in LineFramer().feed((chats / "S.jsonl").read_bytes()):
        assert isinstance(item, Line)
        parser.feed(item)
    (turn,) = parser.close_idle(30.0)
    (agent,) = [s for s in turn.spans if isinstance(s, SubAgentCall)]
    assert (agent.name, agent.tool_call_id, agent.agent_id) == (
        "general-purpose", "call_q03", "general-purpose-call_q03",
    )  # fmt: skip
    inner_chats = [s for s in agent.spans if isinstance(s, LLMCall)]
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in inner_chats] == [
        (401, 43),
        (565, 53),
    ]
    (inner_tool,) = [s for s in agent.spans if isinstance(s, ToolCall)]
    assert inner_tool.name == "run_shell_command" and inner_tool.result == "2 notes.txt"
    assert agent.output_messages[0].content == "2"
    assert not [s for s in turn.spans if isinstance(s, ToolCall)]  # the call became the agent
