"""Refused turns are retried on demand; a file deleted while its turns are unsent is drained;
`preview` shows what would be sent without sending it."""

from __future__ import annotations

import json
import os

from tests.conftest import run_tailerd
from tests.live_daemon import LABEL, append, labels, otlp_daemon, poll, turn_line
from tests.otlp_receiver import Receiver


def test_retry_resends_refused_turns_once_the_backend_accepts_them(tmp_path, receiver: Receiver):
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(b"".join(turn_line("s", f"t{i}") for i in range(4)))
    receiver.reject_if = lambda span: span["attributes"].get(LABEL) == "t1"
    args = ("--sink", "otlp", "--otlp-endpoint", receiver.url, "--state-dir", state)
    first = run_tailerd("--watch", logs, "--once", *args)
    assert first.returncode == 0, first.stderr
    assert sorted(labels(receiver)) == ["t0", "t2", "t3"]  # t1 did not block the others
    [letter] = json.loads(run_tailerd("dead-letters", "--state-dir", state, "--json").stdout)
    assert (letter["kind"], letter["sink"], letter["key"]) == ("turn", "otlp", "native|s|t1")

    receiver.reject_if = None  # the cause is fixed
    retried = run_tailerd("retry", *args)
    assert retried.returncode == 0, retried.stderr
    assert sorted(labels(receiver)) == ["t0", "t1", "t2", "t3"]
    assert json.loads(run_tailerd("dead-letters", "--state-dir", state, "--json").stdout) == []
    again = run_tailerd("retry", *args)
    assert again.returncode == 0 and "no refused turns" in again.stderr
    assert sorted(labels(receiver)) == ["t0", "t1", "t2", "t3"]


def test_file_deleted_while_its_turns_are_unsent_is_drained(tmp_path, receiver: Receiver):
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    path = logs / "a.jsonl"
    path.write_bytes(turn_line("s", "t0"))
    daemon = otlp_daemon(logs, state, receiver.url)
    try:
        assert poll(lambda: labels(receiver) == ["t0"], timeout=10) is not None, daemon.log
        receiver.script = [503] * 3  # the backend fails for a while...
        append(path, turn_line("s", "t1") + turn_line("s", "t2"))
        assert poll(lambda: len(receiver.requests) >= 2, timeout=10) is not None, daemon.log
        os.unlink(path)  # ...while retention deletes the file
        assert poll(lambda: sorted(labels(receiver)) == ["t0", "t1", "t2"], timeout=20), daemon.log
        code, _ = daemon.terminate(timeout=20)
        assert code == 0
    finally:
        daemon.stop()


def test_preview_shows_redacted_spans_and_sends_nothing(tmp_path, receiver: Receiver):
    path = tmp_path / "a.jsonl"
    secret = "ghp_" + "Zq8vN2xR5tY7uW1sA3dF6gH9jK0lP4oI2eU5"
    prompt = f"push with {secret} please"
    turn = {"type": "turn", "session_id": "s", "messages": [{"role": "user", "content": prompt}]}
    path.write_text(json.dumps(turn) + "\n")
    result = run_tailerd("preview", path, "--state-dir", tmp_path / "s")
    assert result.returncode == 0, result.stderr
    [root] = [json.loads(line) for line in result.stdout.splitlines()]
    assert root["attributes"]["gen_ai.conversation.id"] == "s"
    assert "[REDACTED:github_token]" in root["attributes"]["gen_ai.input.messages"]
    assert secret not in result.stdout + result.stderr
    assert "github_token=1" in result.stderr
    assert receiver.requests == []


def test_reading_pauses_while_the_sink_is_down(tmp_path, receiver: Receiver):
    """The log file is the buffer: turns are not read into memory while delivery fails."""
    logs, state = tmp_path / "logs", tmp_path / "s"
    logs.mkdir()
    path = logs / "a.jsonl"
    path.write_bytes(turn_line("s", "t0"))
    daemon = otlp_daemon(logs, state, receiver.url)
    try:
        # generous waits (a loaded machine): each poll returns as soon as its condition holds
        assert poll(lambda: labels(receiver) == ["t0"], timeout=60) is not None, daemon.log
        receiver.script = [503] * 4
        append(path, turn_line("s", "t1"))
        assert poll(lambda: len(receiver.requests) >= 3, timeout=60) is not None, daemon.log
        backlog = b"".join(turn_line("s", f"t{i}") for i in range(2, 200))
        append(path, backlog)
        status = json.loads(run_tailerd("status", "--state-dir", state, "--json").stdout)
        assert poll(lambda: json.loads((state / "status.json").read_text())["sinks"]["otlp"]
                    ["failing_since"] is not None, timeout=60) is not None  # fmt: skip
        live = json.loads((state / "status.json").read_text())
        [file_status] = live["files"].values()
        assert file_status["pending_turns"] == 1  # only t1 is held in memory
        assert file_status["read"] < path.stat().st_size - len(backlog) + 1
        assert status["files"][0]["lag_bytes"] >= len(backlog)
        expected = {f"t{i}" for i in range(200)}
        assert poll(lambda: set(labels(receiver)) == expected, timeout=180), daemon.log
        assert len(labels(receiver)) == 200
    finally:
        daemon.stop()
