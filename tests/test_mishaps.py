"""What a new user met (fresh-user tryout): each is one clear line and a documented exit code,
or simply works — never an "internal error", a hang or a crash loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_tailerd, tailerd_env
from tests.live_daemon import turn_line


def _once(logs: Path, state: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", state, *extra)


def _stored_turns(state: Path) -> int:
    result = run_tailerd("sessions", "--state-dir", state, "--data-dir", state, "--json")
    return sum(int(s["turns"]) for s in json.loads(result.stdout))


def test_a_first_line_longer_than_the_format_head_is_read(tmp_path: Path) -> None:
    """A first prompt with a 70 KB paste: detection reads the whole first line."""
    logs = tmp_path / "logs"
    logs.mkdir()
    record = {"type": "turn", "session_id": "t", "turn_id": "1"}
    record["messages"] = [{"role": "user", "content": "x" * 70_000}]
    (logs / "a.jsonl").write_text(json.dumps(record) + "\n")
    result = _once(logs, tmp_path / "s")
    assert result.returncode == 0, result.stderr
    assert _stored_turns(tmp_path / "s") == 1


def test_a_fifo_and_a_name_that_is_not_utf8_do_not_stop_the_others(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(logs / "fifo.jsonl")
    (Path(os.fsdecode(os.fsencode(logs) + b"/lat\xe9.jsonl"))).write_bytes(turn_line("s1", "a"))
    (logs / "ok.jsonl").write_bytes(turn_line("s2", "b"))
    result = _once(logs, tmp_path / "s")
    assert result.returncode == 0, result.stderr
    assert "not UTF-8" in result.stderr and "internal error" not in result.stderr
    assert _stored_turns(tmp_path / "s") == 1


def test_a_closed_pipe_ends_a_report_quietly(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(50):
        (logs / f"s{n}.jsonl").write_bytes(turn_line(f"s{n}", "t"))
    state = tmp_path / "s"
    assert _once(logs, state).returncode == 0
    cmd = [sys.executable, "-m", "tailerd", "sessions", "--state-dir", str(state)]
    cmd += ["--data-dir", str(state)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tailerd_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_config_endpoint_and_store_mishaps_are_one_line_each(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s", "t"))
    config = tmp_path / "c.toml"
    config.write_bytes(b"once_timeout = 5\n# caf\xe9\n")
    cases = [
        (_once(logs, tmp_path / "s1", "--config", config), 78, "is not UTF-8"),
        (_once(logs, tmp_path / "s2", "--sink", "otlp", "--otlp-endpoint", "http://[::1"), 78,
         "not a valid URL"),
        (_once(logs, tmp_path / "s3", "--data-dir", logs / "a.jsonl"), 78, "cannot use data dir"),
    ]  # fmt: skip
    state = tmp_path / "s4"
    state.mkdir()
    (state / "tailerd.db").write_bytes(b"garbage, not a database" * 100)
    cases.append((_once(logs, state), 65, "move it aside"))
    sessions = run_tailerd("sessions", "--state-dir", state, "--data-dir", state)
    cases.append((sessions, 65, "cannot read the local store"))
    for result, code, words in cases:
        assert (result.returncode, words in result.stderr) == (code, True), result.stderr
        assert "internal error" not in result.stderr and len(result.stderr.splitlines()) == 1
