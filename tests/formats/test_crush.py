"""Crush / opencode-go: the real project database of ../shared/fixtures/agents/opencode-go
(read SOURCE.txt there), whose newest session lives only in its `-wal` file.

Hand counts, with the sqlite3 CLI on a copy of the fixture (db + wal + shm together):

    sqlite3 opencode.db "select count(*) from sessions"                           -> 7
    sqlite3 opencode.db "select count(*) from messages"                           -> 124
    sqlite3 opencode.db "select role, count(*) from messages group by role"
        -> assistant 61 (one LLM call each), tool 45, user 18 (one turn each)
    sqlite3 opencode.db "select j.value->>'type', count(*) from messages,
        json_each(messages.parts) j group by 1"  -> tool_call 80, tool_result 80
    per session, user messages in created_at order (the turns):
    sqlite3 opencode.db "select session_id, count(*) from messages where role='user'
        group by 1"  -> bd9a6907 2, d65ab244 6, 3fc3b40d 1, 87d5c393 2, 12fb5660 1,
                        d19286ff 5, 635c8ffb 1
    finish reasons of assistant messages: end_turn 10, canceled 6, permission_denied 2,
    tool_use 43; a turn whose last answer was `canceled` is interrupted: 6 turns (read off
    the role/finish sequence per session, printed with group_concat in created_at order).
    Without the WAL (`?immutable=1`): 6 sessions, 110 messages; the missing session is
    635c8ffb "New Session": 1 turn, 4 messages, 1 tool call, `view`:
    sqlite3 opencode.db "select j.value->'data'->>'name' from messages m,
        json_each(m.parts) j where m.session_id like '635c8ffb%' and j.value->>'type'='tool_call'"
Cost, the agent's own, cumulative per session (no child sessions here):
    sqlite3 opencode.db "select id, cost from sessions"  -> bd9a6907 0.01131705,
        d65ab244 0.0445305, 3fc3b40d 0.00319275, 87d5c393 0.01361085, 12fb5660 0.62170155,
        d19286ff 0.1055299, 635c8ffb 0.0492849; "select sum(cost) from sessions" -> 0.8491675
    sessions.prompt_tokens / completion_tokens are the LAST call's (assigned, not added, in
    opencode-go's and Crush's TrackUsage): d65ab244's 42 messages end with completion 21.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailerd.domain import LLMCall, SubAgentCall, ToolCall
from tailerd.edges.agent_db import read_snapshot
from tailerd.edges.agent_db.protocol import DatabaseFormat, SessionTurn
from tailerd.formats.base import Source
from tailerd.formats.crush import FORMAT
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import at, by_depth, other_type, paths_in, replaced

FIXTURE = FIXTURES / "opencode-go" / "kashifkhan0771-utils" / ".opencode"
TURNS_PER_SESSION = {
    "bd9a6907-4d8b-4f34-9c25-e18c7740e41d": 2,
    "d65ab244-13fc-4a03-9d79-0372e6ae7ed1": 6,
    "3fc3b40d-4412-4617-af61-ac294c0aea47": 1,
    "87d5c393-84b5-4d42-9c70-201e07d33127": 2,
    "12fb5660-9f82-498c-9393-bcf94e771d67": 1,
    "d19286ff-7e04-4d9c-af03-cf2c6b3e687c": 5,
    "635c8ffb-566f-4bd6-a816-f648f33beb9d": 1,
}
WAL_ONLY_SESSION = "635c8ffb-566f-4bd6-a816-f648f33beb9d"
COST = {
    "bd9a6907-4d8b-4f34-9c25-e18c7740e41d": 0.01131705,
    "d65ab244-13fc-4a03-9d79-0372e6ae7ed1": 0.0445305,
    "3fc3b40d-4412-4617-af61-ac294c0aea47": 0.00319275,
    "87d5c393-84b5-4d42-9c70-201e07d33127": 0.01361085,
    "12fb5660-9f82-498c-9393-bcf94e771d67": 0.62170155,
    "d19286ff-7e04-4d9c-af03-cf2c6b3e687c": 0.1055299,
    "635c8ffb-566f-4bd6-a816-f648f33beb9d": 0.0492849,
}
TOTAL_COST = 0.8491675


def totals_spans(turns: list[SessionTurn]) -> list[LLMCall]:
    return [
        s
        for st in turns
        for s in st.turn.spans
        if isinstance(s, LLMCall) and s.attributes.get("tailerd.usage.session_totals")
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The fixture arranged as the agent left it: <project>/.opencode/opencode.db(+wal, shm),
    copied (never opened in place: a reader writes read-marks into the -shm)."""
    dest = tmp_path / "utils"
    shutil.copytree(FIXTURE, dest / ".opencode", copy_function=shutil.copyfile)
    return dest


