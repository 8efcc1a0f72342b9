"""Amp threads, against the two real threads in ../shared/fixtures/agents/amp/ (SOURCE.txt:
git-ai-project/git-ai tests/fixtures/amp-threads/, Amp CLI 0.0.1772237000, Apache-2.0).

Hand counts, per thread file F (A = T-019ca1ce-..., B = T-019ca1f6-...), with jq:
  prompts `jq '[.messages[]|select(.role=="user")|select(any(.content[];.type=="tool_result")
      |not)]|length' F` -> A 1, B 1 (turn keys: messageId 0 in both)
  LLM calls `jq '[.messages[]|select(.role=="assistant")]|length' F` -> A 3, B 3
  tools `jq -r '[.messages[].content[]|select(.type=="tool_use")|.name]|join(",")' F`
      -> A Read,Read,Read,Read (3 in the first call, 1 in the second); B Read,edit_file
  `jq '[.messages[]|select(.role=="assistant")|.usage.X]|add' F` for X =
      totalInputTokens -> A 46975, B 45813; outputTokens -> A 555, B 270;
      cacheReadInputTokens -> A 39744, B 28097; cacheCreationInputTokens -> A 7226, B 17711
  `jq '[.messages[]|select(.role=="assistant")|.usage|.inputTokens+.cacheCreationInputTokens
      +.cacheReadInputTokens == .totalInputTokens]' F` -> all true (input includes the cache)
  stop reasons `jq -r '.messages[]|select(.role=="assistant")|.state.stopReason' F`
      -> tool_use tool_use end_turn in both; thinking blocks: A 1 (in its first call), B 0
  titles `jq .title F`, cwd `jq '.env.initial.trees[0].uri' F`: see TITLES and CWD.
First call of A at claude-opus-4-6's list price ($5/M input, $6.25/M cache write, $0.50/M
cache read, $25/M output): 3 x 5 + 1,619 x 6.25 + 13,248 x 0.5 + 239 x 25 = 22,732.75 / 1e6 USD.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from pathlib import Path, PurePath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd import formats
from tailerd.domain import LLMCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.discovery import Globs
from tailerd.formats.amp import FORMAT, turns_from_document
from tailerd.formats.base import Source
from tailerd.settings import Settings
from tailerd.tracking import FileTable
from tests.conftest import FIXTURES, popen_tailerd, run_tailerd
from tests.formats.test_wrong_types import document_format_of, mutated_lines

THREADS = FIXTURES / "amp" / "git-ai-project-git-ai" / "tests" / "fixtures" / "amp-threads"
A = "T-019ca1ce-3ae2-7686-a41e-ccc078837f8a"
B = "T-019ca1f6-7f21-77b5-a308-65416ebbdf48"
TITLES = {A: "Add jokes CLI with CSV data source", B: "Read jokes CSV and append new row"}
CWD = (
    "/Users/svarlamov/projects/testing-git-amp"  # file:///Users/svarlamov/projects/testing-git-amp
)


def thread(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((THREADS / f"{name}.json").read_bytes())
    return loaded


def two_turns() -> dict[str, Any]:
    """Thread A with thread B's messages and traces appended as its second prompt, as Amp
    would rewrite A had the user sent B's prompt next (B's message ids shifted by A's 6)."""
    doc, more = thread(A), thread(B)
    shift = doc["nextMessageId"]
    for m in more["messages"]:
        doc["messages"].append({**m, "messageId": m["messageId"] + shift})
    for t in more["meta"]["traces"]:
        doc["meta"]["traces"].append(
            {**t, "context": {"messageId": t["context"]["messageId"] + shift}}
        )
    doc["nextMessageId"] = shift + more["nextMessageId"]
    doc["v"] += more["v"]
    return doc


def read(doc: dict[str, Any] | bytes, *, final: bool = False, name: str = A) -> list[Turn]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc, indent=2).encode()
    return turns_from_document(
        data, Source(f"/h/.local/share/amp/threads/{name}.json"), final=final
    )


