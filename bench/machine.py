"""What the numbers were measured on: CPU, cores, RAM, kernel, Python, load, tailerd commit."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench.procs import Tailerd


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def describe(tailerd: Tailerd) -> dict[str, Any]:
    """The machine and the tailerd under test, as a flat JSON-able dict."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _mem_total_gb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "tailerd_commit": tailerd.commit,
        "tailerd_dirty": tailerd.dirty,
        "tailerd_run_as": " ".join(tailerd.argv[-3:]),
    }
