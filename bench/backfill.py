"""Section 1: backfill of a Claude Code corpus — the read+orjson limit, ccusage 20, tailerd --once.

Every timed run starts from the same page-cache state: the corpus files' cached pages are
dropped (posix_fadvise DONTNEED) just before it, so each tool reads them from disk ("cold-ish";
the tools' own code and the venv stay cached). tailerd always gets a fresh state and data dir.
"""

from __future__ import annotations

import contextlib
import io
import pstats
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import ccusage
from bench.corpus import CACHE, REPO, Corpus, drop_page_cache
from bench.procs import Measured, Tailerd, measure
from bench.report import best_and_median

REDACTION_OFF = "[redaction]\nenabled = false\n"


def read_limit(corpus: Corpus) -> tuple[float, int]:
    """Seconds to read every file, split lines and orjson.loads each line; lines parsed."""
    paths = corpus.paths()
    start = time.perf_counter()
    lines = 0
    for path in paths:
        for line in path.read_bytes().splitlines():
            if line:
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(line)
                lines += 1
    return time.perf_counter() - start, lines


def _once_args(corpus: Corpus, state: Path) -> list[str | Path]:
    return ["--watch", corpus.projects, "--once", "--state-dir", state, "--data-dir", state]


def _sessions(tailerd: Tailerd, state: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        tailerd.command("sessions", "--json", "--state-dir", state, "--data-dir", state),
        env=tailerd.environ(),
        cwd=tailerd.cwd,
        capture_output=True,
        check=True,
    ).stdout
    rows: list[dict[str, Any]] = orjson.loads(out)
    return rows


def _run_tailerd(
    tailerd: Tailerd, corpus: Corpus, variant: str, timeout: float
) -> tuple[Measured, dict[str, int] | None]:
    """One --once run of `variant` (local, console, local-no-redaction) on a fresh state dir.

    For the local store, also the turns and tokens it holds afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="tailerd-bench-") as tmp:
        state = Path(tmp)
        args = _once_args(corpus, state)
        if variant == "console":
            args += ["--sink", "console"]
        if variant == "local-no-redaction":
            config = state.parent / f"{state.name}.toml"
            config.write_text(REDACTION_OFF)
            args += ["--config", config]
        drop_page_cache(corpus.paths())
        m = measure(tailerd.command(*args), tailerd.environ(), timeout=timeout, cwd=tailerd.cwd)
        if variant == "local-no-redaction":
            config.unlink()
        if variant != "local" or m.code != 0:
            return m, None
        rows = _sessions(tailerd, state)
        return m, {
            "sessions": len(rows),
            "turns": sum(r["turns"] for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
        }


def _run_ccusage(corpus: Corpus, repeats: int) -> dict[str, Any]:
    try:
        launcher = ccusage.install()
    except ccusage.Unavailable as exc:
        return {"error": str(exc)}
    walls, last = [], None
    out_path = CACHE / "ccusage-daily.json"
    for _ in range(repeats):
        drop_page_cache(corpus.paths())
        with out_path.open("wb") as out:
            last = measure(
                ccusage.command(launcher), ccusage.environ(corpus.root), stdout=out.fileno()
            )
        if last.code != 0:
            return {"error": f"exit {last.code}: {last.stderr.strip()[-300:]}"}
        walls.append(last.wall)
    assert last is not None
    return {
        "version": ccusage.VERSION,
        "command": " ".join(["ccusage", *ccusage.command(launcher)[1:]]),
        **best_and_median(walls),
        "max_rss_kb": last.max_rss_kb,
        "tokens": ccusage.tokens(ccusage.report(out_path)),
    }


def profile(tailerd: Tailerd, corpus: Corpus, out_txt: Path) -> dict[str, Any]:
    """One `python -m cProfile -m tailerd --once` run; top 20 by own time written to `out_txt`."""
    prof = CACHE / "tailerd-once.prof"
    with tempfile.TemporaryDirectory(prefix="tailerd-bench-") as tmp:
        argv = [
            str(REPO / ".venv" / "bin" / "python"),
            "-m", "cProfile", "-o", str(prof), "-m", "tailerd",
            *map(str, _once_args(corpus, Path(tmp))),
        ]  # fmt: skip
        drop_page_cache(corpus.paths())
        m = measure(argv, tailerd.environ(), cwd=tailerd.cwd)
    if m.code != 0:
        return {"error": f"exit {m.code}: {m.stderr.strip()[-300:]}"}
    text = io.StringIO()
    stats = pstats.Stats(str(prof), stream=text)
    stats.sort_stats("tottime").print_stats(20)
    text.write("\n--- by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(20)
    out_txt.write_text(text.getvalue())
    prof.unlink()
    return {"file": out_txt.name, "wall_s_under_profiler": round(m.wall, 2)}


def run(tailerd: Tailerd, corpus: Corpus, repeats: int, profile_to: Path) -> dict[str, Any]:
    """Measure everything of section 1; returns the section's results (see README)."""
    mb = corpus.bytes / 1e6
    limits = []
    for _ in range(repeats):
        drop_page_cache(corpus.paths())
        secs, lines = read_limit(corpus)
        limits.append(secs)
    result: dict[str, Any] = {
        "corpus": {
            "root": str(corpus.root),
            "files": corpus.files,
            "mb": round(mb, 2),
            "replicas": corpus.replicas,
            "lines": lines,
        },
        "repeats": repeats,
        "read_orjson": best_and_median(limits),
        "ccusage": _run_ccusage(corpus, repeats),
        "tailerd": {},
    }
    timeout = max(600.0, mb * 20)
    for variant in ("local", "console", "local-no-redaction"):
        runs, counted = [], None
        for _ in range(repeats):
            m, counts = _run_tailerd(tailerd, corpus, variant, timeout)
            if m.code != 0:
                result["tailerd"][variant] = {"error": _failure(m)}
                break
            runs.append(m)
            counted = counts or counted
        else:
            result["tailerd"][variant] = {
                **best_and_median([r.wall for r in runs]),
                "cpu_s": round(min(r.cpu for r in runs), 3),
                "max_rss_kb": max(r.max_rss_kb for r in runs),
                **({"counted": counted} if counted else {}),
            }
    result["profile"] = profile(tailerd, corpus, profile_to)
    return result


def _failure(m: Measured) -> str:
    what = "timed out" if m.timed_out else f"exit {m.code}"
    return f"{what} after {m.wall:.1f} s: {m.stderr.strip()[-300:]}"
