"""OpenCode's JSON `storage/` tree (formats/opencode/storage.py), read from the tree the real
opencode-ai 1.1.65 wrote playing the `opencode` scenario (tests/data/opencode-storage/SOURCE.txt).

The oracle is the scenario's script (tests/agents_cli/scenarios.py OPENCODE), counted by hand:
turn 1 = reply 1 bash `ls`, 2 bash `cat notes.txt`, 3 task (the sub-agent: 4 bash `wc -l`, 5
text), 6 text; turn 2 = reply 7 text. usage(n) = input 100n+1, output 10n+3, plus the scripted
cache reads (2: 64, 3: 128, 5: 64, 6: 192, 7: 256), which Weave's input_tokens includes.
Counted in the tree with
  jq -r '.role' storage/message/ses_dd0de67ffffeeMBNu22Ldep2mN/*.json | sort | uniq -c
    -> 2 user, 5 assistant (2 turns; 5 LLM calls in the parent)
  jq -r '.role' storage/message/ses_dd0de653fffeJ0HB1vXbDZdGJE/*.json | sort | uniq -c
    -> 1 user, 2 assistant (the sub-agent's 2 LLM calls)
  jq -r 'select(.type=="tool") | .tool' storage/part/*/*.json | sort | uniq -c
    -> 3 bash, 1 task
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd import formats
from tailerd.domain import LLMCall, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.opencode.storage import FORMAT
from tests.agents_cli.harness import expected, stored
from tests.agents_cli.scenarios_opencode_storage import OPENCODE_STORAGE, play
from tests.conftest import run_tailerd
from tests.formats.test_wrong_types import at, by_depth, other_type, paths_in, replaced
from tests.live_daemon import RunningTailerd, poll

DATA = Path(__file__).parent.parent / "data" / "opencode-storage"
TREE = DATA / "storage"
PARENT, CHILD = "ses_dd0de67ffffeeMBNu22Ldep2mN", "ses_dd0de653fffeJ0HB1vXbDZdGJE"
FIRST_PROMPT, SECOND_PROMPT = "msg_22f219837001IohMt7RdTKL3pp", "msg_22f21a670001mNZ6Bcz2NuJ923"
WORK = "/tmp/h1run2/home/work"  # the run's working directory (SOURCE.txt)
LIVE_TIMEOUT = 60.0  # seconds the live test waits for the daemon (returns once stored)


def session_file(tree: Path, session: str) -> Path:
    return tree / "session" / "global" / f"{session}.json"


def read(tree: Path, session: str, *, final: bool = False, **options: Any) -> list[Turn]:
    path = session_file(tree, session)
    source = Source(str(path), "", options, read_related, find_related, "host")
    return FORMAT.document_turns(path.read_bytes(), source, final=final)


def flat(spans: tuple[SpanCall, ...]) -> list[SpanCall]:
    out: list[SpanCall] = []
    for span in spans:
        out.append(span)
        if isinstance(span, SubAgentCall):
            out.extend(flat(span.spans))
    return out


def test_the_real_tree_gives_the_scripted_turns_calls_tokens_and_subagent() -> None:
    turns = read(TREE, PARENT)
    assert [t.key for t in turns] == [
        f"opencode|{PARENT}|{FIRST_PROMPT}",
        f"opencode|{PARENT}|{SECOND_PROMPT}",
    ]
    assert [t.session_name for t in turns] == ["Scripted session title"] * 2
    assert [t.attributes["tailerd.cwd"] for t in turns] == [WORK, WORK]
    assert [t.interrupted for t in turns] == [False, False]
    spans = [flat(t.spans) for t in turns]
    # (Weave input = input + cache read, output) of replies 1..7 in the order OpenCode ran them
    llm = [[(s.usage.input_tokens, s.usage.output_tokens) for s in t if isinstance(s, LLMCall)]
           for t in spans]  # fmt: skip
    assert llm == [
        [(101, 13), (201 + 64, 23), (301 + 128, 33), (401, 43), (501 + 64, 53), (601 + 192, 63)],
        [(701 + 256, 73)],
    ]
    cache = [s.usage.cache_read_input_tokens for t in spans for s in t if isinstance(s, LLMCall)]
    assert cache == [0, 64, 128, 0, 64, 192, 256]
    assert {s.model for t in spans for s in t if isinstance(s, LLMCall)} == {"scripted-model"}
    tools = [(s.name, json.loads(s.arguments)["command"], s.result, s.is_error)
             for s in spans[0] if isinstance(s, ToolCall)]  # fmt: skip
    assert tools == [
        ("bash", "ls", "notes.txt\n", False),
        ("bash", "cat notes.txt", "alpha\nbeta\n", False),
        ("bash", "wc -l notes.txt", "2 notes.txt\n", False),  # inside the sub-agent
    ]
    (sub,) = [s for s in turns[0].spans if isinstance(s, SubAgentCall)]
    assert (sub.name, sub.agent_id, sub.tool_call_id) == ("general", CHILD, "call_o03")
    assert [type(s).__name__ for s in sub.spans] == ["LLMCall", "ToolCall", "LLMCall"]
    assert "notes.txt has 2 lines." in sub.output_messages[0].content
    assert turns[1].output_messages[0].content == "Nothing else."


def test_a_subagent_session_file_yields_nothing_of_its_own() -> None:
    assert read(TREE, CHILD) == []
    assert read(TREE, CHILD, final=True) == []


def test_claims_only_session_files_and_reads_message_and_part_files_through_them() -> None:
    session = session_file(TREE, PARENT)
    head = session.read_bytes()[:4096]
    assert FORMAT.claims(session, head)
    chosen = formats.choose(session, head)
    assert chosen is not None and chosen.name == "opencode-storage"
    message = next((TREE / "message" / PARENT).iterdir())
    part = next(next((TREE / "part").iterdir()).iterdir())
    diff = TREE / "session_diff" / f"{PARENT}.json"
    for other in (message, part, diff, TREE / "project" / "global.json"):
        assert not FORMAT.claims(other, other.read_bytes()[:4096]), other
    assert FORMAT.is_auxiliary(message) and FORMAT.is_auxiliary(part)
    assert not FORMAT.is_auxiliary(session)
    old_layout = TREE / "session" / "info" / f"{PARENT}.json"  # the 0.x layout: not read
    assert not FORMAT.claims(old_layout, head)


def copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "storage"
    shutil.copytree(TREE, tree)
    return tree


def unfinish_last_answer(tree: Path) -> None:
    """Turn 2's answer as it is while it streams: no `time.completed`, no `finish`."""
    path = tree / "message" / PARENT / "msg_22f21a6d4001sqYSspzUJPtuSo.json"
    info = json.loads(path.read_text())
    del info["time"]["completed"], info["finish"]
    path.write_text(json.dumps(info))