def chats(turn: Turn) -> list[LLMCall]:
    return [s for s in turn.spans if isinstance(s, LLMCall)]


def tools(turn: Turn) -> list[ToolCall]:
    return [s for s in turn.spans if isinstance(s, ToolCall)]


# per thread: tool names, then the sums of totalInputTokens, outputTokens,
# cacheReadInputTokens, cacheCreationInputTokens (the jq counts above)
HAND = {
    A: (["Read"] * 4, 46975, 555, 39744, 7226),
    B: (["Read", "edit_file"], 45813, 270, 28097, 17711),
}


@pytest.mark.parametrize("name", [A, B])
def test_real_threads_by_hand(name: str) -> None:
    names, total, output, read_, written = HAND[name]
    (turn,) = read((THREADS / f"{name}.json").read_bytes(), name=name)
    assert turn.key == f"amp|{name}|0"
    assert turn.session_id == name
    assert turn.session_name == TITLES[name]
    assert turn.attributes["tailerd.cwd"] == CWD
    assert turn.model == "claude-opus-4-6"
    assert not turn.interrupted
    calls = chats(turn)
    assert len(calls) == 3
    assert [t.name for t in tools(turn)] == names
    assert sum(c.usage.input_tokens for c in calls) == total
    assert sum(c.usage.output_tokens for c in calls) == output
    assert sum(c.usage.cache_read_input_tokens for c in calls) == read_
    assert sum(c.usage.cache_creation_input_tokens for c in calls) == written
    assert {c.provider_name for c in calls} == {"anthropic"}
    assert [c.finish_reasons for c in calls] == [("tool_use",), ("tool_use",), ("end_turn",)]
    assert all(t.result and not t.is_error for t in tools(turn))


def test_thread_a_in_detail() -> None:
    (turn,) = read((THREADS / f"{A}.json").read_bytes())
    assert turn.messages[0].content.startswith("Create a plan to add a jokes.csv")
    assert turn.output_messages[0].content.startswith("Here's the plan:")
    first = chats(turn)[0]
    assert first.reasoning.startswith("The user wants me to create a plan (not implement yet)")
    assert first.output_messages[0].content == "Let me check what's already in the workspace."
    # the three Reads of the first call, in order, and their results (the files' contents)
    reads = tools(turn)
    assert [json.loads(t.arguments)["path"].rsplit("/", 1)[1] for t in reads] == [
        "jokes.csv",
        "index.ts",
        "src",
        "index.ts",
    ]
    assert reads[0].tool_call_id == "toolu_vrtx_01Xfp6fkMtCi25T52dMP3Pcz"
    assert "Because light attracts bugs." in json.loads(reads[0].result)["content"]
    # times: meta.sentAt 1772241201792 ms = 01:13:21.792Z (date -u -d @1772241201.792); the
    # first inference trace 01:13:21.800Z to 01:13:27.456Z; the tools trace of message 1
    # 01:13:27.455Z to 01:13:27.475Z; the agent trace ends 01:13:38.820Z
    assert turn.started_at is not None and turn.ended_at is not None
    assert turn.started_at.isoformat() == "2026-02-28T01:13:21.792000+00:00"
    assert turn.ended_at.isoformat() == "2026-02-28T01:13:38.820000+00:00"
    assert first.started_at is not None and first.ended_at is not None
    assert first.started_at.isoformat() == "2026-02-28T01:13:21.800000+00:00"
    assert first.ended_at.isoformat() == "2026-02-28T01:13:27.456000+00:00"
    assert reads[0].ended_at is not None
    assert reads[0].ended_at.isoformat() == "2026-02-28T01:13:27.475000+00:00"


