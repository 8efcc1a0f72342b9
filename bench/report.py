"""Summaries of repeated runs, and the markdown rendering of a results document."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any


def best_and_median(seconds: list[float]) -> dict[str, Any]:
    """{"runs_s": [...], "best_s": min, "median_s": median} of wall times in seconds."""
    return {
        "runs_s": [round(s, 3) for s in seconds],
        "best_s": round(min(seconds), 3),
        "median_s": round(statistics.median(seconds), 3),
    }


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def _num(v: Any, fmt: str = "{:,}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(head: list[str], rows: list[list[str]]) -> Iterator[str]:
    yield "| " + " | ".join(head) + " |"
    yield "|" + "---|" * len(head)
    for r in rows:
        yield "| " + " | ".join(r) + " |"
    yield ""


def _backfill(s: dict[str, Any]) -> Iterator[str]:
    c = s["corpus"]
    yield "## 1. Backfill of a Claude Code corpus"
    yield ""
    yield (
        f"{c['mb']} MB, {c['files']} files ({c['replicas']} replicas of the fixtures, ids "
        f"rewritten per replica), {c['lines']:,} lines; best of {s['repeats']} runs, page cache "
        "of the corpus dropped before each. Ratios are time ÷ the other's time (lower is better)."
    )
    yield ""
    limit = s["read_orjson"]["best_s"]
    cc = s["ccusage"].get("best_s")
    turns = (s["tailerd"].get("local", {}).get("counted") or {}).get("turns")
    rows = [
        ["read + orjson.loads (limit)", *_times(s["read_orjson"], c["mb"], None), "1.00x",
         _ratio(limit, cc), "-"],
        ["ccusage daily --json --offline" if cc else f"ccusage: {s['ccusage'].get('error')}",
         *_times(s["ccusage"], c["mb"], None), _ratio(cc, limit), "1.00x" if cc else "-",
         _num(_mb(s["ccusage"].get("max_rss_kb")))],
    ]  # fmt: skip
    for variant, r in s["tailerd"].items():
        if "error" in r:
            rows.append([f"tailerd --once ({variant})", r["error"][:120], *["-"] * 6])
            continue
        rows.append(
            [f"tailerd --once ({variant})", *_times(r, c["mb"], turns),
             _ratio(r["best_s"], limit), _ratio(r["best_s"], cc), _num(_mb(r["max_rss_kb"]))]
        )  # fmt: skip
    yield from _table(
        ["run", "best s", "median s", "MB/s", "turns/s", "x limit", "x ccusage", "peak RSS MB"],
        rows,
    )
    local = (s["tailerd"].get("local") or {}).get("counted")
    cct = s["ccusage"].get("tokens")
    yield "Tokens counted (input includes cache reads and writes):"
    yield ""
    trows = []
    if local:
        trows.append(["tailerd (local store)", _num(local["input_tokens"]),
                      _num(local["output_tokens"]), f"{local['turns']:,} turns"])  # fmt: skip
    if cct:
        note = (
            f"input {cct['uncached_input_tokens']:,} + cache read {cct['cache_read_tokens']:,}"
            f" + cache write {cct['cache_creation_tokens']:,}"
        )
        trows.append(["ccusage 20", _num(cct["input_tokens"]), _num(cct["output_tokens"]), note])
    if local and cct:
        trows.append(["tailerd ÷ ccusage", _ratio(local["input_tokens"], cct["input_tokens"]),
                      _ratio(local["output_tokens"], cct["output_tokens"]), ""])  # fmt: skip
    yield from _table(["tool", "input tokens", "output tokens", "note"], trows)
    p = s.get("profile", {})
    if "file" in p:
        yield f"cProfile of one local run ({p['wall_s_under_profiler']} s under the profiler): "
        yield f"`{p['file']}` (top 20 by own time, then by cumulative time)."
    elif p:
        yield f"Profile failed: {p.get('error')}"
    yield ""


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def _times(r: dict[str, Any], mb: float, turns: int | None) -> list[str]:
    best = r.get("best_s")
    if best is None:
        return ["-"] * 4
    tps = "-" if not turns else f"{turns / best:,.1f}"
    return [f"{best:.2f}", f"{r['median_s']:.2f}", f"{mb / best:.1f}", tps]


def _latency(s: dict[str, Any]) -> Iterator[str]:
    yield "## 2. Live latency (write → OTLP receipt)"
    yield ""
    yield (
        f"{s['quiet_files']:,} quiet files in {s['directories']:,} directories plus "
        f"{s['live_files']} live files; {s['turns']:,} turns appended at {s['rate_per_s']}/s "
        f"(achieved {s.get('achieved_rate_per_s', '-')}/s) after the initial backfill "
        f"({_num(s.get('initial_backfill_s'), '{} s')})."
    )
    yield ""
    if "error" in s:
        yield f"Not measured: {s['error']}"
        yield ""
        return
    row = [_num(s.get(k), "{:,.1f}") for k in ("p50_ms", "p99_ms", "max_ms", "mean_ms")]
    row += [_ratio(s.get("p99_ms"), s.get("p50_ms")), f"{s['received']:,}", str(s["missing"]),
            _num(s.get("cpu_s_while_writing"), "{} s"), _num(_mb(s.get("rss_kb")))]  # fmt: skip
    yield from _table(
        ["p50 ms", "p99 ms", "max ms", "mean ms", "p99 ÷ p50", "received", "missing",
         "CPU while writing", "RSS MB"],
        [row],
    )  # fmt: skip


def _idle_cells(m: dict[str, Any], files: int) -> list[str]:
    if not m:
        return ["-"] * 8
    rss = m.get("rss_mb")
    return [
        str(m.get("nofile", "-")),
        "yes" if m.get("survived") else f"no (exit {m.get('exit_code')})",
        "yes" if m.get("emfile_in_stderr") else "no",
        f"{m.get('backfill_s', '-')}" + ("" if m.get("backfill_done") else " (not done)"),
        _num(m.get("idle_cpu_pct_of_core"), "{:.2f}"),
        _num(rss),
        "-" if rss is None else f"{rss * 1024 / files:.1f}",
        _num(m.get("idle_cpu_pct_of_core") and m["idle_cpu_pct_of_core"] / files * 1000,
             "{:.3f}"),
    ]  # fmt: skip


def _idle(s: dict[str, Any]) -> Iterator[str]:
    yield "## 3. Idle CPU and RSS of tailerd --watch"
    yield ""
    yield (
        f"Native files, 100 per directory, 2 turns each; {s['window_s']:.0f} s of nothing "
        f"written after the backfill (waited for at most {s['cap_s']:.0f} s). First under "
        "RLIMIT_NOFILE 1024; if it did not survive, again with the inherited limit."
    )
    yield ""
    rows = []
    for r in s["rows"]:
        if "skipped" in r:
            rows.append([f"{r['files']:,}", "skipped: " + r["skipped"], *["-"] * 7])
            continue
        rows.append([f"{r['files']:,}", *_idle_cells(r["limited"], r["files"])])
        if "unlimited" in r:
            rows.append([f"{r['files']:,}", *_idle_cells(r["unlimited"], r["files"])])
    yield from _table(
        ["files", "nofile", "survived", "EMFILE", "backfill s", "idle CPU % core", "RSS MB",
         "RSS KB / file", "CPU % per 1k files"],
        rows,
    )  # fmt: skip


def _growth(s: dict[str, Any]) -> Iterator[str]:
    yield "## 4. How the cost of --once grows"
    yield ""
    yield (
        f"Native one-line turns; files series: {s['file_bytes']:,} bytes per file, 100 per "
        f"directory; size series: one file. Runs are killed at {s['cap_s']:.0f} s. "
        "'x s/MB' is seconds per MB relative to the first row of the series."
    )
    yield ""
    for key, label in (("files", "files"), ("size", "target_mb")):
        rows, base = [], None
        for r in s[key]:
            name = f"{r[label]:,}" + (" MB" if key == "size" else "")
            if "skipped" in r:
                rows.append([name, "skipped: " + r["skipped"], *["-"] * 6])
                continue
            per_mb = r["wall_s"] / r["mb"] if r["mb"] and "error" not in r else None
            base = base or per_mb
            rows.append([
                name, f"{r['mb']:,}",
                f"{r['wall_s']:,}" + (f" ({r['error']})" if "error" in r else ""),
                _num(r.get("mb_per_s"), "{:,.2f}"), _num(r.get("turns_per_s")), f"{r['cpu_s']:,}",
                f"{r['peak_rss_mb']:,}", _ratio(per_mb, base),
            ])  # fmt: skip
        yield from _table(
            [key, "MB", "wall s", "MB/s", "turns/s", "CPU s", "peak RSS MB", "x s/MB"], rows
        )


def markdown(doc: dict[str, Any]) -> str:
    """The whole results document as markdown: machine, then one table per section run."""
    m = doc["machine"]
    out = [f"# tailerd host-scale benchmark — {doc['date']} ({doc['mode']})", ""]
    out += [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load average at start {m['load_avg_at_start']} (the cores are "
        "shared with other work, so numbers are noisy).",
        f"tailerd: commit `{m['tailerd_commit'][:12]}`"
        + (" with uncommitted changes" if m["tailerd_dirty"] else "")
        + f" (run as `{m['tailerd_run_as']}`). Total benchmark time {doc['total_s']:.0f} s.",
        "",
    ]
    sections = doc["sections"]
    renderers = {"backfill": _backfill, "latency": _latency, "idle": _idle, "growth": _growth}
    for name, render in renderers.items():
        if name in sections:
            out.extend(render(sections[name]))
            if "note" in sections[name]:
                out += [f"Note: {sections[name]['note']}.", ""]
    return "\n".join(out) + "\n"
