"""Issue 8 cases for Claude Code (kinds 2, 5 and Claude's side of 1), read from ../shared/cases/.

Expected numbers are EXPECTED.md's (hand-derived from the raw records); where a test adds one,
the comment says how it was counted. The format is driven with the real neighbour access
(`tailerd.edges.related_files`), so sub-agent and summariser files are read from disk; the
end-to-end tests run `tailerd --once` into the local SQLite store.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.claude_code import FORMAT
from tests.conftest import FIXTURES, run_tailerd
from tests.live_daemon import append, duplicate_span_ids, otlp_daemon, poll, quiet
from tests.otlp_receiver import Receiver

CASES = Path(__file__).resolve().parents[1] / ".." / "shared" / "cases"
TWO_HOURS = 2 * 3600


def case_copy(name: str, tmp_path: Path, inputs: str = "input") -> Path:
    """The case's input tree copied to tmp_path and aged two hours (cases README)."""
    src = CASES / name / inputs
    assert src.is_dir(), f"case missing: {src}"
    dest = tmp_path / name / inputs
    shutil.copytree(src, dest)
    old = time.time() - TWO_HOURS
    for path in dest.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.utime(path, (old, old))
    return dest


def parse(path: Path) -> list[Turn]:
    """Every turn of one Claude Code file, with real neighbour access, quiet for ever."""
    source = Source(str(path), read_related=read_related, find_related=find_related)
    parser = FORMAT.new_parser(source, None)
    out: list[Turn] = []
    for item in LineFramer().feed(path.read_bytes()):
        assert isinstance(item, Line)
        out.extend(t for t in parser.feed(item) if isinstance(t, Turn))
    out.extend(parser.close_idle(1e9))
    return out


def llm_calls(spans: tuple[SpanCall, ...]) -> Iterator[LLMCall]:
    for span in spans:
        if isinstance(span, LLMCall):
            yield span
        elif isinstance(span, SubAgentCall):
            yield from llm_calls(span.spans)


def tokens(turns: list[Turn]) -> tuple[int, int]:
    calls = [c for t in turns for c in llm_calls(t.spans)]
    return sum(c.usage.input_tokens for c in calls), sum(c.usage.output_tokens for c in calls)


Row = tuple[str, str, bool, dict[str, object]]


def once_store(watch: Path, state: Path) -> list[Row]:
    """(operation, session id, is a turn root, attributes) of every span `tailerd --once`
    stored in the local store."""
    result = run_tailerd("--watch", watch, "--once", "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute(
            "SELECT operation, session_id, parent_span_id IS NULL, attributes FROM spans"
        ).fetchall()
    return [(op, sid, bool(root), json.loads(attrs)) for op, sid, root, attrs in rows]


def stored_tokens(rows: list[Row]) -> tuple[int, int]:
    chats = [a for op, _, _, a in rows if op == "chat"]
    return (
        sum(int(str(a.get("gen_ai.usage.input_tokens", 0))) for a in chats),
        sum(int(str(a.get("gen_ai.usage.output_tokens", 0))) for a in chats),
    )


# ---- kind 2: the compaction summariser's call is billed ------------------------------------

COMPACTION = "claude-compaction-call-billed"
COMPACTION_SESSION = "88888888-8888-4888-8888-888888888888"


def test_compaction_summariser_call_is_inside_the_turn_it_interrupted(tmp_path: Path) -> None:
    root = case_copy(COMPACTION, tmp_path)
    project = root / ".claude" / "projects" / "-home-dev-parser"
    summariser = project / COMPACTION_SESSION / "subagents" / "agent-acompact-5f1e2d.jsonl"
    assert FORMAT.is_auxiliary(summariser)  # read through its session, never alone
    (turn,) = parse(project / f"{COMPACTION_SESSION}.jsonl")
    # EXPECTED.md: Read (152003 / 70), Write (21003 / 410), answer (21503 / 25) on the main
    # thread; the summariser 168003 / 2100 once, marked as compaction; total 362512 / 2605.
    main = [
        (s.usage.input_tokens, s.usage.output_tokens) for s in turn.spans if isinstance(s, LLMCall)
    ]
    assert main == [(152003, 70), (21003, 410), (21503, 25)]
    tools = [(s.name, s.result != "") for s in turn.spans if isinstance(s, ToolCall)]
    assert tools == [("Read", True), ("Write", True)]
    (compaction,) = [s for s in turn.spans if isinstance(s, SubAgentCall)]
    assert compaction.name == "compaction"
    assert compaction.attributes["claude_code.compaction"] is True
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in llm_calls(compaction.spans)] == [
        (168003, 2100)
    ]
    assert tokens([turn]) == (362512, 2605)
    assert "tailerd.synthetic" not in turn.attributes


