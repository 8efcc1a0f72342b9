"""goose: the real (empty) database of ../shared/fixtures/agents/goose/jwp23-dotfiles (read
SOURCE.txt there: schema version 5, one started session "20251202_1", 0 messages), and a COPY of
it filled with rows written here.

The rows are NOT recorded from a goose run (no goose binary or runnable goose package exists in
the registries this project can reach: PyPI's goose-sdk 0.1.0a13 is the provider-level GDK,
with no session storage). They are built from goose's source, following its serde shapes
exactly: block/goose `crates/goose/src/conversation/message.rs` (commit
6416fe74f076aa5779e877ef2161ec6826b27d08: MessageContent tagged by `type`, camelCase; ToolRequest
{id, toolCall}; ToolResponse {id, toolResult}; MessageMetadata {userVisible, agentVisible}),
`conversation/tool_result_serde.rs` ({"status": "success", "value"} | {"status": "error",
"error"}), and `session/session_manager.rs` (commit 0164300649cf5e4ab327105d9155779ab8bfde4b:
`add_message` inserts (session_id, role, content_json, created_timestamp, metadata_json) and
never `tokens`; `create_session` ids "YYYYMMDD_N"; SessionType "user" | "sub_agent" | ...).

Hand counts of the filled copy (`ROWS` below, one line per message; checked with
    sqlite3 sessions.db "select session_id, role, json_group_array(j.value->>'type')
        from messages, json_each(content_json) j group by messages.id"):
  session 20251202_1 (user, "CLI Session"): 13 messages
    prompts (role user holding text): messages 1, 7, 12 -> 3 turns; turn 3 has a tool request
      (t4) with no response: unfinished, closed by idle time as interrupted
    model messages (role assistant, not only a systemNotification): 2, 4, 6 | 8, 11 | 13;
      runs of consecutive ones (the LLM calls): turn 1: 3, turn 2: 2 (10 is a notice, 9 a tool
      response between 8 and 11), turn 3: 1 -> 6
    toolRequest items: t1, t2 (turn 1), t3 (turn 2), t4 (turn 3) -> 4 tool calls; t2's response
      has status "error" -> 1 error
  session 20251202_2 (sub_agent, "Find TODOs"): 2 messages -> 1 turn, 1 LLM call, 0 tools
  accumulated tokens (sessions row, as written below): _1 in 12000 out 800; _2 in 500 out 40
    -> one session_totals turn each, its chat span carrying those numbers.
  Total: 3 + 1 + 2 = 6 turns, 6 + 1 + 2 = 9 chat spans, 4 tool spans.
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

from tailerd import agent_homes, formats
from tailerd.domain import LLMCall, ToolCall
from tailerd.edges.agent_db import read_snapshot
from tailerd.edges.agent_db.protocol import SessionTurn
from tailerd.formats.base import Source
from tailerd.formats.goose import FORMAT
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_crush import read_all, stored
from tests.formats.test_wrong_types import at, by_depth, other_type, paths_in, replaced

REAL = FIXTURES / "goose" / "jwp23-dotfiles" / ".local" / "share" / "goose" / "sessions"
T0 = 1764694800  # 2025-12-02T17:00:00Z, just after the real session was created
CWD = "/Users/jpresley/workspace/tmp/vsl"  # the real session's working_dir
VISIBLE = {"userVisible": True, "agentVisible": True}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def request(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "toolRequest",
        "id": call_id,
        "toolCall": {"status": "success", "value": {"name": name, "arguments": arguments}},
    }


def response(call_id: str, out: str) -> dict[str, Any]:
    value = {"content": [{"type": "text", "text": out}], "isError": False}
    return {
        "type": "toolResponse",
        "id": call_id,
        "toolResult": {"status": "success", "value": value},
    }


def failed(call_id: str, error: str) -> dict[str, Any]:
    return {
        "type": "toolResponse",
        "id": call_id,
        "toolResult": {"status": "error", "error": error},
    }


S1, S2 = "20251202_1", "20251202_2"
SHELL = "developer__shell"
ROWS: list[tuple[str, str, list[dict[str, Any]]]] = [
    (S1, "user", [text("list the files")]),  # 1
    (S1, "assistant", [text("Let me look."), request("t1", SHELL, {"command": "ls"})]),  # 2
    (S1, "user", [response("t1", "a.txt\nb.txt")]),  # 3
    (S1, "assistant", [request("t2", "developer__text_editor",
                               {"command": "view", "path": "c.txt"})]),  # 4
    (S1, "user", [failed("t2", "No such file: c.txt")]),  # 5
    (S1, "assistant", [{"type": "thinking", "thinking": "two files", "signature": "sig"},
                       text("There are two files: a.txt and b.txt.")]),  # 6
    (S1, "user", [text("count the lines of a.txt")]),  # 7
    (S1, "assistant", [request("t3", SHELL, {"command": "wc -l a.txt"})]),  # 8
    (S1, "user", [response("t3", "3 a.txt")]),  # 9
    (S1, "assistant", [{"type": "systemNotification", "notificationType": "thinkingMessage",
                        "msg": "Thinking..."}]),  # 10
    (S1, "assistant", [text("a.txt has 3 lines.")]),  # 11
    (S1, "user", [text("now delete it")]),  # 12
    (S1, "assistant", [request("t4", SHELL, {"command": "rm a.txt"})]),  # 13
    (S2, "user", [text("find TODO comments")]),
    (S2, "assistant", [text("No TODO comments found.")]),
]  # fmt: skip


def fill(db_path: Path, rows: list[tuple[str, str, list[dict[str, Any]]]], at_time: int) -> None:
    """Insert messages as goose's `add_message` does (one per row, `at_time` + i seconds)."""
    db = sqlite3.connect(db_path, isolation_level=None)
    for i, (sid, role, content) in enumerate(rows):
        db.execute(
            "INSERT INTO messages (session_id, role, content_json, created_timestamp,"
            " metadata_json) VALUES (?, ?, ?, ?, ?)",
            (sid, role, json.dumps(content), at_time + i, json.dumps(VISIBLE)),
        )
        db.execute("UPDATE sessions SET updated_at = datetime('now') WHERE id = ?", (sid,))
    db.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A temp home holding a copy of the real database at goose's default place."""
    sessions = tmp_path / "home" / ".local" / "share" / "goose" / "sessions"
    sessions.mkdir(parents=True)
    shutil.copyfile(REAL / "sessions.db", sessions / "sessions.db")
    return tmp_path / "home"