def test_a_streaming_turn_waits_for_opencodes_marks_then_idle_closes(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    unfinish_last_answer(tree)
    assert [t.key.rpartition("|")[2] for t in read(tree, PARENT)] == [FIRST_PROMPT]
    # the session file quiet (final) but its last message recent: still waiting
    assert len(read(tree, PARENT, final=True, idle_close=1e12)) == 1
    # quiet for idle_close too: closed, as interrupted
    turns = read(tree, PARENT, final=True, idle_close=0)
    assert [t.interrupted for t in turns] == [False, True]


def test_half_written_and_missing_files_are_skipped(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    (tree / "message" / PARENT / "msg_22f21a6d4001sqYSspzUJPtuSo.json").write_text('{"role": "as')
    session_file(tree, CHILD).unlink()  # the sub-agent's session file gone: a plain tool call
    turns = read(tree, PARENT)
    assert [t.key.rpartition("|")[2] for t in turns] == [FIRST_PROMPT]  # turn 2 has no answer
    names = [s.name for s in turns[0].spans if isinstance(s, ToolCall)]
    assert names == ["bash", "bash", "task"]
    assert session_file(tree, PARENT).exists()
    assert read(tree, PARENT)[0].key == turns[0].key  # re-read: same key


@st.composite
def mutation(draw: st.DrawFn, files: list[Path]) -> tuple[Path, Any]:
    path = draw(st.sampled_from(files))
    record = json.loads(path.read_text())
    where = draw(st.sampled_from(draw(st.sampled_from(by_depth(list(paths_in(record)))))))
    return path, replaced(record, where, draw(other_type(at(record, where))))


def test_no_wrong_type_escapes_the_format(tmp_path: Path) -> None:
    """Any value of a session, message or part file replaced by one of another type: the
    unguarded format never raises (the guard would make it a dead letter)."""
    tree = copy_tree(tmp_path)
    files = sorted(p for p in tree.rglob("*.json") if "session_diff" not in p.parts)
    originals = {p: p.read_bytes() for p in files}

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.lists(mutation(files), min_size=1, max_size=3), st.booleans())
    def run(changes: list[tuple[Path, Any]], final: bool) -> None:
        try:
            for path, value in changes:
                path.write_text(json.dumps(value))
            for session in (PARENT, CHILD):
                for turn in read(tree, session, final=final, idle_close=0):
                    assert turn.key.startswith("opencode|")
        finally:
            for path, data in originals.items():
                path.write_bytes(data)

    run()


# ---- end to end -------------------------------------------------------------------------------


def home_with(tmp_path: Path, *, storage: bool, database: bool) -> Path:
    """`<tmp>/home/.local/share/opencode` holding the real tree and/or the same tree migrated
    into opencode.db by opencode-ai 1.2.1 (SOURCE.txt); the directory."""
    data = tmp_path / "home" / ".local" / "share" / "opencode"
    data.mkdir(parents=True)
    if storage:
        shutil.copytree(TREE, data / "storage")
    if database:
        shutil.copyfile(DATA / "migrated" / "opencode.db", data / "opencode.db")
    return data


def once(watch: Path, state: Path) -> str:
    result = run_tailerd("--once", "--watch", watch, "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    return result.stderr


def span_ids(store: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT trace_id, span_id, operation, parent_span_id FROM spans")
        return sorted(rows.fetchall())


def test_once_ships_the_script_and_the_migrated_database_the_same_span_ids(
    tmp_path: Path,
) -> None:
    """`tailerd --once` over an OpenCode data directory holding the tree ships exactly the
    script. Then the user path: OpenCode 1.2.1 migrates storage/ into opencode.db and leaves
    storage/ in place. The database alone gives the same trace and span ids; both together
    ship each turn once."""
    from_storage = once(home_with(tmp_path / "a", storage=True, database=False), tmp_path / "sa")
    # expected(): turns, chat tokens, tools and sub-agents counted from the scenario's script
    assert stored(tmp_path / "sa" / "tailerd.db") == expected(OPENCODE_STORAGE)
    from_db = once(home_with(tmp_path / "b", storage=False, database=True), tmp_path / "sb")
    assert "2 turns emitted" in from_storage and "2 turns emitted" in from_db
    ids = span_ids(tmp_path / "sa" / "tailerd.db")
    assert len(ids) == 2 + 7 + 3 + 1  # turns, chats, bash calls, sub-agent (the docstring)
    assert span_ids(tmp_path / "sb" / "tailerd.db") == ids
    both = once(home_with(tmp_path / "c", storage=True, database=True), tmp_path / "sc")
    assert "2 turns emitted, 2 duplicates skipped" in both, both
    assert span_ids(tmp_path / "sc" / "tailerd.db") == ids


@pytest.mark.long
def test_the_real_old_cli_read_live_and_once(tmp_path: Path) -> None:
    """opencode-ai 1.1.65 plays the scenario while a daemon watches its data directory, then
    `--once` reads it from scratch: both hold exactly the script."""
    data = tmp_path / "home" / ".local" / "share" / "opencode"
    data.mkdir(parents=True)
    live = tmp_path / "live"
    daemon = RunningTailerd("--watch", data, "--state-dir", live, "--data-dir", live)
    try:
        play(tmp_path)
        want = expected(OPENCODE_STORAGE)
        waited = poll(lambda: stored(live / "tailerd.db") == want, LIVE_TIMEOUT, every=0.2)
        assert waited is not None, (stored(live / "tailerd.db"), want, daemon.log[-3000:])
    finally:
        daemon.stop()
    once(data, tmp_path / "once")
    assert stored(tmp_path / "once" / "tailerd.db") == expected(OPENCODE_STORAGE)
