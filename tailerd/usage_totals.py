"""Tokens and cost in USD of the LLM calls in the local store, grouped (for `tailerd usage`).

Read from the local store (`tailerd.db`, tailerd/sinks/local.py), read-only, while a daemon may
be writing. Every chat span is one LLM call. Its tokens are Weave's (`gen_ai.usage.*`:
`input_tokens` includes cache reads and writes); here they are kept (`input_tokens`, the
name and meaning of `tailerd sessions --json`) and split into uncached input, cache read,
cache write, output and reasoning (inside output, as the providers bill it), and
total = input (with cache) + output. Cost is the issue-10 contract: `gen_ai.usage.cost` (USD)
on a priced call, `tailerd.cost.unpriced = true` on a call whose model has no known price; a
call stored before tailerd priced calls is priced here from its tokens (tailerd/pricing.py).
Unpriced calls are counted and shown as "unpriced", never as $0. A call whose agent recorded no
tokens for it (`tailerd.usage.recorded = false`: Crush, goose, Cursor, ...) is "not recorded",
not unpriced: its price is not missing from the table, its tokens are missing from the agent's
record (an agent that records session totals ships them on a span of their own). A synthetic
span of session totals (`tailerd.usage.session_totals = true`: Copilot CLI's shutdown totals,
goose's and Crush's session totals) adds its tokens and cost but is no LLM call: CALLS leaves
it out. Days, weeks (starting Monday) and months are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from tailerd import pricing
from tailerd.domain import Usage
from tailerd.sinks import local

GROUPINGS = ("day", "week", "month", "session", "model")
COST_DIGITS = 10  # USD in JSON: sums of floats carry noise (0.10772562499999999)
_NS = 1_000_000_000
NO_MODEL = "(no model recorded)"  # the group of calls whose span names no model


@dataclass(frozen=True, slots=True)
class Cost:
    """USD over `priced_calls`, plus how many calls had no known price (never counted as $0),
    how many recorded no tokens of their own (`unrecorded_calls`: no price to look up), how many
    priced calls recorded output but no input tokens (`input_unrecorded_calls`, Copilot CLI
    without its shutdown totals: their USD is a lower bound) and how many session-totals spans
    had no known price (`unpriced_totals`: no calls, but their tokens lack a cost)."""

    usd: float = 0.0
    priced_calls: int = 0
    unpriced_calls: int = 0
    unrecorded_calls: int = 0
    input_unrecorded_calls: int = 0
    unpriced_totals: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.usd + other.usd,
            self.priced_calls + other.priced_calls,
            self.unpriced_calls + other.unpriced_calls,
            self.unrecorded_calls + other.unrecorded_calls,
            self.input_unrecorded_calls + other.input_unrecorded_calls,
            self.unpriced_totals + other.unpriced_totals,
        )

    @property
    def known(self) -> float | None:
        """USD, or None when no call was priced at all (all unpriced, or no calls)."""
        return self.usd if self.priced_calls else None

    def text(self) -> str:
        """`$1.23`, `≥$1.23` when some priced calls recorded no input tokens (a lower bound),
        `$1.23 + unpriced` when some calls or session totals had no price, `unpriced` when none
        had, `not recorded` when no call recorded its tokens."""
        unpriced = self.unpriced_calls or self.unpriced_totals
        if not self.priced_calls:
            if unpriced:
                return "unpriced"
            return "not recorded" if self.unrecorded_calls else "-"
        money = ("≥" if self.input_unrecorded_calls else "") + _money(self.usd)
        return f"{money} + unpriced" if unpriced else money


def _money(usd: float) -> str:
    """Dollars with the digits that matter: $12.34, $0.0123, $0.000028."""
    if usd >= 1 or usd == 0:
        return f"${usd:,.2f}"
    return f"${usd:.4f}" if usd >= 0.001 else f"${usd:.6f}"


@dataclass(slots=True)
class Totals:
    """Tokens of a group of LLM calls, named and meant as in `tailerd sessions --json`:
    `input_tokens` is Weave's count (with cache reads and writes), `uncached_input_tokens` the
    input read neither from nor into the cache."""

    key: str
    calls: int = 0
    input_tokens: int = 0
    uncached_input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Cost = field(default_factory=Cost)
    agents: set[str] = field(default_factory=set)
    first_ns: int | None = None

    @property
    def total_tokens(self) -> int:
        """Input (with cache reads and writes) + output; reasoning is inside output."""
        return self.input_tokens + self.output_tokens

    def add(self, call: _Call) -> None:
        self.calls += 0 if call.totals else 1
        self.input_tokens += call.prompt
        self.uncached_input_tokens += call.uncached
        self.cache_read_tokens += call.cache_read
        self.cache_write_tokens += call.cache_write
        self.output_tokens += call.output
        self.reasoning_tokens += call.reasoning
        cost = call.cost
        if call.totals:  # no LLM call: never an unpriced or unrecorded call
            cost = Cost(cost.usd, cost.priced_calls, unpriced_totals=cost.unpriced_calls)
        self.cost = self.cost + cost
        if call.agent:
            self.agents.add(call.agent)
        if call.start_ns is not None and (self.first_ns is None or call.start_ns < self.first_ns):
            self.first_ns = call.start_ns

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: key, calls, input_tokens (with cache), uncached_input_tokens,
        cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, total_tokens,
        cost_usd (float USD rounded to COST_DIGITS places, or None when no call was priced),
        priced_calls, unpriced_calls, unrecorded_calls (calls with no tokens of their own),
        input_unrecorded_calls (priced calls with no input tokens recorded: cost_usd is then a
        lower bound), unpriced_session_totals (session-totals spans with no known price),
        agents (sorted list). `calls` leaves out synthetic session-totals spans."""
        known = self.cost.known
        return {
            "key": self.key,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "uncached_input_tokens": self.uncached_input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": None if known is None else round(known, COST_DIGITS),
            "priced_calls": self.cost.priced_calls,
            "unpriced_calls": self.cost.unpriced_calls,
            "unrecorded_calls": self.cost.unrecorded_calls,
            "input_unrecorded_calls": self.cost.input_unrecorded_calls,
            "unpriced_session_totals": self.cost.unpriced_totals,
            "agents": sorted(self.agents),
        }


