"""End to end against a real Arize Phoenix: `tailerd --once --sink otlp`, read back over REST.

Ships a subset of the real agent transcripts (Claude Code, Codex, Gemini) and the native example
logs, then checks what Phoenix stored against counts that do not come from tailerd: the golden
file hand-checked by the Claude Code format's author, simple counters over the raw Codex and
Gemini files written below, and hand counts of the native examples.

Phoenix inserts each batch of spans in arrival order, so a "canary" turn shipped by a later
tailerd run becomes visible only after everything shipped before it: that is how the tests know
the import has landed, without sleeping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES, ROOT, run_tailerd

pytestmark = pytest.mark.slow

Span = dict[str, Any]

CLAUDE_GOLDEN = ROOT / "tests" / "golden" / "claude_code" / "expected.json"
# Fixture file -> where it goes under the watched copy. The legacy Gemini document is discovered
# only under its real name, `chats/session-*.json`.
AGENT_FILES = {
    "claude-code/marot-spotter/short.jsonl": "claude-code/marot-spotter/short.jsonl",
    "claude-code/marot-spotter/tool_heavy.jsonl": "claude-code/marot-spotter/tool_heavy.jsonl",
    "claude-code/marot-spotter/subagent.jsonl": "claude-code/marot-spotter/subagent.jsonl",
    "claude-code/Mai0313-VibeCodingTracker/claude_code-1.0.95.jsonl": (
        "claude-code/Mai0313-VibeCodingTracker/claude_code-1.0.95.jsonl"
    ),
    "codex/Mai0313-VibeCodingTracker/codex-0.39.0.jsonl": "codex/Mai0313/codex-0.39.0.jsonl",
    "codex/madshn-localpush/raw/sessions/"
    "rollout-2026-02-23T12-41-04-019c8a4d-8f45-7010-8b5d-7fad920aa6f9.jsonl": (
        "codex/madshn/rollout-2026-02-23T12-41-04-019c8a4d-8f45-7010-8b5d-7fad920aa6f9.jsonl"
    ),
    "codex/madshn-localpush/raw/sessions/"
    "rollout-2026-02-23T13-19-38-019c8a70-dda7-7f33-98ea-f30553347322.jsonl": (
        "codex/madshn/rollout-2026-02-23T13-19-38-019c8a70-dda7-7f33-98ea-f30553347322.jsonl"
    ),
    "gemini/Mai0313-VibeCodingTracker/gemini-session-2026-04.jsonl": (
        "gemini/tmp/9da8b3df/chats/session-2026-04-23T12-52-0ab84937.jsonl"
    ),
    "gemini/Mai0313-VibeCodingTracker/gemini-session-2025-10.legacy.json": (
        "gemini/tmp/ab14fe39/chats/session-2025-10-11T13-00-2d9ea14f.json"
    ),
}
# Older than every format's quiet-time threshold (the longest is 6 h), so every turn counts as
# finished: the golden counts are "after close_idle(10**9)".
AGENT_FILES_AGE = 30 * 86400

# Hand counts over examples/logs (see tests/test_once.py): ra-0001's t3 has no turn_end and the
# copy is fresh, so it stays open.
NATIVE_TURNS = {"wb-7f3a": 2, "wb-91c2": 1, "ra-0001": 2}
NATIVE_TOKENS = {"wb-7f3a": (630, 60), "wb-91c2": (90, 25)}  # (input, output) over LLM spans

CANARY = "e2e-canary-"
SETTLE_TIMEOUT = 60.0


# ---- independent counts over the raw files ---------------------------------------------------


def records(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def claude_sessions(path: Path) -> frozenset[str]:
    return frozenset(r["sessionId"] for r in records(path) if "sessionId" in r)


def codex_session(path: Path) -> str:
    return next(str(r["payload"]["id"]) for r in records(path) if r["type"] == "session_meta")


def codex_count(path: Path, record_type: str, payload_types: set[str]) -> int:
    return sum(
        r["type"] == record_type and r["payload"]["type"] in payload_types for r in records(path)
    )


def gemini_messages(path: Path) -> tuple[str, dict[str, str]]:
    """Session id and message id -> type; a re-appended message (same id) counts once."""
    if path.suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc["sessionId"], {m["id"]: m["type"] for m in doc["messages"]}
    lines = list(records(path))
    return lines[0]["sessionId"], {r["id"]: r["type"] for r in lines if "id" in r and "type" in r}


@dataclass
class Expected:
    turns: dict[frozenset[str], int]  # sessions of one source file -> turns in them
    llm_spans: dict[str, int]  # per session, where a raw count is simple
    tool_spans: dict[str, int]

    @property
    def sessions(self) -> set[str]:
        return set().union(*self.turns)


def expected_counts(agents: Path) -> Expected:
    golden = json.loads(CLAUDE_GOLDEN.read_text())
    expected = Expected(turns={}, llm_spans={}, tool_spans={})
    for fixture, copy in AGENT_FILES.items():
        path = agents / copy
        if fixture.startswith("claude-code/"):
            expected.turns[claude_sessions(path)] = golden[fixture]["turns"]
        elif fixture.startswith("codex/"):
            session = codex_session(path)
            expected.turns[frozenset({session})] = codex_count(path, "event_msg", {"user_message"})
            calls = codex_count(path, "response_item", {"function_call", "custom_tool_call"})
            expected.tool_spans[session] = calls
        else:
            session, messages = gemini_messages(path)
            types = Counter(messages.values())
            expected.turns[frozenset({session})] = types["user"]
            expected.llm_spans[session] = types["gemini"]
    for session, turns in NATIVE_TURNS.items():
        expected.turns[frozenset({session})] = turns
    return expected


# ---- tailerd and Phoenix ---------------------------------------------------------------------


def ship(phoenix: str, watch: list[Path], state: Path) -> CompletedProcess[str]:
    watch_args = [arg for path in watch for arg in ("--watch", str(path))]
    result = run_tailerd(
        *watch_args,
        "--once",
        "--sink",
        "otlp",
        "--otlp-endpoint",
        f"{phoenix}/v1/traces",
        "--state-dir",
        state,
        "--data-dir",
        state,
    )
    assert result.returncode == 0, result.stderr
    return result


def turns_emitted(result: CompletedProcess[str]) -> int:
    found = re.search(r"(\d+) turns emitted", result.stderr)
    assert found, f"no 'N turns emitted' summary in tailerd's log:\n{result.stderr}"
    return int(found.group(1))


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def project(phoenix: str) -> str:
    """Our spans carry no `openinference.project.name`, so they land in Phoenix's "default"."""
    names = {p["name"] for p in get_json(f"{phoenix}/v1/projects")["data"]}
    return "tailerd" if "tailerd" in names else "default"


