"""Reading the local store (`tailerd.db`, tailerd/sinks/local.py) for `sessions` and `show`.

Read-only, while a daemon may be writing (SQLite WAL). Token names follow Weave's convention
(tailerd/domain.py `Usage`): a chat span's `gen_ai.usage.input_tokens` INCLUDES cache reads
(`gen_ai.usage.cache_read.input_tokens`) and cache writes
(`gen_ai.usage.cache_write.input_tokens`); the uncached input is the difference. Cost is the
issue-10 contract: `gen_ai.usage.cost` (float, USD) on a priced chat span,
`tailerd.cost.unpriced = true` on one whose model has no known price (never counted as $0).
Every attribute is read defensively: a store written before these existed still reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from tailerd.errors import AccessError, ConfigError, NoInputError, StateCorruptError
from tailerd.sinks import local
from tailerd.usage_totals import COST_DIGITS

# Where a turn's working directory may be: the cross-format contract first, then the older
# per-format names (stores written before `tailerd.cwd`).
CWD_KEYS = ("tailerd.cwd", "claude_code.cwd", "codex.cwd", "gemini.cwd")


def _num(attr: str) -> str:
    value = f"json_extract(attributes, '$.\"{attr}\"')"
    return f"CASE WHEN typeof({value}) IN ('integer', 'real') THEN {value} ELSE 0 END"


def _text(attr: str) -> str:
    value = f"json_extract(attributes, '$.\"{attr}\"')"
    return f"CASE WHEN typeof({value}) = 'text' THEN {value} END"


_CWD = "COALESCE(" + ", ".join(_text(k) for k in CWD_KEYS) + ")"
_ROOT = "parent_span_id IS NULL"
_CHAT = "operation = 'chat'"
# a synthetic span of session totals (tokens and cost, no LLM call: not counted as a call), and
# a call whose agent recorded no tokens for it (no price missing: not counted as unpriced)
_TOTALS = """json_extract(attributes, '$."tailerd.usage.session_totals"')"""
_RECORDED = """json_extract(attributes, '$."tailerd.usage.recorded"')"""
_UNPRICED = """json_extract(attributes, '$."tailerd.cost.unpriced"') IN (1, 'true')"""
# a call with output but no input tokens (Copilot CLI): its cost is a lower bound unless the
# session has a session-totals span, which carries the input
_NO_INPUT = """json_extract(attributes, '$."tailerd.usage.input_recorded"')"""

# Built from the constant attribute names above only: no input reaches this text.
_SESSIONS = f"""
SELECT session_id,
       MAX(CASE WHEN {_ROOT} THEN agent_name END),
       SUM(CASE WHEN {_ROOT} THEN 1 ELSE 0 END),
       MAX(CASE WHEN {_ROOT} THEN {_text("gen_ai.conversation.name")} END),
       MAX(CASE WHEN {_ROOT} THEN {_CWD} END),
       GROUP_CONCAT(DISTINCT CASE WHEN {_CHAT} THEN {_text("gen_ai.request.model")} END),
       SUM(CASE WHEN {_CHAT} AND {_TOTALS} IS NOT 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.input_tokens")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.cache_read.input_tokens")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.cache_write.input_tokens")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.output_tokens")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.reasoning.output_tokens")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} THEN {_num("gen_ai.usage.cost")} ELSE 0 END),
       SUM(CASE WHEN {_CHAT} AND typeof(json_extract(attributes, '$."gen_ai.usage.cost"'))
                IN ('integer', 'real') THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_CHAT} AND {_UNPRICED} AND {_RECORDED} IS NOT 0
                AND {_TOTALS} IS NOT 1 THEN 1 ELSE 0 END),
       MIN(start_ns), MAX(end_ns),
       SUM(CASE WHEN {_CHAT} AND {_UNPRICED} AND {_TOTALS} IS 1 THEN 1 ELSE 0 END),
       SUM(CASE WHEN {_CHAT} AND {_NO_INPUT} IS 0 AND typeof(json_extract(attributes,
                '$."gen_ai.usage.cost"')) IN ('integer', 'real') THEN 1 ELSE 0 END),
       MAX(CASE WHEN {_CHAT} AND {_TOTALS} IS 1 THEN 1 ELSE 0 END)
