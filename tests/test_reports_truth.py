"""`usage` and `show` say exactly what the store knows: a cost without input tokens is a lower
bound, session-totals spans are no (unpriced) calls, a call without a model says so, and calls
show in the order the agent made them. Real fixtures (../shared/fixtures/agents, SOURCE.txt
there), a real `tailerd --once`, the real local store.

Hand counts:
* Copilot CLI 1.0.10 (copilot-cli/softwaresalt-agent-engram, session 07c40cd0): 75
  `assistant.message` events (`grep -c '"type":"assistant.message"' events.jsonl` -> 75), 70
  of claude-opus-4.6 and 5 of claude-sonnet-4.6 (both priced, see
  test_usage_session_totals.py), no `session.shutdown` (SOURCE.txt): no input tokens anywhere,
  so all 75 priced calls are lower bounds.
* Copilot CLI 1.0.34 (copilot-cli/Mai0313-VibeCodingTracker): 6 calls, and a shutdown whose
  totals carry the input: no lower bound.
* goose (the filled copy of tests/formats/test_goose.py, ROWS there): 7 assistant requests in
  ROWS (session 1: rows 2, 4, 6 / 8, 11 / 13; session 2: one) with no model and no tokens, and
  2 session-totals spans (one per session, no model); session 1's first turn is rows 1-6:
  request, tool t1, request, tool t2 (failed), request.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_goose import S1, filled_copy, goose_home, once_in_home

COPILOT = FIXTURES / "copilot-cli"
ENGRAM = "07c40cd0-ff51-4d6e-bdcd-ac2f90877203"


def usage(state: Path, *args: str) -> dict[str, Any]:
    done = run_tailerd("usage", "--data-dir", state, "--json", *args)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def text_of(*args: str | Path) -> str:
    done = run_tailerd(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_copilot_cost_without_input_is_a_lower_bound(tmp_path: Path) -> None:
    home = tmp_path / "home" / ".copilot" / "session-state"
    engram = COPILOT / "softwaresalt-agent-engram" / ".copilot" / "session-state" / ENGRAM
    shutil.copytree(engram, home / ENGRAM, copy_function=shutil.copyfile)
    (home / "s1").mkdir()
    shutil.copyfile(
        COPILOT / "Mai0313-VibeCodingTracker" / "copilot-1.0.34.events.jsonl",
        home / "s1" / "events.jsonl",
    )
    state = tmp_path / "state"
    done = run_tailerd(
        "--watch", tmp_path / "home", "--once", "--state-dir", state, "--data-dir", state
    )
    assert done.returncode == 0, done.stderr
    rows = {r["key"]: r for r in usage(state, "--by", "session")["rows"]}
    assert rows[ENGRAM]["calls"] == 75 and rows[ENGRAM]["input_unrecorded_calls"] == 75
    (other,) = [r for key, r in rows.items() if key != ENGRAM]  # the 1.0.34 session
    assert other["calls"] == 6 and other["input_unrecorded_calls"] == 0
    table = text_of("usage", "--data-dir", state, "--by", "session")
    assert "75 of 81 LLM calls recorded no input tokens" in table
    (engram_line,) = [line for line in table.splitlines() if ENGRAM in line]
    assert "≥$" in engram_line
    (other_line,) = [line for line in table.splitlines() if other["key"] in line]
    assert "≥" not in other_line
    listed = {
        r["session_id"]: r for r in json.loads(text_of("sessions", "--data-dir", state, "--json"))
    }
    assert listed[ENGRAM]["input_unrecorded_calls"] == 75
    assert listed[other["key"]]["input_unrecorded_calls"] == 0
    plain = text_of("sessions", "--data-dir", state)
    (engram_row,) = [line for line in plain.splitlines() if line.startswith(ENGRAM)]
    assert "≥$" in engram_row and "75 calls recorded no input tokens" in plain
    shown = text_of("show", "07c40", "--data-dir", state)
    assert "claude-opus-4.6: in not recorded, out " in shown
    assert re.search(r"opus-4\.6: in 0,", shown) is None
    assert "cost ≥$" in shown


def test_goose_totals_are_no_unpriced_calls_and_show_keeps_call_order(tmp_path: Path) -> None:
    db = filled_copy(goose_home(tmp_path))
    state = once_in_home(db, tmp_path / "state")
    found = usage(state, "--by", "model")
    (row,) = found["rows"]
    assert row["key"] == "(no model recorded)"
    assert (row["calls"], row["unpriced_calls"], row["unrecorded_calls"]) == (7, 0, 7)
    assert row["unpriced_session_totals"] == 2
    table = text_of("usage", "--data-dir", state, "--by", "model")
    assert "price table" not in table  # no call lacks a price: it lacks tokens
    assert "2 session-totals records have no known price" in table
    assert "7 of 7 LLM calls have no tokens of their own" in table
    listed = json.loads(text_of("sessions", "--data-dir", state, "--json"))
    assert [(r["unpriced_calls"], r["unpriced_session_totals"]) for r in listed] == [(0, 1)] * 2
    shown = text_of("show", S1, "--data-dir", state)
    first_turn = shown.split("turn 2:")[0]
    labels = re.findall(r"^  (llm \(model not recorded\)|llm|tool):", first_turn, re.M)
    assert labels == ["llm (model not recorded)", "tool"] * 2 + ["llm (model not recorded)"]
    assert "ERROR" in first_turn.split("tool:")[2].split("llm")[0]  # t2 is the failed one
    assert "llm: chat:" not in shown
