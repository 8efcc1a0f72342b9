"""Issue 8 on Codex, end to end through the CLI and an OTLP receiver: a child thread that
outlives its parent's turn (kind 3), live and `--once`, and a fork replaying its parent (kind 1).

No shared case covers Codex; the inputs are built in tests/formats/test_codex.py from the real
record shapes (see the SOURCE notes there). Hand counts, from those builders:
* parent turn pt1: 3 model requests, input 1000 + 1300 + 1500 = 3800, output 50 + 20 + 40 = 110;
  tool calls spawn_agent and wait.
* child turn ct1: 2 model requests, input 3000 + 3500 = 6500, output 120 + 80 = 200; tool call
  exec_command. Its rollout also holds a copy of the parent's history whose one token_count
  claims 5 000 000 input tokens: it must never count.
So every run ships 5 chat spans, input 3800 + 6500 = 10 300, output 110 + 200 = 310, whether the
child is nested (it finished while the parent waited) or shipped on its own (it finished later).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tests.conftest import run_tailerd
from tests.formats.test_codex import (
    CHILD_ID,
    CHILD_NAME,
    DAY,
    FORK_ID,
    PARENT_ID,
    PARENT_NAME,
    SESSIONS,
    child_rollout,
    forked,
    parent_rollout,
)
from tests.live_daemon import otlp_daemon, quiet
from tests.otlp_receiver import Receiver

CHAT, IN, OUT = 5, 10_300, 310


def age(home: Path) -> None:
    """As the cases README says: files 2 hours old, so idle turns count as finished."""
    then = time.time() - 2 * 3600
    for path in home.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def codex_home(tmp_path: Path, child: bytes) -> Path:
    home = tmp_path / "codex"
    (home / DAY).mkdir(parents=True)
    (home / DAY / PARENT_NAME).write_bytes(parent_rollout())
    (home / DAY / CHILD_NAME).write_bytes(child)
    age(home)
    return home


def chats(receiver: Receiver) -> list[dict[str, Any]]:
    return [s for s in receiver.spans if s["attributes"].get("gen_ai.operation.name") == "chat"]


def tally(receiver: Receiver) -> dict[str, int]:
    llm = chats(receiver)
    return {
        "chat": len(llm),
        "in": sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in llm),
        "out": sum(s["attributes"].get("gen_ai.usage.output_tokens", 0) for s in llm),
        "duplicate_span_ids": len(receiver.span_ids()) - len(set(receiver.span_ids())),
    }


EXPECTED = {"chat": CHAT, "in": IN, "out": OUT, "duplicate_span_ids": 0}


def conversations(receiver: Receiver) -> list[str]:
    return sorted(r["attributes"].get("gen_ai.conversation.id", "") for r in receiver.roots())


def once(home: Path, state: Path, receiver: Receiver) -> None:
    result = run_tailerd(
        "--watch", home, "--once", "--state-dir", state, "--data-dir", state,
        "--sink", "otlp", "--otlp-endpoint", receiver.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_once_a_child_finished_after_its_parents_turn_is_its_own_turn(
    tmp_path: Path, receiver: Receiver
) -> None:
    home = codex_home(tmp_path, child_rollout(first=20.0, every=1.0))  # child ends at :35
    once(home, tmp_path / "state", receiver)
    assert tally(receiver) == EXPECTED
    assert conversations(receiver) == [PARENT_ID, PARENT_ID]  # both in the parent's session
    (child_root,) = [
        r for r in receiver.roots() if r["attributes"].get("codex.thread_id") == CHILD_ID
    ]
    assert child_root["attributes"]["codex.parent_turn_key"] == f"codex|{PARENT_ID}|pt1"
    assert child_root["attributes"]["codex.spawn_call_id"] == "call_spawn"
    once(home, tmp_path / "state", receiver)
    assert tally(receiver) == EXPECTED  # a second run sends nothing


def test_once_a_child_finished_while_its_parent_waited_is_nested(
    tmp_path: Path, receiver: Receiver
) -> None:
    home = codex_home(tmp_path, child_rollout())  # child ends at :11.5, parent at :17
    once(home, tmp_path / "state", receiver)
    assert tally(receiver) == EXPECTED
    assert conversations(receiver) == [PARENT_ID]  # one turn, the child inside it


def test_live_a_child_growing_after_its_parents_turn_ended_ships_when_it_finishes(
    tmp_path: Path, receiver: Receiver
) -> None:
    child_data = child_rollout(first=20.0, every=1.0)
    cut = child_data.rindex(b"\n", 0, len(child_data) - 1) + 1  # all but task_complete
    home = codex_home(tmp_path, child_data[:cut])
    daemon = otlp_daemon(home, tmp_path / "state", receiver.url)
    try:
        assert receiver.wait_for(lambda r: len(r.roots()) == 1, timeout=30), daemon.log
        assert quiet(receiver, for_seconds=1.5, timeout=20)
        assert tally(receiver)["chat"] == 3  # the parent's own calls; the child is still open
        with (home / DAY / CHILD_NAME).open("ab") as fh:
            fh.write(child_data[cut:])  # the child's turn finishes
        assert receiver.wait_for(lambda r: len(r.roots()) == 2, timeout=30), daemon.log
        assert quiet(receiver, for_seconds=1.5, timeout=20)
        assert tally(receiver) == EXPECTED  # the same as --once
        assert conversations(receiver) == [PARENT_ID, PARENT_ID]
    finally:
        daemon.stop()


def test_once_a_fork_ships_only_its_own_new_turn(tmp_path: Path, receiver: Receiver) -> None:
    """The real 0.104 rollout as parent and a fork of it that replays every record re-stamped,
    then adds one turn. Turns by hand: the parent's task_started records, plus 1."""
    parent = next(SESSIONS.glob("rollout-2026-02-23T12-40-23-*.jsonl"))
    data = parent.read_bytes()
    parent_turns = sum(
        1
        for r in map(json.loads, data.splitlines())
        if r["type"] == "event_msg" and r["payload"]["type"] == "task_started"
    )
    new = [
        ("event_msg", {"type": "task_started", "turn_id": "fork-1"}),
        ("event_msg", {"type": "user_message", "message": "now try the other way"}),
        ("event_msg", {"type": "task_complete", "turn_id": "fork-1"}),
    ]
    home = tmp_path / "codex"
    (home / DAY).mkdir(parents=True)
    (home / DAY / parent.name).write_bytes(data)
    fork_name = f"rollout-2026-03-01T10-00-00-{FORK_ID}.jsonl"
    (home / DAY / fork_name).write_bytes(forked(data, new))
    age(home)
    state = tmp_path / "state"
    once(home, state, receiver)
    assert len(receiver.roots()) == parent_turns + 1
    assert tally(receiver)["duplicate_span_ids"] == 0
    status = run_tailerd("status", "--json", "--state-dir", state)
    assert json.loads(status.stdout)["duplicates_skipped"] == parent_turns