def all_spans(phoenix: str) -> list[Span]:
    base = f"{phoenix}/v1/projects/{project(phoenix)}/spans"
    spans: list[Span] = []
    cursor: str | None = None
    while True:
        query = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
        page = get_json(f"{base}?{urllib.parse.urlencode(query)}")
        spans.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return spans


def session_of(span: Span) -> str:
    return str(span["attributes"].get("session.id", ""))


def settle(phoenix: str, tmp: Path, canary: str) -> list[Span]:
    """Ship one canary turn after everything else; once Phoenix shows it, all before it landed."""
    logs = tmp / canary
    logs.mkdir()
    messages = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}]
    turn = {"type": "turn", "session_id": canary, "turn_id": "1", "messages": messages}
    (logs / "canary.jsonl").write_text(json.dumps(turn) + "\n")
    ship(phoenix, [logs], tmp / f"{canary}-state")
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        spans = all_spans(phoenix)
        if any(session_of(s) == canary for s in spans):
            return [s for s in spans if not session_of(s).startswith(CANARY)]
        assert time.monotonic() < deadline, f"{canary} not in Phoenix after {SETTLE_TIMEOUT}s"
        time.sleep(0.5)


def roots(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s["parent_id"] is None]


@dataclass
class Shipment:
    watch: list[Path]
    result: CompletedProcess[str]
    spans: list[Span]
    expected: Expected


@pytest.fixture(scope="module")
def shipped(phoenix: str, tmp_path_factory: pytest.TempPathFactory) -> Shipment:
    tmp = tmp_path_factory.mktemp("e2e")
    assert FIXTURES.is_dir(), f"agent fixtures missing: {FIXTURES}"
    agents = tmp / "agents"
    old = time.time() - AGENT_FILES_AGE
    for fixture, copy in AGENT_FILES.items():
        dest = agents / copy
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / fixture, dest)
        os.utime(dest, (old, old))
    logs = tmp / "logs"
    shutil.copytree(EXAMPLES, logs, copy_function=shutil.copyfile)  # fresh mtimes

    watch = [agents, logs]
    result = ship(phoenix, watch, tmp / "state")
    return Shipment(watch, result, settle(phoenix, tmp, f"{CANARY}1"), expected_counts(agents))