@dataclass(frozen=True, slots=True)
class _Call:
    start_ns: int | None
    session_id: str
    agent: str
    model: str
    prompt: int  # Weave's input_tokens: with cache reads and writes
    uncached: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int
    cost: Cost
    totals: bool = False  # a synthetic span of session totals, not an LLM call


# The attributes read from a chat span, in this order after start, session and agent.
_FIELDS = (
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    pricing.COST,
    pricing.UNPRICED,
    "tailerd.usage.recorded",
    pricing.CACHE_WRITE_1H,
    "tailerd.usage.session_totals",
    "tailerd.usage.input_recorded",
)
_PATHS = ", ".join(f"'$.\"{name}\"'" for name in _FIELDS)

# Built from the constant names above only. One json_extract with every path parses a span's
# attributes once (a JSON array comes back). A chat span's agent is its turn root's.
_CALLS = f"""
SELECT c.start_ns, c.session_id,
       (SELECT r.agent_name FROM spans r
        WHERE r.trace_id = c.trace_id AND r.parent_span_id IS NULL LIMIT 1),
       json_extract(c.attributes, {_PATHS})
FROM spans c
WHERE c.operation = 'chat' AND (? IS NULL OR c.start_ns >= ?) AND (? IS NULL OR c.start_ns < ?)
"""  # noqa: S608


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _cost(row: tuple[Any, ...]) -> Cost:
    stored, unpriced, recorded = row[10], row[11], row[12]
    partial = 1 if row[15] in (0, False, "false") else 0  # no input tokens: a lower bound
    if isinstance(stored, (int, float)) and not isinstance(stored, bool):
        return Cost(float(stored), 1, 0, input_unrecorded_calls=partial)
    if recorded in (0, False, "false"):
        return Cost(0.0, 0, 0, 1)
    if unpriced in (1, True, "true"):
        return Cost(0.0, 0, 1)
    # a call stored before tailerd priced calls: priced now, from its tokens
    when = None if row[0] is None else datetime.fromtimestamp(row[0] / _NS, tz=timezone.utc)
    usage = Usage(
        input_tokens=_int(row[5]),
        output_tokens=_int(row[6]),
        cache_read_input_tokens=_int(row[7]),
        cache_creation_input_tokens=_int(row[8]),
    )
    usd = pricing.price(_text(row[3]), _text(row[4]), usage, when, _int(row[13]))
    return Cost(0.0, 0, 1) if usd is None else Cost(usd, 1, 0, input_unrecorded_calls=partial)


