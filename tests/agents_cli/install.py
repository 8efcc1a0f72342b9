"""Installing the real agent CLIs pinned from npm into `<cache>/<agent>@<version>/`.

The cache is the user's cache dir (`~/.cache/tailerd/agents-cli`, or `$AGENTS_CLI_CACHE`), not
the checkout, so every clone on a machine (CI's included) shares one download of about 2 GB; a
marker file makes a second call instant. Network: the npm registry only, through
`npm install --prefix … --no-audit --no-fund`. `python -m tests.agents_cli.install [--newest]
[agent …]` installs from the shell (scripts/test calls it so CI has the CLIs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

CACHE = Path(
    os.environ.get("AGENTS_CLI_CACHE")
    or Path(platformdirs.user_cache_dir("tailerd")) / "agents-cli"
)


@dataclass(frozen=True)
class Cli:
    """One agent CLI: its npm package, the pinned version CI tests, and its executable name."""

    agent: str
    package: str
    version: str
    binary: str


CLIS: dict[str, Cli] = {
    c.agent: c
    for c in (
        Cli("claude-code", "@anthropic-ai/claude-code", "2.1.328", "claude"),
        Cli("codex", "@openai/codex", "0.169.0", "codex"),
        Cli("gemini", "@google/gemini-cli", "0.61.0", "gemini"),
        Cli("qwen", "@qwen-code/qwen-code", "0.24.4", "qwen"),
        Cli("pi", "@mariozechner/pi-coding-agent", "0.73.1", "pi"),
        Cli("opencode", "opencode-ai", "1.18.33", "opencode"),
        Cli("droid", "droid", "0.215.0", "droid"),  # tests/formats/test_droid.py
        Cli("cline", "cline", "3.0.65", "cline"),  # tests/formats/test_cline.py
    )
}


class Unavailable(Exception):
    """The CLI could not be installed (no npm, no registry, no such version): one line."""


def newest(cli: Cli) -> str:
    """The registry's `latest` version of the CLI's package. Raises Unavailable."""
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found on PATH")
    done = subprocess.run(
        [npm, "view", cli.package, "version"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise Unavailable(f"npm view {cli.package} failed: {done.stderr.strip()[-200:]}")
    return done.stdout.strip().splitlines()[-1]


def install(agent: str, version: str | None = None) -> Path:
    """The path of the agent's executable, installing `<package>@<version>` first if needed
    (default: the pinned version). Raises Unavailable with npm's last line on failure."""
    cli = CLIS[agent]
    version = version or cli.version
    prefix = CACHE / f"{agent}@{version}"
    binary = prefix / "node_modules" / ".bin" / cli.binary
    marker = prefix / "installed"
    if binary.exists() and marker.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found on PATH")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "package.json").write_text('{"private": true}\n')
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"{cli.package}@{version}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Unavailable(f"npm install {cli.package}@{version} failed: {last}")
    marker.write_text(version + "\n")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("agents", nargs="*", help=f"some of: {', '.join(CLIS)} (default: all)")
    parser.add_argument("--newest", action="store_true", help="the registry's latest versions")
    args = parser.parse_args(argv)
    status = 0
    for agent in args.agents or list(CLIS):
        if agent not in CLIS:
            print(f"{agent}: unknown agent (known: {', '.join(CLIS)})", file=sys.stderr)
            status = 1
            continue
        try:
            version = newest(CLIS[agent]) if args.newest else None
            print(f"{agent}: {install(agent, version)}")
        except Unavailable as exc:
            print(f"{agent}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
