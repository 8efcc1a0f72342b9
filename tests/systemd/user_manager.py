"""Host a `systemd --user` manager in private mount and PID namespaces, and run commands beside it.

Run as root under `unshare --mount --pid --fork --mount-proc` (this process is PID 1 of the new
PID namespace). A user manager refuses to start unless /run/systemd/system exists (sd_booted());
a tmpfs over /run/systemd creates it without touching the host's /run, since unshare makes the
new mount namespace private.

Protocol, one JSON document per line: once the manager answers, print {"ready": seconds}; then
for each line {"argv": [...], "timeout": s} on stdin, run argv here (so `systemctl --user` reaches
this manager) and print {"rc", "stdout", "stderr", "seconds"}. On EOF, SIGTERM or SIGINT: stop the
manager and exit; the kernel then kills whatever is left in the PID namespace.

The manager's output goes to the file named by argv[1]. The caller sets XDG_RUNTIME_DIR,
XDG_CONFIG_HOME and XDG_STATE_HOME.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

SYSTEMD = "/lib/systemd/systemd"
START_TIMEOUT = 15.0


def mount_run_systemd() -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/systemd"], check=True)
    Path("/run/systemd/system").mkdir()


def start_manager(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [SYSTEMD, "--user", "--log-target=console", "--log-level=info"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until_answering(manager: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if manager.poll() is not None:
            raise SystemExit(f"systemd --user exited with {manager.returncode}")
        probe = subprocess.run(
            ["systemctl", "--user", "is-system-running"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if probe.stdout.strip() in {"running", "degraded"}:
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"systemd --user did not come up in {START_TIMEOUT:.0f} s")


def run(request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            request["argv"],
            capture_output=True,
            text=True,
            timeout=request.get("timeout", 20),
            check=False,
        )
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        rc, stdout, stderr = None, "", "timed out"
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "seconds": time.monotonic() - started}


def stop(manager: subprocess.Popen[bytes]) -> None:
    manager.terminate()
    try:
        manager.wait(timeout=10)
    except subprocess.TimeoutExpired:
        manager.kill()
        manager.wait()


def reply(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def main() -> int:
    if os.getpid() != 1:
        raise SystemExit("run me under: unshare --mount --pid --fork --mount-proc")

    def leave(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(1)

    # PID 1 ignores signals it has no handler for; `timeout` must be able to end this.
    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    mount_run_systemd()
    manager = start_manager(Path(sys.argv[1]))
    try:
        reply({"ready": wait_until_answering(manager)})
        for line in sys.stdin:
            reply(run(json.loads(line)))
    finally:
        stop(manager)
    return 0


if __name__ == "__main__":
    sys.exit(main())
