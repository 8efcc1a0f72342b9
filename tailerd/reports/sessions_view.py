"""`tailerd sessions`: filter, sort and draw the sessions of the local store.

In a terminal a rich table; piped, the same columns as plain aligned text (no box lines, no
colour, never cut to a width) so `grep`/`awk` keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

from tailerd.errors import ConfigError

SORT_KEYS = ("last", "first", "cost", "tokens", "turns")
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> int:
    """`--since`: `7d`, `12h`, `30m`, `2w` ago, or an ISO date / datetime (UTC unless it
    says otherwise). Returns nanoseconds since the epoch; ConfigError on anything else."""
    now = now or datetime.now(timezone.utc)
    match = _RELATIVE.match(text.strip().lower())
    if match:
        when = now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"--since {text!r}: give a date (2026-11-30), a time (2026-11-30T12:00)"
                " or an age (30m, 12h, 7d, 2w)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1e9)


def select(
    rows: list[dict[str, Any]],
    sort: str = "last",
    since_ns: int | None = None,
    agent: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Sessions active since `since_ns` (last span at or after it), of `agent` (its name, any
    case), sorted: by time oldest first (the newest next to the prompt), by cost, tokens or
    turns largest first. `limit` keeps the newest / largest N."""
    if since_ns is not None:
        rows = [r for r in rows if (r["last_ns"] or 0) >= since_ns]
    if agent:
        rows = [r for r in rows if (r["agent"] or "").lower() == agent.lower()]
    if sort in ("first", "last"):
        rows = sorted(rows, key=lambda r: (r[f"{sort}_ns"] or 0, r["session_id"]))
        return rows[-limit:] if limit else rows
    measure = {"cost": "cost_usd", "tokens": "input_tokens", "turns": "turns"}[sort]

    def size(r: dict[str, Any]) -> float:
        extra = r["output_tokens"] if sort == "tokens" else 0
        return float(r[measure] or 0) + extra

    rows = sorted(rows, key=lambda r: (-size(r), r["session_id"]))
    return rows[:limit] if limit else rows


def cost_text(cost: float | None, unpriced: int) -> str:
    """`$1.23`; `$1.23+` when some calls have no known price; `unpriced` when none had one;
    `-` when the store holds no prices at all (written before costs existed)."""
    if cost is None:
        return "unpriced" if unpriced else "-"
    if 0 < cost < 0.0001:
        text = "<$0.0001"
    else:
        text = f"${cost:,.2f}" if cost >= 1 or cost == 0 else f"${cost:.4f}"
    return text + ("+" if unpriced else "")


def _tokens(n: int) -> str:
    if n >= 10_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 100_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


_COLUMNS = (
    ("SESSION", "left"),
    ("TITLE", "left"),
    ("PROJECT", "left"),
    ("AGENT", "left"),
    ("MODELS", "left"),
    ("TURNS", "right"),
    ("IN", "right"),
    ("CACHE R", "right"),
    ("CACHE W", "right"),
    ("OUT", "right"),
    ("COST", "right"),
    ("FIRST", "left"),
    ("LAST", "left"),
)


def _cells(r: dict[str, Any], exact: bool) -> list[str]:
    count = str if exact else _tokens
    return [
        r["session_id"],
        r["title"] or "-",
        r["project"] or "-",
        r["agent"] or "-",
        ",".join(r["models"]) or "-",
        str(r["turns"]),
        count(r["uncached_input_tokens"]),
        count(r["cache_read_tokens"]),
        count(r["cache_write_tokens"]),
        count(r["output_tokens"]),
        cost_text(r["cost_usd"], r["unpriced_calls"]),
        r["first"],
        r["last"],
    ]


def plain_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The table as aligned plain text, exact numbers, nothing cut: for pipes and files."""
    table = [[name for name, _ in _COLUMNS]] + [_cells(r, exact=True) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(w) if align == "right" else cell.ljust(w)
            for cell, w, (_, align) in zip(row, widths, _COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def draw(rows: list[dict[str, Any]], out: IO[str], terminal: bool) -> None:
    """Print the sessions: a rich table in a terminal, `plain_lines` otherwise; a footnote
    explains `+` and IN (uncached input)."""
    if not terminal:
        for line in plain_lines(rows):
            out.write(line + "\n")
    else:
        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for name, align in _COLUMNS:
            wrap = name in ("TITLE", "PROJECT", "MODELS")
            table.add_column(
                name,
                justify="right" if align == "right" else "left",
                overflow="fold" if wrap else "ellipsis",
                no_wrap=not wrap,
                max_width=36 if wrap else None,
            )
        for r in rows:
            table.add_row(*_cells(r, exact=False))
        Console(file=out).print(table)
    notes = ["IN is uncached input; CACHE R/W are cache reads/writes (tokens)"]
    if any(r["unpriced_calls"] and r["cost_usd"] is not None for r in rows):
        notes.append("+ some LLM calls have no known price (not counted as $0)")
    out.write("; ".join(notes) + f"; {len(rows)} sessions\n")
