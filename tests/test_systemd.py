"""systemd integration: sd_notify over a real datagram socket, and the shipped unit verifies."""

from __future__ import annotations

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


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_shipped_unit_passes_systemd_analyze_verify(tmp_path):
    """Typos in a unit are only warnings to systemd, so any output at all fails this test."""
    unit = (ROOT / "packaging" / "systemd" / "tailerd.service").read_text()
    tailerd_bin = Path(sys.executable).parent / "tailerd"
    unit = unit.replace("/opt/tailerd/venv/bin/tailerd", str(tailerd_bin))
    (tmp_path / "tailerd.service").write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "tailerd.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


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
