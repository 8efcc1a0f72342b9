"""Section 4: how the cost of `tailerd --once` grows with the number of files and a file's size.

Files: 1, 100, ... native files of the same size each (`FILE_BYTES`, 100 per directory).
Size: one native file of 1 MB, 100 MB, ... Each input is generated into a temp dir and deleted
afterwards; each run is its own child, measured alone with wait4 (wall, CPU, peak RSS). A run
that exceeds `cap` seconds is killed and recorded as such; larger inputs of the same series
are then skipped (they could only take longer).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import write_native_file
from bench.procs import Measured, Tailerd, measure

FILE_BYTES = 10_000  # per file in the files series: about 9 one-line turns of ~1.1 KB


def _tree(root: Path, files: int) -> tuple[int, int]:
    total = turns = 0
    for i in range(files):
        b, t = write_native_file(root / f"d{i // 100:04d}" / f"f{i:06d}.jsonl", FILE_BYTES, f"s{i}")
        total += b
        turns += t
    return total, turns


def _once(tailerd: Tailerd, watch: Path, cap: float) -> Measured:
    with tempfile.TemporaryDirectory(prefix="tailerd-bench-") as state:
        argv = tailerd.command(
            "--watch", watch, "--once", "--state-dir", state, "--data-dir", state
        )  # fmt: skip
        return measure(argv, tailerd.environ(), timeout=cap, cwd=tailerd.cwd)


def _row(m: Measured, size: int, turns: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "mb": round(size / 1e6, 2),
        "turns": turns,
        "wall_s": round(m.wall, 2),
        "cpu_s": round(m.cpu, 2),
        "peak_rss_mb": round(m.max_rss_kb / 1024, 1),
    }
    if m.timed_out:
        row["error"] = f"killed at the {m.wall:.0f} s cap"
    elif m.code != 0:
        row["error"] = f"exit {m.code}: {m.stderr.strip()[-300:]}"
    else:
        row["mb_per_s"] = round(size / 1e6 / m.wall, 2)
        row["turns_per_s"] = round(turns / m.wall, 1)
    return row


def run(
    tailerd: Tailerd, file_counts: list[int], sizes_mb: list[int], cap: float
) -> dict[str, Any]:
    """Measure section 4; returns {"files": [rows], "size": [rows]}."""
    by_files: list[dict[str, Any]] = []
    for files in file_counts:
        if by_files and "error" in by_files[-1]:
            by_files.append({"files": files, "skipped": "a smaller count already failed"})
            continue
        with tempfile.TemporaryDirectory(prefix="tailerd-bench-growth-") as tmp:
            size, turns = _tree(Path(tmp), files)
            by_files.append({"files": files, **_row(_once(tailerd, Path(tmp), cap), size, turns)})
    by_size: list[dict[str, Any]] = []
    for mb in sizes_mb:
        if by_size and "error" in by_size[-1]:
            by_size.append({"target_mb": mb, "skipped": "a smaller file already failed"})
            continue
        with tempfile.TemporaryDirectory(prefix="tailerd-bench-growth-") as tmp:
            t0 = time.monotonic()
            size, turns = write_native_file(Path(tmp) / "w" / "big.jsonl", mb * 1_000_000)
            generated = round(time.monotonic() - t0, 1)
            m = _once(tailerd, Path(tmp) / "w", cap)
            by_size.append({"target_mb": mb, "generate_s": generated, **_row(m, size, turns)})
    return {"file_bytes": FILE_BYTES, "cap_s": cap, "files": by_files, "size": by_size}
