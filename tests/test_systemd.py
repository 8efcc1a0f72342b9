"""systemd integration: sd_notify over a real datagram socket, and the shipped unit verifies."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, popen_tailerd


def receive_all(sock: socket.socket, until: str, timeout: float = 20.0) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(until in m for m in messages):
            break
    return messages


def test_ready_watchdog_and_stopping_reach_the_notify_socket(logs, tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        proc = popen_tailerd(
            "--watch",
            logs,
            "--state-dir",
            tmp_path / "s",
            "--data-dir",
            tmp_path / "s",
            NOTIFY_SOCKET=str(path),
            WATCHDOG_USEC="400000",
        )
        try:
            first = receive_all(sock, "READY=1")
            assert any(m.startswith("READY=1") and "STATUS=tailing 2 files" in m for m in first), (
                first
            )
            pings = receive_all(sock, "never", timeout=1.5)
            assert pings.count("WATCHDOG=1") >= 3  # every 0.2 s (half of WATCHDOG_USEC)
            proc.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in receive_all(sock, "STOPPING=1")
            assert proc.wait(timeout=20) == 0
        finally:
            proc.kill()
            proc.communicate()


def rendered_units(folder: Path) -> dict[str, Path]:
    """Both shipped units as `tailerd service install` writes them, with this venv's tailerd
    (systemd-analyze verify wants ExecStart to exist) and a home with a space in its name."""
    from tailerd import service_install as si

    executable = Path(sys.executable).parent / "tailerd"
    home = folder / "a home"
    user = si.render_user_unit(
        (si.templates_dir() / "tailerd-user.service").read_text(),
        executable,
        home / ".config" / "tailerd" / "tailerd.toml",
        home / ".local" / "state" / "tailerd",
        home / ".local" / "share" / "tailerd",
    )
    system = si.render_system_unit((si.templates_dir() / si.UNIT).read_text(), executable)
    units = {}
    for scope, text in (("user", user), ("system", system)):
        (folder / scope).mkdir()
        units[scope] = folder / scope / "tailerd.service"
        units[scope].write_text(text)
    return units


def analyze(scope: str, runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """systemd-analyze in the unit's own mode; --user needs an XDG_RUNTIME_DIR to start."""
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    mode = ["--user"] if scope == "user" else []
    return subprocess.run(
        ["systemd-analyze", *mode, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
    reason="systemd-analyze not installed",
)


@needs_analyze
@pytest.mark.parametrize("scope", ["user", "system"])
def test_shipped_units_pass_systemd_analyze_verify(tmp_path, scope):
    """Typos in a unit are only warnings to systemd, so any output at all fails this test."""
    unit = rendered_units(tmp_path)[scope]
    result = analyze(scope, tmp_path / "rt", "verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


# systemd-analyze security: exposure 0.0-0.9 PERFECT/SAFE, 1.0-4.9 OK, 5.0-6.9 MEDIUM, ... on a
# 0-10 scale (man systemd-analyze); --threshold compares exposure x 10 and fails above it.
OK_THRESHOLD = 49


# For the user unit: the built-in policy assumes root and scores the capabilities a unit keeps;
# a user service holds none, and a user manager cannot drop any (the unit would fail with
# 218/CAPABILITIES, see test_systemd_user_unit.py). This policy gives exactly those checks
# weight 0 (UserOrDynamicUser and the CapabilityBoundingSet_* family), every other one counts.
USER_POLICY = ROOT / "packaging" / "systemd" / "user-security-policy.json"


@needs_analyze
@pytest.mark.parametrize("scope", ["user", "system"])
def test_shipped_units_are_rated_ok_or_better(tmp_path, scope):
    unit = rendered_units(tmp_path)[scope]
    policy = [f"--security-policy={USER_POLICY}"] if scope == "user" else []
    result = analyze(
        scope,
        tmp_path / "rt",
        "security",
        "--offline=yes",
        *policy,
        f"--threshold={OK_THRESHOLD}",
        "--no-pager",
        str(unit),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = re.search(
        r"Overall exposure level for tailerd\.service: (\d+\.\d) (\w+)", result.stdout
    )
    assert verdict is not None, result.stdout
    assert float(verdict[1]) < 5.0
    assert verdict[2] in {"OK", "SAFE", "PERFECT"}


@pytest.mark.parametrize("use_libsystemd", [True, False])
def test_notifier_reaches_the_socket_with_or_without_libsystemd(
    tmp_path, monkeypatch, use_libsystemd
):
    """Both paths: systemd-python's sd_notify, and the plain datagram used without it."""
    from tailerd.edges import systemd as sd

    if not use_libsystemd:
        monkeypatch.setattr(sd, "_libsystemd", lambda: None)
    elif sd._libsystemd() is None:
        pytest.skip("systemd-python not installed")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n.sock"))
        notifier = sd.Notifier()
        notifier.ready("tailing 3 files")
        notifier.stopping()
        assert receive_all(sock, "STOPPING=1", timeout=5) == [
            "READY=1\nSTATUS=tailing 3 files",
            "STOPPING=1",
        ]