def db_of(home: Path) -> Path:
    return home / ".local" / "share" / "goose" / "sessions" / "sessions.db"


@pytest.fixture
def filled(home: Path) -> Path:
    """The copy with the second (sub-agent) session, the rows and the session token totals."""
    path = db_of(home)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "INSERT INTO sessions (id, name, session_type, working_dir, extension_data)"
        " VALUES (?, 'Find TODOs', 'sub_agent', ?, '{}')",
        (S2, CWD),
    )
    db.close()
    fill(path, ROWS, T0)
    db = sqlite3.connect(path, isolation_level=None)
    for sid, t_in, t_out in ((S1, 12000, 800), (S2, 500, 40)):
        db.execute(
            "UPDATE sessions SET accumulated_input_tokens = ?, accumulated_output_tokens = ?,"
            " accumulated_total_tokens = ? WHERE id = ?",
            (t_in, t_out, t_in + t_out, sid),
        )
    db.close()
    return path


def read_goose(path: Path, now: float | None = None) -> dict[str, list[SessionTurn]]:
    return read_all(path, now, FORMAT)


def test_the_real_empty_database_is_claimed_and_gives_no_turn(home: Path) -> None:
    path = db_of(home)
    fmt = formats.choose(path, path.read_bytes()[:4096])
    assert fmt is not None and fmt.name == "goose"
    assert read_goose(path) == {S1: []}  # the started session, nothing written yet


