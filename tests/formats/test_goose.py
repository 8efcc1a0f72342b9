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

Hand counts of the filled copy (`ROWS` below, one line per message; the item types per message
were checked on a filled copy with this query, run through Python's sqlite3 module:
    select messages.id, session_id, role, json_group_array(j.value->>'type')
        from messages, json_each(content_json) j group by messages.id):
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

Later schemas (the usage ledger) and wrong types: test_goose_ledger.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tailerd import agent_homes, formats
from tailerd.domain import LLMCall, ToolCall
from tailerd.edges.agent_db import read_snapshot
from tailerd.edges.agent_db.protocol import SessionTurn
from tailerd.formats.base import Source
from tailerd.formats.goose import FORMAT
from tests.conftest import FIXTURES, popen_tailerd, run_tailerd
from tests.formats.test_crush import read_all, stored
from tests.test_agent_db import stored_roots, wait_for

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


def goose_home(tmp_path: Path) -> Path:
    """A temp home holding a copy of the real database at goose's default place."""
    sessions = tmp_path / "home" / ".local" / "share" / "goose" / "sessions"
    sessions.mkdir(parents=True)
    shutil.copyfile(REAL / "sessions.db", sessions / "sessions.db")
    return tmp_path / "home"


def db_of(home: Path) -> Path:
    return home / ".local" / "share" / "goose" / "sessions" / "sessions.db"


def filled_copy(home: Path) -> Path:
    """The home's copy with the second (sub-agent) session, the rows and the session token
    totals written in; its path."""
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


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return goose_home(tmp_path)


@pytest.fixture
def filled(home: Path) -> Path:
    return filled_copy(home)


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


def once_in_home(db_path: Path, state: Path) -> Path:
    """`tailerd --once --agents goose` with HOME the temp home holding `db_path` (zero
    configuration: no --watch, goose's variables unset), state and store in `state`; asserts
    it exited 0 and returns `state`."""
    home = db_path.parents[4]
    result = run_tailerd(
        "--once", "--agents", "goose", "--state-dir", state, "--data-dir", state,
        HOME=str(home), XDG_DATA_HOME="", GOOSE_PATH_ROOT="",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return state


def test_once_over_a_home_ships_every_turn_once(filled: Path, tmp_path: Path) -> None:
    state = once_in_home(filled, tmp_path / "state")
    assert stored(state) == (6, 9, 4)
    assert stored(once_in_home(filled, state)) == (6, 9, 4)  # nothing re-sent


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


def test_the_daemon_ships_what_goose_writes_while_it_runs(filled: Path, tmp_path: Path) -> None:
    """goose 1.1x keeps sessions.db in rollback-journal mode (the real file's journal_mode is
    `delete`), not WAL. Live: the 6 turns of the filled copy, then a new prompt and its final
    answer (1 turn), then the session's totals growing by 100 in / 10 out (1 totals turn)."""
    home = filled.parents[4]
    state = tmp_path / "state"
    proc = popen_tailerd(
        "--agents", "goose", "--state-dir", state, "--data-dir", state,
        HOME=str(home), XDG_DATA_HOME="", GOOSE_PATH_ROOT="",
    )  # fmt: skip
    try:
        assert wait_for(lambda: stored_roots(state) == 6, 90.0), proc.stderr
        now = int(time.time())
        fill(filled, [(S2, "user", [text("and FIXME?")]), (S2, "assistant", [text("None.")])], now)
        assert wait_for(lambda: stored_roots(state) == 7, 60.0)
        agent = sqlite3.connect(filled, isolation_level=None)
        agent.execute(
            "UPDATE sessions SET accumulated_input_tokens = 600, accumulated_output_tokens = 50,"
            " updated_at = datetime('now') WHERE id = ?",
            (S2,),
        )
        agent.close()
        assert wait_for(lambda: stored_roots(state) == 8, 60.0)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0