def test_a_rewrite_with_a_second_prompt_keeps_the_first_turn_and_adds_one() -> None:
    first = read(thread(A))
    both = read(two_turns())
    assert [t.key for t in both] == [f"amp|{A}|0", f"amp|{A}|6"]
    assert both[0].spans == first[0].spans  # same turn, same spans: nothing to ship again
    second = both[1]
    assert second.messages[0].content == "Read jokes.csv and append one new joke row"
    assert [t.name for t in tools(second)] == ["Read", "edit_file"]
    assert sum(c.usage.input_tokens for c in chats(second)) == 45813  # thread B's, by hand
    assert second.session_name == TITLES[A]


def test_a_turn_still_running_waits_for_its_end_or_for_quiet() -> None:
    doc = thread(A)
    doc["messages"] = doc["messages"][:2]  # the prompt and a call that asked for tools
    assert read(doc) == []
    (quiet,) = read(doc, final=True)  # quiet for idle_close: shipped, said to be interrupted
    assert quiet.interrupted and len(chats(quiet)) == 1 and len(tools(quiet)) == 3
    assert all(t.result == "" for t in tools(quiet))  # no results were written yet
    doc["messages"][1]["state"] = {"type": "streaming"}
    assert read(doc) == []
    doc["messages"][1]["state"] = {"type": "cancelled"}  # Ctrl-C: Amp waits for the user
    (cancelled,) = read(doc)
    assert cancelled.interrupted
    doc["messages"][1]["state"] = {"type": "error", "error": {"message": "overloaded"}}
    (failed,) = read(doc)
    assert failed.interrupted
    assert chats(failed)[0].attributes["amp.error"] == "overloaded"
    assert read(b'{"v": 3, "id": "T-1", "messages": [{"role": "user"') == []  # half-written


def test_usage_of_a_non_anthropic_model_and_a_failed_tool() -> None:
    """Amp stores an OpenAI call's usage as inputTokens 0, cacheReadInputTokens = the cached
    prompt, cacheCreationInputTokens = the uncached prompt, totalInputTokens = the whole prompt
    (its bundle's OpenAI usage mapper): here a 1,000-token prompt of which 200 cached."""
    doc = thread(B)
    doc["messages"][1]["usage"] = {
        "model": "gpt-5.2",
        "inputTokens": 0,
        "cacheCreationInputTokens": 800,
        "cacheReadInputTokens": 200,
        "totalInputTokens": 1000,
        "outputTokens": 70,
    }
    doc["messages"][4]["content"][0]["run"] = {
        "status": "error",
        "error": {"message": "file changed on disk"},
    }
    (turn,) = read(doc, name=B)
    call = chats(turn)[0]
    assert call.provider_name == "openai"
    assert (call.usage.input_tokens, call.usage.cache_read_input_tokens) == (1000, 200)
    assert call.usage.cache_creation_input_tokens == 0  # not a cache write
    edit = tools(turn)[1]
    assert edit.is_error and edit.result == "file changed on disk"