def read_all(
    db_path: Path, now: float | None = None, fmt: DatabaseFormat = FORMAT
) -> dict[str, list[SessionTurn]]:
    """Every session's turns from its start, as `fmt` (an agent-database format) reads them."""
    with read_snapshot(db_path) as db:
        return {
            sid: list(
                fmt.read_session(
                    db, Source(str(db_path)), sid, None, now=now or time.time(), idle_close=600
                ).turns
            )
            for sid in fmt.session_versions(db)
        }


def test_turns_llm_and_tool_calls_match_the_hand_counts(project: Path) -> None:
    found = read_all(project / ".opencode" / "opencode.db")
    assert {sid: len(turns) for sid, turns in found.items()} == TURNS_PER_SESSION
    turns = [st.turn for sts in found.values() for st in sts]
    spans = [s for t in turns for s in t.spans]
    totals = [s for s in spans if s.attributes.get("tailerd.usage.session_totals")]
    assert sum(isinstance(s, LLMCall) for s in spans) == 61 + len(totals)
    assert sum(isinstance(s, ToolCall) for s in spans) == 80
    assert not any(isinstance(s, SubAgentCall) for s in spans)  # no child sessions here
    assert sum(t.interrupted for t in turns) == 6
    assert all(
        s.attributes["tailerd.usage.recorded"] is False
        for s in spans
        if isinstance(s, LLMCall) and s not in totals
    )
    assert all(t.attributes["tailerd.cwd"] == str(project) for t in turns)
    assert len({t.key for t in turns}) == 18


def test_the_session_only_in_the_wal_is_read_in_full(project: Path) -> None:
    (turn,) = [st.turn for st in read_all(project / ".opencode" / "opencode.db")[WAL_ONLY_SESSION]]
    assert turn.session_name == "New Session"
    assert turn.messages[0].content == "how to squash commits"
    assert [s.name for s in turn.spans if isinstance(s, ToolCall)] == ["view"]
    calls = [s for s in turn.spans if isinstance(s, LLMCall)]
    assert [s.model for s in calls] == ["claude-3.7-sonnet"] * 3  # 2 calls, the session's cost
    assert turn.output_messages[0].content.startswith("To squash commits in Git:")
    assert not any(k.startswith("tailerd.session.") for k in turn.attributes)


