"""GitHub Copilot CLI events.jsonl, against the real files in ../shared/fixtures/agents/copilot-cli.

Hand counts (F = the file; commands run on the fixture, results written down here):

1.0.34 (Mai0313-VibeCodingTracker/copilot-1.0.34.events.jsonl, 62 lines):
  `jq -r .type F | sort | uniq -c` -> 2 user.message, 6 assistant.message, 13
      tool.execution_complete, 1 session.task_complete, 1 session.shutdown
  `jq -s '[.[]|select(.type=="assistant.message")|.data.outputTokens]|add' F` -> 2848
  shutdown modelMetrics claude-sonnet-4.6: inputTokens 186809, outputTokens 2848,
      cacheReadTokens 151738, cacheWriteTokens 0, requests {count 6, cost 2}
  `jq -c 'select(.type=="assistant.message")|(.data.toolRequests|length)' F` -> 4 3 2 1 0 1:
      interaction 1 (5 messages, 10 requests + 2 tools executed with no request line = 12
      tools) ends with a message requesting no tool; interaction 2 (the autopilot nudge, empty
      `content`) is 1 message + its task_complete call.
  So: 2 turns + 1 session-totals turn; 6 chat spans with 2848 output tokens in all; the totals
  span ships input 186809, cache reads 151738 and output 2848 - 2848 = 0.

agent-engram (softwaresalt-agent-engram/.copilot/session-state/07c40cd0-.../events.jsonl):
  `jq -r .type F | sort | uniq -c` -> 9 user.message, 75 assistant.message, 86
      tool.execution_complete (all `success: true`), no session.shutdown.
  `jq -c 'select(.type=="user.message")|.data.interactionId' F` -> 9 distinct ids, but lines 57
      and 138 are typed while interaction 979eba2f runs (they sit between its turn_start 6 / 14
      and that round's assistant.message, and its rounds go on with interactionId 979eba2f):
      7 turns, the first with 3 user messages.
  `jq -s '[.[]|select(.type=="assistant.message")|.data.outputTokens]|add' F` -> 22185
  Per turn (`awk` over the line numbers of the user.message lines): chat 63 4 2 1 2 1 2,
      tools 74 5 1 1 1 1 3 (sum 86).
  workspace.yaml: `summary: Break Down Feature 007`, `cwd: D:\\Source\\GitHub\\agent-engram`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path, PurePath

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.copilot_cli import FORMAT
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import Sample, check_wrong_types, once_into_store
from tests.live_daemon import append, otlp_daemon, quiet
from tests.otlp_receiver import Receiver

ROOT = FIXTURES / "copilot-cli"
V1034 = ROOT / "Mai0313-VibeCodingTracker" / "copilot-1.0.34.events.jsonl"
ENGRAM_ID = "07c40cd0-ff51-4d6e-bdcd-ac2f90877203"
ENGRAM_HOME = ROOT / "softwaresalt-agent-engram" / ".copilot"
ENGRAM = ENGRAM_HOME / "session-state" / ENGRAM_ID / "events.jsonl"


def parse(path: Path, data: bytes | None = None, quiet: float = 1e9) -> list[Turn]:
    source = Source(str(path), read_related=read_related, find_related=find_related)
    parser = FORMAT.new_parser(source, None)
    out: list[Turn] = []
    for item in LineFramer(max_line=1 << 24).feed(path.read_bytes() if data is None else data):
        assert isinstance(item, Line)
        out.extend(t for t in parser.feed(item) if isinstance(t, Turn))
    out.extend(parser.close_idle(quiet))
    return out


def walk(spans: tuple[SpanCall, ...]) -> Iterator[SpanCall]:
    for span in spans:
        yield span
        if isinstance(span, SubAgentCall):
            yield from walk(span.spans)


def chats(turn: Turn) -> list[LLMCall]:
    return [s for s in walk(turn.spans) if isinstance(s, LLMCall)]


def tools(turn: Turn) -> list[ToolCall]:
    return [s for s in walk(turn.spans) if isinstance(s, ToolCall)]


def test_1_0_34_session_by_hand() -> None:
    turns = parse(V1034)
    assert len(turns) == 3
    first, nudge, totals = turns
    assert [len(chats(t)) for t in turns] == [5, 1, 1]
    assert [len(tools(t)) for t in turns] == [12, 1, 0]
    assert sum(c.usage.output_tokens for t in turns[:2] for c in chats(t)) == 2848
    assert all(c.usage.input_tokens == 0 for t in turns[:2] for c in chats(t))
    assert all(c.attributes["tailerd.usage.input_recorded"] is False for c in chats(first))
    assert first.messages[0].content.startswith("請不要修改任何代碼")
    assert first.output_messages[0].content.startswith("以下是我的調查結果")
    assert nudge.messages[0].content.startswith("<current_datetime>")  # content "" in the file
    assert first.model == "claude-sonnet-4.6"
    assert first.attributes["tailerd.cwd"] == "/home/wei/repo/VibeCodingTracker"
    assert not first.interrupted and not nudge.interrupted
    (span,) = chats(totals)
    assert totals.attributes["tailerd.synthetic"] == "session_totals"
    assert span.model == "claude-sonnet-4.6"
    assert span.usage.input_tokens == 186809
    assert span.usage.cache_read_input_tokens == 151738
    assert span.usage.output_tokens == 0  # every output token was on a chat span already
    assert span.attributes["copilot.requests"] == 6
    assert span.attributes["copilot.premium_requests"] == 2.0
    assert first.key == "copilot-cli|96ef38f0-9d09-45c3-8124-6448c36090ed|" + (
        "2f5a46e3-6615-4d11-8e8f-dd88cf1326b1"
    )
    assert first.identities == ("copilot:event:2f5a46e3-6615-4d11-8e8f-dd88cf1326b1",)


def test_engram_session_by_hand() -> None:
    turns = parse(ENGRAM)
    assert len(turns) == 7
    assert [len(chats(t)) for t in turns] == [63, 4, 2, 1, 2, 1, 2]
    assert [len(tools(t)) for t in turns] == [74, 5, 1, 1, 1, 1, 3]
    assert sum(c.usage.output_tokens for t in turns for c in chats(t)) == 22185
    assert [len(t.messages) for t in turns] == [3, 1, 1, 1, 1, 1, 1]
    assert turns[0].messages[1].content.startswith("Also, make sure to notify me")
    assert len(turns[0].identities) == 3
    assert {t.session_name for t in turns} == {"Break Down Feature 007"}
    assert {t.session_id for t in turns} == {ENGRAM_ID}
    assert {t.attributes["tailerd.cwd"] for t in turns} == {"D:\\Source\\GitHub\\agent-engram"}
    assert [t.model for t in turns] == ["claude-opus-4.6"] * 4 + ["claude-sonnet-4.6"] * 3
    assert not any(t.interrupted for t in turns)
    assert not any(t.is_error for t in turns for t in tools(t))
    # no session.shutdown (the process was killed): no input tokens anywhere, and no totals
    assert not any(t.attributes.get("tailerd.synthetic") for t in turns)


def test_every_turn_closes_on_its_own_events() -> None:
    """All 7 engram turns end at a turn_end after a final answer or task_complete: none waits
    for quiet time (quiet 0 here)."""
    assert len(parse(ENGRAM, quiet=0.0)) == 7


# A hand-written session in the shapes of the CLI's event schema (github/copilot-sdk
# session_events.py; the trimmed `_schema_coverage` copilot/small.jsonl shows the same events):
# a sub-agent run by tool call "t1", a compaction, an abort, a resume, another shutdown.
def _event(kind: str, n: int, **data: object) -> str:
    ts = f"2026-05-01T10:00:{n:02d}.000Z"
    return json.dumps({"type": kind, "data": data, "id": f"e{n}", "timestamp": ts})


HAND = [
    _event("session.start", 1, sessionId="s1", copilotVersion="1.0.40", context={"cwd": "/w"}),
    _event("session.model_change", 2, newModel="gpt-5"),
    _event("user.message", 3, content="explore", interactionId="i1"),
    _event("assistant.turn_start", 4, turnId="0", interactionId="i1"),
    _event(
        "assistant.message",
        5,
        messageId="m1",
        content="",
        outputTokens=10,
        toolRequests=[{"toolCallId": "t1", "name": "task", "arguments": {"prompt": "look"}}],
    ),
    _event("tool.execution_start", 6, toolCallId="t1", toolName="task"),
    _event("subagent.started", 7, toolCallId="t1", agentName="explore"),
    _event(
        "assistant.message",
        8,
        messageId="m2",
        content="",
        outputTokens=7,
        parentToolCallId="t1",
        model="claude-haiku-4.5",
        toolRequests=[{"toolCallId": "t2", "name": "grep", "arguments": {"q": "x"}}],
    ),
    _event("tool.execution_start", 9, toolCallId="t2", toolName="grep", parentToolCallId="t1"),
    _event(
        "tool.execution_complete",
        10,
        toolCallId="t2",
        success=False,
        error={"message": "no match"},
        parentToolCallId="t1",
    ),
    _event(
        "subagent.completed", 11, toolCallId="t1", agentName="explore", model="claude-haiku-4.5"
    ),
    _event("tool.execution_complete", 12, toolCallId="t1", success=True, result={"content": "ok"}),
    _event("assistant.turn_end", 13, turnId="0"),
    _event(
        "session.compaction_complete",
        14,
        success=True,
        summaryContent="summary",
        compactionTokensUsed={"input": 900, "output": 40, "cachedInput": 100},
    ),
    _event("assistant.turn_start", 15, turnId="1", interactionId="i1"),
    _event(
        "assistant.message", 16, messageId="m3", content="found it", outputTokens=5, toolRequests=[]
    ),
    _event("assistant.turn_end", 17, turnId="1"),
    _event("user.message", 18, content="again", interactionId="i2"),
    _event("assistant.turn_start", 19, turnId="0", interactionId="i2"),
    _event("abort", 20, reason="user cancelled"),
    _event("session.resume", 21, context={"cwd": "/w2"}),
    _event("user.message", 22, content="third", interactionId="i3"),
    _event("assistant.turn_start", 23, turnId="0", interactionId="i3"),
    _event("assistant.message", 24, messageId="m4", content="done", outputTokens=3),
    _event("assistant.turn_end", 25, turnId="0"),
    _event(
        "session.shutdown",
        26,
        modelMetrics={
            "gpt-5": {
                "requests": {"count": 1, "cost": 1},
                "usage": {
                    "inputTokens": 500,
                    "outputTokens": 4,
                    "cacheReadTokens": 0,
                    "cacheWriteTokens": 0,
                },
            }
        },
    ),
]


def test_subagent_compaction_abort_resume_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "session-state" / "s1" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(HAND) + "\n")
    (path.parent / "workspace.yaml").write_text("id: s1\ncwd: /w\nsummary: 'Explore: the x'\n")
    first, aborted, third, totals = parse(path, quiet=0.0)
    (agent,) = [s for s in first.spans if isinstance(s, SubAgentCall) and s.name == "explore"]
    assert agent.tool_call_id == "t1" and agent.tool_name == "task"
    assert agent.output_messages[0].content == "ok" and agent.model == "claude-haiku-4.5"
    (inner_chat, inner_tool) = agent.spans
    assert isinstance(inner_chat, LLMCall) and inner_chat.usage.output_tokens == 7
    assert isinstance(inner_tool, ToolCall) and inner_tool.is_error
    assert inner_tool.result == "no match"
    (compaction,) = [s for s in first.spans if isinstance(s, SubAgentCall) and s.name != "explore"]
    assert compaction.name == "compaction"
    (summariser,) = compaction.spans
    assert isinstance(summariser, LLMCall)
    assert (summariser.usage.input_tokens, summariser.usage.output_tokens) == (900, 40)
    assert first.output_messages[0].content == "found it"
    assert first.session_name == "Explore: the x"
    assert sum(c.usage.output_tokens for c in chats(first)) == 10 + 7 + 40 + 5
    assert aborted.interrupted and aborted.messages[0].content == "again"
    assert third.attributes["tailerd.cwd"] == "/w2"
    # totals are per process: after the resume only m4's 3 output tokens were recorded
    (span,) = chats(totals)
    assert (span.usage.input_tokens, span.usage.output_tokens) == (500, 1)


def test_a_turn_without_its_end_waits() -> None:
    lines = ENGRAM.read_bytes().splitlines(keepends=True)
    head = b"".join(lines[:100])  # inside the first interaction, mid-loop
    assert parse(ENGRAM, head, quiet=3600.0) == []  # may be waiting on a permission prompt
    (turn,) = parse(ENGRAM, head, quiet=21600.0)
    assert turn.interrupted


def test_claims_only_copilot_files(tmp_path: Path) -> None:
    head = V1034.read_bytes()[:65536]
    fmt = formats.choose(PurePath("/home/u/logs/x.jsonl"), head)
    assert fmt is not None and fmt.name == "copilot-cli"
    # before 1.0: session-state/<id>.jsonl, claimed by its place even before its first line
    assert FORMAT.claims(PurePath("/home/u/.copilot/session-state/abc.jsonl"), b"")
    assert not FORMAT.claims(PurePath("/home/u/.copilot/logs/abc.jsonl"), b"")
    claude = FIXTURES / "claude-code" / "marot-spotter" / "short.jsonl"
    assert not FORMAT.claims(PurePath(claude), claude.read_bytes()[:65536])
    native = b'{"type":"turn","session_id":"s1","turn_id":"1","messages":[]}\n'
    assert not FORMAT.claims(PurePath("/logs/a.jsonl"), native)


def test_no_wrong_type_escapes() -> None:
    sample = Sample("copilot-cli", V1034)
    check_wrong_types(sample, 80)


def test_once_ships_the_session_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(ENGRAM_HOME, home / ".copilot")
    store = once_into_store(home / ".copilot", tmp_path)
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    ops = [op for op, _, _ in rows]
    assert ops.count("chat") == 75 and ops.count("execute_tool") == 86
    assert {sid for _, sid, _ in rows} == {ENGRAM_ID}
    assert len(rows) == 7 + 75 + 86  # 7 turn roots
    names = {json.loads(a).get("gen_ai.conversation.name") for _, _, a in rows}
    assert "Break Down Feature 007" in names
    assert os.path.exists(store)


def test_totals_after_a_restart_count_nothing_twice(tmp_path: Path) -> None:
    """Two `--once` runs: the first reads up to the line before `session.shutdown` (both turns
    finished), the second only the shutdown. The per-call output tokens counted in the first
    run are kept in the checkpoint's context, so the totals turn still ships output 0."""
    lines = V1034.read_bytes().splitlines(keepends=True)
    assert b'"session.shutdown"' in lines[-1]
    path = tmp_path / "home" / ".copilot" / "session-state" / "96ef38f0" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(lines[:-1]))
    state = tmp_path / "state"
    args = ("--watch", tmp_path / "home", "--once", "--state-dir", state, "--data-dir", state)
    assert run_tailerd(*args).returncode == 0
    with path.open("ab") as fh:
        fh.write(lines[-1])
    result = run_tailerd(*args)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT attributes FROM spans WHERE operation = 'chat'").fetchall()
    chat = [json.loads(a) for (a,) in rows]
    assert len(chat) == 6 + 1
    assert sum(a.get("gen_ai.usage.output_tokens", 0) for a in chat) == 2848
    assert sum(a.get("gen_ai.usage.input_tokens", 0) for a in chat) == 186809