def test_turns_llm_and_tool_calls_match_the_hand_counts(filled: Path) -> None:
    found = read_goose(filled)
    kinds = {sid: [t.turn.attributes.get("tailerd.synthetic", "turn") for t in ts]
             for sid, ts in found.items()}  # fmt: skip
    assert kinds == {S1: ["turn"] * 3 + ["session_totals"], S2: ["turn", "session_totals"]}
    turns = [t.turn for ts in found.values() for t in ts]
    spans = [s for t in turns for s in t.spans]
    assert sum(isinstance(s, LLMCall) for s in spans) == 9
    tools = [s for s in spans if isinstance(s, ToolCall)]
    assert [t.tool_call_id for t in tools] == ["t1", "t2", "t3", "t4"]
    assert [t.is_error for t in tools] == [False, True, False, False]
    assert tools[0].result == "a.txt\nb.txt" and tools[0].arguments == '{"command": "ls"}'
    assert tools[1].result == "No such file: c.txt" and tools[3].ended_at is None
    first, second, third = (t.turn for t in found[S1][:3])
    assert [type(s).__name__ for s in first.spans] == [
        "LLMCall", "ToolCall", "LLMCall", "ToolCall", "LLMCall"
    ]  # fmt: skip
    assert first.messages[0].content == "list the files"
    assert first.output_messages[0].content == "There are two files: a.txt and b.txt."
    assert isinstance(first.spans[-1], LLMCall) and first.spans[-1].reasoning == "two files"
    assert [type(s).__name__ for s in second.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert (first.interrupted, second.interrupted, third.interrupted) == (False, False, True)
    assert all(t.session_name == "CLI Session" for t in (first, second, third))
    assert all(t.attributes["tailerd.cwd"] == CWD for t in turns)
    assert found[S2][0].turn.attributes["goose.session_type"] == "sub_agent"
    chat = [s for t in (first, second, third) for s in t.spans if isinstance(s, LLMCall)]
    assert all(s.attributes["tailerd.usage.recorded"] is False for s in chat)
    totals = {sid: ts[-1].turn.spans[0] for sid, ts in found.items()}
    assert {sid: (s.usage.input_tokens, s.usage.output_tokens) for sid, s in totals.items()
            if isinstance(s, LLMCall)} == {S1: (12000, 800), S2: (500, 40)}  # fmt: skip
    assert len({t.key for t in turns}) == 6


def test_after_the_cursor_only_an_open_turn_waits_and_totals_ship_their_growth(
    filled: Path,
) -> None:
    now = time.time()
    read = read_goose(filled, now)[S1]
    cursor = read[-1].cursor  # past every turn and the 12000/800 totals
    fill(filled, [(S1, "user", [text("and b.txt?")])], int(now))
    db = sqlite3.connect(filled, isolation_level=None)
    db.execute(
        "UPDATE sessions SET accumulated_input_tokens = 15000, accumulated_output_tokens = 900"
        " WHERE id = ?",
        (S1,),
    )
    db.close()
    with read_snapshot(filled) as db:
        waiting = FORMAT.read_session(db, Source(str(filled)), S1, cursor, now=now + 1,
                                      idle_close=600)  # fmt: skip
        assert waiting.turns == () and waiting.open  # no answer yet, no totals while open
        idle = FORMAT.read_session(db, Source(str(filled)), S1, cursor, now=now + 601,
                                   idle_close=600)  # fmt: skip
    assert not idle.open
    new, totals = (t.turn for t in idle.turns)
    assert new.messages[0].content == "and b.txt?" and new.interrupted
    span = totals.spans[0]
    assert isinstance(span, LLMCall)
    assert (span.usage.input_tokens, span.usage.output_tokens) == (3000, 100)  # the growth
    with read_snapshot(filled) as db:
        after = FORMAT.read_session(db, Source(str(filled)), S1, idle.turns[-1].cursor,
                                    now=now + 601, idle_close=600)  # fmt: skip
    assert after.turns == ()  # nothing twice


def test_once_over_a_home_ships_every_turn_once(filled: Path, tmp_path: Path) -> None:
    """Zero configuration: HOME is the temp home, no --watch, `--agents goose`."""
    home = filled.parents[4]
    state = tmp_path / "state"
    once = ("--once", "--agents", "goose", "--state-dir", state, "--data-dir", state)
    first = run_tailerd(*once, HOME=str(home), XDG_DATA_HOME="", GOOSE_PATH_ROOT="")
    assert first.returncode == 0, first.stderr
    assert stored(state) == (6, 9, 4)
    again = run_tailerd(*once, HOME=str(home), XDG_DATA_HOME="", GOOSE_PATH_ROOT="")
    assert again.returncode == 0, again.stderr
    assert stored(state) == (6, 9, 4)  # nothing re-sent


def test_goose_home_honours_its_own_variables(tmp_path: Path) -> None:
    home = tmp_path / "h"
    by_default = agent_homes.roots(["goose"], {}, home)
    assert [r.path for r in by_default] == [home / ".local/share/goose/sessions"]
    xdg = agent_homes.roots(["goose"], {"XDG_DATA_HOME": "/x"}, home)
    assert [r.path for r in xdg] == [Path("/x/goose/sessions")]
    root = agent_homes.roots(["goose"], {"GOOSE_PATH_ROOT": "/g", "XDG_DATA_HOME": "/x"}, home)
    assert [r.path for r in root] == [Path("/g/data/sessions")]


def test_only_goose_databases_are_claimed() -> None:
    head = b"SQLite format 3\x00"
    assert FORMAT.claims(Path("/h/.local/share/goose/sessions/sessions.db"), head)
    assert FORMAT.claims(Path("/root/data/sessions/sessions.db"), head)
    assert not FORMAT.claims(Path("/h/other/sessions/sessions.db"), head)
    assert not FORMAT.claims(Path("/h/.local/share/goose/sessions/sessions.db"), b"{}")


# ---- wrong types: the agent's rows with one value of another type ---------------------------

COLUMN_VALUES = st.sampled_from([None, "soon", -1, 2**63 - 1, 1.5, b"\x00\xff", "[]", "{", "5"])


@st.composite
def mutation(draw: st.DrawFn, rows: list[tuple[int, str]]) -> tuple[int, str, Any]:
    """(row id, column, new value): `content_json` changed at one random path to a value of
    another JSON type (as test_wrong_types.py does to lines), or another column given a value
    of another SQL type."""
    rowid, content = draw(st.sampled_from(rows))
    if draw(st.booleans()):
        record = json.loads(content)
        path = draw(st.sampled_from(draw(st.sampled_from(by_depth(list(paths_in(record)))))))
        new = draw(other_type(at(record, path)))
        return rowid, "content_json", json.dumps(replaced(record, path, new))
    column = draw(st.sampled_from(["role", "content_json", "created_timestamp", "metadata_json"]))
    return rowid, column, draw(COLUMN_VALUES)


LEDGER_CHANGES = st.tuples(
    st.sampled_from(["created_timestamp", "model", "input_tokens", "cost", "is_compaction"]),
    COLUMN_VALUES,
)


@pytest.mark.parametrize("schema", ["filled", "migrated"])
def test_no_wrong_type_in_the_database_escapes_the_format(
    schema: str, request: pytest.FixtureRequest
) -> None:
    """Schema 5 (session totals) and the migrated copy (ledger rows mutated too)."""
    path: Path = request.getfixturevalue(schema)
    db = sqlite3.connect(path, isolation_level=None)
    rows = db.execute("SELECT id, content_json FROM messages").fetchall()

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.lists(mutation(rows), min_size=1, max_size=3), COLUMN_VALUES, LEDGER_CHANGES)
    def run(changes: list[tuple[int, str, Any]], tokens: Any, charge: tuple[str, Any]) -> None:
        db.execute("BEGIN")
        try:
            for rowid, column, value in changes:
                with contextlib.suppress(sqlite3.IntegrityError):  # NOT NULL: cannot be stored
                    db.execute(f"UPDATE messages SET {column} = ? WHERE id = ?", (value, rowid))
            db.execute("UPDATE sessions SET accumulated_input_tokens = ?", (tokens,))
            if schema == "migrated":
                with contextlib.suppress(sqlite3.IntegrityError):
                    db.execute(
                        f"UPDATE usage_ledger SET {charge[0]} = ? WHERE id = 2", (charge[1],)
                    )
            for sid in FORMAT.session_versions(db):  # never raises
                read = FORMAT.read_session(
                    db, Source(str(path)), sid, None, now=time.time(), idle_close=600
                )
                assert all(t.turn.key.startswith(f"goose|{sid}|") for t in read.turns)
        finally:
            db.execute("ROLLBACK")

    run()
    db.close()


