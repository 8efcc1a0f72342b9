"""Section 3: idle CPU and RSS of `tailerd --watch` over N quiet files, under `ulimit -n 1024`.

For each N: N native files, 100 per directory, two turns each, in a temp dir; tailerd starts on
the local store with RLIMIT_NOFILE 1024 (set in the child before exec). Backfill is done when
`tailerd status --json` lists all N files with no lag. Then nothing is written for `window`
seconds: CPU = (utime+stime) delta from /proc/PID/stat, as % of one core; RSS = VmRSS at the
end. Whether it survived: still running at the end, else its exit code, and whether its stderr
mentions EMFILE / "Too many open files". If it did not survive under 1024 descriptors, the same
N is measured again with the inherited limit, so the idle numbers exist anyway (marked).
"""

from __future__ import annotations

import contextlib
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.corpus import native_tree
from bench.procs import Tailerd, cpu_seconds, rss_kb, start

NOFILE = 1024


def _backfilled(tailerd: Tailerd, state: Path, files: int) -> bool:
    done = subprocess.run(
        tailerd.command("status", "--json", "--state-dir", state, "--data-dir", state),
        env=tailerd.environ(),
        cwd=tailerd.cwd,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        return False
    listed = orjson.loads(done.stdout)["files"]
    return len(listed) >= files and all(f["lag_bytes"] == 0 for f in listed)


def _emfile(text: str) -> bool:
    return "EMFILE" in text or "Too many open files" in text


def measure_one(
    tailerd: Tailerd, root: Path, files: int, *, window: float, cap: float, nofile: int | None
) -> dict[str, Any]:
    """One daemon over the tree at `root`; `cap` bounds the wait for its backfill (seconds)."""
    out: dict[str, Any] = {"nofile": nofile or resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
    with tempfile.TemporaryDirectory(prefix="tailerd-bench-") as tmp:
        state, err = Path(tmp) / "state", Path(tmp) / "stderr.txt"
        state.mkdir()
        argv = tailerd.command("--watch", root, "--state-dir", state, "--data-dir", state)
        proc = start(argv, tailerd.environ(), err, nofile=nofile, cwd=tailerd.cwd)
        t0 = time.monotonic()
        every = max(2.0, files / 5000)
        try:
            done = False
            while proc.poll() is None and time.monotonic() - t0 < cap:
                time.sleep(every)
                if _backfilled(tailerd, state, files):
                    done = True
                    break
            out["backfill_s"] = round(time.monotonic() - t0, 1)
            out["backfill_done"] = done
            if done:
                cpu0, w0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(window)
                if proc.poll() is None:
                    cpu = cpu_seconds(proc.pid) - cpu0
                    out["idle_window_s"] = round(time.monotonic() - w0, 1)
                    out["idle_cpu_s"] = round(cpu, 3)
                    out["idle_cpu_pct_of_core"] = round(100 * cpu / (time.monotonic() - w0), 2)
                    out["rss_mb"] = round(rss_kb(proc.pid) / 1024, 1)
            out["survived"] = proc.poll() is None
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            elif "exit_code" not in out:
                out["exit_code"] = proc.returncode
                out["died_after_s"] = round(time.monotonic() - t0, 1)
        text = err.read_text(errors="replace")
        out["emfile_in_stderr"] = _emfile(text)
        if not out["survived"]:
            out["stderr_tail"] = text.strip()[-400:]
    return out


def run(
    tailerd: Tailerd, sizes: list[int], window: float, cap: float, skipped: list[int]
) -> dict[str, Any]:
    """Measure section 3 for each N in `sizes`; sizes in `skipped` are listed as not run."""
    rows: list[dict[str, Any]] = []
    for files in sizes:
        row: dict[str, Any] = {"files": files, "directories": files // 100}
        if rows and not rows[-1]["limited"].get("backfill_done") and not _any_done(rows[-1]):
            row["skipped"] = f"{rows[-1]['files']} files already did not finish backfill"
            rows.append({**row, "limited": {}})
            continue
        with tempfile.TemporaryDirectory(prefix="tailerd-bench-tree-") as tmp:
            t0 = time.monotonic()
            native_tree(Path(tmp), files, per_dir=100, turns_per_file=2)
            row["generate_s"] = round(time.monotonic() - t0, 1)
            row["limited"] = measure_one(
                tailerd, Path(tmp), files, window=window, cap=cap, nofile=NOFILE
            )
            if not row["limited"].get("survived"):
                row["unlimited"] = measure_one(
                    tailerd, Path(tmp), files, window=window, cap=cap, nofile=None
                )
        rows.append(row)
    for files in skipped:
        rows.append({"files": files, "skipped": "not in this mode", "limited": {}})
    return {"window_s": window, "cap_s": cap, "rows": rows}


def _any_done(row: dict[str, Any]) -> bool:
    with contextlib.suppress(KeyError):
        return bool(row["unlimited"]["backfill_done"])
    return False