def test_live_a_turn_ships_at_its_turn_end_not_after_quiet_time(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A running daemon while the 1.0.34 session is written: the first interaction is sent as
    soon as its final `assistant.turn_end` is written (well before the 30 s quiet rule could
    close it); then the rest, and the shutdown's totals, arrive; nothing twice."""
    lines = V1034.read_bytes().splitlines(keepends=True)
    # the first interaction ends at its 5th assistant.turn_end (turnId "4")
    first_end = [i for i, ln in enumerate(lines) if b'"assistant.turn_end"' in ln][4]
    home = tmp_path / "home"
    path = home / ".copilot" / "session-state" / "96ef38f0" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    daemon = otlp_daemon(home, tmp_path / "state", receiver.url)
    try:
        time.sleep(2.0)  # let it start watching (the file is empty: nothing to send yet)
        for line in lines[: first_end + 1]:
            append(path, line)
        written = time.monotonic()
        assert receiver.wait_for(lambda r: len(r.roots()) >= 1, timeout=20), daemon.log
        assert time.monotonic() - written < 20  # not the 30 s idle_close
        append(path, b"".join(lines[first_end + 1 :]))
        assert receiver.wait_for(lambda r: len(r.roots()) >= 3, timeout=20), daemon.log
        assert quiet(receiver, for_seconds=1.0, timeout=10)
    finally:
        daemon.stop()
    assert len(receiver.roots()) == 3
    chats = [s for s in receiver.spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 7
    assert sum(s["attributes"].get("gen_ai.usage.output_tokens", 0) for s in chats) == 2848
    assert len(set(receiver.span_ids())) == len(receiver.span_ids())


def test_unknown_event_types_are_counted_for_status() -> None:
    """Every event type of the two real files is understood; a new one is counted by version
    (`tailerd status` shows it), not a dead letter."""
    for path in (V1034, ENGRAM):
        parser = FORMAT.new_parser(Source(str(path)), None)
        for item in LineFramer(max_line=1 << 24).feed(path.read_bytes()):
            assert isinstance(item, Line)
            assert not [x for x in parser.feed(item) if not isinstance(x, Turn)]
        assert parser.unknown_types() == {}  # type: ignore[attr-defined]
    new = b'{"type":"session.brand_new","data":{},"id":"x","timestamp":"2026-05-01T00:00:00Z"}\n'
    (item,) = LineFramer().feed(new)
    assert isinstance(item, Line) and parser.feed(item) == []
    assert parser.unknown_types() == {"1.0.10:session.brand_new": 1}  # type: ignore[attr-defined]


def test_a_model_error_ends_the_turn_the_agent_did_not_go_on_from(tmp_path: Path) -> None:
    """`session.error` (a failed model request, as in the schema-coverage small.jsonl) with no
    round after it: the next prompt is a new turn, not a message typed mid-turn; alone, the
    errored turn closes after 30 s of quiet, as interrupted. An error the agent goes on from
    (engram line 160, between two tool completions) changes nothing: see the engram test."""
    events = [
        _event("session.start", 1, sessionId="s2", copilotVersion="1.0.40"),
        _event("user.message", 2, content="first", interactionId="i1"),
        _event("assistant.turn_start", 3, turnId="0", interactionId="i1"),
        _event("session.error", 4, errorType="query", message="400", statusCode=400),
        _event("user.message", 5, content="second", interactionId="i2"),
    ]
    path = tmp_path / "s2.jsonl"
    path.write_text("\n".join(events) + "\n")
    (first,) = parse(path, quiet=0.0)
    assert first.interrupted is False and [m.content for m in first.messages] == ["first"]
    assert first.attributes["copilot.notices"] == ["session.error: query: 400"]
    path.write_text("\n".join(events[:4]) + "\n")
    assert parse(path, quiet=10.0) == []
    (alone,) = parse(path, quiet=30.0)
    assert alone.interrupted
