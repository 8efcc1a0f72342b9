"""`tailerd usage`: tokens and cost in USD per day, week, month, session or model.

The numbers come from tailerd/usage_totals.py (read from the local store; see there for the
token split and the cost contract). Here: the command's flags, and how it looks: a rich table
with a total, in a terminal a bar chart of spend per day, or JSON. Days are UTC.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TextIO

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from tailerd.errors import ConfigError, NoInputError
from tailerd.usage_totals import GROUPINGS, Cost, Totals, calls, group, session_costs

__all__ = ["Cost", "Totals", "add_arguments", "run", "session_costs"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`tailerd usage`'s own flags (the common report flags are added by the CLI)."""
    p.add_argument("--by", choices=GROUPINGS, default="day", help="group by (default day, UTC)")
    p.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="from this UTC day")
    p.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="to this UTC day, included")
    p.add_argument("--agent", metavar="NAME", help="only this agent (e.g. claude-code)")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date: {text!r} (give YYYY-MM-DD)") from None


def run(args: argparse.Namespace, db_path: Path, out: TextIO = sys.stdout) -> int:
    """Print the report for parsed `args` (by, since, until, agent, json) over the store at
    `db_path`; exit code 0, also when the store is missing or empty (one line says so).
    NoInputError (66) for an --agent the store holds no call of."""
    if args.since and args.until and args.since > args.until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}")
    found = db_path.is_file()
    rows: list[Totals] = []
    total = Totals("total")
    if found and args.agent:
        _check_agent(db_path, args.agent)
    if found:
        rows, total = group(calls(db_path, args.since, args.until, args.agent), args.by)
    if args.json:
        out.write(as_json(args, rows, total) + "\n")
        if not rows:
            sys.stderr.write(_empty_line(db_path, found, args) + "\n")
        return 0
    if not rows:
        out.write(_empty_line(db_path, found, args) + "\n")
        return 0
    daily = rows
    if args.by != "day":
        daily, _ = group(calls(db_path, args.since, args.until, args.agent), "day")
    draw(args.by, rows, total, daily, out)
    return 0


def _check_agent(db_path: Path, agent: str) -> None:
    """NoInputError (exit 66) naming the agents there when no call in the store is `agent`'s
    (a typo such as `gooze` must not read as "no usage in that range")."""
    agents = sorted({c.agent for c in calls(db_path) if c.agent})
    if agents and agent not in agents:
        raise NoInputError(f"no agent {agent} in the store {db_path}; agents: {', '.join(agents)}")


def _empty_line(db_path: Path, found: bool, args: argparse.Namespace) -> str:
    if not found:
        return (
            f"no local store at {db_path} yet: fill it with `tailerd --watch DIR --once` (the same"
            " --data-dir / --state-dir), then run `tailerd usage` again"
        )
    scope = []
    if args.agent:
        scope.append(f"of agent {args.agent!r}")
    if args.since or args.until:
        scope.append(f"between {args.since or 'the start'} and {args.until or 'now'}")
    where = " ".join(["no LLM calls", *scope, f"in {db_path}"])
    if scope and _has_calls(db_path):  # the store has data, just not in that range or agent
        return f"{where}: no usage in that range (widen --since/--until or drop --agent)"
    return f"{where}: run `tailerd --watch DIR --once` with this --data-dir to fill it"


def _has_calls(db_path: Path) -> bool:
    """Whether the store at `db_path` holds any LLM call at all (any day, any agent)."""
    return any(True for _ in calls(db_path, None, None, None))


_HEADERS = {
    "day": "DAY (UTC)",
    "week": "WEEK FROM (UTC)",
    "month": "MONTH (UTC)",
    "session": "SESSION",
    "model": "MODEL",
}
_BAR_DAYS = 31  # the chart shows at most the last month
_BAR_WIDTH = 40