def test_compaction_once_end_to_end(tmp_path: Path) -> None:
    root = case_copy(COMPACTION, tmp_path)
    rows = once_store(root / ".claude" / "projects", tmp_path / "state")
    assert sum(1 for _, _, root, _ in rows if root) == 1  # EXPECTED.md: 1 turn
    assert stored_tokens(rows) == (362512, 2605)  # EXPECTED.md
    assert {sid for _, sid, _, _ in rows} == {COMPACTION_SESSION}


# ---- kind 2: no depth cap ---------------------------------------------------------------------

DEPTH4 = "claude-nested-subagents-depth4"
DEPTH4_SESSION = "44444444-4444-4444-8444-444444444444"


def test_sub_agents_four_levels_deep_are_all_read(tmp_path: Path) -> None:
    root = case_copy(DEPTH4, tmp_path)
    (turn,) = parse(root / ".claude" / "projects" / "-home-dev-lib" / f"{DEPTH4_SESSION}.jsonl")
    chain: list[str] = []
    spans = turn.spans
    while subs := [s for s in spans if isinstance(s, SubAgentCall)]:
        (sub,) = subs
        chain.append(sub.agent_id)
        assert "claude_code.subagent_transcript" not in sub.attributes  # read, not unavailable
        spans = sub.spans
    assert chain == ["a100001", "a200002", "a300003", "a400004"]  # L1 > L2 > L3 > L4
    # EXPECTED.md: 6 LLM spans (main 2, one per level), input 6155, output 365
    assert len(list(llm_calls(turn.spans))) == 6
    assert tokens([turn]) == (6155, 365)


def test_a_sub_agent_cycle_is_cut_not_followed(tmp_path: Path) -> None:
    """L4's transcript rewritten to spawn L1 again: L1 is not read a second time."""
    root = case_copy(DEPTH4, tmp_path)
    project = root / ".claude" / "projects" / "-home-dev-lib"
    l3 = (project / DEPTH4_SESSION / "subagents" / "agent-a300003.jsonl").read_text()
    l4 = project / DEPTH4_SESSION / "subagents" / "agent-a400004.jsonl"
    # L3 spawns a400004; give L4 the same spawning records, pointing at a100001
    l4.write_text(l4.read_text() + l3.replace("a400004", "a100001"))
    (turn,) = parse(project / f"{DEPTH4_SESSION}.jsonl")
    spans, seen = turn.spans, []
    while subs := [s for s in spans if isinstance(s, SubAgentCall)]:
        sub = subs[-1]
        seen.append(sub.agent_id)
        spans = sub.spans
        if sub.attributes.get("claude_code.subagent_transcript") == "cycle":
            break
    assert seen == ["a100001", "a200002", "a300003", "a400004", "a100001"]


# ---- kind 5: layout rules stay inside the agent's layout ------------------------------------

NATIVE = "native-file-named-agent"


def test_native_file_named_agent_is_not_auxiliary(tmp_path: Path) -> None:
    logs = case_copy(NATIVE, tmp_path) / "logs"
    named = logs / "agent-2026-09-06.jsonl"
    assert not formats.is_auxiliary(named)
    assert not formats.is_auxiliary(logs / "bot-2026-09-06.jsonl")


def test_native_file_named_agent_once_sends_both_turns(tmp_path: Path) -> None:
    logs = case_copy(NATIVE, tmp_path) / "logs"
    rows = once_store(logs, tmp_path / "state")
    assert sum(1 for _, _, root, _ in rows if root) == 2
    # EXPECTED.md: t1 (100 / 10) from agent-2026-09-06.jsonl and t2 (200 / 20) from bot-…
    assert stored_tokens(rows) == (300, 30)
    result = run_tailerd("preview", logs / "agent-2026-09-06.jsonl")
    assert result.returncode == 0, result.stderr
    assert "check host 1" in result.stdout
    assert '"gen_ai.usage.input_tokens":100' in result.stdout


# ---- kind 1, Claude's side: identities of copied history --------------------------------------

RESUME = "claude-resume-copies-history"
FIRST = "adc10fa5-0000-4000-8000-00000000000a.jsonl"
SECOND = "57f6f27a-0000-4000-8000-00000000000b.jsonl"