def test_a_task_tool_run_is_a_sub_agent() -> None:
    """A hand-made Task run in the shape Amp's sub-agent runner finishes with (its bundle:
    {status: done, result, progress: [{message, tool_uses}], ~debug: {inferences}})."""
    doc = thread(B)
    use = doc["messages"][1]["content"][0]
    use.update(name="Task", input={"prompt": "find the jokes file", "description": "find"})
    doc["messages"][2]["content"][0]["run"] = {
        "status": "done",
        "result": "It is jokes.csv at the root.",
        "progress": [
            {
                "message": "Looking.",
                "tool_uses": [
                    {"tool_name": "glob", "status": "done", "input": {"filePattern": "*.csv"}},
                    {"tool_name": "Read", "status": "error", "input": {"path": "x.csv"}},
                ],
            },
            {"message": "It is jokes.csv at the root.", "tool_uses": []},
        ],
        "~debug": {
            "inferences": [
                {"inferenceTimeMs": 900, "usage": {"model": "claude-haiku-4-5",
                 "inputTokens": 10, "cacheCreationInputTokens": 0, "cacheReadInputTokens": 90,
                 "totalInputTokens": 100, "outputTokens": 20}},
                {"inferenceTimeMs": 700, "usage": {"model": "claude-haiku-4-5",
                 "inputTokens": 5, "cacheCreationInputTokens": 50, "cacheReadInputTokens": 100,
                 "totalInputTokens": 155, "outputTokens": 30}},
            ]
        },
    }  # fmt: skip
    (turn,) = read(doc, name=B)
    (agent,) = [s for s in turn.spans if isinstance(s, SubAgentCall)]
    assert agent.name == agent.tool_name == "Task"
    assert agent.tool_call_id == "toolu_vrtx_01AQL5rdWBkJNHqAXfxyiARm"
    assert agent.input_messages[0].content == "find the jokes file"
    assert agent.output_messages[0].content == "It is jokes.csv at the root."
    inner = [s for s in agent.spans if isinstance(s, LLMCall)]
    assert [c.usage.input_tokens for c in inner] == [100, 155]
    assert [c.usage.output_tokens for c in inner] == [20, 30]
    assert agent.model == "claude-haiku-4-5"
    inner_tools = [s for s in agent.spans if isinstance(s, ToolCall)]
    assert [(t.name, t.is_error) for t in inner_tools] == [("glob", False), ("Read", True)]
    assert [t.name for t in tools(turn)] == ["edit_file"]  # the Task call is the sub-agent


def test_claims_only_threads() -> None:
    data = (THREADS / f"{A}.json").read_bytes()
    home = PurePath("/h/.local/share/amp/threads") / f"{A}.json"
    fmt = formats.choose(home, data[:65536])
    assert fmt is not None and fmt.name == "amp"
    assert formats.choose(PurePath("/h/elsewhere") / f"{A}.json", data[:65536]) is None
    assert not FORMAT.claims(home, b'{"sessionId": "x", "messages": []}')  # no "v"
    assert not FORMAT.claims(home.with_name("settings.json"), data[:65536])
    cline = FIXTURES / "cline" / "cline-cline" / "sdk" / "packages" / "core" / "fixtures"
    messages = (cline / "session" / "session.messages.json").read_bytes()[:65536]
    assert not FORMAT.claims(PurePath("/h/.cline/data/sessions/x/x.messages.json"), messages)
    assert Globs().match("/h/.local/share/amp/threads", str(home))  # DEFAULT_INCLUDE has it


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    mutated_lines([json.dumps(two_turns()).encode()]),
    st.booleans(),
)
def test_no_wrong_type_escapes_a_thread(lines: list[bytes], final: bool) -> None:
    path = PurePath(f"/h/.local/share/amp/threads/{A}.json")
    # None: the mutation took `"v":` or `"messages"` out of the head, so it is nobody's file
    assert document_format_of(lines[0], path, final) in ("amp", None)


def _emitted(stderr: str) -> int:
    found = re.search(r"(\d+) turns? emitted", stderr)
    assert found, stderr
    return int(found.group(1))


