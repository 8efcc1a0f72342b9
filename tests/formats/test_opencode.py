"""OpenCode (anomalyco/opencode): its SQLite database, read by session.

No licensed real OpenCode database exists publicly, so the expected values come from a script:
the scripted model server's replies (tests/agents_cli/model_server.py), which are the oracle.
`test_the_real_cli_database_ships_exactly_the_script` runs the real `opencode` CLI (npm
`opencode-ai`, pinned in tests/agents_cli/install.py) against that server and reads the
database it wrote; the other tests build a database with the DDL opencode 1.18.33 created
(`sqlite3 opencode.db .schema session message part`, the Drizzle tables of
packages/opencode/src/session/session.sql.ts) holding the rows that same run wrote, trimmed to
the fields tailerd reads (their JSON shapes copied from the real database).

The script (one reply per request that offers tools; input/output tokens, cache read/write):
turn 1 "write a.txt then list": 1) task(general) 1100/50 -> the sub-agent: 2) bash ls 900/15,
3) text 950/12; 4) bash echo 1200/40 read 300 write 100; 5) bash ls 1300/30 read 400;
6) text "Done: a.txt written." 1400/25 read 500. Turn 2 "and again": 7) text 1500/20 read 600.
So: 2 turns, 7 LLM calls (2 inside the sub-agent), 3 bash calls (1 inside), 1 sub-agent;
Weave input tokens (input + cache) 1100+900+950+1600+1700+1900+2100 = 10250, output 192.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailerd.domain import LLMCall, SubAgentCall, ToolCall
from tailerd.edges.agent_db import read_snapshot
from tailerd.formats.base import Source
from tailerd.formats.opencode import FORMAT
from tests.conftest import popen_tailerd, run_tailerd
from tests.formats.test_wrong_types import at, by_depth, other_type, paths_in, replaced

DDL = """
CREATE TABLE `session` (`id` text PRIMARY KEY, `project_id` text NOT NULL, `workspace_id` text,
  `parent_id` text, `slug` text NOT NULL, `directory` text NOT NULL, `path` text,
  `title` text NOT NULL, `version` text NOT NULL, `share_url` text, `summary_additions` integer,
  `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `metadata` text,
  `cost` real DEFAULT 0 NOT NULL, `tokens_input` integer DEFAULT 0 NOT NULL,
  `tokens_output` integer DEFAULT 0 NOT NULL, `tokens_reasoning` integer DEFAULT 0 NOT NULL,
  `tokens_cache_read` integer DEFAULT 0 NOT NULL, `tokens_cache_write` integer DEFAULT 0 NOT NULL,
  `revert` text, `permission` text, `agent` text, `model` text, `time_created` integer NOT NULL,
  `time_updated` integer NOT NULL, `time_compacting` integer, `time_archived` integer);
CREATE INDEX `session_parent_idx` ON `session` (`parent_id`);
CREATE TABLE `message` (`id` text PRIMARY KEY, `session_id` text NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL);
CREATE INDEX `message_session_time_created_id_idx` ON `message` (`session_id`,`time_created`,`id`);
CREATE TABLE `part` (`id` text PRIMARY KEY, `message_id` text NOT NULL, `session_id` text NOT NULL,
  `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL);
