"""pi session files, against the real sessions in ../shared/fixtures/agents/pi/.

Hand counts (jq over each file; `-s` slurps, and jq also reads the two entries glued on one
line of the v1 file as two values):

v3 `JohnnyLai92-pi-mono/.../2026-04-22T01-52-13-809Z_5237639b-....jsonl` (A):
  `jq -s '[.[]|select(.type=="message")|.message.role]|group_by(.)|map({(.[0]):length})' A`
      -> 9 user, 17 assistant, 6 toolResult; 6 toolCall blocks; stopReasons 6 error, 5 stop,
      6 toolUse (three prompts end in an error with nothing after it)
  `jq -s '[.[]|select(.message.role=="assistant")|.message.usage]|{input: (map(.input +
      .cacheRead + .cacheWrite)|add), output: (map(.output)|add), cacheRead: ...}' A`
      -> input 103296 (cache reads included), output 2011, cacheRead 16403, cost.total 0 on all
v1 `badlogic-pi-mono/accidental-commit-d5dde00/session.jsonl` (B): same jq ->
  44 user, 220 assistant, 189 toolResult, 1 bashExecution; 189 toolCall blocks; input
  26267579, output 46995, cacheRead 25283499, cacheWrite 982512; cost.total summed
  19.9651645 USD over the 214 calls with a positive total; 1 compaction (the last line).
  Line 440 holds an assistant entry and the user's "ok" glued without a newline.
v1 `badlogic-pi-mono/packages/coding-agent/test/fixtures/large-session.jsonl` (C): 88 user,
  453 assistant, 391 toolCall blocks (373 toolResult: aborted calls have none), input
  47526750, output 83156, cost 30.3301977 over 439 calls; the first reply is aborted.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path, PurePath

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.formats.base import Source
from tailerd.formats.pi import FORMAT
from tests.conftest import FIXTURES
from tests.formats.test_wrong_types import Sample, check_wrong_types, once_into_store

SESSIONS = FIXTURES / "pi" / "JohnnyLai92-pi-mono" / ".pi" / "agent" / "sessions"
PROJECT = "--C--Projects-github-pi-mono--"
A_ID = "5237639b-8804-44cd-8fb8-5070e9a8f35c"
A = SESSIONS / PROJECT / f"2026-04-22T01-52-13-809Z_{A_ID}.jsonl"
B = FIXTURES / "pi" / "badlogic-pi-mono" / "accidental-commit-d5dde00" / "session.jsonl"
C = FIXTURES / "pi" / "badlogic-pi-mono" / "packages/coding-agent/test/fixtures/large-session.jsonl"
SMALL = FIXTURES / "_schema_coverage" / "jazzyalex-agent-sessions" / "pi" / "small.jsonl"


def parse(path: Path, data: bytes | None = None, quiet: float = 1e9) -> list[Turn]:
    parser = FORMAT.new_parser(Source(str(path)), None)
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


def chats(turns: list[Turn]) -> list[LLMCall]:
    return [s for t in turns for s in t.spans if isinstance(s, LLMCall)]


def tools(turns: list[Turn]) -> list[ToolCall]:
    return [s for t in turns for s in walk(t.spans) if isinstance(s, ToolCall)]


def test_v3_session_by_hand() -> None:
    turns = parse(A)
    assert len(turns) == 9
    assert all(len(t.messages) == 1 for t in turns)
    calls = chats(turns)
    assert len(calls) == 17 and len(tools(turns)) == 6
    assert sum(c.usage.input_tokens for c in calls) == 103296
    assert sum(c.usage.output_tokens for c in calls) == 2011
    assert sum(c.usage.cache_read_input_tokens for c in calls) == 16403
    # pi wrote cost 0 for every call (free tier, or no price known to pi): no cost shipped
    assert not any("gen_ai.usage.cost" in c.attributes for c in calls)
    assert all(c.attributes["pi.cost_total"] == 0.0 for c in calls)
    assert {t.session_id for t in turns} == {A_ID}
    assert {t.attributes["tailerd.cwd"] for t in turns} == {"C:\\Projects\\github\\pi-mono"}
    assert turns[1].model == "gemma-4-31b-it"  # after the model_change on line 6
    assert turns[0].key == f"pi|{A_ID}|99dffd40"
    errors = [c for c in calls if c.finish_reasons == ("error",)]
    assert len(errors) == 6 and all(c.attributes["pi.error"] for c in errors)


def test_turn_ends_and_quiet_time() -> None:
    # A's first prompt ends in an error (pi may retry): it waits for the next prompt or 30 s
    lines = A.read_bytes().splitlines(keepends=True)
    head = b"".join(lines[:5])
    assert parse(A, head, quiet=10.0) == []
    assert len(parse(A, head, quiet=30.0)) == 1
    # line 8 is a reply with stopReason "stop": the turn of line 7 is finished at once
    assert len(parse(A, b"".join(lines[:8]), quiet=0.0)) == 2


def test_v1_session_with_a_glued_line_by_hand() -> None:
    turns = parse(B)
    prompts = [t for t in turns if t.messages]
    assert len(prompts) == 44
    calls = chats(turns)
    assert len(calls) == 220
    assert len(tools(turns)) == 189 + 1  # tool calls, and the user's one `!command`
    assert sum(c.usage.input_tokens for c in calls) == 26267579
    assert sum(c.usage.output_tokens for c in calls) == 46995
    assert sum(c.usage.cache_creation_input_tokens for c in calls) == 982512
    costs = [
        c.attributes["gen_ai.usage.cost"] for c in calls if "gen_ai.usage.cost" in c.attributes
    ]
    assert len(costs) == 214
    assert math.isclose(sum(costs), 19.9651645, rel_tol=1e-9)
    # the glued line: the reply before it ends its turn, the "ok" after it starts the next
    ok = [t for t in turns if t.messages and t.messages[0].content == "ok"]
    assert ok and ok[0].key.endswith("|ts1766006435055")
    (compaction,) = [t for t in turns if t.attributes.get("tailerd.synthetic") == "compaction"]
    (summariser,) = compaction.spans
    assert isinstance(summariser, SubAgentCall) and summariser.name == "compaction"
    assert summariser.attributes["pi.tokens_before"] == 186045


def test_v1_large_session_by_hand() -> None:
    turns = parse(C)
    assert len([t for t in turns if t.messages]) == 88
    calls = chats(turns)
    assert len(calls) == 453 and len(tools(turns)) == 391
    assert sum(c.usage.input_tokens for c in calls) == 47526750
    assert sum(c.usage.output_tokens for c in calls) == 83156
    costs = [c.attributes.get("gen_ai.usage.cost", 0.0) for c in calls]
    assert math.isclose(sum(costs), 30.3301977, rel_tol=1e-9)
    assert turns[0].interrupted  # "/mode" answered by an aborted gpt-5.1-codex reply
    assert turns[0].messages[0].content == "/mode"


def test_v3_branch_title_and_summaries(tmp_path: Path) -> None:
    """small.jsonl (schema-coverage v3: two prompts, each followed by a compaction) with a
    `session_info` title and a third prompt that branches back to the first reply."""
    lines = SMALL.read_bytes().splitlines()
    info = {"type": "session_info", "id": "aa000001", "parentId": "2c19d326", "name": "Hello"}
    branch = json.loads(lines[6])  # the second prompt, now continuing from the first reply
    branch.update(id="aa000002", parentId="22a2720e")
    branch["message"]["timestamp"] += 1000
    data = b"\n".join([*lines, json.dumps(info).encode(), json.dumps(branch).encode()]) + b"\n"
    path = tmp_path / "s.jsonl"
    path.write_bytes(data)
    turns = parse(path)
    assert [t.attributes.get("tailerd.synthetic", "") for t in turns] == [
        "",
        "compaction",
        "",
        "compaction",
        "",
    ]
    assert turns[-1].attributes["pi.branch_from"] == "22a2720e"
    assert "pi.branch_from" not in turns[2].attributes
    assert turns[-1].session_name == "Hello"
    assert turns[0].identities != turns[-1].identities  # same text, another moment


def test_claims_only_pi_files() -> None:
    fmt = formats.choose(PurePath("/logs/x.jsonl"), B.read_bytes()[:65536])
    assert fmt is not None and fmt.name == "pi"
    fmt = formats.choose(PurePath(A), A.read_bytes()[:65536])
    assert fmt is not None and fmt.name == "pi"
    claude = FIXTURES / "claude-code" / "marot-spotter" / "short.jsonl"
    assert not FORMAT.claims(PurePath(claude), claude.read_bytes()[:65536])


def test_no_wrong_type_escapes() -> None:
    sample = Sample("pi", A)
    check_wrong_types(sample, 80)


def test_once_ships_sessions_with_pis_own_cost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(SESSIONS, home / ".pi" / "agent" / "sessions")
    b_dir = home / ".pi" / "agent" / "sessions" / "--Users-badlogic-workspaces-pi-mono--"
    b_dir.mkdir()
    b_id = "5fd1e58c-9635-410e-a644-133a96057c90"
    shutil.copyfile(B, b_dir / f"2025-12-17T19-39-21-535Z_{b_id}.jsonl")
    with sqlite3.connect(once_into_store(home / ".pi", tmp_path, timeout=300)) as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    a_rows = [(op, json.loads(at)) for op, sid, at in rows if sid == A_ID]
    assert len(a_rows) == 9 + 17 + 6  # A: 9 turn roots, 17 chat, 6 tool spans
    b_chats = [json.loads(at) for op, sid, at in rows if sid == b_id and op == "chat"]
    assert len(b_chats) == 220 + 1  # and the compaction's summariser call
    pi_costs = [a["gen_ai.usage.cost"] for a in b_chats if a.get("tailerd.cost.source") == "agent"]
    assert len(pi_costs) == 214
    assert math.isclose(sum(pi_costs), 19.9651645, rel_tol=1e-9)  # not replaced by a price table


def test_unknown_entry_types_are_counted_for_status() -> None:
    parser = FORMAT.new_parser(Source(str(A)), None)
    extra = (
        b'{"type":"brand_new","id":"n1","parentId":null}\n'
        b'{"type":"message","id":"n2","message":{"role":"brandNewRole","content":[]}}\n'
    )
    for item in LineFramer(max_line=1 << 24).feed(A.read_bytes() + extra):
        assert isinstance(item, Line)
        assert not [x for x in parser.feed(item) if not isinstance(x, Turn)]
    assert parser.unknown_types() == {"brand_new": 1, "message/brandNewRole": 1}  # type: ignore[attr-defined]