@pytest.mark.parametrize("inputs", ["input", "input-new-session-id"])
def test_copied_turn_carries_the_original_identities(tmp_path: Path, inputs: str) -> None:
    project = case_copy(RESUME, tmp_path, inputs) / ".claude" / "projects" / "-home-dev-calc"
    (original,) = parse(project / FIRST)
    copied, new = parse(project / SECOND)
    # Hand-read from the files: the prompt record u0001 and its answer msg_R1 are copied
    # verbatim; the new turn is prompt u0003 answered by msg_R2.
    want = ("claude-code:prompt:u0001-0000-4000-8000-000000000000", "claude-code:message:msg_R1")
    assert original.identities == want
    assert copied.identities == want
    assert new.identities == (
        "claude-code:prompt:u0003-0000-4000-8000-000000000000",
        "claude-code:message:msg_R2",
    )
    assert not set(new.identities) & set(original.identities)
    # EXPECTED.md: A's turn 2004 / 5, the new turn 2034 / 5
    assert tokens([original]) == (2004, 5)
    assert tokens([new]) == (2034, 5)


@pytest.mark.parametrize("inputs", ["input", "input-new-session-id"])
def test_resumed_history_is_sent_once_end_to_end(tmp_path: Path, inputs: str) -> None:
    """With the host-wide history index: the copied turn is skipped, whichever file is first."""
    projects = case_copy(RESUME, tmp_path, inputs) / ".claude" / "projects"
    rows = once_store(projects, tmp_path / "state")
    # EXPECTED.md: 4 spans (2 turn roots, 2 LLM), in 4038 / out 10
    assert len(rows) == 4
    assert sum(1 for _, _, root, _ in rows if root) == 2
    assert stored_tokens(rows) == (4038, 10)


# ---- live: the same billed calls, written as the agent writes them ----------------------------


def test_live_compaction_and_warmup_calls_arrive_once(tmp_path: Path, receiver: Receiver) -> None:
    """The daemon watching while the files are written: the summariser file is written before
    the compact_boundary line (as Claude Code does), a 2.0 Warmup sidechain with no session
    file appears beside; each billed call arrives once."""
    src = case_copy(COMPACTION, tmp_path) / ".claude" / "projects" / "-home-dev-parser"
    projects = tmp_path / "live" / ".claude" / "projects"
    project = projects / "-home-dev-parser"
    (project / COMPACTION_SESSION / "subagents").mkdir(parents=True)
    config = tmp_path / "tailerd.toml"
    config.write_text('[format_options."claude-code"]\nidle_close = 1.0\n')
    daemon = otlp_daemon(projects, tmp_path / "state", receiver.url, "--config", config)
    try:
        time.sleep(1.0)
        session = project / f"{COMPACTION_SESSION}.jsonl"
        lines = (src / f"{COMPACTION_SESSION}.jsonl").read_bytes().splitlines(keepends=True)
        summariser = f"{COMPACTION_SESSION}/subagents/agent-acompact-5f1e2d.jsonl"
        for i, line in enumerate(lines):
            if b'"compact_boundary"' in line:
                shutil.copyfile(src / summariser, project / summariser)
            append(session, line)
            time.sleep(0.05 if i % 3 else 0.3)
        warmups = FIXTURES / "claude-code/kfischer-okarin-scripts-and-tools/-Users-user-project"
        other = projects / "-Users-user-project"
        other.mkdir()
        shutil.copyfile(warmups / "agent-a02a5b8.jsonl", other / "agent-a02a5b8.jsonl")
        assert poll(lambda: len(receiver.roots()) >= 2, timeout=30) is not None, daemon.log
        assert quiet(receiver, for_seconds=3, timeout=30)
    finally:
        daemon.stop()
    assert duplicate_span_ids(receiver) == 0
    roots = receiver.roots()
    assert len(roots) == 2
    assert sorted(str(r["attributes"].get("tailerd.synthetic")) for r in roots) == [
        "None",
        "warmup",
    ]
    chats = [s["attributes"] for s in receiver.spans if s["name"].startswith("chat")]
    # EXPECTED.md 362512 / 2605; the Warmup call read off its file: 1417 / 115
    assert sum(a["gen_ai.usage.input_tokens"] for a in chats) == 362512 + 1417
    assert sum(a["gen_ai.usage.output_tokens"] for a in chats) == 2605 + 115