CREATE INDEX `part_message_id_id_idx` ON `part` (`message_id`,`id`);
"""
PARENT, CHILD = "ses_p", "ses_c"
WORK = "/home/dev/work"
T0 = 1_796_075_754_000  # epoch ms, as OpenCode writes them


class Db:
    """Rows as OpenCode writes them; ids ascend like OpenCode's (zero-padded counters here)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.n = 0

    def next(self, prefix: str) -> tuple[str, int]:
        self.n += 1
        return f"{prefix}_{self.n:04d}", T0 + self.n * 1000

    def session(self, sid: str, title: str, parent: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version,"
            " time_created, time_updated) VALUES (?, 'proj', ?, 's', ?, ?, '1.18.33', ?, ?)",
            (sid, parent, WORK, title, T0, T0),
        )

    def user(self, sid: str, text: str) -> str:
        mid, t = self.next("msg")
        info = {"role": "user", "time": {"created": t}, "agent": "build",
                "model": {"providerID": "anthropic", "modelID": "claude-sonnet-4-5"}}  # fmt: skip
        self._message(mid, sid, t, info, [{"type": "text", "text": text}])
        return mid

    def assistant(
        self, sid: str, parent: str, parts: list[dict[str, Any]], tokens: tuple[int, ...],
        finish: str, *, completed: bool = True,
    ) -> str:  # fmt: skip
        mid, t = self.next("msg")
        inp, out, read, write = (*tokens, 0, 0)[:4]
        usage = {
            "input": inp,
            "output": out,
            "reasoning": 0,
            "cache": {"read": read, "write": write},
        }
        info = {"parentID": parent, "role": "assistant", "agent": "build",
                "path": {"cwd": WORK, "root": "/"}, "cost": 0.004, "tokens": usage,
                "modelID": "claude-sonnet-4-5", "providerID": "anthropic",
                "time": {"created": t}}  # fmt: skip
        if completed:
            info["time"]["completed"] = t + 500
        if completed:
            info["finish"] = finish
        steps = [{"type": "step-start"}, *parts]
        if completed:
            steps.append({"type": "step-finish", "reason": finish, "tokens": usage, "cost": 0.004})
        self._message(mid, sid, t, info, steps)
        return mid

    def _message(self, mid: str, sid: str, t: int, info: dict[str, Any], parts: list[Any]) -> None:
        self.db.execute(
            "INSERT INTO message VALUES (?, ?, ?, ?, ?)", (mid, sid, t, t, json.dumps(info))
        )
        for i, part in enumerate(parts):
            self.db.execute(
                "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
                (f"prt_{mid}_{i:02d}", mid, sid, t, t, json.dumps(part)),
            )


def bash(call_id: str, command: str, output: str, status: str = "completed") -> dict[str, Any]:
    state = {"status": status, "input": {"command": command, "description": "run"},
             "time": {"start": T0, "end": T0 + 100}}  # fmt: skip
    if status == "completed":
        state |= {"output": output, "title": command, "metadata": {"exit": 0}}
    elif status == "error":
        state["error"] = output
    return {"type": "tool", "tool": "bash", "callID": call_id, "state": state}


def scripted_database(path: Path) -> Db:
    """The scripted run of the module docstring, as OpenCode stored it."""
    db = Db(path)
    db.db.executescript(DDL)
    db.session(PARENT, "scripted")
    db.session(CHILD, "list files (@general subagent)", parent=PARENT)
    u1 = db.user(PARENT, "write a.txt then list")
    task = {"type": "tool", "tool": "task", "callID": "call_0", "state": {
        "status": "completed", "output": "child done: opencode.json", "title": "list files",
        "input": {"description": "list files", "prompt": "list the files here",
                  "subagent_type": "general"},
        "metadata": {"parentSessionId": PARENT, "sessionId": CHILD},
        "time": {"start": T0, "end": T0 + 9000}}}  # fmt: skip
    db.assistant(PARENT, u1, [task], (1100, 50), "tool-calls")
    c1 = db.user(CHILD, "list the files here")
    db.assistant(CHILD, c1, [bash("call_c1", "ls", "opencode.json\n")], (900, 15), "tool-calls")
    db.assistant(
        CHILD, c1, [{"type": "text", "text": "child done: opencode.json"}], (950, 12), "stop"
    )
    db.assistant(
        PARENT,
        u1,
        [bash("call_1", "echo hello > a.txt", "(no output)")],
        (1200, 40, 300, 100),
        "tool-calls",
    )
    db.assistant(
        PARENT, u1, [bash("call_2", "ls", "a.txt\nopencode.json\n")], (1300, 30, 400), "tool-calls"
    )
    db.assistant(
        PARENT, u1, [{"type": "text", "text": "Done: a.txt written."}], (1400, 25, 500), "stop"
    )
    u2 = db.user(PARENT, "and again")
    db.assistant(PARENT, u2, [{"type": "text", "text": "Second answer."}], (1500, 20, 600), "stop")
    return db


def read(path: Path, cursor: str | None = None, now: float | None = None) -> Any:
    with read_snapshot(path) as db:
        assert FORMAT.session_versions(db).keys() == {PARENT}  # the child is read through it
        return FORMAT.read_session(
            db, Source(str(path)), PARENT, cursor, now=now or time.time(), idle_close=600
        )