def as_json(args: argparse.Namespace, rows: Sequence[Totals], total: Totals) -> str:
    """{by, since, until, agent, rows: [Totals.as_dict()], total: Totals.as_dict()}."""
    doc = {
        "by": args.by,
        "since": args.since.isoformat() if args.since else None,
        "until": args.until.isoformat() if args.until else None,
        "agent": args.agent,
        "rows": [r.as_dict() for r in rows],
        "total": total.as_dict(),
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


class _Console(Console):
    """rich's Console, but a reader that went away (`tailerd usage | head -1`) raises
    BrokenPipeError, which the CLI ends quietly with 0, instead of rich's SystemExit(1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def draw(
    by: str, rows: Sequence[Totals], total: Totals, daily: Sequence[Totals], out: TextIO
) -> None:
    """The table of `rows` with its total; in a terminal, the spend of `daily` as bars."""
    console: Console = _Console(file=out, highlight=False)
    terminal = console.is_terminal
    if not terminal:  # a pipe or a file: no wrapping at 80 columns, no colour
        console = _Console(file=out, width=250, no_color=True, highlight=False)
    table = Table(
        box=box.SIMPLE_HEAD if terminal else box.SIMPLE, show_footer=True, show_edge=False
    )
    table.add_column(_HEADERS[by], footer="TOTAL", no_wrap=True)
    if by == "session":
        table.add_column("AGENT", footer="")
    numbers = (
        ("CALLS", "calls"),
        ("INPUT W/ CACHE", "input_tokens"),
        ("UNCACHED IN", "uncached_input_tokens"),
        ("CACHE READ", "cache_read_tokens"),
        ("CACHE WRITE", "cache_write_tokens"),
        ("OUTPUT", "output_tokens"),
        ("REASONING", "reasoning_tokens"),
        ("TOTAL TOK", "total_tokens"),
    )
    for header, name in numbers:
        table.add_column(header, justify="right", footer=f"{getattr(total, name):,}")
    table.add_column("COST USD", justify="right", footer=total.cost.text())
    for r in rows:
        first = [r.key, ", ".join(sorted(r.agents)) or "-"] if by == "session" else [r.key]
        cells = [f"{getattr(r, name):,}" for _, name in numbers]
        table.add_row(*first, *cells, r.cost.text())
    console.print(table)
    console.print(
        "INPUT W/ CACHE includes CACHE READ and CACHE WRITE (input_tokens, as in `sessions`);"
        " UNCACHED IN leaves them out."
    )
    if terminal:
        _bars(console, daily)
    for line in footer_lines(total):
        console.print(line)


def footer_lines(total: Totals) -> list[str]:
    """The notes under the table on what COST USD leaves out or undercounts, counted over
    real LLM calls only (session-totals spans are no calls, and are said apart)."""
    cost, lines = total.cost, []
    if cost.unpriced_calls:
        lines.append(
            f"{cost.unpriced_calls:,} of {total.calls:,} LLM calls have no known price "
            "(their model is not in the price table): not counted in COST USD."
        )
    if cost.unpriced_totals:
        lines.append(
            f"{cost.unpriced_totals:,} session-totals records have no known price: their tokens"
            " are counted, their cost is not in COST USD."
        )
    if cost.input_unrecorded_calls:
        lines.append(
            f"{cost.input_unrecorded_calls:,} of {total.calls:,} LLM calls recorded no input "
            "tokens (≥): their cost is a lower bound (Copilot CLI keeps input only in the "
            "session's shutdown totals)."
        )
    if cost.unrecorded_calls:
        lines.append(
            f"{cost.unrecorded_calls:,} of {total.calls:,} LLM calls have no tokens of "
            "their own: their agent does not record them per call (where it keeps session "
            "totals, those are counted once, on a session-totals span)."
        )
    return lines


def _bars(console: Console, daily: Sequence[Totals]) -> None:
    """Spend per day as horizontal bars, the largest day full width."""
    days = [d for d in daily if d.key[:1].isdigit()][-_BAR_DAYS:]
    top = max((d.cost.usd for d in days), default=0.0)
    if not days or top <= 0:
        return
    chart = Table(box=None, show_header=False, padding=(0, 1))
    chart.add_column(no_wrap=True)
    chart.add_column(no_wrap=True)
    chart.add_column(justify="right", no_wrap=True)
    for d in days:
        width = round(_BAR_WIDTH * d.cost.usd / top)
        bar = "█" * width if width else ("▏" if d.cost.usd > 0 else "")
        chart.add_row(d.key, f"[green]{bar}[/green]", d.cost.text())
    console.print()
    console.print("spend per day (UTC)")
    console.print(chart)