def test_each_sessions_cost_is_shipped_once_as_the_agents_own(project: Path) -> None:
    """The session's cost (the agent's, cumulative) on one session-totals span of its last turn
    read; read again from that turn's cursor, nothing more; grown later, only the growth, on a
    synthetic turn of its own."""
    db_path = project / ".opencode" / "opencode.db"
    found = read_all(db_path)
    for sid, turns in found.items():
        (span,) = totals_spans(turns)
        assert span in turns[-1].turn.spans  # on the last turn read
        assert span.attributes["gen_ai.usage.cost"] == pytest.approx(COST[sid])
        assert span.attributes["tailerd.cost.source"] == "agent"
        assert span.usage.input_tokens == span.usage.output_tokens == 0  # not recorded
    assert sum(
        s.attributes["gen_ai.usage.cost"] for ts in found.values() for s in totals_spans(ts)
    ) == pytest.approx(TOTAL_COST)
    sid = "d19286ff-7e04-4d9c-af03-cf2c6b3e687c"
    last = found[sid][-1].cursor
    with read_snapshot(db_path) as db:
        again = FORMAT.read_session(db, Source(str(db_path)), sid, last, now=time.time(),
                                    idle_close=600)  # fmt: skip
    assert again.turns == ()
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("UPDATE sessions SET cost = cost + 0.25 WHERE id = ?", (sid,))
    writer.close()
    with read_snapshot(db_path) as db:
        grown = FORMAT.read_session(db, Source(str(db_path)), sid, last, now=time.time(),
                                    idle_close=600)  # fmt: skip
    (synthetic,) = grown.turns
    assert synthetic.turn.attributes["tailerd.synthetic"] == "session_totals"
    assert synthetic.turn.agent_name == "crush"
    (span,) = totals_spans([synthetic])
    assert span.attributes["gen_ai.usage.cost"] == pytest.approx(0.25)
    with read_snapshot(db_path) as db:
        after = FORMAT.read_session(db, Source(str(db_path)), sid, synthetic.cursor,
                                    now=time.time(), idle_close=600)  # fmt: skip
    assert after.turns == ()
    # a cursor of an earlier tailerd (no cost in it: none was shipped) gets the whole cost
    old = last.partition("|")[2]
    with read_snapshot(db_path) as db:
        upgraded = FORMAT.read_session(db, Source(str(db_path)), sid, old, now=time.time(),
                                       idle_close=600)  # fmt: skip
    (span,) = totals_spans(list(upgraded.turns))
    assert span.attributes["gen_ai.usage.cost"] == pytest.approx(COST[sid] + 0.25)


def test_a_turn_after_the_cursor_only_and_an_open_turn_waits(project: Path) -> None:
    db_path = project / ".opencode" / "opencode.db"
    (first, second) = read_all(db_path)["bd9a6907-4d8b-4f34-9c25-e18c7740e41d"]
    with read_snapshot(db_path) as db:
        after = FORMAT.read_session(
            db, Source(str(db_path)), "bd9a6907-4d8b-4f34-9c25-e18c7740e41d", first.cursor,
            now=time.time(), idle_close=600,
        )  # fmt: skip
    assert [t.turn.key for t in after.turns] == [second.turn.key]
    now = time.time()
    add_messages(db_path, WAL_ONLY_SESSION, [("user", "and then?", None)], now)
    with read_snapshot(db_path) as db:
        read = FORMAT.read_session(
            db, Source(str(db_path)), WAL_ONLY_SESSION, None, now=now + 1, idle_close=600
        )
    assert len(read.turns) == 1 and read.open  # the new prompt has no answer yet
    with read_snapshot(db_path) as db:
        idle = FORMAT.read_session(
            db, Source(str(db_path)), WAL_ONLY_SESSION, None, now=now + 601, idle_close=600
        )
    assert len(idle.turns) == 2 and not idle.open and idle.turns[1].turn.interrupted


