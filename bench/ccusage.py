"""ccusage 20, installed pinned from npm into bench/.cache/npm and run offline.

`ccusage@20.0.24` is a small Node launcher; the work is done by the native binary of
`@ccusage/ccusage-linux-x64@20.0.24` (installed explicitly: the newest release ships no Linux
binary in the registry). `--offline` makes it use its bundled price table instead of fetching
one. HOME points at an empty directory so that `ccusage daily`, which reports every agent it
detects, finds only the Claude Code corpus named by CLAUDE_CONFIG_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.corpus import CACHE

VERSION = "20.0.24"
PACKAGES = (f"ccusage@{VERSION}", f"@ccusage/ccusage-linux-x64@{VERSION}")
PREFIX = CACHE / "npm"


class Unavailable(Exception):
    """ccusage could not be installed or run here (no npm, no registry); the reason as text."""


def install() -> Path:
    """The `ccusage` launcher, installing the pinned packages first if needed.

    Raises Unavailable with npm's last line when npm is missing or the install fails.
    """
    launcher = PREFIX / "node_modules" / ".bin" / "ccusage"
    marker = PREFIX / f"installed-{VERSION}"
    if launcher.exists() and marker.exists():
        return launcher
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found on PATH")
    PREFIX.mkdir(parents=True, exist_ok=True)
    (PREFIX / "package.json").write_text('{"private": true}\n')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), *PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not launcher.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"npm install {' '.join(PACKAGES)} failed: {last}")
    marker.write_text("")
    return launcher


def command(launcher: Path) -> list[str]:
    return [str(launcher), "daily", "--json", "--offline"]


def environ(config_dir: Path) -> dict[str, str]:
    home = CACHE / "empty-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "CODEX_"))}
    env.update(HOME=str(home), CLAUDE_CONFIG_DIR=str(config_dir), NO_COLOR="1")
    return env


def tokens(report: dict[str, Any]) -> dict[str, int]:
    """Totals of `ccusage daily --json`: input incl. cache reads and writes, and output."""
    t = report["totals"]
    return {
        "input_tokens": int(t["inputTokens"] + t["cacheReadTokens"] + t["cacheCreationTokens"]),
        "output_tokens": int(t["outputTokens"]),
        "uncached_input_tokens": int(t["inputTokens"]),
        "cache_read_tokens": int(t["cacheReadTokens"]),
        "cache_creation_tokens": int(t["cacheCreationTokens"]),
    }


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