# ---- the checks ------------------------------------------------------------------------------


def test_phoenix_holds_exactly_the_expected_sessions(shipped: Shipment) -> None:
    assert {session_of(s) for s in shipped.spans} == shipped.expected.sessions


def test_turns_per_session_match_independent_counts(shipped: Shipment) -> None:
    per_session = Counter(session_of(r) for r in roots(shipped.spans))
    got = {group: sum(per_session[s] for s in group) for group in shipped.expected.turns}
    assert got == shipped.expected.turns
    assert turns_emitted(shipped.result) == sum(shipped.expected.turns.values())
    assert all(r["name"].startswith("invoke_agent ") for r in roots(shipped.spans))


def test_every_span_of_a_turn_carries_its_session(shipped: Shipment) -> None:
    root_by_trace = {r["context"]["trace_id"]: r for r in roots(shipped.spans)}
    assert len(root_by_trace) == len(roots(shipped.spans))  # one root per trace
    for span in shipped.spans:
        root = root_by_trace[span["context"]["trace_id"]]
        assert session_of(span) == session_of(root)
        assert span["attributes"]["gen_ai.conversation.id"] == session_of(span)


def test_span_kinds_per_agent(shipped: Shipment) -> None:
    agent_of_trace = {
        r["context"]["trace_id"]: r["attributes"]["gen_ai.agent.name"] for r in roots(shipped.spans)
    }
    kinds: dict[str, set[str]] = defaultdict(set)
    for span in shipped.spans:
        kinds[agent_of_trace[span["context"]["trace_id"]]].add(span["span_kind"])
    agents = ["claude-code", "codex", "gemini", "research-agent", "weather-bot"]
    assert dict(kinds) == {agent: {"AGENT", "LLM", "TOOL"} for agent in agents}


def test_llm_and_tool_spans_match_raw_counts(shipped: Shipment) -> None:
    by_kind = Counter((session_of(s), s["span_kind"]) for s in shipped.spans)
    assert {s: by_kind[s, "LLM"] for s in shipped.expected.llm_spans} == shipped.expected.llm_spans
    tools = {s: by_kind[s, "TOOL"] for s in shipped.expected.tool_spans}
    assert tools == shipped.expected.tool_spans


def test_token_counts_of_native_example(shipped: Shipment) -> None:
    for session, (prompt, completion) in NATIVE_TOKENS.items():
        ours = [s for s in shipped.spans if session_of(s) == session]
        llm = [s["attributes"] for s in ours if s["span_kind"] == "LLM"]
        assert sum(a["llm.token_count.prompt"] for a in llm) == prompt
        assert sum(a["llm.token_count.completion"] for a in llm) == completion
        assert sum(a["gen_ai.usage.input_tokens"] for a in llm) == prompt
        assert sum(a["gen_ai.usage.output_tokens"] for a in llm) == completion


def test_phoenix_logged_no_failed_insertion(shipped: Shipment, phoenix_dir: Path) -> None:
    log = (phoenix_dir / "phoenix.log").read_text(errors="replace")
    assert "Span insertion failed" not in log
    assert '"POST /v1/traces HTTP/1.1" 200' in log


def test_reimport_with_fresh_state_changes_nothing(
    phoenix: str, shipped: Shipment, tmp_path: Path
) -> None:
    again = ship(phoenix, shipped.watch, tmp_path / "fresh-state")
    assert turns_emitted(again) == turns_emitted(shipped.result)  # everything was sent again
    spans = settle(phoenix, tmp_path, f"{CANARY}2")

    def ids(spans: list[Span]) -> list[tuple[str, str]]:
        return sorted((s["context"]["trace_id"], s["context"]["span_id"]) for s in spans)

    assert ids(spans) == ids(shipped.spans)  # same rows: no duplicate, none lost
    assert len({s["context"]["trace_id"] for s in spans}) == len(roots(shipped.spans))
