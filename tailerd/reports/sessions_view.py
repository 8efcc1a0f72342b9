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


def row_cost(r: dict[str, Any]) -> str:
    """A session row's cost: `≥$0.53` when some priced calls recorded no input tokens (a lower
    bound), `+` when calls or session totals had no known price."""
    unpriced = r["unpriced_calls"] + r.get("unpriced_session_totals", 0)
    text = cost_text(r["cost_usd"], unpriced)
    return ("≥" if r.get("input_unrecorded_calls") and r["cost_usd"] is not None else "") + text


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


TITLE_WIDTH = 40  # characters of a title in the table (`show` and --json give it whole)


def _title(text: str | None) -> str:
    """A session title cut to TITLE_WIDTH characters, an ellipsis marking the cut."""
    if not text:
        return "-"
    text = " ".join(text.split())  # a title with line breaks keeps its row on one line
    return text if len(text) <= TITLE_WIDTH else text[: TITLE_WIDTH - 1] + "…"


def _cells(r: dict[str, Any], exact: bool) -> list[str]:
    count = str if exact else _tokens
    return [
        r["session_id"],
        _title(r["title"]),
        r["project"] or "-",
        r["agent"] or "-",
        ("," if exact else ", ").join(r["models"]) or "-",
        str(r["turns"]),
        count(r["uncached_input_tokens"]),
        count(r["cache_read_tokens"]),
        count(r["cache_write_tokens"]),
        count(r["output_tokens"]),
        row_cost(r),
        r["first"],
        r["last"],
    ]


def plain_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The table as aligned plain text, exact numbers, nothing cut but titles (TITLE_WIDTH):
    for pipes and files."""
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


# Columns a terminal table always has; the others are added when the terminal is wide enough.
_NARROW = ("SESSION", "TITLE", "AGENT", "TURNS", "IN", "CACHE R", "OUT", "COST", "LAST")
_TINY = ("SESSION", "TITLE", "TURNS", "IN", "OUT", "COST", "LAST")  # below 90 columns
WIDE = 150  # columns from which every column is shown


def _short_time(text: str) -> str:
    """`2026-11-24T09:05:02Z` as `11-24 09:05` (UTC), for the terminal table."""
    return f"{text[5:10]} {text[11:16]}" if len(text) >= 16 else text


def _table(rows: list[dict[str, Any]], width: int) -> Any:
    shown = _NARROW if width >= 90 else _TINY
    names = [n for n, _ in _COLUMNS if width >= WIDE or n in shown]
    grid = []
    for r in rows:
        cells = dict(zip([n for n, _ in _COLUMNS], _cells(r, exact=False), strict=True))
        cells["SESSION"] = r["session_id"][:8] if width < WIDE else r["session_id"]
        cells["FIRST"], cells["LAST"] = _short_time(r["first"]), _short_time(r["last"])
        grid.append([cells[n] for n in names])
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, padding=(0, 1))
    align = dict(_COLUMNS)
    for i, name in enumerate(names):
        text = name in ("TITLE", "PROJECT", "MODELS")
        fixed = max([len(name), *(len(row[i]) for row in grid)])
        table.add_column(
            name,
            justify="right" if align[name] == "right" else "left",
            overflow="fold" if text else "ellipsis",
            no_wrap=not text,  # only the texts wrap: numbers, ids and times keep their width
            min_width=None if text else fixed,
            max_width=40 if text else None,
        )
    for row in grid:
        table.add_row(*row)
    return table


def draw(rows: list[dict[str, Any]], out: IO[str], terminal: bool) -> None:
    """Print the sessions: a rich table in a terminal (session ids cut to 8 characters and
    fewer columns below WIDE columns: `show` takes a unique prefix), `plain_lines` (every
    column, nothing cut) otherwise; a footnote explains IN and `+`."""
    notes = [f"{len(rows)} sessions; IN: uncached input; CACHE R/W: cache reads/writes"]
    if not terminal:
        for line in plain_lines(rows):
            out.write(line + "\n")
    else:
        console = Console(file=out)
        console.print(_table(rows, console.width))
        if console.width < WIDE:
            notes.append("times in UTC; every column: a wider terminal, `| cat` or --json")
    if any(row_cost(r).endswith("+") for r in rows):
        notes.append("+ some LLM calls have no known price (not counted as $0)")
    partial = sum(r.get("input_unrecorded_calls", 0) for r in rows)
    if partial:
        notes.append(f"≥ {partial} calls recorded no input tokens: their cost is a lower bound")
    out.write("".join(note + "\n" for note in notes))  # one short line each
