"""The test side of a real `systemd --user` manager: UserManager sends commands to
user_manager.py (run under unshare, see its docstring) and reads the unit's state back.

Used by tests/test_systemd_manager.py (the system unit) and tests/test_systemd_user_unit.py (the
unit `tailerd service install --user` writes).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import run_tailerd

T = TypeVar("T")

DRIVER = Path(__file__).resolve().parent / "user_manager.py"
TAILERD = Path(sys.executable).parent / "tailerd"
SYSTEMD = Path("/lib/systemd/systemd")
# `timeout` ends the namespaces, and everything in them, after `lifetime` s whatever happens.
NAMESPACES = ("unshare", "--mount", "--pid", "--fork", "--mount-proc")


def missing_requirement() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a user manager in private namespaces)"
    if shutil.which("unshare") is None:
        return "needs util-linux unshare"
    if not SYSTEMD.exists() or shutil.which("systemctl") is None:
        return f"needs {SYSTEMD} and systemctl"
    return None


@dataclass
class Ran:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float


class UserManager:
    """The driver under unshare: commands go to it one JSON line at a time and run beside the
    manager, in its namespaces."""

    def __init__(self, base: Path, lifetime: int = 55, home: Path | None = None) -> None:
        self.base = base
        self.units = base / "config" / "systemd" / "user"
        self.units.mkdir(parents=True)
        runtime = base / "runtime"
        runtime.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TAILERD_"))}
        for name in ("NOTIFY_SOCKET", "STATE_DIRECTORY", "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(name, None)
        if home is not None:  # the manager's user's home: %h, and $HOME of its services
            env["HOME"] = str(home)
            env.pop("XDG_DATA_HOME", None)  # its data dir is under that home (tests/conftest.py)
        env.update(
            XDG_RUNTIME_DIR=str(runtime),
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_STATE_HOME=str(base / "state-home"),
            WANDB_ERROR_REPORTING="false",
        )
        self._stderr = (base / "driver.err").open("w")
        self._proc = subprocess.Popen(
            [
                "timeout",
                "-k",
                "5",
                str(lifetime),
                *NAMESPACES,
                sys.executable,
                str(DRIVER),
                str(base / "manager.log"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self._replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.startup = float(self._reply(timeout=20)["ready"])

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._replies.put(line)
        self._replies.put("")

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line:
            raise AssertionError(f"driver gave no answer: {(self.base / 'driver.err').read_text()}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def run(self, *argv: str, timeout: float = 20) -> Ran:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"argv": list(argv), "timeout": timeout}) + "\n")
        self._proc.stdin.flush()
        return Ran(**self._reply(timeout=timeout + 5))

    def systemctl(self, *args: str) -> Ran:
        return self.run("systemctl", "--user", *args)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        ran = self.systemctl("show", unit, "-p", ",".join(props))
        assert ran.rc == 0, ran.stderr
        return dict(line.split("=", 1) for line in ran.stdout.splitlines())

    def start(self, unit: str, stderr_log: Path) -> None:
        started = self.systemctl("start", unit)
        if started.rc != 0:  # e.g. Result=signal ExecMainStatus=31: the seccomp filter killed it
            why = self.show(unit, "Result", "ExecMainStatus")
            pytest.fail(f"start {unit} failed: {why} {started.stderr} {stderr_log.read_text()}")

    def install(self, name: str, text: str) -> None:
        (self.units / f"{name}.service").write_text(text)
        assert self.systemctl("daemon-reload").rc == 0

    def state_dir(self) -> Path:
        """Where the manager put StateDirectory=tailerd (the version decides, see above)."""
        found = [
            d
            for d in (self.base / "config" / "tailerd", self.base / "state-home" / "tailerd")
            if d.exists()
        ]
        assert len(found) == 1, found
        return found[0]

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()  # `timeout` is the group leader; its SIGKILL path ends unshare too
            self._proc.wait()
        self._stderr.close()


def manager_in(base: Path, lifetime: int = 55, home: Path | None = None) -> Iterator[UserManager]:
    """A UserManager under `base` for a fixture: skipped without root/unshare/systemd, except in
    CI (CI=true), where that fails."""
    reason = missing_requirement()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"systemd manager test cannot run in CI: {reason}")
        pytest.skip(reason)
    mgr = UserManager(base, lifetime, home)
    yield mgr
    mgr.close()


def wait_for(
    what: str, check: Callable[[], T], done: Callable[[T], bool], timeout: float = 20
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")
        time.sleep(0.1)


def sessions(state: Path, data: Path | None = None) -> dict[str, int]:
    """Turns per session in the local store of `state` (or `data`), read by `tailerd sessions`."""
    data = state if data is None else data
    result = run_tailerd("sessions", "--state-dir", state, "--data-dir", data, "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return {s["session_id"]: s["turns"] for s in json.loads(result.stdout)}


def proc_status(mgr: UserManager, pid: str) -> dict[str, str]:
    ran = mgr.run("cat", f"/proc/{pid}/status")
    assert ran.rc == 0, ran.stderr
    return {k: v.strip() for k, _, v in (line.partition(":") for line in ran.stdout.splitlines())}


def unoctal(field: str) -> str:
    """A mountinfo path field with its octal escapes (`\\040` for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def access_mode(mgr: UserManager, pid: str, path: Path) -> str:
    """ "ro" or "rw": the mount the service sees `path` on (longest mount point above it)."""
    ran = mgr.run("cat", f"/proc/{pid}/mountinfo")
    assert ran.rc == 0, ran.stderr
    rows = (line.split() for line in ran.stdout.splitlines())
    mounts = {unoctal(fields[4]): fields[5] for fields in rows}
    above = [m for m in mounts if path == Path(m) or Path(m) in path.parents]
    return mounts[max(above, key=len)].split(",")[0]
