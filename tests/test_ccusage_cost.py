"""External oracle for cost: tailerd's USD over the shared fixtures against ccusage 20's.

ccusage is installed and run exactly as in tests/test_ccusage_oracle.py (pinned through
bench/ccusage.py, `--offline`, so it uses the price table bundled in its release; HOME empty).
tailerd runs `--once` over the same files into its local store and `tailerd usage --json`
reports from there; both sides group by UTC day (TZ=UTC for ccusage).

Claude Code: equal (to float rounding) per model over the whole corpus (`ccusage claude daily
--breakdown`, whose `cost` per model comes from the per-call costs), and per session for
three transcripts. One documented difference, hand-computed: ccusage's `session` report leaves
out the five sub-agent calls that exist only inside `agent_progress` records of
`marot-spotter/subagent.jsonl` (its `daily` report counts them; see test_ccusage_oracle.py),
so tailerd's session is dearer by exactly their price (below).

Codex: equal per day for the days of `gpt-5.3-codex`. Two documented differences:
* `aide-gpt-5` (19 calls on 2025-09-19): ccusage prices this custom model name as `gpt-5`
  (a fuzzy name match); genai-prices knows no such model, so tailerd shows those calls as
  unpriced, never as $0 (and never as a guess).
* 2026-06-09: the hand-made file of bare `token_count` events that no tailerd format claims
  (test_ccusage_oracle.py); ccusage prices its 200 input tokens as gpt-5: 200 * $1.25/M.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_tailerd
from tests.test_ccusage_oracle import FIXTURES, claude_layout, codex_layout, run_ccusage

# The five calls of marot-spotter/subagent.jsonl seen only in agent_progress records, all
# claude-haiku-4-5-20251001, read from the fixture (data.message.message.usage of each distinct
# message id: msg_0199s85…, msg_01ATQQ…, msg_01ALuB…, msg_01LfZh…, msg_018iZt…):
#   fresh input 2+6+6+6+4 = 24; cache read 15584+17982+18344+20728+22705 = 95,343;
#   cache writes 2398+362+2384+1977+7164 = 14,285, every one a 1-hour write
#   (cache_creation.ephemeral_1h_input_tokens); output 3+1+1+1+1 = 7.
# Haiku 4.5 per million: input $1, cache read $0.10, 1-hour cache write $2, output $5:
#   24*1 + 95,343*0.10 + 14,285*2 + 7*5 = 24 + 9,534.3 + 28,570 + 35 = 38,163.3 -> $0.0381633
PROGRESS_ONLY_CALLS_USD = 0.0381633
# ccusage's price of the unclaimed Codex file: 200 input tokens * $1.25 per million (gpt-5)
CODEX_UNCLAIMED_USD = 200 * 1.25 / 1e6


def usage_report(store: Path, by: str) -> dict[str, Any]:
    result = run_tailerd("usage", "--data-dir", store, "--by", by, "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def once(watch: Path, store: Path, *extra: str | Path) -> None:
    result = run_tailerd(
        "--watch", watch, "--once", "--state-dir", store, "--data-dir", store, *extra, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "0 unacknowledged" in result.stderr


def session_id_of(fixture: Path) -> str:
    """The `sessionId` the transcript's own records carry (the id tailerd groups by)."""
    for line in fixture.read_text().splitlines():
        record = json.loads(line)
        if isinstance(record, dict) and record.get("sessionId"):
            return str(record["sessionId"])
    raise AssertionError(f"no sessionId in {fixture}")


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("claude-cost")
    projects = claude_layout(root / "claude")
    env = {"CLAUDE_CONFIG_DIR": str(root / "claude"), "TZ": "UTC"}
    daily = run_ccusage(root, "claude", "daily", "--breakdown", **env)
    sessions = run_ccusage(root, "claude", "session", **env)
    once(projects, root / "store")
    return {"daily": daily, "sessions": sessions, "store": root / "store"}


def test_claude_cost_per_model_equals_ccusage(claude: dict[str, Any]) -> None:
    theirs: dict[str, float] = {}
    for day in claude["daily"]["daily"]:
        for part in day["modelBreakdowns"]:
            theirs[part["modelName"]] = theirs.get(part["modelName"], 0.0) + part["cost"]
    report = usage_report(claude["store"], "model")
    ours = {r["key"]: r["cost_usd"] for r in report["rows"]}
    assert len(theirs) >= 5  # the corpus was found: five Claude models
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert report["total"]["unpriced_calls"] == 0
    assert report["total"]["cost_usd"] == pytest.approx(
        claude["daily"]["totals"]["totalCost"], rel=1e-9
    )


@pytest.mark.parametrize(
    ("fixture", "ccusage_session", "extra_usd"),
    [
        (
            "marot-spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
            "4d5611e5-241a-462a-8d15-5122611a9569",
            0.0,
        ),
        ("marot-spotter/short.jsonl", "short", 0.0),
        ("marot-spotter/tool_heavy.jsonl", "tool_heavy", 0.0),
        ("marot-spotter/subagent.jsonl", "subagent", PROGRESS_ONLY_CALLS_USD),
    ],
)
def test_claude_cost_per_session_equals_ccusage(
    claude: dict[str, Any], fixture: str, ccusage_session: str, extra_usd: float
) -> None:
    theirs = {s["sessionId"]: s["totalCost"] for s in claude["sessions"]["sessions"]}
    ours = {r["key"]: r["cost_usd"] for r in usage_report(claude["store"], "session")["rows"]}
    session = session_id_of(FIXTURES / "claude-code" / fixture)
    assert ours[session] == pytest.approx(theirs[ccusage_session] + extra_usd, rel=1e-9)


def test_codex_cost_per_day_equals_ccusage(tmp_path: Path) -> None:
    sessions = codex_layout(tmp_path / "codex")
    env = {"CODEX_HOME": str(tmp_path / "codex"), "TZ": "UTC"}
    theirs = {d["date"]: d for d in run_ccusage(tmp_path, "codex", "daily", **env)["daily"]}
    config = tmp_path / "codex.toml"
    config.write_text("[format_options.codex]\nabandon_close = 3600.0\n")  # as in the oracle
    once(sessions, tmp_path / "store", "--config", config)
    ours = {r["key"]: r for r in usage_report(tmp_path / "store", "day")["rows"]}

    codex_days = [d for d, r in theirs.items() if list(r["models"]) == ["gpt-5.3-codex"]]
    assert len(codex_days) == 2  # the corpus was found
    for day in codex_days:
        assert ours[day]["cost_usd"] == pytest.approx(theirs[day]["costUSD"], rel=1e-9)
        assert ours[day]["unpriced_calls"] == 0

    # aide-gpt-5: ccusage guesses gpt-5's price, tailerd says unpriced (never $0)
    assert list(theirs["2025-09-19"]["models"]) == ["aide-gpt-5"]
    assert theirs["2025-09-19"]["costUSD"] > 0.3
    assert ours["2025-09-19"]["cost_usd"] is None
    # 19 calls: `grep -c '"type":"token_count"' Mai0313-VibeCodingTracker/codex-0.39.0.jsonl`
    # (each of them has a last_token_usage)
    assert ours["2025-09-19"]["unpriced_calls"] == 19
    # the unclaimed synthetic file: only ccusage has that day
    assert "2026-06-09" not in ours
    assert theirs["2026-06-09"]["costUSD"] == pytest.approx(CODEX_UNCLAIMED_USD, rel=1e-9)