def test_turns_calls_sub_agent_and_tokens_equal_the_script(tmp_path: Path) -> None:
    path = tmp_path / "opencode" / "opencode.db"
    path.parent.mkdir()
    scripted_database(path).db.close()
    result = read(path)
    assert not result.open
    first, second = (st.turn for st in result.turns)
    assert [m.content for m in first.messages] == ["write a.txt then list"]
    assert first.output_messages[0].content == "Done: a.txt written."
    assert (first.session_name, first.attributes["tailerd.cwd"]) == ("scripted", WORK)
    kinds = [type(s).__name__ for s in first.spans]
    assert kinds == [
        "LLMCall",
        "SubAgentCall",
        "LLMCall",
        "ToolCall",
        "LLMCall",
        "ToolCall",
        "LLMCall",
    ]
    sub = first.spans[1]
    assert isinstance(sub, SubAgentCall) and sub.agent_id == CHILD and sub.name == "general"
    assert [type(s).__name__ for s in sub.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert sub.output_messages[0].content == "child done: opencode.json"
    llms = [s for s in (*first.spans, *sub.spans, *second.spans) if isinstance(s, LLMCall)]
    assert len(llms) == 7
    assert sum(s.usage.input_tokens for s in llms) == 10250
    assert sum(s.usage.output_tokens for s in llms) == 192
    assert sum(s.usage.cache_read_input_tokens for s in llms) == 300 + 400 + 500 + 600
    assert sum(s.usage.cache_creation_input_tokens for s in llms) == 100
    tools = [s for s in (*first.spans, *sub.spans) if isinstance(s, ToolCall)]
    assert [t.name for t in tools] == ["bash", "bash", "bash"]
    assert {t.provider_name for t in llms} == {"anthropic"}
    assert second.messages[0].content == "and again" and len(second.spans) == 1


def test_a_turn_waits_for_its_final_answer_then_idle_closes_it(tmp_path: Path) -> None:
    path = tmp_path / "opencode" / "opencode.db"
    path.parent.mkdir()
    db = scripted_database(path)
    done = read(path)
    cursor = done.turns[-1].cursor
    u3 = db.user(PARENT, "third")
    db.assistant(
        PARENT, u3, [bash("call_3", "sleep 9", "", status="running")], (10, 1), "tool-calls"
    )
    now = (T0 + db.n * 1000) / 1000
    waiting = read(path, cursor, now=now + 1)
    assert waiting.turns == () and waiting.open  # a tool still running
    idle = read(path, cursor, now=now + 601)
    assert len(idle.turns) == 1 and idle.turns[0].turn.interrupted and not idle.open
    db.db.close()


def store_totals(state: Path) -> tuple[int, int, int, int, int]:
    """Roots, chat spans, tool spans, Weave input and output tokens in the local store."""
    if not (state / "tailerd.db").exists():
        return (0, 0, 0, 0, 0)
    db = sqlite3.connect(f"{(state / 'tailerd.db').as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, parent_span_id IS NULL, attributes FROM spans").fetchall()
    except sqlite3.OperationalError:  # the daemon has not created its tables yet
        rows = []
    finally:
        db.close()
    chats = [json.loads(a) for n, _, a in rows if n.startswith("chat ")]
    return (
        sum(bool(r) for _, r, _ in rows),
        len(chats),
        sum(n.startswith("execute_tool ") for n, _, _ in rows),
        sum(c.get("gen_ai.usage.input_tokens", 0) for c in chats),
        sum(c.get("gen_ai.usage.output_tokens", 0) for c in chats),
    )


SCRIPT_TOTALS = (2, 7, 3, 10250, 192)  # turns, chat, tool spans, tokens: module docstring


@pytest.mark.long  # tests/agents_cli runs the real opencode CLI in CI; this adds cache tokens
def test_the_real_cli_database_ships_exactly_the_script(tmp_path: Path) -> None:
    """Live (a daemon running while the CLI writes) and with `--once` (twice: nothing again)."""
    from tests.agents_cli.install import Unavailable, install
    from tests.agents_cli.model_server import Reply, Usage, running
    from tests.agents_cli.model_server import ToolCall as Call

    try:
        binary = install("opencode")
    except Unavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the real opencode CLI needs npm: {exc}")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    task = {
        "description": "list files",
        "prompt": "list the files here",
        "subagent_type": "general",
    }
    echo = {"command": "echo hi > a.txt", "description": "write"}
    listing = {"command": "ls", "description": "list"}
    replies = [
        Reply(Usage(1100, 50), "", (Call("task", task, "call_0"),)),
        Reply(Usage(900, 15), "", (Call("bash", listing, "c1"),)),
        Reply(Usage(950, 12), "child done"),
        Reply(Usage(1200, 40, 300, 100), "", (Call("bash", echo, "call_1"),)),
        Reply(Usage(1300, 30, 400), "", (Call("bash", listing, "call_2"),)),
        Reply(Usage(1400, 25, 500), "Done: a.txt written."),
        Reply(Usage(1500, 20, 600), "Second answer."),
    ]  # fmt: skip
    data = home / ".local" / "share" / "opencode"
    data.mkdir(parents=True)
    live = tmp_path / "live"
    daemon = popen_tailerd("--watch", data, "--state-dir", live, "--data-dir", live)
    with running(replies, "claude-sonnet-4-5") as server:
        config = {"model": "anthropic/claude-sonnet-4-5", "autoupdate": False, "share": "disabled",
                  "provider": {"anthropic": {"options": {"baseURL": f"{server.url}/v1",
                                                         "apiKey": "sk-test"}}}}  # fmt: skip
        (work / "opencode.json").write_text(json.dumps(config))
        env = {"PATH": os.environ["PATH"], "HOME": str(home),
               "XDG_DATA_HOME": str(home / ".local" / "share"),
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
               "XDG_STATE_HOME": str(home / ".local" / "state"), "ANTHROPIC_API_KEY": "sk-test",
               "OPENCODE_DISABLE_MODELS_FETCH": "1",
               "OPENCODE_DISABLE_AUTOUPDATE": "1"}  # fmt: skip
        for prompt, extra in (("write a.txt then list", []), ("and again", ["--continue"])):
            done = subprocess.run(
                [str(binary), "run", *extra, prompt], cwd=work, env=env, capture_output=True,
                text=True, timeout=240, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
        assert (server.answered, server.overruns) == (7, 0)
    try:
        deadline = time.monotonic() + 30
        while store_totals(live) != SCRIPT_TOTALS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store_totals(live) == SCRIPT_TOTALS
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    state = tmp_path / "state"
    shipped = run_tailerd("--watch", data, "--once", "--state-dir", state, "--data-dir", state)
    assert shipped.returncode == 0, shipped.stderr
    # 2 turns; 7 chat spans; 3 bash (+ the task call is the sub-agent span, not a tool span)
    assert store_totals(state) == SCRIPT_TOTALS
    again = run_tailerd("--watch", data, "--once", "--state-dir", state, "--data-dir", state)
    assert again.returncode == 0 and store_totals(state) == SCRIPT_TOTALS
    shutil.rmtree(home / ".cache", ignore_errors=True)


@st.composite
def mutation(draw: st.DrawFn, rows: list[tuple[str, str, str]]) -> tuple[str, str, str, Any]:
    """(table, id, column, new value): a message's or part's `data` JSON changed at one random
    path to a value of another JSON type (as tests/formats/test_wrong_types.py does to lines),
    or a column given a value of another SQL type."""
    table, row_id, data = draw(st.sampled_from(rows))
    if draw(st.booleans()):
        record = json.loads(data)
        path = draw(st.sampled_from(draw(st.sampled_from(by_depth(list(paths_in(record)))))))
        new = draw(other_type(at(record, path)))
        return table, row_id, "data", json.dumps(replaced(record, path, new))
    column = draw(st.sampled_from(["data", "time_created", "time_updated"]))
    value = draw(st.sampled_from([None, "soon", -1, 2**63 - 1, 1.5, b"\xff", "[]", "{", "5"]))
    return table, row_id, column, value


def test_no_wrong_type_in_the_database_escapes_the_format(tmp_path: Path) -> None:
    path = tmp_path / "opencode" / "opencode.db"
    path.parent.mkdir()
    db = scripted_database(path).db
    rows = [
        *(("message", i, d) for i, d in db.execute("SELECT id, data FROM message")),
        *(("part", i, d) for i, d in db.execute("SELECT id, data FROM part")),
    ]

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.lists(mutation(rows), min_size=1, max_size=3))
    def run(changes: list[tuple[str, str, str, Any]]) -> None:
        db.execute("BEGIN")
        try:
            for table, row_id, column, value in changes:
                with contextlib.suppress(sqlite3.IntegrityError):  # NOT NULL: cannot be stored
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (value, row_id))
            read = FORMAT.read_session(
                db, Source(str(path)), PARENT, None, now=time.time(), idle_close=600
            )  # never raises (turns may come out regrouped, or stay open)
            assert all(t.turn.key.startswith(f"opencode|{PARENT}|") for t in read.turns)
        finally:
            db.execute("ROLLBACK")

    run()
    db.close()
