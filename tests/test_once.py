"""`tailerd --once` end to end, in a subprocess, with the real weave and a real OTLP receiver."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from pathlib import Path

from tests.conftest import run_tailerd
from tests.otlp_receiver import Receiver

# Hand count over examples/logs: weather-bot 3 turns (11 spans: 3 roots, 5 chat, 3 tool);
# research-agent 2 finished turns (t3 has no turn_end) with 8 spans (2 roots, 4 chat, 1 sub-agent
# with 1 chat + 1 tool nested under it).
EXAMPLE_TURNS = 5
EXAMPLE_SPANS = 11 + 8


def once(logs: Path, state: Path, *extra: str | Path):
    return run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", state, *extra)


def test_otlp_sends_every_finished_turn_once_then_nothing_then_only_new(
    logs, tmp_path, receiver: Receiver
):
    state = tmp_path / "state"
    result = once(logs, state, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert result.returncode == 0, result.stderr
    assert len(receiver.roots()) == EXAMPLE_TURNS
    assert len(receiver.spans) == EXAMPLE_SPANS
    assert len(set(receiver.span_ids())) == EXAMPLE_SPANS
    names = sorted({s["name"].split()[0] for s in receiver.spans})
    assert names == ["chat", "execute_tool", "invoke_agent"]
    for s in receiver.spans:
        root = next(r for r in receiver.roots() if r["trace_id"] == s["trace_id"])
        assert (
            s["attributes"]["gen_ai.conversation.id"]
            == root["attributes"]["gen_ai.conversation.id"]
        )
    assert {r["attributes"]["gen_ai.conversation.id"] for r in receiver.roots()} == {
        "wb-7f3a",
        "wb-91c2",
        "ra-0001",
    }
    assert all(
        r["headers"].get("content-type") == "application/x-protobuf" for r in receiver.requests
    )
    assert {s["resource"]["host.name"] for s in receiver.spans} == {socket.gethostname()}

    again = once(logs, state, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert again.returncode == 0, again.stderr
    assert len(receiver.spans) == EXAMPLE_SPANS  # nothing new

    with (logs / "research-agent" / "session-r1.jsonl").open("a") as fh:
        fh.write('{"type":"turn_end","session_id":"ra-0001","turn_id":"t3"}\n')
        fh.write(
            '{"type":"turn","session_id":"ra-0001","turn_id":"t4","messages":[{"role":"user","content":"x"}]}\n'
        )
    third = once(logs, state, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert third.returncode == 0, third.stderr
    new_roots = receiver.roots()[EXAMPLE_TURNS:]
    assert sorted(r["attributes"]["gen_ai.conversation.id"] for r in new_roots) == [
        "ra-0001",
        "ra-0001",
    ]
    assert len(receiver.spans) == EXAMPLE_SPANS + 3  # t3: root + chat; t4: root


def test_endpoint_from_standard_environment_variable(logs, tmp_path, receiver: Receiver):
    base = receiver.url.removesuffix("/v1/traces")
    result = run_tailerd(
        "--watch",
        logs,
        "--once",
        "--state-dir",
        tmp_path / "s",
        "--sink",
        "otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=base,
        OTEL_EXPORTER_OTLP_HEADERS="x-team=agents%20ops",
    )
    assert result.returncode == 0, result.stderr
    assert len(receiver.roots()) == EXAMPLE_TURNS
    assert receiver.requests[0]["headers"]["x-team"] == "agents ops"


def test_partial_last_line_is_sent_only_once_complete(tmp_path, receiver: Receiver):
    logs = tmp_path / "logs"
    logs.mkdir()
    turn = {"type": "turn", "session_id": "p", "turn_id": "1", "messages": [{"role": "user"}]}
    line = json.dumps(turn) + "\n"
    (logs / "a.jsonl").write_text(line + line.replace('"1"', '"2"')[:40])
    args = ("--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert once(logs, tmp_path / "s", *args).returncode == 0
    assert len(receiver.roots()) == 1
    with (logs / "a.jsonl").open("a") as fh:
        fh.write(line.replace('"1"', '"2"')[40:])
    assert once(logs, tmp_path / "s", *args).returncode == 0
    assert len(receiver.roots()) == 2
    assert len(set(receiver.span_ids())) == 2


def test_invalid_line_is_a_dead_letter_and_later_turns_are_delivered(tmp_path, receiver: Receiver):
    logs = tmp_path / "logs"
    logs.mkdir()
    good = '{"type":"turn","session_id":"d","turn_id":"%d"}\n'
    (logs / "a.jsonl").write_text((good % 1) + "{oops\n" + (good % 2))
    state = tmp_path / "s"
    result = once(logs, state, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert result.returncode == 0
    assert len(receiver.roots()) == 2
    assert "dead letter" in result.stderr and "invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    letters = run_tailerd("dead-letters", "--state-dir", state, "--json")
    [letter] = json.loads(letters.stdout)
    assert (letter["start"], letter["end"]) == (len(good % 1), len(good % 1) + 6)
    status = json.loads(run_tailerd("status", "--state-dir", state, "--json").stdout)
    [entry] = status["files"]
    assert (entry["turns_emitted"], entry["dead_letters"], entry["lag_bytes"]) == (2, 1, 0)


def test_local_store_sessions_and_show(logs, tmp_path):
    state = tmp_path / "state"
    assert once(logs, state).returncode == 0
    assert (
        once(logs, state, "--state-dir", tmp_path / "fresh").returncode == 0
    )  # re-sent: stored once
    sessions = json.loads(
        run_tailerd("sessions", "--state-dir", state, "--data-dir", state, "--json").stdout
    )
    by_id = {s["session_id"]: s for s in sessions}
    # Hand-summed from examples/logs: wb-7f3a 100+140+180+210 in, 20+12+18+10 out.
    assert (
        by_id["wb-7f3a"]["turns"],
        by_id["wb-7f3a"]["input_tokens"],
        by_id["wb-7f3a"]["output_tokens"],
    ) == (2, 630, 60)
    assert (by_id["ra-0001"]["turns"], by_id["ra-0001"]["agent"]) == (2, "research-agent")
    assert by_id["wb-91c2"]["first"] == "2026-11-24T11:30:00Z"
    shown = run_tailerd("show", "ra-0001", "--state-dir", state, "--data-dir", state)
    assert shown.returncode == 0
    assert "user: Which log shippers checkpoint" in shown.stdout
    assert (
        "    llm: claude-haiku-4-5: in 3000, out 150" in shown.stdout
    )  # nested under the sub-agent (tests/test_reports.py checks the view itself)
    turns = json.loads(
        run_tailerd("show", "ra-0001", "--state-dir", state, "--data-dir", state, "--json").stdout
    )
    assert [len(t["children"]) for t in turns] == [3, 1]
    db = state / "tailerd.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "checkpoints.db").stat().st_mode) == 0o600
    missing = run_tailerd("show", "nope", "--state-dir", state, "--data-dir", state)
    assert missing.returncode == 66  # EX_NOINPUT: no such session


def test_import_adds_nothing_to_what_was_tailed(logs, tmp_path, receiver: Receiver):
    state = tmp_path / "state"
    assert once(logs, state, "--sink", "otlp", "--otlp-endpoint", receiver.url).returncode == 0
    tailed = set(receiver.span_ids())
    result = run_tailerd(
        "import",
        logs,
        "--state-dir",
        tmp_path / "other",
        "--sink",
        "otlp",
        "--otlp-endpoint",
        receiver.url,
    )
    assert result.returncode == 0, result.stderr
    assert set(receiver.span_ids()) == tailed
    assert len(receiver.span_ids()) == 2 * len(tailed)  # sent again, with exactly the same ids


def test_config_errors_are_one_line_and_exit_78(tmp_path):
    (tmp_path / "a-file").write_text("")
    cases = [
        ("--watch", tmp_path / "a-file"),  # a missing root is waited for: tests/test_watch_roots.py
        ("--bogus",),
        ("--watch", tmp_path, "--sink", "otlp"),
        ("--watch", tmp_path, "--config", tmp_path / "nope.toml"),
    ]
    for args in cases:
        result = run_tailerd(*args, "--state-dir", tmp_path / "s")
        assert result.returncode == 78, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("tailerd: "), (
            result.stderr
        )
    bad = tmp_path / "bad.toml"
    bad.write_text("rescan_interval = -1\n")
    result = run_tailerd("--watch", tmp_path, "--config", bad, "--state-dir", tmp_path / "s")
    assert result.returncode == 78 and "rescan_interval" in result.stderr


def test_second_tailerd_on_the_same_state_dir_is_refused(logs, tmp_path):
    import fcntl

    state = tmp_path / "state"
    state.mkdir()
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = once(logs, state)
    finally:
        os.close(fd)
    assert result.returncode == 75
    assert "another tailerd (pid 4242)" in result.stderr


def test_corrupt_checkpoint_is_reported_not_reset(logs, tmp_path):
    state = tmp_path / "state"
    assert once(logs, state, "--sink", "console").returncode == 0
    garbage = b"not a database, whatever it once was\n" * 200
    (state / "checkpoints.db").write_bytes(garbage)
    result = once(logs, state, "--sink", "console")
    assert result.returncode == 65
    assert "move it aside" in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert (state / "checkpoints.db").read_bytes() == garbage  # never reset


def test_custom_jsonl_by_configuration_only(tmp_path, receiver: Receiver):
    """The README's worked example: 3 turns (hand count of examples/custom), 1 dead letter."""
    root = Path(__file__).resolve().parents[1]
    result = run_tailerd(
        "--watch",
        root / "examples" / "custom",
        "--config",
        root / "config" / "custom-agent.example.toml",
        "--once",
        "--sink",
        "otlp",
        "--otlp-endpoint",
        receiver.url,
        "--state-dir",
        tmp_path / "s",
    )
    assert result.returncode == 0, result.stderr
    roots = receiver.roots()
    assert [r["attributes"]["gen_ai.agent.name"] for r in roots] == ["helpdesk-bot"] * 3
    assert "1 dead letters" in result.stderr


