"""Section 2: live latency, write to OTLP receipt, with many quiet files in the watched tree.

The tree holds `quiet_files` native files (10 per directory, one turn each) plus 100 live files
(one turn each to start with). tailerd runs with `--sink otlp` into the in-process receiver of
tests/otlp_receiver.py. Once the initial backfill is all received, turns are appended to the
live files round-robin at `rate` per second; each carries its write time (time.monotonic(), the
clock the receiver stamps arrivals with) as the extra key `bench_written`, kept as an attribute
of the turn's root span. Latency = arrival - write, per turn.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import native_tree
from bench.procs import Tailerd, cpu_seconds, rss_kb, start
from tests.live_daemon import append, turn_line
from tests.otlp_receiver import Receiver, running

LIVE_FILES = 100
WRITTEN = "bench_written"


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0..100) of an ascending list."""
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _wait_roots(rec: Receiver, count: int, proc_alive: Any, cap: float) -> float | None:
    start_t = time.monotonic()
    while time.monotonic() - start_t < cap:
        if len(rec.roots()) >= count:
            return time.monotonic() - start_t
        if not proc_alive():
            return None
        time.sleep(0.5)
    return None


def run(tailerd: Tailerd, quiet_files: int, turns: int, rate: float, cap: float) -> dict[str, Any]:
    """Measure section 2; `cap` bounds the wait for the initial backfill (seconds)."""
    result: dict[str, Any] = {
        "quiet_files": quiet_files,
        "live_files": LIVE_FILES,
        "directories": quiet_files // 10,
        "turns": turns,
        "rate_per_s": rate,
    }
    with tempfile.TemporaryDirectory(prefix="tailerd-bench-") as tmp, running() as rec:
        root, state = Path(tmp) / "watched", Path(tmp) / "state"
        state.mkdir()
        native_tree(root, quiet_files, per_dir=10, turns_per_file=1)
        live = [root / f"d{i * (quiet_files // 10) // LIVE_FILES:05d}" / f"live{i:03d}.jsonl"
                for i in range(LIVE_FILES)]  # fmt: skip
        for i, path in enumerate(live):
            path.write_bytes(turn_line(f"live{i}", "init"))
        initial = quiet_files + LIVE_FILES
        argv = tailerd.command(
            "--watch", root, "--state-dir", state, "--data-dir", state,
            "--sink", "otlp", "--otlp-endpoint", rec.url,
        )  # fmt: skip
        proc = start(argv, tailerd.environ(), Path(tmp) / "stderr.txt", cwd=tailerd.cwd)
        try:
            took = _wait_roots(rec, initial, lambda: proc.poll() is None, cap)
            result["initial_backfill_s"] = None if took is None else round(took, 2)
            if took is None:
                result["error"] = (
                    f"initial backfill not done after {cap:.0f} s "
                    f"({len(rec.roots())} of {initial} turns received; exit {proc.poll()})"
                )
                return result
            time.sleep(2.0)  # let any trailing batch land before the clock starts
            cpu_before = cpu_seconds(proc.pid)
            t0 = time.monotonic()
            for i in range(turns):
                due = t0 + i / rate
                if (lag := due - time.monotonic()) > 0:
                    time.sleep(lag)
                written = time.monotonic()
                stamp: dict[str, Any] = {WRITTEN: repr(written)}
                line = turn_line(f"live{i % LIVE_FILES}", f"L{i}", **stamp)
                append(live[i % LIVE_FILES], line)
            writing = time.monotonic() - t0
            rec.wait_for(lambda r: _count_live(r) >= turns, timeout=max(30.0, cap / 4))
            result["cpu_s_while_writing"] = round(cpu_seconds(proc.pid) - cpu_before, 2)
            result["rss_kb"] = rss_kb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except Exception:
                proc.kill()
                proc.wait()
        result["achieved_rate_per_s"] = round(turns / writing, 1)
        result.update(_latencies(rec, turns))
    return result


def _count_live(rec: Receiver) -> int:
    return sum(1 for r in rec.roots() if WRITTEN in r["attributes"])


def _latencies(rec: Receiver, turns: int) -> dict[str, Any]:
    with rec.lock:
        pairs = list(zip(rec.spans, rec.arrived_at, strict=True))
    seen: dict[str, float] = {}
    for span, arrived in pairs:
        written = span["attributes"].get(WRITTEN)
        if span["parent_span_id"] is None and written is not None:
            label = str(span["attributes"].get("test_turn"))
            seen.setdefault(label, arrived - float(written))
    values = sorted(seen.values())
    if not values:
        return {"received": 0, "missing": turns}
    return {
        "received": len(values),
        "missing": turns - len(values),
        "p50_ms": round(_percentile(values, 50) * 1000, 1),
        "p99_ms": round(_percentile(values, 99) * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }
