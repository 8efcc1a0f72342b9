"""OpenHands conversations (base_state.json + one file per event), against the real sample in
../shared/fixtures/agents/openhands/ (a V1 SDK run against openai/gpt-4o-mini).

Hand counts over the conversation directory (E = events/event-*.json, B = base_state.json):
  `for f in E; do jq -r '[.kind, .source] | join(" ")' $f; done` in sequence order ->
      00 SystemPromptEvent agent, 01 MessageEvent user, 02 ActionEvent agent,
      03 ObservationEvent environment, 04 ActionEvent agent, 05 ObservationEvent environment,
      06 MessageEvent user, 07 MessageEvent agent
  -> 2 turns (01, 06); turn 1: 2 chat spans (02's and 04's llm_response_id differ) and 2 tool
     calls (terminal `pwd > tool_output.txt`, finish); turn 2: 1 chat span, no tools.
  `jq '.stats.usage_to_metrics.agent.token_usages[] | [.response_id, .prompt_tokens,
      .completion_tokens, .cache_read_tokens]' B` -> D5rlWU 3778/36/0, D5rlXV 3869/32/3712,
      D5rlZy 3936/26/3840; sums 11583 / 94 (= accumulated_token_usage), cache reads 7552
  `jq '.stats.usage_to_metrics.agent.costs[].cost' B` -> 0.0005883, 0.00032115, 0.000318
      (sum 0.00122745 = accumulated_cost)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd import formats
from tailerd.domain import LLMCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.openhands import FORMAT, turns_from_document
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import mutated_lines
from tests.live_daemon import duplicate_span_ids, otlp_daemon, poll
from tests.otlp_receiver import Receiver

SAMPLE = next(
    (FIXTURES / "openhands" / "OpenHands-software-agent-sdk").glob(
        ".pr/*/*/conversations/cd94562403b9487ebdd4018e3f531dfd"
    )
)
CONVERSATION = "cd945624-03b9-487e-bdd4-018e3f531dfd"  # base_state.json "id"
CWD = "/workspace/project/software-agent-sdk"  # workspace.working_dir


def openhands_home(root: Path, upto: int = 8, status: str | None = None) -> Path:
    """The sample where OpenHands keeps it, ~/.openhands/conversations/<id>/, with only its
    first `upto` events and, if given, another execution_status. Returns base_state.json."""
    dest = root / ".openhands" / "conversations" / SAMPLE.name
    (dest / "events").mkdir(parents=True)
    for event in sorted((SAMPLE / "events").glob("event-*.json"))[:upto]:
        shutil.copyfile(event, dest / "events" / event.name)
    state = json.loads((SAMPLE / "base_state.json").read_text())
    if status is not None:
        state["execution_status"] = status
    (dest / "base_state.json").write_text(json.dumps(state))
    return dest / "base_state.json"


def turns(path: Path, final: bool = True) -> list[Turn]:
    source = Source(str(path), read_related=read_related, find_related=find_related)
    return turns_from_document(path.read_bytes(), source, final=final)


def test_real_conversation_by_hand(tmp_path: Path) -> None:
    first, second = turns(openhands_home(tmp_path))
    chats1 = [s for s in first.spans if isinstance(s, LLMCall)]
    tools1 = [s for s in first.spans if isinstance(s, ToolCall)]
    chats2 = [s for s in second.spans if isinstance(s, LLMCall)]
    assert (len(chats1), len(tools1), len(chats2), len(second.spans)) == (2, 2, 1, 1)
    assert [t.name for t in tools1] == ["terminal", "finish"]
    assert json.loads(tools1[0].arguments)["command"] == "pwd > tool_output.txt"
    assert tools1[1].result == "The current directory has been written to tool_output.txt."
    assert not any(t.is_error for t in tools1)
    every = chats1 + chats2
    assert [c.usage.input_tokens for c in every] == [3778, 3869, 3936]
    assert [c.usage.output_tokens for c in every] == [36, 32, 26]
    assert sum(c.usage.cache_read_input_tokens for c in every) == 7552
    assert sum(c.attributes["gen_ai.usage.cost"] for c in every) == pytest.approx(0.00122745)
    assert {c.model for c in every} == {"openai/gpt-4o-mini"}
    assert first.session_id == second.session_id == CONVERSATION
    assert first.attributes["tailerd.cwd"] == CWD
    assert first.messages[0].content.startswith("Use the terminal tool to run `pwd`")
    assert second.output_messages[0].content.startswith("I executed the `pwd` command")
    # event 01's timestamp 2026-02-05T11:24:45.305360; event 05's 11:24:48.452904
    assert first.started_at is not None and first.ended_at is not None
    assert first.started_at.isoformat() == "2026-02-05T11:24:45.305360+00:00"
    assert first.ended_at.isoformat() == "2026-02-05T11:24:48.452904+00:00"
    # a chat span ends at its event and starts its recorded latency before (1.8272709846 s)
    assert (chats1[0].ended_at - chats1[0].started_at).total_seconds() == pytest.approx(1.8272710)
    assert first.identities == ("openhands:event:ebe32379-cb75-4a82-8a3c-a8f8b88f6efa",)


def test_the_last_turn_waits_while_the_agent_runs(tmp_path: Path) -> None:
    running = openhands_home(tmp_path / "a", status="running")
    assert len(turns(running, final=False)) == 1  # turn 2 may still grow
    assert len(turns(running, final=True)) == 2  # quiet long enough
    # events 00-05 only: turn 1 is the last turn; finished status makes it final at once
    cut = openhands_home(tmp_path / "b", upto=6, status="finished")
    (only,) = turns(cut, final=False)
    assert len([s for s in only.spans if isinstance(s, ToolCall)]) == 2


def test_events_are_read_through_their_conversation(tmp_path: Path) -> None:
    state = openhands_home(tmp_path)
    event = next((state.parent / "events").glob("event-00003-*.json"))
    assert FORMAT.is_auxiliary(PurePath(event))
    assert formats.is_auxiliary(PurePath(event))
    assert formats.reader_of(PurePath(event)) == PurePath(state)
    assert formats.reader_of(PurePath(state)) is None
    fmt = formats.choose(PurePath(state), state.read_bytes()[:65536])
    assert fmt is not None and fmt.name == "openhands"


def test_half_written_state_or_event_is_no_turn_yet(tmp_path: Path) -> None:
    state = openhands_home(tmp_path)
    source = Source(str(state), read_related=read_related, find_related=find_related)
    assert turns_from_document(state.read_bytes()[:100], source, final=True) == []
    last = next((state.parent / "events").glob("event-00007-*.json"))
    last.write_bytes(last.read_bytes()[:50])  # being written: skipped until whole
    first, second = turns(state)
    assert second.spans == () and second.output_messages == ()
    assert len(first.spans) == 4


def age(root: Path) -> None:
    for p in root.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))


def test_once_ships_the_conversation_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    openhands_home(home)
    age(home)
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", home / ".openhands", "--once", "--state-dir", state, "--data-dir", state
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    ops = [op for op, _, _ in rows]
    assert ops.count("chat") == 3 and ops.count("execute_tool") == 2 and len(rows) == 2 + 5
    assert {sid for _, sid, _ in rows} == {CONVERSATION}
    chats = [json.loads(a) for op, _, a in rows if op == "chat"]
    assert sum(int(a["gen_ai.usage.input_tokens"]) for a in chats) == 11583
    assert sum(int(a["gen_ai.usage.output_tokens"]) for a in chats) == 94
    assert sum(float(a["gen_ai.usage.cost"]) for a in chats) == pytest.approx(0.00122745)


def has_open_turn(status: Path, path: Path) -> bool:
    """status.json shows `path` read as OpenHands with its last turn open."""
    try:
        files = json.loads(status.read_text()).get("files", {})
    except (OSError, ValueError):
        return False
    detail = files.get(str(path), {})
    return detail.get("format") == "openhands" and bool(detail.get("open_turns"))


def test_live_a_new_event_file_rereads_its_conversation(tmp_path: Path, receiver: Receiver) -> None:
    """The daemon notices a new event file although base_state.json did not change."""
    home = tmp_path / "home"
    base = openhands_home(home, upto=6, status="running")  # turn 1 is open: the last turn
    pending = sorted((SAMPLE / "events").glob("event-*.json"))[6:]
    daemon = otlp_daemon(home / ".openhands", tmp_path / "state", receiver.url)
    try:
        read = poll(lambda: has_open_turn(tmp_path / "state" / "status.json", base), timeout=60)
        assert read is not None, daemon.log  # the daemon has read the conversation
        time.sleep(1)
        assert receiver.roots() == []  # turn 1 may still grow
        shutil.copyfile(pending[0], base.parent / "events" / pending[0].name)  # the 2nd prompt
        assert poll(lambda: len(receiver.roots()) == 1, timeout=20) is not None, daemon.log
        assert len(receiver.spans) == 1 + 4  # turn 1: root, 2 chat, 2 tools
        shutil.copyfile(pending[1], base.parent / "events" / pending[1].name)  # the answer
        raw = json.loads(base.read_text())
        raw["execution_status"] = "finished"
        base.write_text(json.dumps(raw))
        assert poll(lambda: len(receiver.roots()) == 2, timeout=20) is not None, daemon.log
        time.sleep(1)
        assert len(receiver.spans) == 5 + 2 and duplicate_span_ids(receiver) == 0
    finally:
        daemon.stop()


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(st.data(), st.booleans())
def test_no_wrong_type_escapes(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, final: bool
) -> None:
    """base_state.json or one event file with a value of another JSON type: the format,
    unguarded, still returns turns (or none) without raising."""
    root = tmp_path_factory.mktemp("oh")
    base = openhands_home(root)
    files = [base, *sorted((base.parent / "events").glob("event-*.json"))]
    target = data.draw(st.sampled_from(files))
    (mutated,) = data.draw(mutated_lines([target.read_bytes().replace(b"\n", b" ")]))
    target.write_bytes(mutated)
    out = turns(base, final=final)
    assert all(isinstance(t, Turn) for t in out)


def test_no_watch_finds_cursor_droid_cline_and_openhands_in_one_home(tmp_path: Path) -> None:
    """Zero configuration: `tailerd --once` without `--watch` finds the four agents' homes
    (tailerd/agent_homes.py) and ships every session, each counted in its own test: Cursor
    1 turn / 21 spans, Droid 1 / 11, Cline 5 / 32, OpenHands 2 / 7."""
    from tests.formats.test_cline import SESSION as CLINE_SESSION
    from tests.formats.test_cline import cline_home
    from tests.formats.test_cursor import SESSION as CURSOR_SESSION
    from tests.formats.test_cursor import cursor_home
    from tests.formats.test_droid import SESSION as DROID_SESSION
    from tests.formats.test_droid import droid_home

    home = tmp_path / "home"
    cursor_home(home)
    droid_home(home)
    cline_home(home)
    openhands_home(home)
    age(home)
    state = tmp_path / "state"
    result = run_tailerd("--once", "--state-dir", state, "--data-dir", state, HOME=str(home))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        counts = dict(db.execute("SELECT session_id, count(*) FROM spans GROUP BY 1").fetchall())
        roots = db.execute("SELECT count(*) FROM spans WHERE parent_span_id IS NULL").fetchone()
    assert counts == {CURSOR_SESSION: 21, DROID_SESSION: 11, CLINE_SESSION: 32, CONVERSATION: 7}
    assert roots == (1 + 1 + 5 + 2,)


def test_a_scaffold_error_is_kept_on_its_turn(tmp_path: Path) -> None:
    base = openhands_home(tmp_path)
    error = {  # the SDK's AgentErrorEvent (source agent, `error`), answering no tool call
        "id": "e-err",
        "timestamp": "2026-02-05T11:24:49.900000",
        "source": "agent",
        "error": "the model returned no tool call and no message",
        "kind": "AgentErrorEvent",
    }
    (base.parent / "events" / "event-00008-e-err.json").write_text(json.dumps(error))
    first, second = turns(base)
    assert second.attributes["openhands.errors"] == [error["error"]]
    assert "openhands.errors" not in first.attributes
    assert len(second.spans) == 1  # the error is no span
