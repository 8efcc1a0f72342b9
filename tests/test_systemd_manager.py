"""tailerd as a service of a REAL systemd manager, with the shipped unit and its hardening.

PID 1 here is not systemd, so a `systemd --user` manager runs in private mount and PID namespaces
(`tests/systemd/user_manager.py` under `unshare --mount --pid --fork --mount-proc`, route A of the
platform notes). It needs root, util-linux `unshare` and /lib/systemd/systemd: without them the
tests skip, except in CI (CI=true), where they fail.

The system unit is packaging/systemd/tailerd.service as `tailerd service install --system`
renders it (ExecStart runs this venv's tailerd), with only these changes:
- its `--config /etc/tailerd/tailerd.toml` names a tmp config whose `watch` is the tmp logs (what
  is watched is written in the config alone; the unit names no log directory), and a test may
  append flags (no --state-dir: the state and the local store go to $STATE_DIRECTORY);
- DynamicUser= and PrivateTmp= are dropped. platform-notes.md 1g bisected them to 226/NAMESPACE
  under this user manager; re-measured with today's unit (test_the_lines_a_user_manager_cannot_run)
  DynamicUser= fails with 203/EXEC (the dynamic user cannot reach this venv's interpreter under
  /root) and PrivateTmp= is applied but hides the test's files in /tmp. Under a system manager
  DynamicUser= runs the service as its own unprivileged uid; here it runs as root, which is why
  the SQLite fchown defect below showed;
- StandardError= appends to a file: there is no journald in the namespace to read the log from.
Type=notify, WatchdogSec, ExecReload, Restart=on-failure, RestartPreventExitStatus=78, LimitNOFILE,
StateDirectoryMode, UMask and all other hardening (ProtectSystem=strict, ProtectHome=yes,
PrivateMounts, SystemCallFilter, MemoryDenyWriteExecute, CapabilityBoundingSet=, ...) stay as
shipped. A user manager of systemd 252 puts StateDirectory= under $XDG_CONFIG_HOME (newer ones
under $XDG_STATE_HOME); both point into tmp_path.

The user unit is exactly what `tailerd service install --user` writes and enables, run here with
a temp HOME and XDG dirs (only a drop-in is added, for StandardError=, as above).

Running as root under this unit found a real defect: SQLite fchown()s its -wal/-shm files when
euid is 0, fchown is in ~@privileged, and the seccomp filter killed tailerd with SIGSYS at its
first write (Result=signal, ExecMainStatus=31). The shipped unit now sets
SystemCallErrorNumber=EPERM.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd.harness import (
    TAILERD,
    UserManager,
    access_mode,
    manager_in,
    proc_status,
    sessions,
    wait_for,
)

pytestmark = pytest.mark.slow

SHIPPED_UNIT = ROOT / "packaging" / "systemd" / "tailerd.service"
# Not runnable in this test (measured: 203/EXEC and a hidden /tmp); see the module docstring.
DROPPED = ("DynamicUser", "PrivateTmp")
# Hand counts over examples/logs: finished turns per session (ra-0001's t3 has no turn_end yet).
EXAMPLE_SESSIONS = {"wb-7f3a": 2, "wb-91c2": 1, "ra-0001": 2}
T3_END = '{"type":"turn_end","session_id":"ra-0001","turn_id":"t3"}\n'


def system_unit(logs: Path, stderr_log: Path, *args: str) -> str:
    """The shipped system unit as installed, changed only as the module docstring says."""
    from tailerd.service_install import SYSTEM_CONFIG, render_system_unit

    shipped = SHIPPED_UNIT.read_text()
    assert "/var/log/agents" not in "\n".join(
        line for line in shipped.splitlines() if not line.startswith("#")
    ), "the watched directory belongs in the config file alone"
    config = stderr_log.with_suffix(".toml")
    config.write_text(f'watch = ["{logs}"]\n')
    installed = render_system_unit(shipped, TAILERD)
    seen = dict.fromkeys((*DROPPED, "ExecStart"), 0)
    lines = []
    for line in installed.splitlines():
        key = line.partition("=")[0]
        if key in seen:
            seen[key] += 1
        if key == "ExecStart":
            assert line == f"ExecStart={TAILERD} --config {SYSTEM_CONFIG}", line
            lines.append(" ".join([f"ExecStart={TAILERD}", "--config", str(config), *args]))
        elif key not in DROPPED:
            lines.append(line)
    assert set(seen.values()) == {1}, f"the shipped unit changed shape: {seen}"
    service_end = lines.index("[Install]")
    lines.insert(service_end, f"StandardError=append:{stderr_log}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[UserManager]:
    yield from manager_in(tmp_path / "sd")


def test_tailerd_runs_hardened_under_a_real_systemd_manager(
    manager: UserManager, logs: Path, tmp_path: Path
) -> None:
    err = tmp_path / "tailerd.stderr"
    manager.install("tailerd", system_unit(logs, err, "--sink", "local"))

    manager.start("tailerd", err)
    # Type=notify: `start` returns once READY=1 came, and STATUS= rides on the same datagram.
    expected = {
        "Type": "notify",
        "ActiveState": "active",
        "SubState": "running",
        "StatusText": "tailing 2 files",
        "Result": "success",
        "NRestarts": "0",
        "WatchdogUSec": "30s",
    }
    shown = manager.show("tailerd", *expected, "MainPID")
    pid = shown.pop("MainPID")
    assert shown == expected

    # The hardening is in force in the running process, not only written in the unit.
    status = proc_status(manager, pid)
    hardened = {"Seccomp": "2", "NoNewPrivs": "1", "CapBnd": "0000000000000000"}
    assert {k: status[k] for k in hardened} == hardened
    state = manager.state_dir()
    assert access_mode(manager, pid, Path("/usr")) == "ro"  # ProtectSystem=strict
    assert access_mode(manager, pid, logs) == "ro"  # ProtectSystem=strict
    assert access_mode(manager, pid, state) == "rw"  # StateDirectory

    wait_for("the example turns", lambda: sessions(state), lambda seen: seen == EXAMPLE_SESSIONS)
    with (logs / "research-agent" / "session-r1.jsonl").open("a") as fh:
        fh.write(T3_END)
    appended = {**EXAMPLE_SESSIONS, "ra-0001": 3}
    wait_for("the appended turn", lambda: sessions(state), lambda seen: seen == appended)

    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in state.iterdir()}
    assert {"lock", "checkpoints.db", "tailerd.db"} <= modes.keys()
    assert set(modes.values()) == {"0o600"}, modes

    stopped = manager.systemctl("stop", "tailerd")
    assert stopped.rc == 0, stopped.stderr
    shown = manager.show("tailerd", "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert shown == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainStatus": "0",
        "NRestarts": "0",
    }
    log = err.read_text()
    assert f"watching {logs}; sinks local" in log
    assert "done: 2 files, 6 turns emitted, 0 duplicates skipped, 0 dead letters" in log, log
    assert ", 0 unacknowledged," in log, log


def test_config_error_is_not_restarted_but_a_locked_state_dir_is(
    manager: UserManager, logs: Path, tmp_path: Path
) -> None:
    """RestartPreventExitStatus=78 stops Restart=on-failure for a bad flag, and only for it: a
    second unit on the same StateDirectory exits 75 (state dir locked) and is restarted."""
    manager.install("tailerd", system_unit(logs, tmp_path / "main.stderr", "--sink", "local"))
    manager.install(
        "tailerd-bogus", system_unit(logs, tmp_path / "bogus.stderr", "--sink", "bogus")
    )
    manager.install(
        "tailerd-second", system_unit(logs, tmp_path / "second.stderr", "--sink", "local")
    )

    manager.start("tailerd", tmp_path / "main.stderr")
    bogus = manager.systemctl("start", "tailerd-bogus")
    assert bogus.rc != 0  # it exited before READY=1
    failed_at = time.monotonic()
    assert manager.systemctl("start", "tailerd-second").rc != 0
    second = manager.show("tailerd-second", "SubState", "ExecMainStatus")
    assert second == {"SubState": "auto-restart", "ExecMainStatus": "75"}
    assert "another tailerd" in (tmp_path / "second.stderr").read_text()

    # Restart=on-failure waits RestartSec=5s; once the second unit was restarted, the bad one has
    # been failed for longer than that.
    def restarts() -> str:
        return manager.show("tailerd-second", "NRestarts")["NRestarts"]

    wait_for("a restart of the locked-out unit", restarts, lambda n: n != "0")
    assert time.monotonic() - failed_at > 5

    shown = manager.show("tailerd-bogus", "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert shown == {
        "ActiveState": "failed",
        "Result": "exit-code",
        "ExecMainStatus": "78",
        "NRestarts": "0",
    }
    assert "invalid choice: 'bogus'" in (tmp_path / "bogus.stderr").read_text()

    assert manager.systemctl("stop", "tailerd-second", "tailerd").rc == 0
    assert manager.show("tailerd", "Result")["Result"] == "success"


@pytest.mark.parametrize(
    ("line", "status"),
    [
        # The dynamic user cannot execute this venv's interpreter: it lives under /root (0700,
        # pyenv), so DynamicUser= cannot be exercised with it whatever the manager (203 = EXEC).
        ("DynamicUser=yes", "203"),
        # PrivateTmp= is applied here (platform-notes 1g measured 226/NAMESPACE with the older
        # unit), but the service then sees its own empty /tmp: the test's config in tmp_path is
        # gone and tailerd stops with its configuration error (78).
        ("PrivateTmp=yes", "78"),
    ],
)
def test_the_lines_a_user_manager_cannot_run(
    manager: UserManager, logs: Path, tmp_path: Path, line: str, status: str
) -> None:
    """Why DROPPED is dropped, measured rather than assumed: the tested unit with one of them
    back does not start, for the reason given beside each. (A system manager with tailerd in
    /opt or /usr applies both; route B of platform-notes.md 1g ran the full unit, DynamicUser
    included, under systemd-nspawn.)"""
    err = tmp_path / "tailerd.stderr"
    text = system_unit(logs, err, "--sink", "local").replace("[Service]\n", f"[Service]\n{line}\n")
    manager.install("tailerd", text)
    assert manager.systemctl("start", "tailerd").rc != 0
    shown = manager.show("tailerd", "Result", "ExecMainStatus")
    assert shown == {"Result": "exit-code", "ExecMainStatus": status}