def calls(
    db_path: Path, since: date | None = None, until: date | None = None, agent: str | None = None
) -> Iterator[_Call]:
    """Every LLM call in the store started in [since, until] (UTC days, both included), of
    `agent` if given. Raises sqlite3.DatabaseError for a file that is not a store."""
    lo = None if since is None else _day_ns(since)
    hi = None if until is None else _day_ns(until + timedelta(days=1))
    with local.connect(db_path, readonly=True) as db:
        for start, session, owner, fields in db.execute(_CALLS, (lo, lo, hi, hi)):
            values = orjson.loads(fields) if isinstance(fields, str) else []
            if not isinstance(values, list) or len(values) != len(_FIELDS):
                values = [None] * len(_FIELDS)
            row = (start, session, owner, *values)
            who = _text(row[2])
            if agent is not None and who != agent:
                continue
            prompt, read, write = _int(row[5]), _int(row[7]), _int(row[8])
            yield _Call(
                start_ns=row[0],
                session_id=_text(row[1]),
                agent=who,
                model=_text(row[4]) or NO_MODEL,
                prompt=prompt,
                uncached=max(0, prompt - read - write),
                cache_read=read,
                cache_write=write,
                output=_int(row[6]),
                reasoning=_int(row[9]),
                cost=_cost(row),
                totals=row[14] in (1, True, "true"),
            )


def _day_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * _NS


def _key(call: _Call, by: str) -> str:
    if by == "session":
        return call.session_id or "(no session)"
    if by == "model":
        return call.model
    if call.start_ns is None:
        return "(no time)"
    day = datetime.fromtimestamp(call.start_ns / _NS, tz=timezone.utc).date()
    if by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # its Monday
    if by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def group(items: Iterable[_Call], by: str = "day") -> tuple[list[Totals], Totals]:
    """Totals per `by` key (days, weeks, months oldest first; sessions by first call; models by
    cost, largest first) and the grand total. A call with no input tokens is a lower bound
    only in a session with no session-totals span (which carries the input it lacks)."""
    groups: dict[str, Totals] = {}
    total = Totals("total")
    listed = list(items)
    completed = {c.session_id for c in listed if c.totals}
    for each in listed:
        call = each
        if call.cost.input_unrecorded_calls and call.session_id in completed:
            call = replace(each, cost=replace(each.cost, input_unrecorded_calls=0))
        key = _key(call, by)
        row = groups.get(key)
        if row is None:
            row = groups[key] = Totals(key)
        row.add(call)
        total.add(call)
    rows = list(groups.values())
    if by == "session":
        rows.sort(key=lambda t: (t.first_ns is None, t.first_ns or 0, t.key))
    elif by == "model":
        rows.sort(key=lambda t: (-t.cost.usd, -t.total_tokens, t.key))
    else:
        rows.sort(key=lambda t: t.key)
    return rows, total


def session_costs(db_path: Path) -> dict[str, Cost]:
    """Cost per session id of every session in the store (for `tailerd sessions`). Raises
    sqlite3.DatabaseError for a file that is not a store; {} when there is no store."""
    if not db_path.is_file():
        return {}
    rows, _ = group(calls(db_path), "session")
    return {t.key: t.cost for t in rows}
