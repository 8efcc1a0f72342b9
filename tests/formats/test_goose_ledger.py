"""goose, later schemas: a copy of the real (empty) database of ../shared/fixtures/agents/goose
(see test_goose.py for it and for the rows written into it) migrated as goose migrates it, with
a usage ledger written here; and wrong types fed to both schemas.

The ledger rows are NOT recorded from a goose run either: their shape is goose's migration 15
(`usage_ledger` in block/goose crates/goose/src/session/session_manager.rs), the numbers are
chosen here and every expected value below is counted by hand from `LEDGER`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailerd.domain import LLMCall
from tailerd.edges.agent_db import read_snapshot
from tailerd.formats.base import Source
from tailerd.formats.goose import FORMAT
from tests.formats.test_crush import stored
from tests.formats.test_goose import (
    S1,
    S2,
    T0,
    VISIBLE,
    filled_copy,
    goose_home,
    once_in_home,
    read_goose,
)
from tests.formats.test_wrong_types import at, by_depth, other_type, paths_in, replaced

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
def filled(tmp_path: Path) -> Path:
    """test_goose.py's filled copy of the real database (schema 5)."""
    return filled_copy(goose_home(tmp_path))


@pytest.fixture
def migrated(filled: Path) -> Path:
    """The filled copy migrated as goose migrates it, with the ledger rows of `LEDGER`."""
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
    # S1 has ledger rows: no totals turn; S2 has none (older than the ledger): its totals
    assert {sid: len(ts) for sid, ts in found.items()} == {S1: 3, S2: 2}
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
    sub, totals = (t.turn for t in found[S2])
    (sub_call,) = (s for s in sub.spans if isinstance(s, LLMCall))
    assert (sub_call.model, sub_call.provider_name) == ("gpt-4o", "openai")  # metadata.inference
    assert sub_call.attributes["tailerd.usage.recorded"] is False  # no ledger row for it
    assert sub.attributes["goose.parent_session_id"] == S1
    assert totals.attributes["tailerd.synthetic"] == "session_totals"
    (span,) = totals.spans
    assert isinstance(span, LLMCall)
    assert (span.usage.input_tokens, span.usage.output_tokens) == (500, 40)
    # Read just after its last message (T0 + 14), S2's totals wait: its first ledger row may
    # still be on its way.
    with read_snapshot(migrated) as db:
        early = FORMAT.read_session(
            db, Source(str(migrated)), S2, None, now=T0 + 15, idle_close=600
        )
    assert early.open and [t.turn.key for t in early.turns] == [sub.key]


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
    has no ledger row, so its totals (500 in, 40 out) come on a totals turn. Turns 3 + 1 + 1,
    chat spans 6 + 1 compaction + 1 + 1 totals, tool spans 4; tokens 10400 + 500 = 10900 in,
    380 + 40 = 420 out."""
    state = once_in_home(migrated, tmp_path / "state")
    assert stored(state) == (5, 9, 4)
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
    assert (tokens_in, tokens_out, priced_by_agent) == (10900, 420, 3)
    assert agent_costs == pytest.approx(0.009)


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
