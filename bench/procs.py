"""Running tailerd (only ever through its command line) and measuring child processes.

`Tailerd` says which tailerd to run: the checkout's `.venv/bin/tailerd` (the working tree), or
a committed revision extracted with `git archive` into bench/.cache and run with the same venv
(so a colleague's half-finished edit cannot break a measurement of a known commit).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import CACHE, REPO

CLK_TCK = os.sysconf("SC_CLK_TCK")
GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class Tailerd:
    """How to start tailerd: `argv` prefix and extra environment; `commit` it was built from."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO  # `python -m` puts the cwd first on sys.path: a snapshot runs in its own
    commit: str = ""
    dirty: bool = False

    def command(self, *args: str | Path) -> list[str]:
        return [*self.argv, *map(str, args)]

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TAILERD_"))}
        env.pop("STATE_DIRECTORY", None)
        env["WANDB_ERROR_REPORTING"] = "false"
        env.update(self.env)
        env.update(extra)
        return env


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def resolve(rev: str | None) -> Tailerd:
    """The working tree's tailerd (`rev` None) or revision `rev` extracted into bench/.cache."""
    venv = REPO / ".venv" / "bin"
    if rev is None:
        dirty = bool(_git("status", "--porcelain", "--", "tailerd"))
        return Tailerd((str(venv / "tailerd"),), commit=_git("rev-parse", "HEAD"), dirty=dirty)
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    dest = CACHE / "tailerd" / commit
    if not (dest / "tailerd" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "tailerd"], cwd=REPO, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    argv = (str(venv / "python"), "-m", "tailerd")
    return Tailerd(argv, {"PYTHONPATH": str(dest)}, dest, commit)


@dataclass(frozen=True)
class Measured:
    """One finished child: exit `code`, `wall` s, `cpu` s (user+sys), `max_rss_kb`, stderr tail."""

    code: int
    wall: float
    cpu: float
    max_rss_kb: int
    stderr: str
    timed_out: bool = False


def measure(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    timeout: float = 3600.0,
    stdout: int | None = subprocess.DEVNULL,
    nofile: int | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run `argv` to completion and measure it alone; killed (its whole group) past `timeout`.

    Wall time is ours; CPU is wait4's rusage (the child and its reaped descendants). Peak RSS
    comes from GNU time (`/usr/bin/time -f %M`), which forks the command from a small process:
    a child forked straight from this (large) process would inherit this process's RSS in its
    ru_maxrss. Without GNU time, ru_maxrss is used as is (an over-estimate when it is small).
    """
    err_path = CACHE / f"stderr-{os.getpid()}.txt"
    rss_path = CACHE / f"maxrss-{os.getpid()}.txt"
    err_path.parent.mkdir(parents=True, exist_ok=True)
    rss_path.unlink(missing_ok=True)
    wrap = ["/usr/bin/time", "-f", "%M", "-o", str(rss_path)] if GNU_TIME.exists() else []
    with err_path.open("wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [*wrap, *argv],
            env=env,
            stdout=stdout,
            stderr=err,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_limit(nofile),  # noqa: PLW1509 (only sets RLIMIT_NOFILE)
        )
        timed_out, hwm, kid_cpu = False, None, 0.0
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                # GNU time reports nothing when killed: read its child before the kill.
                hwm, kid_cpu = _children_usage(proc.pid) if wrap else (None, 0.0)
                os.killpg(proc.pid, signal.SIGKILL)
                timed_out = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    tail = err_path.read_text(errors="replace")[-2000:]
    err_path.unlink()
    return Measured(
        code=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime + kid_cpu,
        max_rss_kb=hwm or _peak_rss(rss_path, usage.ru_maxrss),
        stderr=tail,
        timed_out=timed_out,
    )


def _children_usage(pid: int) -> tuple[int | None, float]:
    """(largest VmHWM in KiB, summed CPU s) of `pid`'s direct children, read while they live."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None, 0.0
    peaks, cpu = [], 0.0
    for kid in kids:
        try:
            cpu += cpu_seconds(int(kid))
            for line in Path(f"/proc/{kid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        except OSError:
            continue
    return max(peaks, default=None), cpu


def _peak_rss(path: Path, fallback_kb: int) -> int:
    """The KiB GNU time wrote (its last line), else `fallback_kb` (killed runs write none)."""
    if not path.exists():
        return fallback_kb
    lines = path.read_text().split()
    path.unlink()
    return int(lines[-1]) if lines and lines[-1].isdigit() else fallback_kb


def _limit(nofile: int | None) -> Callable[[], None] | None:
    if nofile is None:
        return None

    def apply() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, min(nofile, hard)))

    return apply


def start(
    argv: Sequence[str],
    env: dict[str, str],
    err_path: Path,
    *,
    nofile: int | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A long-running child with stderr to `err_path` (a pipe could fill up and block it)."""
    with err_path.open("wb") as err:
        return subprocess.Popen(
            list(argv),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_limit(nofile),  # noqa: PLW1509 (only sets RLIMIT_NOFILE)
            cwd=cwd,
        )


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process from /proc/PID/stat, in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    """VmRSS of a live process in KiB (0 if the kernel does not report it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
