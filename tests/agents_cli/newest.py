"""The long form (not in CI): every agent CLI at its newest npm version, through its scenario.

`scripts/agents-newest [agent …]` installs each agent's `latest` release from npm into
`.agents-cli/<agent>@<version>/` (`--pinned`: the versions CI tests instead), plays its scenario
against the scripted server, reads it back with `tailerd --once` and prints one row per agent:
agent, version, pass/fail (with the first difference), dead letters, and the record types
tailerd did not know (`unknown_record_types` of `tailerd status`: where a new release's format
drift shows first). Exit status 1 when any agent failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from tailerd.formats import BY_NAME
from tests.agents_cli import install
from tests.agents_cli.harness import Outcome, play_and_read_once
from tests.agents_cli.scenarios import SCENARIOS, Scenario


def verdict(outcome: Outcome) -> str:
    """ "pass", or "FAIL: " and the first thing that differs from the script."""
    if outcome.tailerd.returncode != 0:
        lines = outcome.tailerd.stderr.strip().splitlines() or ["no output"]
        return f"FAIL: tailerd exited {outcome.tailerd.returncode}: {lines[-1]}"
    for field in fields(outcome.want):
        want, got = getattr(outcome.want, field.name), getattr(outcome.got, field.name)
        if want != got:
            return f"FAIL: {field.name} {got} != script {want}"
    if outcome.dead_letters:
        return f"FAIL: {outcome.dead_letters} dead letters"
    return "pass"


def row(scenario: Scenario, pinned: bool, folder: Path) -> tuple[str, str, str, str, str]:
    cli = install.CLIS[scenario.agent]
    try:
        version = cli.version if pinned else install.newest(cli)
        binary = install.install(scenario.agent, version)
    except install.Unavailable as exc:
        return scenario.key, "?", f"FAIL: {exc}", "", ""
    if scenario.format not in BY_NAME:
        return scenario.key, version, f"skip: no `{scenario.format}` format", "", ""
    try:
        outcome = play_and_read_once(scenario, binary, folder)
    except (AssertionError, OSError) as exc:  # the CLI failed or left the script unused
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return scenario.key, version, f"FAIL: {first}", "", ""
    unknown = ", ".join(f"{k}: {n}" for k, n in sorted(outcome.unknown.items())) or "-"
    return scenario.key, version, verdict(outcome), str(outcome.dead_letters), unknown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every agent CLI's newest release, tried.")
    parser.add_argument("agents", nargs="*", help=f"some of: {', '.join(SCENARIOS)}")
    parser.add_argument("--pinned", action="store_true", help="the versions CI tests instead")
    args = parser.parse_args(argv)
    unknown_agents = [a for a in args.agents if a not in SCENARIOS]
    if unknown_agents:
        parser.error(f"unknown agent {unknown_agents[0]!r} (known: {', '.join(SCENARIOS)})")
    rows = [("agent", "version", "result", "dead letters", "unknown record types")]
    with tempfile.TemporaryDirectory(prefix="tailerd-agents-") as tmp:
        for agent in args.agents or list(SCENARIOS):
            folder = Path(tmp) / agent
            folder.mkdir()
            rows.append(row(SCENARIOS[agent], args.pinned, folder))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 1 if any(r[2].startswith("FAIL") for r in rows[1:]) else 0


if __name__ == "__main__":
    sys.exit(main())
