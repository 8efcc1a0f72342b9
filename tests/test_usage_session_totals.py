"""`tailerd usage` over agents that record tokens or cost only per session (or per process):
real fixtures of ../shared/fixtures/agents (read SOURCE.txt there), a real `tailerd --once`,
the real local store.

Hand counts:
* Copilot CLI 1.0.34 (copilot-cli/Mai0313-VibeCodingTracker): 6 requests
  (`grep -c '"assistant.message"'` -> 6; the shutdown's `modelMetrics.claude-sonnet-4.6.requests
  .count` -> 6), and the shutdown totals (`grep -o '"session.shutdown".*'`): input 186,809 of
  which 151,738 cache reads, output 2,848. Priced at the public Sonnet 4.6 prices (USD per
  million: input 3, cache read 0.30, output 15): 35,071*3 + 151,738*0.3 + 2,848*15 =
  105,213 + 45,521.4 + 42,720 = 193,454.4 -> $0.1934544. The per-call spans carry the output
  only; the session-totals span the input and cache reads, and is no request of its own.
* Copilot CLI 1.0.10 (copilot-cli/softwaresalt-agent-engram): 70 `assistant.message` events of
  claude-opus-4.6, outputTokens adding up to 19,401 (`jq -s 'map(select(.type ==
  "assistant.message" and .data.model == "claude-opus-4.6") | .data.outputTokens) | add'`
  over both events.jsonl; no shutdown, so no input); GitHub Copilot's price table lacks Opus
  4.6, Anthropic's prices it at $25 per million output: 19,401*25 = 485,025 -> $0.485025.
* opencode-go (opencode-go/kashifkhan0771-utils, db + WAL): 61 assistant messages (`select
  count(*) from messages where role='assistant'`), no tokens per call; the agent's own cost
  per session, cumulative (`select sum(cost) from sessions` -> 0.8491675).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, run_tailerd

COPILOT = FIXTURES / "copilot-cli"


def once(watch: Path, state: Path) -> None:
    done = run_tailerd("--watch", watch, "--once", "--state-dir", state, "--data-dir", state)
    assert done.returncode == 0, done.stderr


def report(state: Path, *args: str) -> dict[str, Any]:
    done = run_tailerd("usage", "--data-dir", state, "--json", *args)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def sessions(state: Path) -> list[dict[str, Any]]:
    done = run_tailerd("sessions", "--data-dir", state, "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_copilot_session_totals_complete_the_cost_and_are_no_call(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".copilot" / "session-state" / "s1"
    home.mkdir(parents=True)
    shutil.copyfile(
        COPILOT / "Mai0313-VibeCodingTracker" / "copilot-1.0.34.events.jsonl",
        home / "events.jsonl",
    )
    state = tmp_path / "state"
    once(tmp_path / "home", state)
    total = report(state)["total"]
    assert total["calls"] == 6  # the session-totals span is not a request
    assert total["input_tokens"] == 186_809
    assert total["cache_read_tokens"] == 151_738
    assert total["output_tokens"] == 2_848
    assert total["cost_usd"] == pytest.approx(0.1934544, rel=1e-9)
    assert total["unpriced_calls"] == total["unrecorded_calls"] == 0
    (session,) = sessions(state)
    assert session["llm_calls"] == 6
    assert session["cost_usd"] == pytest.approx(0.1934544, rel=1e-9)
    shown = run_tailerd("show", session["session_id"], "--data-dir", state)
    assert shown.returncode == 0, shown.stderr
    per_turn = [int(n) for n in re.findall(r"turn total: (\d+) LLM call", shown.stdout)]
    assert sum(per_turn) == 6 and per_turn[-1] == 0  # the totals turn holds no call


def test_copilot_opus_is_priced_from_anthropics_table(tmp_path: Path) -> None:
    source = COPILOT / "softwaresalt-agent-engram" / ".copilot"
    shutil.copytree(source, tmp_path / ".copilot", copy_function=shutil.copyfile)
    state = tmp_path / "state"
    once(tmp_path / ".copilot", state)
    (opus,) = [r for r in report(state, "--by", "model")["rows"] if r["key"] == "claude-opus-4.6"]
    assert opus["calls"] == 70
    assert opus["output_tokens"] == 19_401
    assert opus["cost_usd"] == pytest.approx(0.485025, rel=1e-9)
    assert opus["unpriced_calls"] == 0


def test_crush_sessions_show_the_agents_cost_and_calls_without_tokens(tmp_path: Path) -> None:
    project = tmp_path / "utils"
    shutil.copytree(
        FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode",
        project / ".opencode",
        copy_function=shutil.copyfile,
    )
    state = tmp_path / "state"
    once(project, state)
    found = report(state, "--by", "session")
    total = found["total"]
    assert total["calls"] == 61
    assert total["cost_usd"] == pytest.approx(0.8491675, rel=1e-9)
    assert total["unrecorded_calls"] == 61 and total["unpriced_calls"] == 0
    assert len(found["rows"]) == 7 and all(r["agents"] == ["crush"] for r in found["rows"])
    text = run_tailerd("usage", "--data-dir", state, "--by", "session")
    assert text.returncode == 0, text.stderr
    assert "price table" not in text.stdout  # nothing is missing from the price table
    assert "61 of 61 LLM calls have no tokens of their own" in text.stdout
    assert "$0.8492" in text.stdout and "unpriced" not in text.stdout
    other = run_tailerd("usage", "--data-dir", state, "--agent", "opencode")  # the TS one's label
    assert other.returncode == 66 and "agents: crush" in other.stderr
    listed = sessions(state)
    assert sum(r["llm_calls"] for r in listed) == 61
    assert sum(r["cost_usd"] for r in listed) == pytest.approx(0.8491675, rel=1e-9)
    assert not any(r["unpriced_calls"] for r in listed)
    first = listed[0]["session_id"]
    shown = run_tailerd("show", first, "--data-dir", state)
    assert shown.returncode == 0, shown.stderr
    assert "turn total:" in shown.stdout and "unpriced" not in shown.stdout
    assert re.search(r"cost \$[0-9.]+\+", shown.stdout) is None  # no '+': nothing unpriced
