"""What a new user met (fresh-user tryout): each is one clear line and a documented exit code,
or simply works — never an "internal error", a hang or a crash loop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

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


def _one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_reports_on_a_missing_or_empty_state_dir_say_so(tmp_path: Path) -> None:
    """Exit 66 and the path: not an empty table, not the user's default store."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for state in (tmp_path / "missing", empty):
        where = ("--state-dir", state, "--data-dir", state)
        for command in (["status"], ["dead-letters"]):
            _one_line(run_tailerd(*command, *where), 66, f"no tailerd state in {state}")
        _one_line(run_tailerd("sessions", *where), 66, f"no tailerd store at {state}")
        _one_line(run_tailerd("show", "s1", *where), 66, f"no tailerd store at {state}")


def test_a_file_where_a_directory_belongs(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s", "t"))
    _one_line(run_tailerd("status", "--state-dir", a_file), 78, f"state dir {a_file} is a file")
    _one_line(run_tailerd("sessions", "--state-dir", a_file), 78, f"state dir {a_file} is a file")
    as_data = ("--state-dir", tmp_path, "--data-dir", a_file)
    _one_line(run_tailerd("sessions", *as_data), 78, f"data dir {a_file} is a file")
    _one_line(run_tailerd("show", "x", *as_data), 78, f"data dir {a_file} is a file")
    _one_line(_once(logs, a_file), 78, f"cannot use state dir {a_file}")


def _as_nobody(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """tailerd as an unprivileged user: setpriv drops root and its capabilities."""
    cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    cmd += [sys.executable, "-m", "tailerd", *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=tailerd_env(), timeout=120, check=False
    )


def _shared_dir() -> Path:
    top = Path(tempfile.mkdtemp(prefix="tailerd-mishap-"))  # /tmp: reachable by that user
    top.chmod(0o755)
    return top


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_places_an_unprivileged_user_may_not_use_are_one_line_each() -> None:
    top = _shared_dir()
    try:
        logs = top / "logs"
        logs.mkdir()
        (logs / "a.jsonl").write_bytes(turn_line("s", "t"))
        logs.chmod(0o755)
        (logs / "a.jsonl").chmod(0o644)
        theirs = top / "theirs"  # root's, 0755: readable, not writable by nobody
        theirs.mkdir()
        theirs.chmod(0o755)
        mine = top / "mine"
        mine.mkdir()
        os.chown(mine, 65534, 65534)
        run = ("--watch", logs, "--once")
        _one_line(
            _as_nobody(*run, "--state-dir", mine / "s", "--data-dir", theirs),
            78,
            f"cannot use data dir {theirs}",
        )
        _one_line(
            _as_nobody(*run, "--state-dir", theirs / "s", "--data-dir", mine / "d"),
            78,
            f"cannot use state dir {theirs / 's'}",
        )
        config = top / "secret.toml"
        config.write_text("once_timeout = 5\n")
        config.chmod(0o600)
        _one_line(
            _as_nobody(*run, "--state-dir", mine / "s", "--config", config),
            78,
            f"cannot read config {config}",
        )
        # root's state and store (0600 files): reports say whose they are, not "corrupt"
        state = top / "state"
        assert _once(logs, state, "--data-dir", state).returncode == 0
        state.chmod(0o755)
        _one_line(_as_nobody("status", "--state-dir", state), 74, f"cannot read state dir {state}")
        _one_line(  # the record of its store is 0600 too: said, not guessed at
            _as_nobody("sessions", "--state-dir", state),
            74,
            f"cannot read state dir {state}: permission denied on {state / 'data-dir'}",
        )
        _one_line(
            _as_nobody("sessions", "--state-dir", state, "--data-dir", state),
            74,
            f"cannot read the local store {state / 'tailerd.db'}",
        )
    finally:
        shutil.rmtree(top)


def test_every_command_accepts_verbose_and_quiet(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))
    state = tmp_path / "s"
    assert _once(logs, state, "-q").returncode == 0
    where = ("--state-dir", state, "--data-dir", state)
    works = [["status"], ["sessions"], ["show", "s1"], ["dead-letters"], ["preview", logs]]
    depends = [["usage"], ["doctor"], ["service", "install", "--user", "--dry-run"]]
    runs: dict[tuple[str, str], list[str | Path]] = {  # all read-only: run side by side
        (str(c), flag): [*c, flag, *(() if c[0] == "service" else where)]
        for flag in ("-v", "-q")
        for c in (*works, *depends)
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(runs, pool.map(lambda a: run_tailerd(*a), runs.values()), strict=True))
    for c in works:
        for flag in ("-v", "-q"):
            result = done[str(c), flag]
            assert result.returncode == 0, (c, flag, result.stderr)
    for c in depends:  # commands whose outcome depends on the machine: flags accepted
        for flag in ("-v", "-q"):
            result = done[str(c), flag]
            assert "unrecognized arguments" not in result.stderr, (c, flag, result.stderr)
            assert "internal error" not in result.stderr, (c, flag, result.stderr)
    for flag in ("-v", "-q"):  # retry writes the state dir: one at a time
        result = run_tailerd("retry", *where, flag)
        assert result.returncode == 0, ("retry", flag, result.stderr)
    quiet = run_tailerd("--watch", logs, "--once", *where, "-q")
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr


def test_a_state_dir_reused_without_data_dir_keeps_its_store(tmp_path: Path) -> None:
    """Fresh-user review: a second `--once` with only --state-dir switched to the default store
    (sessions then showed 0 while checkpoints said all was sent). The recorded store is kept;
    a different --data-dir given later is used, recorded, and named in one INFO line."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):  # 3 sessions of one turn each, written by hand here
        (logs / f"s{n}.jsonl").write_bytes(turn_line(f"s{n}", "t"))
    home = tmp_path / "home"  # the default data dir must not be the user's real one

    def tailerd(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_tailerd(*args, HOME=str(home), XDG_DATA_HOME=str(home / "share"))

    state, first = tmp_path / "S" / "state", tmp_path / "S" / "A"
    args = ("--watch", logs, "--once", "--state-dir", state)
    assert tailerd(*args, "--data-dir", first).returncode == 0
    (logs / "s3.jsonl").write_bytes(turn_line("s3", "t"))  # a 4th session for the second run
    again = tailerd(*args, "-v")
    assert again.returncode == 0, again.stderr
    assert (state / "data-dir").read_text() == f"{first}\n"
    assert (state / "data-dir").stat().st_mode & 0o777 == 0o600
    assert not (home / "share" / "tailerd").exists()
    listed = tailerd("sessions", "--state-dir", state, "--json")
    assert len(json.loads(listed.stdout)) == 4, listed.stderr
    second = tmp_path / "S" / "B"
    moved = tailerd(*args, "--data-dir", second)
    assert moved.returncode == 0, moved.stderr
    assert f"now uses the local store in {second} (it used {first})" in moved.stderr
    assert (state / "data-dir").read_text() == f"{second}\n"


def test_retry_on_a_fresh_home_and_dead_letters_with_nothing_say_so(tmp_path: Path) -> None:
    """Fresh-user review: `retry` in a fresh home made the state dir and exited 0 where
    `dead-letters` exited 66; `dead-letters` with none printed nothing at all."""
    fresh = tmp_path / "fresh"
    _one_line(run_tailerd("retry", "--state-dir", fresh), 66, f"no tailerd state in {fresh}")
    assert not fresh.exists()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "t"))  # one good turn: no dead letter
    state = tmp_path / "s"
    assert _once(logs, state).returncode == 0
    listed = run_tailerd("dead-letters", "--state-dir", state)
    assert (listed.returncode, listed.stdout) == (0, f"no dead letters in {state}\n")
    as_json = run_tailerd("dead-letters", "--state-dir", state, "--json")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])