def add_messages(
    db_path: Path, session_id: str, messages: list[tuple[str, str, str | None]], at: float
) -> None:
    """Insert messages as the agent would (its own connection, WAL mode): (role, text, finish
    reason or None), one second apart from `at`."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    for i, (role, text, reason) in enumerate(messages):
        parts = [{"type": "text", "data": {"text": text}}]
        if reason:
            parts.append({"type": "finish", "data": {"reason": reason, "time": int(at) + i}})
        db.execute(
            "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (f"added-{int(at)}-{i}", session_id, role, json.dumps(parts),
             "gpt-4o-mini" if role == "assistant" else None, int(at) + i, int(at) + i,
             int(at) + i if reason else None),
        )  # fmt: skip
    db.close()


def stored(data: Path) -> tuple[int, int, int]:
    """Turn (root), chat and tool spans in the local store."""
    db = sqlite3.connect(data / "tailerd.db")
    try:
        rows = db.execute("SELECT name, parent_span_id IS NULL FROM spans").fetchall()
    finally:
        db.close()
    return (
        sum(bool(root) for _, root in rows),
        sum(name == "chat" or name.startswith("chat ") for name, _ in rows),  # no model: "chat"
        sum(name.startswith("execute_tool ") for name, _ in rows),
    )


def test_once_ships_every_turn_once_then_nothing_then_only_the_new_turn(
    project: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    once = ("--watch", project, "--once", "--state-dir", state, "--data-dir", state)
    first = run_tailerd(*once)
    assert first.returncode == 0, first.stderr
    assert stored(state) == (18, 61 + 7, 80)  # 7 sessions' cost spans
    again = run_tailerd(*once)
    assert again.returncode == 0, again.stderr
    assert stored(state) == (18, 61 + 7, 80)  # nothing re-sent
    now = time.time()
    add_messages(
        project / ".opencode" / "opencode.db",
        WAL_ONLY_SESSION,
        [("user", "and rebase?", None), ("assistant", "git rebase -i", "end_turn")],
        now,
    )
    third = run_tailerd(*once)
    assert third.returncode == 0, third.stderr
    assert stored(state) == (19, 62 + 7, 80)  # one turn: its prompt and one answer


# ---- wrong types: the agent's rows with one value of another type ---------------------------

COLUMN_VALUES = st.sampled_from([None, "soon", -1, 2**63 - 1, 1.5, b"\x00\xff", "[]", "{", "5"])


@st.composite
def mutation(draw: st.DrawFn, rows: list[tuple[str, str]]) -> tuple[str, str, Any]:
    """(message id, column, new value): `parts` JSON changed at one random path to a value of
    another JSON type (as tests/formats/test_wrong_types.py does to lines), or another column
    given a value of another SQL type."""
    message_id, parts = draw(st.sampled_from(rows))
    if draw(st.booleans()):
        record = json.loads(parts)
        paths = list(paths_in(record))
        path = draw(st.sampled_from(draw(st.sampled_from(by_depth(paths)))))
        new = draw(other_type(at(record, path)))
        return message_id, "parts", json.dumps(replaced(record, path, new))
    column = draw(st.sampled_from(["role", "parts", "model", "created_at", "finished_at"]))
    return message_id, column, draw(COLUMN_VALUES)


def test_no_wrong_type_in_the_database_escapes_the_format(project: Path) -> None:
    db_path = project / ".opencode" / "opencode.db"
    db = sqlite3.connect(db_path, isolation_level=None)
    sessions = ["12fb5660-9f82-498c-9393-bcf94e771d67", WAL_ONLY_SESSION]
    rows = db.execute(
        "SELECT id, parts FROM messages WHERE session_id IN (?, ?)", sessions
    ).fetchall()

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.lists(mutation(rows), min_size=1, max_size=3))
    def run(changes: list[tuple[str, str, Any]]) -> None:
        db.execute("BEGIN")
        try:
            for message_id, column, value in changes:
                with contextlib.suppress(sqlite3.IntegrityError):  # NOT NULL: cannot be stored
                    db.execute(
                        f"UPDATE messages SET {column} = ? WHERE id = ?", (value, message_id)
                    )
            for sid in sessions:  # never raises (turns may come out regrouped, or stay open)
                read = FORMAT.read_session(
                    db, Source(str(db_path)), sid, None, now=time.time(), idle_close=600
                )
                assert all(t.turn.key.startswith(f"crush|{sid}|") for t in read.turns)
        finally:
            db.execute("ROLLBACK")

    run()
    db.close()


def test_an_agent_tool_call_nests_its_child_session(project: Path) -> None:
    """opencode-go and Crush run a sub-agent in a session whose id is the `agent` tool call's
    id (`CreateTaskSession(ctx, call.ID, sessionID, ...)`); the fixture has none, so one is
    written here the way the agent writes it: 1 parent turn = LLM, sub-agent {LLM, glob, LLM},
    LLM."""
    db_path = project / ".opencode" / "opencode.db"
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute(
        "INSERT INTO sessions (id, parent_session_id, title, updated_at, created_at)"
        " VALUES ('call-agent-1', ?, 'New Agent Session', 1752068600, 1752068600)",
        (WAL_ONLY_SESSION,),
    )
    db.close()

    def call(cid: str, name: str) -> dict[str, Any]:
        return {"type": "tool_call", "data": {"id": cid, "name": name, "input": "{}"}}

    def result(cid: str, text: str) -> dict[str, Any]:
        return {"type": "tool_result", "data": {"tool_call_id": cid, "content": text}}

    def text(value: str) -> dict[str, Any]:
        return {"type": "text", "data": {"text": value}}

    def finish(reason: str) -> dict[str, Any]:
        return {"type": "finish", "data": {"reason": reason, "time": 1752068600}}

    rows = [
        (WAL_ONLY_SESSION, "user", [text("find the tests")]),
        (WAL_ONLY_SESSION, "assistant", [call("call-agent-1", "agent"), finish("tool_use")]),
        ("call-agent-1", "user", [text("find tests")]),
        ("call-agent-1", "assistant", [call("g1", "glob"), finish("tool_use")]),
        ("call-agent-1", "tool", [result("g1", "a_test.go")]),
        ("call-agent-1", "assistant", [text("1"), finish("end_turn")]),
        (WAL_ONLY_SESSION, "tool", [result("call-agent-1", "1 test file")]),
        (WAL_ONLY_SESSION, "assistant", [text("Done"), finish("end_turn")]),
    ]  # fmt: skip
    db = sqlite3.connect(db_path, isolation_level=None)
    for i, (sid, role, parts) in enumerate(rows):
        db.execute(
            "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at,"
            " finished_at) VALUES (?, ?, ?, ?, 'gpt-4o-mini', ?, ?, ?)",
            (f"sub-{i}", sid, role, json.dumps(parts), 1752068600 + i, 1752068600 + i,
             1752068600 + i),
        )  # fmt: skip
    db.close()
    found = read_all(db_path)
    assert "call-agent-1" not in found  # read through its parent only
    new = found[WAL_ONLY_SESSION][-1].turn
    # two calls, the sub-agent, then the session's cost (the fixture's: nothing was added here)
    assert [type(s).__name__ for s in new.spans] == [
        "LLMCall", "SubAgentCall", "LLMCall", "LLMCall"
    ]  # fmt: skip
    assert totals_spans(found[WAL_ONLY_SESSION]) == [new.spans[-1]]
    sub = new.spans[1]
    assert isinstance(sub, SubAgentCall) and sub.agent_id == "call-agent-1"
    assert [type(s).__name__ for s in sub.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert sub.output_messages[0].content == "1 test file"
    assert isinstance(sub.spans[1], ToolCall) and sub.spans[1].result == "a_test.go"


def test_times_in_milliseconds_read_as_seconds(project: Path) -> None:
    """The schema's comments say milliseconds (the fixture holds seconds): a release writing
    milliseconds must give the same turn times, cursors and idle closing."""
    db_path = project / ".opencode" / "opencode.db"
    before = read_all(db_path)[WAL_ONLY_SESSION][0]
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("DROP TRIGGER update_messages_updated_at")  # it would stamp updated_at = now
    db.execute(
        "UPDATE messages SET created_at = created_at * 1000, updated_at = updated_at * 1000,"
        " finished_at = finished_at * 1000 WHERE session_id = ?",
        (WAL_ONLY_SESSION,),
    )
    db.close()
    after = read_all(db_path)[WAL_ONLY_SESSION][0]
    assert (after.turn.started_at, after.turn.ended_at) == (
        before.turn.started_at,
        before.turn.ended_at,
    )
    assert after.cursor == before.cursor


def test_a_cost_grown_within_the_same_second_changes_the_sessions_version(project: Path) -> None:
    """The agent saves a call's cost after its message; `updated_at` (whole seconds, set by a
    trigger) may not move then. Dropping the trigger on the copy stands for that second."""
    db_path = project / ".opencode" / "opencode.db"
    sid = "d19286ff-7e04-4d9c-af03-cf2c6b3e687c"
    with read_snapshot(db_path) as db:
        before = FORMAT.session_versions(db)[sid]
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("DROP TRIGGER update_sessions_updated_at")
    writer.execute("UPDATE sessions SET cost = cost + 0.01 WHERE id = ?", (sid,))
    writer.close()
    with read_snapshot(db_path) as db:
        assert FORMAT.session_versions(db)[sid] != before
