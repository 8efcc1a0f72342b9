"""`tailerd doctor` on a real home: agent homes found with their files and detected format,
sinks probed for real (a live OTLP receiver, a dead port), state dir permissions, limits."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from tailerd import agent_homes, doctor
from tailerd.settings import Settings
from tests.conftest import run_tailerd
from tests.otlp_receiver import Receiver

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "agents"
CLAUDE = FIXTURES / "claude-code" / "Mai0313-VibeCodingTracker" / "claude_code-1.0.95.jsonl"


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    project = home / ".claude" / "projects" / "-work-app"
    project.mkdir(parents=True)
    shutil.copy(CLAUDE, project / "s1.jsonl")
    shutil.copy(CLAUDE, project / "s2.jsonl")
    return home


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_reports_homes_sinks_state_and_limits(tmp_path: Path, receiver: Receiver) -> None:
    home = _home(tmp_path)
    codex_home = tmp_path / "elsewhere" / "codex"  # CODEX_HOME set, nothing written there yet
    env = {"CODEX_HOME": str(codex_home)}
    roots = agent_homes.roots(["claude-code", "codex"], env, home)
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    settings = Settings(sinks=("local", "otlp"), otlp_endpoint=receiver.url)

    checks = doctor.run(settings, state, tmp_path / "data", roots)
    lines = [c.line() for c in checks]
    by_what = {c.what: c for c in checks}

    claude = by_what[f"claude-code {home / '.claude/projects'}"]
    size = 2 * CLAUDE.stat().st_size  # two copies of the fixture
    assert claude.level == "ok"
    assert "2 files," in claude.detail and "format claude-code" in claude.detail, claude.detail
    assert f"{size / 1000:.1f} KB" in claude.detail or f"{size / 1e6:.1f} MB" in claude.detail
    codex = by_what[f"codex {codex_home / 'sessions'} (from $CODEX_HOME)"]
    assert codex.level == "ok" and "not here" in codex.detail
    assert by_what["sink otlp"].level == "ok"
    assert len(receiver.requests) == 1 and receiver.spans == []  # a real, empty export request
    assert by_what["sink local"].level == "ok"
    assert not (tmp_path / "data").exists()  # doctor looks; it creates no store
    assert by_what[f"state dir {state}"].level == "warn"  # 0755: others can read checkpoints
    assert {"descriptors", "inotify", "weave"} <= set(by_what), lines


def test_doctor_fails_an_unreachable_sink_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_dead_port()}/v1/traces"
    settings = Settings(sinks=("otlp",), otlp_endpoint=url)
    checks = doctor.run(settings, tmp_path / "state", tmp_path / "data", [])
    otlp = next(c for c in checks if c.what == "sink otlp")
    assert otlp.level == "fail"
    assert "Connection refused" in otlp.detail and "\n" not in otlp.line()
    assert any(c.what == "transcripts" and c.level == "warn" for c in checks)


def test_doctor_with_watch_checks_what_the_daemon_would_watch(tmp_path: Path) -> None:
    """`doctor --watch DIR` listed every agent home too, though a daemon given --watch watches
    only DIR; zero-config doctor notes the project-local databases it cannot find."""
    home = _home(tmp_path)  # a Claude Code home with 2 sessions
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(CLAUDE, logs / "s.jsonl")
    where = ("--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s", "--json")
    env = {"HOME": str(home)}
    given = json.loads(run_tailerd("doctor", "--watch", logs, *where, **env).stdout)
    roots = [c["check"] for c in given if c["check"].startswith(("watch ", "claude-code "))]
    assert roots == [f"watch {logs}"]
    assert not any(c["check"] == "project databases" for c in given)
    zero = json.loads(run_tailerd("doctor", *where, **env).stdout)
    assert f"claude-code {home / '.claude/projects'}" in [c["check"] for c in zero]
    (note,) = [c for c in zero if c["check"] == "project databases"]
    assert note["level"] == "note" and ".crush/crush.db" in note["detail"]
    assert ".opencode/opencode.db" in note["detail"] and "--watch" in note["detail"]
