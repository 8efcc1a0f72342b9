"""Crush / opencode-go: a session cost that goes down (the agent rewrote its total) ships
nothing and becomes the baseline later growth is counted from, through `tailerd --once`.

Fixture: ../shared/fixtures/agents/opencode-go (SOURCE.txt there), copied; hand count:
    sqlite3 opencode.db "select sum(cost) from sessions" -> 0.8491675
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tailerd.edges.agent_db.cursors import SessionCursors
from tests.conftest import run_tailerd
from tests.formats.test_crush import FIXTURE, TOTAL_COST

SESSION = "12fb5660-9f82-498c-9393-bcf94e771d67"  # cost 0.62170155 (select cost from sessions)


def shipped_cost(data: Path) -> float:
    """Sum of `gen_ai.usage.cost` over the local store's spans (USD)."""
    db = sqlite3.connect(data / "tailerd.db")
    try:
        rows = db.execute("SELECT attributes FROM spans").fetchall()
    finally:
        db.close()
    return sum(float(json.loads(a).get("gen_ai.usage.cost", 0.0)) for (a,) in rows)


def test_a_cost_that_goes_down_ships_nothing_and_is_the_new_baseline(tmp_path: Path) -> None:
    """Before the fix the -0.3 run shipped the new cumulative cost whole (0.8491675 + 0.5 +
    (0.62170155 + 0.2) = 2.19; the reviewer's $1.5984524 without the last step)."""
    project = tmp_path / "proj"
    shutil.copytree(FIXTURE, project / ".opencode", copy_function=shutil.copyfile)
    db_path = project / ".opencode" / "opencode.db"
    state = tmp_path / "state"
    once = ("--watch", project, "--once", "--state-dir", state, "--data-dir", state)

    def cost_change(delta: float) -> float:
        writer = sqlite3.connect(db_path, isolation_level=None)
        writer.execute("UPDATE sessions SET cost = cost + ? WHERE id = ?", (delta, SESSION))
        writer.close()
        done = run_tailerd(*once)
        assert done.returncode == 0, done.stderr
        return shipped_cost(state)

    first = run_tailerd(*once)
    assert first.returncode == 0, first.stderr
    assert shipped_cost(state) == pytest.approx(TOTAL_COST)
    assert cost_change(+0.5) == pytest.approx(TOTAL_COST + 0.5)
    assert cost_change(-0.3) == pytest.approx(TOTAL_COST + 0.5)  # rewritten: nothing shipped
    assert cost_change(+0.2) == pytest.approx(TOTAL_COST + 0.5 + 0.2)  # growth from 0.82170155
    assert cost_change(0.0) == pytest.approx(TOTAL_COST + 0.7)  # and nothing again


def test_a_cursor_moved_without_a_turn_waits_for_the_turns_in_flight() -> None:
    """A new baseline (SessionRead.cursor) is acknowledged at once with nothing in flight, and
    only after the session's turns in flight otherwise (a restart must not skip them)."""
    cursors = SessionCursors({})
    cursors.moved("s", "$1.0|")
    assert cursors.acked["s"] == "$1.0|"
    cursors.emitted("s", "k1", "$1.0|10|m1")
    cursors.moved("s", "$0.5|10|m1")
    assert cursors.read_to["s"] == "$0.5|10|m1"
    assert cursors.acked["s"] == "$1.0|"  # k1 not acknowledged yet
    assert cursors.settled("k1")
    assert cursors.acked["s"] == "$0.5|10|m1"
    assert cursors.in_flight == 0
