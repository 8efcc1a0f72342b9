"""`python -m bench [--quick] [--only SECTIONS] [--rev REV] [--label L]` — see bench/README.md.

Measures and prints; asserts nothing about speed. Results: bench/results/<date>[-<label>].json
and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import backfill, corpus, growth, idle, latency, machine, procs, report

SECTIONS = ("backfill", "latency", "idle", "growth")
RESULTS = corpus.REPO / "bench" / "results"


@dataclass(frozen=True)
class Sizes:
    """Everything --quick changes."""

    corpus_mb: float
    latency_quiet_files: int
    latency_turns: int
    idle_files: list[int]
    idle_skipped: list[int]
    growth_files: list[int]
    growth_mb: list[int]
    cap_s: float


FULL = Sizes(
    130, 10_000, 1_000, [1_000, 10_000, 100_000], [], [1, 100, 10_000], [1, 100, 1000], 240
)
QUICK = Sizes(13, 1_000, 1_000, [1_000], [10_000, 100_000], [1, 100, 1_000], [1, 10], 120)


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes; a few minutes")
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    p.add_argument(
        "--rev", help="measure this committed revision of tailer/ (default: the working tree)"
    )
    p.add_argument("--label", help="results file name <date>-<label>, e.g. before")
    p.add_argument("--repeats", type=int, default=3, help="runs per backfill measurement")
    p.add_argument("--cap", type=float, help="seconds before a run or a backfill wait gives up")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    return args


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    sizes = QUICK if args.quick else FULL
    cap = args.cap or sizes.cap_s
    try:
        tailerd = procs.resolve(args.rev)
    except Exception as exc:  # a bad --rev is a user mishap: one line
        print(f"bench: cannot resolve tailerd revision {args.rev!r}: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    date = datetime.date.today().isoformat()
    doc: dict[str, Any] = {
        "date": date,
        "mode": "quick" if args.quick else "full",
        "machine": machine.describe(tailerd),
        "sections": {},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / (f"{date}-{args.label}" if args.label else date)
    only = [s for s in SECTIONS if s in args.only.split(",")]
    for section in only:
        _say(f"{section} ...")
        t0 = time.monotonic()
        doc["sections"][section] = _run(section, tailerd, sizes, cap, args=args, stem=stem)
        doc["sections"][section]["section_s"] = round(time.monotonic() - t0, 1)
        _say(f"{section} done in {time.monotonic() - t0:.0f} s")
        _write(doc, stem, started)
    print(stem.with_suffix(".md").read_text())
    return 0


def _run(
    section: str, tailerd: procs.Tailerd, sizes: Sizes, cap: float, *, args: Any, stem: Path
) -> dict[str, Any]:
    if section == "backfill":
        built = corpus.claude_corpus(sizes.corpus_mb)
        profile_to = stem.with_name(stem.name + "-profile.txt")
        return backfill.run(tailerd, built, args.repeats, profile_to)
    if section == "latency":
        return latency.run(tailerd, sizes.latency_quiet_files, sizes.latency_turns, 50.0, cap)
    if section == "idle":
        return idle.run(tailerd, sizes.idle_files, 60.0, cap, sizes.idle_skipped)
    return growth.run(tailerd, sizes.growth_files, sizes.growth_mb, cap)


def _write(doc: dict[str, Any], stem: Path, started: float) -> None:
    doc["total_s"] = round(time.monotonic() - started, 1)
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.markdown(doc))


if __name__ == "__main__":
    sys.exit(main())