# ---- a later schema: the copy migrated as goose migrates it, with its usage ledger ----------

# goose's own migrations 6, 7, 13, 14 and 15 (crates/goose/src/session/session_manager.rs,
# `apply_migration`), as far as this reader uses them.
MIGRATIONS = (
    "ALTER TABLE sessions ADD COLUMN provider_name TEXT",  # 6
    "ALTER TABLE sessions ADD COLUMN model_config_json TEXT",  # 6
    "ALTER TABLE messages ADD COLUMN message_id TEXT",  # 7
    "UPDATE messages SET message_id = 'msg_' || session_id || '_' || id",  # 7
    "ALTER TABLE sessions ADD COLUMN accumulated_cost REAL",  # 13
    "ALTER TABLE sessions ADD COLUMN accumulated_cache_read_tokens INTEGER",  # 14
    "ALTER TABLE sessions ADD COLUMN parent_session_id TEXT",  # 15
    """CREATE TABLE IF NOT EXISTS usage_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_timestamp INTEGER NOT NULL, model TEXT, input_tokens INTEGER,
        output_tokens INTEGER, total_tokens INTEGER, cache_read_tokens INTEGER,
        cache_write_tokens INTEGER, cost REAL, cost_source TEXT, is_compaction INTEGER DEFAULT 0
    )""",  # 15
)
SONNET = "claude-sonnet-4-5"
# (session, seconds after T0, input, output, cache read, cost, compaction). Message i of ROWS
# was written at T0 + i, so: turn 1 of S1 spans T0..T0+5, turn 2 T0+6..T0+10, turn 3 T0+11..;
# S2's one turn T0+13... By hand: turn 1 gets the first three rows (its 3 chat spans, in order),
# turn 2 the next two plus the compaction call (a chat span of its own), turn 3 one; S2 none.
LEDGER = [
    (S1, 1, 1000, 50, 0, 0.004, 0),
    (S1, 3, 1200, 30, 800, 0.002, 0),
    (S1, 5, 1400, 40, 900, 0.003, 0),
    (S1, 7, 1600, 20, 1000, None, 0),
    (S1, 10, 1700, 15, 1100, None, 0),
    (S1, 10, 1700, 200, 0, None, 1),
    (S1, 12, 1800, 25, 1200, None, 0),
]