def test_once_ships_a_rewritten_thread_once_into_the_local_store(tmp_path: Path) -> None:
    """Zero configuration (`--agents amp`, no --watch) under a moved XDG_DATA_HOME; the thread
    first holds its first turn, then is rewritten whole with a second: the second run ships
    only the new turn, and the first keeps its ids."""
    threads = tmp_path / "xdg" / "amp" / "threads"
    threads.mkdir(parents=True)
    path = threads / f"{A}.json"
    shutil.copyfile(THREADS / f"{B}.json", threads / f"{B}.json")
    path.write_text(json.dumps(thread(A), indent=2))
    state = tmp_path / "state"
    xdg, home = str(tmp_path / "xdg"), str(tmp_path / "home")
    args = ("--once", "--agents", "amp", "--state-dir", state, "--data-dir", state)

    first = run_tailerd(*args, XDG_DATA_HOME=xdg, HOME=home)
    assert first.returncode == 0, first.stderr
    assert _emitted(first.stderr) == 2  # thread A's one turn, thread B's one turn
    roots_query = "SELECT session_id, trace_id FROM spans WHERE parent_span_id IS NULL"
    with sqlite3.connect(state / "tailerd.db") as db:
        before = dict(db.execute(roots_query))

    path.write_text(json.dumps(two_turns(), indent=2))
    second = run_tailerd(*args, XDG_DATA_HOME=xdg, HOME=home)
    assert second.returncode == 0, second.stderr
    assert _emitted(second.stderr) == 1  # only the new turn

    with sqlite3.connect(state / "tailerd.db") as db:
        roots = db.execute(roots_query).fetchall()
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    assert sorted(sid for sid, _ in roots) == [A, A, B]
    assert before[A] in {trace for sid, trace in roots if sid == A}  # the first turn's ids
    ops = [op for op, _, _ in rows]
    # turns A|0 (3 chats, 4 tools), A|6 (B's 3 chats, 2 tools), B|0 (3 chats, 2 tools)
    assert ops.count("chat") == 9 and ops.count("execute_tool") == 8
    chat = [json.loads(a) for op, _, a in rows if op == "chat"]
    assert sum(int(a["gen_ai.usage.input_tokens"]) for a in chat) == 46975 + 45813 * 2
    assert sum(int(a["gen_ai.usage.output_tokens"]) for a in chat) == 555 + 270 * 2
    first_call = next(a for a in chat if int(a["gen_ai.usage.output_tokens"]) == 239)
    assert first_call["gen_ai.usage.cost"] == pytest.approx(22_732.75 / 1e6)
    agents = [json.loads(a) for op, _, a in rows if op == "invoke_agent"]
    assert {a["tailerd.cwd"] for a in agents} == {CWD}
    assert {a["gen_ai.conversation.name"] for a in agents} == set(TITLES.values())


FORK = "T-0a0a0a0a-0000-4000-8000-000000000001"


def fork_of_a(point: int) -> dict[str, Any]:
    """A fork of thread A at message index `point`, as Amp's createForkedThread writes one
    (originThreadID, forkPointIndex, a child relationship, a verbatim copy of A's
    messages[: point + 1]), that then went on with thread B's prompt."""
    doc = two_turns()
    doc["messages"] = doc["messages"][: point + 1] + doc["messages"][6:]
    doc.update(
        id=FORK,
        originThreadID=A,
        forkPointIndex=point,
        relationships=[{"threadID": A, "type": "fork", "role": "child", "messageIndex": point}],
    )
    return doc


def test_a_forks_copied_turn_has_its_origins_identities() -> None:
    (origin,) = read(thread(A))
    # A's turn holds its 6 messages, ids 0-5 (`jq '[.messages[].messageId]' A`)
    assert origin.identities == tuple(f"amp:message:{A}:{i}" for i in range(6))
    copied, new = read(fork_of_a(5), name=FORK)
    assert copied.identities == origin.identities  # a copy: shipped from A already
    assert copied.key != origin.key and copied.session_id == FORK
    assert new.identities == tuple(f"amp:message:{FORK}:{i}" for i in range(6, 12))
    assert new.attributes["amp.forked_from"] == A
    # forked inside the turn (after its first call) and gone on in it with messages of its own
    # (the tool results and an answer, new ids 6 and 7): not a copy
    mid = fork_of_a(1)
    a = thread(A)["messages"]
    mid["messages"] = [*mid["messages"][:2], {**a[2], "messageId": 6}, {**a[5], "messageId": 7}]
    (went_on,) = read(mid, name=FORK)
    assert went_on.identities == (
        f"amp:message:{A}:0",
        f"amp:message:{A}:1",
        f"amp:message:{FORK}:6",
        f"amp:message:{FORK}:7",
    )