FROM spans WHERE session_id IS NOT NULL GROUP BY session_id
"""  # noqa: S608


def time_text(ns: int | None) -> str:
    """Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC); `-` for unknown."""
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _open(db_path: Path) -> sqlite3.Connection:
    """Read-only; a store in a read-only place (a copy, a snapshot, a directory the reader may
    not write) cannot get SQLite's WAL index there, so it is then read as immutable: what a
    writer still holds in its WAL file is not seen, which nobody can be adding to anyway."""
    db = local.connect(db_path, readonly=True)
    try:
        db.execute("SELECT 1 FROM spans LIMIT 1").fetchall()
    except sqlite3.OperationalError as exc:
        db.close()
        if "readonly" not in str(exc) and "unable to open" not in str(exc):
            raise
        uri = f"{db_path.absolute().as_uri()}?mode=ro&immutable=1"
        db = sqlite3.connect(uri, uri=True, timeout=30)
    return db


@contextmanager
def reading(db_path: Path) -> Iterator[sqlite3.Connection]:
    """The store, opened read-only. Raises NoInputError (one line naming the path and what to
    do) when there is none, ConfigError when it is a directory, StateCorruptError for a file
    that is not a store, AccessError for one that cannot be read."""
    try:
        if db_path.parent.exists() and not db_path.parent.is_dir():
            raise ConfigError(
                f"data dir {db_path.parent} is a file, not a directory (see --data-dir)"
            )
        exists, is_dir = db_path.exists(), db_path.is_dir()
    except OSError as exc:
        raise AccessError(
            f"cannot read the local store {db_path}: {exc.strerror} (run as the user that runs"
            " the daemon, or see --data-dir)"
        ) from None
    if is_dir:
        raise ConfigError(f"{db_path} is a directory, not a tailerd store (see --data-dir)")
    if not exists:
        raise NoInputError(
            f"no tailerd store at {db_path}: run `tailerd --watch DIR` (or `--once`) with this"
            " --data-dir / --state-dir first"
        )
    try:
        db = _open(db_path)
        try:
            yield db
        finally:
            db.close()
    except sqlite3.OperationalError as exc:  # permissions, a read-only place, a lock
        raise AccessError(
            f"cannot read the local store {db_path}: {exc} (it and its directory must be"
            " readable by this user; a store written by a service may need sudo)"
        ) from None
    except sqlite3.DatabaseError as exc:
        raise StateCorruptError(
            f"cannot read the local store {db_path}: {exc} (not a tailerd store? see --data-dir)"
        ) from None


def sessions(db_path: Path) -> list[dict[str, Any]]:
    """One dict per session in the store, unsorted. Keys: session_id, agent, turns, title,
    project (the agent's working directory), models (list), llm_calls, input_tokens (Weave's:
    with cache), uncached_input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost_usd (float, or None when no call was priced), priced_calls,
    unpriced_calls (LLM calls, not session-totals spans), unpriced_session_totals,
    input_unrecorded_calls (priced calls without input tokens in a session without totals:
    cost_usd is a lower bound), first / last (UTC text), first_ns / last_ns (int ns),
    duration_s."""
    with reading(db_path) as db:
        rows = db.execute(_SESSIONS).fetchall()
    out = []
    for r in rows:
        tokens_in, cache_read, cache_write = int(r[7] or 0), int(r[8] or 0), int(r[9] or 0)
        priced = int(r[13] or 0)
        out.append(
            {
                "session_id": r[0],
                "agent": r[1],
                "turns": int(r[2] or 0),
                "title": r[3],
                "project": r[4],
                "models": sorted(set((r[5] or "").split(","))) if r[5] else [],
                "llm_calls": int(r[6] or 0),
                "input_tokens": tokens_in,
                "uncached_input_tokens": max(0, tokens_in - cache_read - cache_write),
                "cache_read_tokens": cache_read,
                "cache_write_tokens": cache_write,
                "output_tokens": int(r[10] or 0),
                "reasoning_tokens": int(r[11] or 0),
                "cost_usd": round(float(r[12] or 0.0), COST_DIGITS) if priced else None,
                "priced_calls": priced,
                "unpriced_calls": int(r[14] or 0),
                "unpriced_session_totals": int(r[17] or 0),
                "input_unrecorded_calls": 0 if r[19] else int(r[18] or 0),
                "first": time_text(r[15]),
                "last": time_text(r[16]),
                "first_ns": r[15],
                "last_ns": r[16],
                "duration_s": None if r[15] is None or r[16] is None else (r[16] - r[15]) / 1e9,
            }
        )
    return out


_COST = "gen_ai.usage.cost"


def session_spans(db_path: Path, session_id: str) -> list[dict[str, Any]]:
    """A session's turns, oldest first, spans of the same start in the order they were stored
    (as the emitter gave them). Each is a span dict (span_id, trace_id,
    parent_span_id, name, operation, start / end text, start_ns / end_ns, duration_s,
    attributes, children) whose `children` nest its LLM, tool and sub-agent spans."""
    with reading(db_path) as db:
        rows = db.execute(
            "SELECT span_id, trace_id, parent_span_id, name, operation, start_ns, end_ns,"
            " attributes FROM spans WHERE session_id = ? ORDER BY start_ns, rowid",
            (session_id,),
        ).fetchall()
    spans = []
    for r in rows:
        try:
            attributes = orjson.loads(r[7])
        except orjson.JSONDecodeError:
            attributes = {}
        cost = attributes.get(_COST) if isinstance(attributes, dict) else None
        if isinstance(cost, float):  # USD without float noise
            attributes[_COST] = round(cost, COST_DIGITS)
        spans.append(
            {
                "span_id": r[0],
                "trace_id": r[1],
                "parent_span_id": r[2],
                "name": r[3],
                "operation": r[4],
                "start": time_text(r[5]),
                "end": time_text(r[6]),
                "start_ns": r[5],
                "end_ns": r[6],
                "duration_s": None if r[5] is None or r[6] is None else (r[6] - r[5]) / 1e9,
                "attributes": attributes if isinstance(attributes, dict) else {},
                "children": [],
            }
        )
    by_id = {s["span_id"]: s for s in spans}
    turns = []
    for s in spans:
        parent = by_id.get(s["parent_span_id"]) if s["parent_span_id"] else None
        if parent is not None:
            parent["children"].append(s)
        elif s["parent_span_id"] is None:
            turns.append(s)
    return turns


def resolve_session(db_path: Path, text: str) -> str:
    """The session id `text` names: itself if the store has it, else the one session whose id
    starts with it (the terminal table shows 8 characters). NoInputError if none or several."""
    with reading(db_path) as db:
        if db.execute("SELECT 1 FROM spans WHERE session_id = ? LIMIT 1", (text,)).fetchone():
            return text
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT session_id FROM spans WHERE session_id LIKE ? ESCAPE '\\' LIMIT 3",
                (escaped + "%",),
            )
        ]
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise NoInputError(f"no session {text!r} in {db_path} (see `tailerd sessions`)")
    raise NoInputError(
        f"{text!r} starts several sessions in {db_path} ({', '.join(found[:2])}"
        f"{', ...' if len(found) > 2 else ''}):"
        " give more of the id"
    )