def add_ledger(path: Path, rows: list[tuple[str, int, int, int, int, float | None, int]]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    for sid, at_second, t_in, t_out, c_read, cost, compaction in rows:
        db.execute(
            "INSERT INTO usage_ledger (session_id, created_timestamp, model, input_tokens,"
            " output_tokens, total_tokens, cache_read_tokens, cache_write_tokens, cost,"
            " cost_source, is_compaction) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (sid, T0 + at_second, SONNET, t_in, t_out, t_in + t_out, c_read, cost,
             "provider_reported" if cost is not None else None, compaction),
        )  # fmt: skip
    db.close()


@pytest.fixture
def migrated(filled: Path) -> Path:
    db = sqlite3.connect(filled, isolation_level=None)
    for statement in MIGRATIONS:
        db.execute(statement)
    db.execute("UPDATE sessions SET parent_session_id = ? WHERE id = ?", (S1, S2))
    inference = {**VISIBLE, "inference": {"provider": "openai", "requestedModel": "gpt-4o"}}
    db.execute(
        "UPDATE messages SET metadata_json = ? WHERE session_id = ? AND role = 'assistant'",
        (json.dumps(inference), S2),
    )
    db.close()
    add_ledger(filled, LEDGER)
    return filled


def test_the_usage_ledger_puts_each_calls_tokens_and_cost_on_its_chat_span(migrated: Path) -> None:
    found = read_goose(migrated)
    assert {sid: len(ts) for sid, ts in found.items()} == {S1: 3, S2: 1}  # no totals turns
    turns = [t.turn for t in found[S1]]
    chat = {i: [s for s in t.spans if isinstance(s, LLMCall)] for i, t in enumerate(turns)}
    assert [[(s.usage.input_tokens, s.usage.output_tokens) for s in c] for c in chat.values()] == [
        [(1000, 50), (1200, 30), (1400, 40)],
        [(1600, 20), (1700, 15), (1700, 200)],
        [(1800, 25)],
    ]
    assert [s.usage.cache_read_input_tokens for s in chat[0]] == [0, 800, 900]
    assert chat[0][0].attributes["gen_ai.usage.cost"] == 0.004
    assert chat[0][0].attributes["tailerd.cost.source"] == "agent"
    assert "gen_ai.usage.cost" not in chat[1][0].attributes  # no cost recorded: priced later
    assert chat[1][2].attributes["goose.compaction"] is True
    assert all("tailerd.usage.recorded" not in s.attributes for c in chat.values() for s in c)
    assert {s.model for c in chat.values() for s in c} == {SONNET}
    assert turns[0].key == f"goose|{S1}|msg_{S1}_1"  # goose's own message id (migration 7)
    (sub,) = (t.turn for t in found[S2])
    (sub_call,) = (s for s in sub.spans if isinstance(s, LLMCall))
    assert (sub_call.model, sub_call.provider_name) == ("gpt-4o", "openai")  # metadata.inference
    assert sub_call.attributes["tailerd.usage.recorded"] is False  # no ledger row for it
    assert sub.attributes["goose.parent_session_id"] == S1


