"""Start units under a `systemd --user` manager run by a NORMAL user, and report how they fared.

Run as root under `unshare --mount --pid --fork --mount-proc` (PID 1 of a new PID namespace):
    unprivileged_manager.py UID BASE < units.json > results.json
units.json is a list of {"name": ..., "unit": text}. BASE is a directory the user owns, holding
the manager's XDG dirs and the HOME it gives its services.

As in user_manager.py, a tmpfs over /run/systemd creates /run/systemd/system. A normal user's
manager also needs a cgroup of its own (user@.service delegates one): a cgroup is made under the
root of each writable hierarchy (cgroup v2, or the hybrid layout's `unified` and `systemd`),
given to UID, and this process moved into it; the cgroups are removed at the end.

For each unit: start it, read Result and ExecMainStatus, and from /proc/PID/status the fields
NoNewPrivs, Seccomp, CapEff and CapBnd; then stop it. The reply is one JSON list on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SYSTEMD = "/lib/systemd/systemd"


def delegate(uid: int, name: str) -> list[Path]:
    roots = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # pure cgroup v2
        roots = [Path("/sys/fs/cgroup")]
    made = []
    for root in roots:
        if not root.is_dir():
            continue
        group = root / name
        group.mkdir(exist_ok=True)
        for entry in [group, *group.iterdir()]:
            os.chown(entry, uid, uid)
        (group / "cgroup.procs").write_text(str(os.getpid()))
        made.append(group)
    return made


def remove(groups: list[Path]) -> None:
    for group in groups:
        for sub in sorted(group.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        group.rmdir()


def main() -> int:
    if os.getpid() != 1:
        raise SystemExit("run me under: unshare --mount --pid --fork --mount-proc")
    uid, base = int(sys.argv[1]), Path(sys.argv[2])
    units: list[dict[str, str]] = json.loads(sys.stdin.read())
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/systemd"], check=True)
    Path("/run/systemd/system").mkdir()
    env = {
        "HOME": str(base / "home"),
        "XDG_RUNTIME_DIR": str(base / "runtime"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "PATH": "/usr/bin:/bin",
    }
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "env", "-i"]
    as_user += [f"{k}={v}" for k, v in env.items()]

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [*as_user, "systemctl", "--user", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    groups = delegate(uid, f"tailerd-test-{os.getppid()}-{time.monotonic_ns()}")
    manager = subprocess.Popen([*as_user, SYSTEMD, "--user"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    results: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 15
        while systemctl("is-system-running").stdout.strip() not in {"running", "degraded"}:
            if time.monotonic() > deadline or manager.poll() is not None:
                raise SystemExit("the unprivileged systemd --user did not come up")
            time.sleep(0.1)
        unit_dir = base / "config" / "systemd" / "user"
        for entry in units:
            (unit_dir / f"{entry['name']}.service").write_text(entry["unit"])
            systemctl("daemon-reload")
            systemctl("start", entry["name"])
            shown = systemctl("show", entry["name"], "-p", "Result,ExecMainStatus,MainPID").stdout
            row: dict[str, Any] = dict(line.split("=", 1) for line in shown.splitlines())
            pid = row.pop("MainPID", "0")
            if pid != "0":
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status)}
                row.update({k: fields[k] for k in ("NoNewPrivs", "Seccomp", "CapEff", "CapBnd")})
            results.append({"name": entry["name"], **row})
            systemctl("stop", entry["name"])
    finally:
        manager.terminate()
        manager.wait(timeout=10)
        # the manager's own cgroups under ours go with it; ours need this process out of them
        for group in groups:
            (group.parent / "cgroup.procs").write_text(str(os.getpid()))
        remove(groups)
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
