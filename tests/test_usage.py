"""`tailerd usage` over a store filled by a real `tailerd --once` over the shipped examples/logs.

Hand counts of examples/logs (every call on 2026-11-24, UTC), from the `usage` objects of the
`llm` spans (`grep -o '"usage":{[^}]*}' examples/logs/*/*`); input_tokens there include cache
reads (Weave's convention):
* weather-bot (wb-7f3a, wb-91c2): gpt-4o 4 calls, input 100+140+180+210 = 630, output
  20+12+18+10 = 60; gpt-4o-mini 1 call, 90 / 25.
* research-agent (ra-0001): claude-sonnet-4-5 4 calls, input 1200+1500+1700+1800 = 6,200 of
  which 900 cache reads (uncached 5,300), output 80+120+9+40 = 249; claude-haiku-4-5 (its
  sub-agent) 1 call, 3,000 / 150.
* all: 10 calls, input (Weave's, with cache) 630+90+6,200+3,000 = 9,920, uncached input
  630+90+5,300+3,000 = 9,020, cache read 900, output 60+25+249+150 = 484, total
  9,920+484 = 10,404.
Costs from the published prices (USD per million): gpt-4o 2.50/10: 630*2.5 + 60*10 = 2,175;
gpt-4o-mini 0.15/0.60: 90*0.15 + 25*0.6 = 28.5; sonnet 4.5 3/15, cache read 0.30:
5,300*3 + 900*0.3 + 249*15 = 19,905; haiku 4.5 1/5: 3,000*1 + 150*5 = 3,750;
all: 25,858.5 per million = $0.0258585.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tailerd import usage
from tests.conftest import ROOT, run_tailerd, tailerd_env

MODEL_COST = {
    "gpt-4o": 2175e-6,
    "gpt-4o-mini": 28.5e-6,
    "claude-sonnet-4-5": 19905e-6,
    "claude-haiku-4-5": 3750e-6,
}
ALL_COST = 25858.5e-6


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("usage")
    shutil.copytree(ROOT / "examples" / "logs", root / "logs")
    done = run_tailerd(
        "--watch", root / "logs", "--once", "--state-dir", root / "s", "--data-dir", root / "s"
    )
    assert done.returncode == 0, done.stderr
    return root / "s"


def report(data_dir: Path, *args: str) -> dict[str, Any]:
    done = run_tailerd("usage", "--data-dir", data_dir, "--json", *args)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_daily_totals_are_the_hand_counts(store: Path) -> None:
    doc = report(store)
    assert [r["key"] for r in doc["rows"]] == ["2026-11-24"]
    day = doc["rows"][0]
    assert {k: day[k] for k in ("calls", "input_tokens", "uncached_input_tokens",
                                "cache_read_tokens", "cache_write_tokens", "output_tokens",
                                "reasoning_tokens", "total_tokens")} == {
        "calls": 10, "input_tokens": 9920, "uncached_input_tokens": 9020,
        "cache_read_tokens": 900, "cache_write_tokens": 0, "output_tokens": 484,
        "reasoning_tokens": 0, "total_tokens": 10404,
    }  # fmt: skip
    assert day["cost_usd"] == pytest.approx(ALL_COST, rel=1e-9)
    assert day["unpriced_calls"] == 0
    assert day["agents"] == ["research-agent", "weather-bot"]
    assert doc["total"]["cost_usd"] == pytest.approx(ALL_COST, rel=1e-9)


def test_by_model_and_by_session(store: Path) -> None:
    models = {r["key"]: r for r in report(store, "--by", "model")["rows"]}
    assert {k: r["cost_usd"] for k, r in models.items()} == pytest.approx(MODEL_COST, rel=1e-9)
    sonnet = models["claude-sonnet-4-5"]
    assert (sonnet["input_tokens"], sonnet["uncached_input_tokens"]) == (6200, 5300)
    assert models["gpt-4o"]["output_tokens"] == 60
    sessions = {r["key"]: r for r in report(store, "--by", "session")["rows"]}
    assert sorted(sessions) == ["ra-0001", "wb-7f3a", "wb-91c2"]
    assert sessions["wb-7f3a"]["cost_usd"] == pytest.approx(MODEL_COST["gpt-4o"], rel=1e-9)
    assert sessions["ra-0001"]["agents"] == ["research-agent"]
    assert sessions["ra-0001"]["calls"] == 5
    costs = usage.session_costs(store / "tailerd.db")
    assert costs["wb-91c2"].usd == pytest.approx(MODEL_COST["gpt-4o-mini"], rel=1e-9)


def test_weeks_months_agent_and_days(store: Path) -> None:
    assert [r["key"] for r in report(store, "--by", "week")["rows"]] == ["2026-11-23"]  # Monday
    assert [r["key"] for r in report(store, "--by", "month")["rows"]] == ["2026-11"]
    weather = report(store, "--agent", "weather-bot")["total"]
    # 630 + 90 input, 60 + 25 output; 2,175 + 28.5 per million
    assert (weather["input_tokens"], weather["output_tokens"]) == (720, 85)
    assert weather["cost_usd"] == pytest.approx(2203.5e-6, rel=1e-9)
    inside = report(store, "--since", "2026-11-24", "--until", "2026-11-24")["total"]
    assert inside["calls"] == 10
    done = run_tailerd("usage", "--data-dir", store, "--json", "--since", "2026-11-25")
    assert done.returncode == 0
    assert json.loads(done.stdout)["rows"] == []
    assert done.stderr.count("\n") == 1 and "no LLM calls" in done.stderr


def test_totals_equal_the_sum_of_the_stored_spans(store: Path) -> None:
    with sqlite3.connect(store / "tailerd.db") as db:
        rows = db.execute("SELECT attributes FROM spans WHERE operation = 'chat'").fetchall()
    attrs = [json.loads(a) for (a,) in rows]
    total = report(store)["total"]
    assert total["calls"] == len(attrs)
    assert total["cost_usd"] == pytest.approx(sum(a["gen_ai.usage.cost"] for a in attrs))
    stored_in = sum(a["gen_ai.usage.input_tokens"] for a in attrs)
    stored_read = sum(a.get("gen_ai.usage.cache_read.input_tokens", 0) for a in attrs)
    assert total["input_tokens"] == stored_in  # the same name and meaning as `sessions`
    assert total["uncached_input_tokens"] + total["cache_read_tokens"] == stored_in
    assert total["cache_read_tokens"] == stored_read
    assert total["output_tokens"] == sum(a["gen_ai.usage.output_tokens"] for a in attrs)


def test_a_store_written_before_costs_is_priced_when_read(store: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    shutil.copyfile(store / "tailerd.db", old / "tailerd.db")
    with sqlite3.connect(old / "tailerd.db") as db:
        db.execute(
            "UPDATE spans SET attributes = json_remove(attributes, '$.\"gen_ai.usage.cost\"')"
        )
        left = "SELECT count(*) FROM spans WHERE attributes LIKE '%gen_ai.usage.cost%'"
        assert db.execute(left).fetchone() == (0,)
    assert report(old)["total"]["cost_usd"] == pytest.approx(ALL_COST, rel=1e-9)


def test_unknown_models_are_unpriced_never_zero(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    turn = {
        "type": "turn", "session_id": "house-1", "turn_id": "1", "agent_name": "house",
        "messages": [{"role": "user", "content": "hi"}],
        "spans": [
            {"type": "llm", "model": "house-model-7", "provider_name": "house",
             "usage": {"input_tokens": 1000, "output_tokens": 10},
             "started_at": "2026-11-24T10:00:00Z", "ended_at": "2026-11-24T10:00:01Z"},
            {"type": "llm", "model": "gpt-4o", "provider_name": "openai",
             "usage": {"input_tokens": 100, "output_tokens": 20},
             "started_at": "2026-11-24T10:00:01Z", "ended_at": "2026-11-24T10:00:02Z"},
        ],
        "started_at": "2026-11-24T10:00:00Z", "ended_at": "2026-11-24T10:00:02Z",
    }  # fmt: skip
    (logs / "house.jsonl").write_text(json.dumps(turn) + "\n")
    done = run_tailerd(
        "--watch", logs, "--once", "--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s"
    )
    assert done.returncode == 0, done.stderr
    models = {r["key"]: r for r in report(tmp_path / "s", "--by", "model")["rows"]}
    assert models["house-model-7"]["cost_usd"] is None
    assert models["house-model-7"]["unpriced_calls"] == 1
    assert models["gpt-4o"]["cost_usd"] == pytest.approx(450e-6)  # 100*2.50 + 20*10
    text = run_tailerd("usage", "--data-dir", tmp_path / "s", "--by", "model").stdout
    house = next(line for line in text.splitlines() if "house-model-7" in line)
    assert house.split()[-1] == "unpriced" and "$" not in house
    total = next(line for line in text.splitlines() if line.split()[:1] == ["TOTAL"])
    assert total.rstrip().endswith("$0.000450 + unpriced")
    assert "1 of 2 LLM calls have no known price" in text


def test_missing_store_and_bad_flags_are_one_line(tmp_path: Path) -> None:
    done = run_tailerd("usage", "--data-dir", tmp_path / "nothing")
    assert done.returncode == 0
    assert done.stdout.count("\n") == 1 and "no local store at" in done.stdout
    assert "tailerd --watch DIR --once" in done.stdout
    bad = run_tailerd("usage", "--data-dir", tmp_path, "--since", "2026-13-01")
    assert (bad.returncode, bad.stderr.count("\n")) == (78, 1)
    assert "not a date" in bad.stderr
    wrong = run_tailerd("usage", "--data-dir", tmp_path, "--by", "year")
    assert wrong.returncode == 78 and "Traceback" not in wrong.stderr


def test_a_terminal_gets_a_bar_chart_of_spend_per_day(store: Path) -> None:
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tailerd", "usage", "--data-dir", str(store)],
        stdout=secondary,
        stderr=secondary,
        env={**tailerd_env(), "COLUMNS": "160", "TERM": "xterm"},
    )
    os.close(secondary)
    out = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = out.decode()
    assert "spend per day (UTC)" in text
    bar_line = next(line for line in text.splitlines() if "█" in line)
    assert "2026-11-24" in bar_line and "$0.0259" in bar_line
    # without a terminal: the same table, no chart
    piped = run_tailerd("usage", "--data-dir", store).stdout
    assert "spend per day" not in piped and "2026-11-24" in piped


def test_usage_and_sessions_agree_on_input_tokens(store: Path) -> None:
    """Fresh-user review: usage's input_tokens was the uncached input, sessions' Weave's count.
    Per session (hand counts above): ra-0001 6,200 + 3,000 = 9,200 with cache, 8,300 uncached;
    wb-7f3a 630 (gpt-4o); wb-91c2 90 (gpt-4o-mini)."""
    by_session = {r["key"]: r for r in report(store, "--by", "session")["rows"]}
    listed = run_tailerd("sessions", "--data-dir", store, "--state-dir", store, "--json")
    sessions = {r["session_id"]: r for r in json.loads(listed.stdout)}
    expected = {"ra-0001": (9200, 8300), "wb-7f3a": (630, 630), "wb-91c2": (90, 90)}
    for name, (with_cache, uncached) in expected.items():
        for row in (by_session[name], sessions[name]):
            assert (row["input_tokens"], row["uncached_input_tokens"]) == (with_cache, uncached)
    text = run_tailerd("usage", "--data-dir", store).stdout
    assert "INPUT W/ CACHE" in text and "UNCACHED IN" in text


@pytest.mark.parametrize("args", [(), ("--by", "model"), ("-v",)])
def test_a_closed_pipe_ends_usage_quietly(store: Path, args: tuple[str, ...]) -> None:
    """`tailerd usage | true`: the reader is gone before the table is written; rich's own
    answer was exit 1 with no word. README promises a quiet 0, as sessions/show/status do."""
    cmd = [sys.executable, "-m", "tailerd", "usage", "--data-dir", str(store), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tailerd_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write meets EPIPE
    assert proc.wait(timeout=60) == 0
    said = proc.stderr.read()
    assert b"Traceback" not in said and (said == b"" or "-v" in args), said


def test_a_range_with_no_calls_in_a_filled_store_says_so(store: Path) -> None:
    """Fresh-user review: `usage --since 2030-01-01` advised filling a store that has data.
    Every call of examples/logs is on 2026-11-24 (module docstring), so 2030 has none."""
    done = run_tailerd("usage", "--data-dir", store, "--since", "2030-01-01")
    assert done.returncode == 0, done.stderr
    assert "no usage in that range" in done.stdout and "--once" not in done.stdout
    other = run_tailerd("usage", "--data-dir", store, "--agent", "no-such-agent")
    assert other.returncode == 66  # an agent the store has no call of: a typo, said so
    assert "no agent no-such-agent in the store" in other.stderr