def test_a_ledger_row_written_after_its_turn_shipped_is_shipped_once_on_its_own(
    migrated: Path,
) -> None:
    cursor = read_goose(migrated)[S1][-1].cursor
    add_ledger(migrated, [(S1, 20, 1900, 60, 0, None, 0)])
    with read_snapshot(migrated) as db:
        late = FORMAT.read_session(
            db, Source(str(migrated)), S1, cursor, now=time.time(), idle_close=600
        )
        (item,) = late.turns
        assert item.turn.attributes["tailerd.synthetic"] == "usage"
        (span,) = item.turn.spans
        assert isinstance(span, LLMCall)
        assert (span.usage.input_tokens, span.usage.output_tokens) == (1900, 60)
        again = FORMAT.read_session(
            db, Source(str(migrated)), S1, item.cursor, now=time.time(), idle_close=600
        )
        assert again.turns == ()


def test_once_ships_the_ledgers_tokens_and_goose_costs_to_the_store(
    migrated: Path, tmp_path: Path
) -> None:
    """By hand from LEDGER: S1's input 1000+1200+1400+1600+1700+1700+1800 = 10400, output
    50+30+40+20+15+200+25 = 380, goose's own costs 0.004+0.002+0.003 = 0.009 on 3 spans; S2
    has no ledger row. Turns 3 + 1, chat spans 6 + 1 compaction + 1, tool spans 4."""
    home = migrated.parents[4]
    state = tmp_path / "state"
    once = ("--once", "--agents", "goose", "--state-dir", state, "--data-dir", state)
    result = run_tailerd(*once, HOME=str(home), XDG_DATA_HOME="", GOOSE_PATH_ROOT="")
    assert result.returncode == 0, result.stderr
    assert stored(state) == (4, 8, 4)
    db = sqlite3.connect(state / "tailerd.db")
    try:
        tokens_in, tokens_out, agent_costs, priced_by_agent = db.execute(
            "SELECT SUM(json_extract(attributes, '$.\"gen_ai.usage.input_tokens\"')),"
            " SUM(json_extract(attributes, '$.\"gen_ai.usage.output_tokens\"')),"
            " SUM(CASE WHEN json_extract(attributes, '$.\"tailerd.cost.source\"') = 'agent'"
            "     THEN json_extract(attributes, '$.\"gen_ai.usage.cost\"') END),"
            " SUM(json_extract(attributes, '$.\"tailerd.cost.source\"') = 'agent')"
            " FROM spans WHERE name LIKE 'chat%'"
        ).fetchone()
    finally:
        db.close()
    assert (tokens_in, tokens_out, priced_by_agent) == (10400, 380, 3)
    assert agent_costs == pytest.approx(0.009)