def test_once_does_not_ship_a_forks_copy_again(tmp_path: Path) -> None:
    threads = tmp_path / "amp" / "threads"
    threads.mkdir(parents=True)
    (threads / f"{A}.json").write_text(json.dumps(thread(A)))
    (threads / f"{FORK}.json").write_text(json.dumps(fork_of_a(5)))
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", tmp_path / "amp", "--once", "--state-dir", state, "--data-dir", state
    )
    assert result.returncode == 0, result.stderr
    # A's turn (or its copy, whichever file is read first) once, and the fork's own turn
    assert _emitted(result.stderr) == 2
    assert "1 duplicates skipped" in result.stderr


def write_like_amp(path: Path, doc: dict[str, Any]) -> None:
    """As Amp's thread storage writes: pretty JSON to `<file>.amptmp`, renamed over the file
    (its bundle: JSON.stringify(thread, null, 2), writeFile, rename)."""
    tmp = path.with_name(path.name + ".amptmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.rename(path)


def _wait_for_roots(store: Path, count: int, timeout: float = 90) -> int:
    """Root spans in the local store, once there are `count` of them or `timeout` s passed."""
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        query = "SELECT COUNT(*) FROM spans WHERE parent_span_id IS NULL"
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                found = db.execute(query).fetchone()[0]
        except sqlite3.OperationalError:
            pass  # not there yet, or its table not yet made
        if found >= count:
            break
        time.sleep(0.2)
    return int(found)


def test_the_daemon_ships_each_turn_of_a_thread_amp_rewrites_once(tmp_path: Path) -> None:
    threads = tmp_path / "amp" / "threads"
    threads.mkdir(parents=True)
    path = threads / f"{A}.json"
    running = thread(A)
    running["messages"] = running["messages"][:2]  # its first call asked for tools: open
    write_like_amp(path, running)
    live = tmp_path / "live"
    daemon = popen_tailerd("--watch", tmp_path / "amp", "--state-dir", live, "--data-dir", live)
    try:
        write_like_amp(path, thread(A))  # the turn ends
        assert _wait_for_roots(live / "tailerd.db", 1) == 1
        write_like_amp(path, two_turns())  # a second prompt and its answer
        assert _wait_for_roots(live / "tailerd.db", 2) == 2
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    with sqlite3.connect(live / "tailerd.db") as db:
        rows = db.execute("SELECT operation, session_id FROM spans").fetchall()
    # turn A|0: 3 chats, 4 tools; turn A|6 (thread B's): 3 chats, 2 tools; nothing twice
    ops = [op for op, _ in rows]
    assert (ops.count("invoke_agent"), ops.count("chat"), ops.count("execute_tool")) == (2, 6, 6)
    assert {sid for _, sid in rows} == {A}


def test_a_thread_renamed_over_its_old_self_is_followed(tmp_path: Path) -> None:
    """Amp writes `T-<id>.json.amptmp` and renames it over `T-<id>.json`. The temporary file is
    named like a rotated copy of the thread (`<name>.<suffix>`), so it is looked at as one and
    found to be none; the same inode renamed to the thread's own name must still be followed,
    whether it had been looked at (1) or not yet (2) when the rename came."""
    threads = tmp_path / "amp" / "threads"
    threads.mkdir(parents=True)
    path = threads / f"{A}.json"
    tmp = path.with_name(path.name + ".amptmp")
    write_like_amp(path, thread(A))
    table = FileTable(Settings(watch=(tmp_path / "amp",)), {})
    table.scan()
    assert table.open(table.files[table.by_path[str(path)]])  # followed, checkpoint resolved
    for looked_at_first in (True, False):
        tmp.write_text(json.dumps(two_turns(), indent=2))
        table.look_at(str(tmp))
        inode = f"{tmp.stat().st_dev}:{tmp.stat().st_ino}"
        if looked_at_first:
            assert not table.open(table.files[inode])  # no copy of anything: let go
            assert inode not in table.files
        tmp.rename(path)
        table.look_at(str(tmp))
        table.look_at(str(path))
        assert table.by_path.get(str(path)) == inode, looked_at_first
        assert table.open(table.files[inode])
        assert table.files[inode].path == path