def test_shipped_example_config_is_valid(tmp_path):
    root = Path(__file__).resolve().parents[1]
    text = (root / "config" / "tailerd.toml").read_text().replace("/var/log/agents", str(tmp_path))
    cfg = tmp_path / "tailerd.toml"
    cfg.write_text(text)
    result = run_tailerd(
        "--config", cfg, "--once", "--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s"
    )
    assert result.returncode == 0, result.stderr


def test_status_shows_a_failing_sink_and_what_is_pending(logs, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("once_timeout = 1.0\n")
    state = tmp_path / "s"
    result = once(
        logs,
        state,
        "--config",
        cfg,
        "--sink",
        "otlp",
        "--otlp-endpoint",
        "http://127.0.0.1:9/v1/traces",
    )
    assert result.returncode == 75  # turns left unacknowledged
    # Sends run on the sink's worker, so the example's few turns may all be read before the
    # first failure comes back (test_delivery.py shows reading pausing during an outage).
    [held] = re.findall(r"(\d+) unacknowledged", result.stderr)
    assert 1 <= int(held) <= EXAMPLE_TURNS
    status = json.loads(run_tailerd("status", "--state-dir", state, "--json").stdout)
    otlp = status["sinks"]["otlp"]
    assert (otlp["delivered"], otlp["pending"]) == (0, int(held))
    assert otlp["failing_since"] is not None and "127.0.0.1:9" in otlp["last_error"]
    assert {f["offset"] for f in status["files"]} == {0}  # nothing acknowledged, nothing committed
    text = run_tailerd("status", "--state-dir", state).stdout
    assert f"sink otlp: delivered=0 pending={held} rejected=0 retrying since" in text
