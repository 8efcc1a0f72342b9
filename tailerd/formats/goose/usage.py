"""goose's per-call usage: the `usage_ledger` table (schema 15 on), put onto the turns' chat spans.

Shape (block/goose `crates/goose/src/session/session_manager.rs`, migration 15):
`usage_ledger(id AUTOINCREMENT, session_id, created_timestamp (epoch seconds), model,
input_tokens, output_tokens, total_tokens, cache_read_tokens, cache_write_tokens, cost,
cost_source, is_compaction)`, one row per provider call (read in the search tool's stored copy
of that file, whose migrations go to 16; its commit id was not shown). Its time is read like a
message's (seconds, or milliseconds as later goose writes message times). goose's
`input_tokens` already counts the cached input (its Anthropic format adds
`cache_read_input_tokens` and `cache_creation_input_tokens` into it): Weave's convention too.

A row names no message, so rows are given to turns by time: a turn takes the rows written from
its first message up to the next turn's first message, and gives them in order to its chat
spans (runs of model messages, in order); rows beyond its chat spans, and compaction calls,
become chat spans of their own (`tailerd.usage.unmatched = true`, `goose.compaction = true`).
Rows written before the first turn read (a call that finished after its turn was shipped) are
shipped on a synthetic turn of their own. The cursor keeps the last row id shipped.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tailerd.domain import LLMCall, SpanCall, Turn, Usage
from tailerd.edges.agent_db import table_columns
from tailerd.formats.base import parse_time
from tailerd.formats.goose.rows import seconds
from tailerd.formats.json_values import as_int, as_str

LEDGER_COLUMNS = (
    "id", "created_timestamp", "model", "input_tokens", "output_tokens", "total_tokens",
    "cache_read_tokens", "cache_write_tokens", "cost", "cost_source", "is_compaction",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Charge:
    """One `usage_ledger` row: a provider call's model, tokens and goose's own cost (USD)."""

    id: int
    created: float
    model: str
    usage: Usage
    cost: float | None
    cost_source: str
    compaction: bool


def has_ledger(db: sqlite3.Connection) -> bool:
    """The database keeps a complete `usage_ledger` (goose schema 15 on)."""
    return set(LEDGER_COLUMNS) <= table_columns(db, "usage_ledger")


def ledger(db: sqlite3.Connection, session_id: str, after: int) -> list[Charge] | None:
    """The session's ledger rows with id above `after`, in id order; None when the database
    has no complete `usage_ledger` (goose before schema 15) or the session has no row in it
    at all (a session older than the ledger: its calls are only in the session's totals)."""
    if not has_ledger(db):
        return None
    if (
        db.execute("SELECT 1 FROM usage_ledger WHERE session_id = ?", (session_id,)).fetchone()
        is None
    ):
        return None
    found = db.execute(
        f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger"  # noqa: S608
        " WHERE session_id = ? AND id > ? ORDER BY id",
        (session_id, after),
    )
    return [_charge(row) for row in found]


def _charge(row: tuple[Any, ...]) -> Charge:
    rid, created, model, t_in, t_out, t_all, c_read, c_write, cost, source, compaction = row
    total = as_int(t_all)
    return Charge(
        id=as_int(rid),
        created=seconds(created),
        model=as_str(model),
        usage=Usage(
            input_tokens=as_int(t_in),
            output_tokens=as_int(t_out),
            cache_read_input_tokens=as_int(c_read),
            cache_creation_input_tokens=as_int(c_write),
            total_tokens=total or None,
        ),
        cost=float(cost) if _number(cost) and cost >= 0 else None,
        cost_source=as_str(source),
        compaction=compaction in (1, True),
    )


def in_window(charges: Sequence[Charge], start: float, end: float) -> list[Charge]:
    """The charges written in [start, end) (epoch seconds)."""
    return [c for c in charges if start <= c.created < end]


def charged_spans(spans: Sequence[SpanCall], charges: Sequence[Charge]) -> tuple[SpanCall, ...]:
    """`spans` with the charges given in order to its chat spans; the rest (and compaction
    calls) appended as chat spans of their own."""
    out = list(spans)
    regular = iter([c for c in charges if not c.compaction])
    for index, span in enumerate(out):
        charge = next(regular, None) if isinstance(span, LLMCall) else None
        if isinstance(span, LLMCall) and charge is not None:
            out[index] = charged(span, charge)
    extra = [*regular, *(c for c in charges if c.compaction)]
    out.extend(charged(LLMCall(), c, unmatched=not c.compaction) for c in extra)
    return tuple(out)


def charged(call: LLMCall, charge: Charge, *, unmatched: bool = False) -> LLMCall:
    """`call` with the charge's model, tokens and cost (goose's own: `tailerd.cost.source =
    "agent"`, and goose's `cost_source`)."""
    attributes = {k: v for k, v in call.attributes.items() if k != "tailerd.usage.recorded"}
    if charge.cost is not None:
        attributes.update({"gen_ai.usage.cost": charge.cost, "tailerd.cost.source": "agent"})
    if charge.cost_source:
        attributes["goose.cost_source"] = charge.cost_source
    if charge.compaction:
        attributes["goose.compaction"] = True
    if unmatched:
        attributes["tailerd.usage.unmatched"] = True
    when = parse_time(charge.created) if charge.created else None
    return dataclasses.replace(
        call,
        model=charge.model or call.model,
        usage=charge.usage,
        started_at=call.started_at or when,
        ended_at=call.ended_at or when,
        attributes=attributes,
    )


def with_charges(turn: Turn, charges: Sequence[Charge]) -> Turn:
    """`turn` with its charges on its chat spans (and its model from them when goose recorded
    none for the session)."""
    if not charges:
        return turn
    model = turn.model or next((c.model for c in reversed(charges) if c.model), "")
    return dataclasses.replace(turn, spans=charged_spans(turn.spans, charges), model=model)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
