"""The fleet's shipped pieces, run for real where they can be: the DaemonSet's configuration
passes `tailerd check-config`, and its liveness probe command answers for a running, a hung and
a stopped daemon. (No container runtime or cluster here: the image is not built.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_tailerd
from tests.live_daemon import RunningTailerd, poll

ROOT = Path(__file__).resolve().parent.parent
DAEMONSET = ROOT / "packaging" / "kubernetes" / "daemonset.yaml"


def _documents() -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    return [d for d in yaml.safe_load_all(DAEMONSET.read_text()) if d]


def _kind(kind: str) -> dict[str, Any]:
    return next(d for d in _documents() if d["kind"] == kind)


def test_the_daemonsets_configuration_passes_check_config(tmp_path: Path) -> None:
    config = tmp_path / "tailerd.toml"
    config.write_text(_kind("ConfigMap")["data"]["tailerd.toml"])
    result = run_tailerd("check-config", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "otel-gateway" in result.stdout
    # The liveness probe needs heartbeats more often than it looks.
    tomllib = pytest.importorskip("tomllib")
    beat = tomllib.loads(config.read_text())["heartbeat_interval"]
    probe = _probe(tmp_path)
    assert 0 < beat < float(probe[probe.index("--alive") + 1])


def test_the_daemonset_reads_logs_read_only_and_keeps_ids_stable() -> None:
    pod = _kind("DaemonSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["logs"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"]["hostPath"]["path"] == mounts["state"]["mountPath"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TAILERD_HOST_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert container["securityContext"]["runAsNonRoot"] is True


def _probe(state: Path) -> list[str]:
    """The DaemonSet's liveness command, pointed at `state` and this checkout's tailerd."""
    command = list(_kind("DaemonSet")["spec"]["template"]["spec"]["containers"][0]
                   ["livenessProbe"]["exec"]["command"])  # fmt: skip
    assert command[0] == "tailerd"
    at = command.index("--state-dir")
    command[at + 1] = str(state)
    return command[1:]


def test_the_liveness_probe_tells_running_hung_and_stopped_apart(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    config = tmp_path / "c.toml"
    config.write_text("heartbeat_interval = 1.0\n")
    probe = _probe(state)
    probe[probe.index("--alive") + 1] = "5"  # the shipped 120 s, shortened for the test

    daemon = RunningTailerd(
        "--watch", logs, "--state-dir", state, "--data-dir", state, "--config", config
    )
    try:
        ok = poll(lambda: run_tailerd(*probe).returncode == 0, timeout=60, every=0.5)
        assert ok is not None, daemon.log
        time.sleep(6.5)  # idle for longer than the probe's window: the heartbeat keeps it alive
        idle = run_tailerd(*probe)
        assert idle.returncode == 0, idle.stderr
        os.kill(daemon.proc.pid, signal.SIGSTOP)  # hung: holds the lock, beats no more
        time.sleep(6.5)
        hung = run_tailerd(*probe)
        assert hung.returncode == 1 and "last heartbeat" in hung.stderr, hung.stderr
        os.kill(daemon.proc.pid, signal.SIGCONT)
        assert daemon.terminate(timeout=30)[0] == 0
        stopped = run_tailerd(*probe)
        assert stopped.returncode == 1 and "lock is free" in stopped.stderr
    finally:
        if daemon.proc.poll() is None:
            os.kill(daemon.proc.pid, signal.SIGCONT)
        daemon.stop()
