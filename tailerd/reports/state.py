"""Read-only views for people: `tailerd sessions`, `show`, `status`, `dead-letters`.

They read the local store and the state directory while a daemon may be running, and never
take its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from tailerd.edges import dead_letter_store
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.sinks import local

_SESSIONS = """
SELECT session_id,
       MAX(CASE WHEN parent_span_id IS NULL THEN agent_name END) AS agent,
       SUM(CASE WHEN parent_span_id IS NULL THEN 1 ELSE 0 END) AS turns,
       SUM(CASE WHEN operation = 'chat'
           THEN COALESCE(json_extract(attributes, '$."gen_ai.usage.input_tokens"'), 0) END),
       SUM(CASE WHEN operation = 'chat'
           THEN COALESCE(json_extract(attributes, '$."gen_ai.usage.output_tokens"'), 0) END),
       MIN(start_ns), MAX(end_ns)
FROM spans GROUP BY session_id ORDER BY MIN(start_ns)
"""


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sessions(db_path: Path) -> list[dict[str, Any]]:
    if not db_path.exists():
        return []
    with local.connect(db_path, readonly=True) as db:
        rows = db.execute(_SESSIONS).fetchall()
    return [
        {
            "session_id": r[0],
            "agent": r[1],
            "turns": r[2],
            "input_tokens": r[3] or 0,
            "output_tokens": r[4] or 0,
            "first": _time(r[5]),
            "last": _time(r[6]),
        }
        for r in rows
    ]


def session_spans(db_path: Path, session_id: str) -> list[dict[str, Any]]:
    """A session's turns, oldest first; each turn lists its child spans (nested sub-agents too)."""
    if not db_path.exists():
        return []
    with local.connect(db_path, readonly=True) as db:
        rows = db.execute(
            "SELECT span_id, trace_id, parent_span_id, name, operation, start_ns, end_ns,"
            " attributes"
            " FROM spans WHERE session_id = ? ORDER BY start_ns, span_id",
            (session_id,),
        ).fetchall()
    spans = [
        {
            "span_id": r[0],
            "trace_id": r[1],
            "parent_span_id": r[2],
            "name": r[3],
            "operation": r[4],
            "start": _time(r[5]),
            "end": _time(r[6]),
            "attributes": orjson.loads(r[7]),
            "children": [],
        }
        for r in rows
    ]
    by_id = {s["span_id"]: s for s in spans}
    turns = []
    for s in spans:
        parent = by_id.get(s["parent_span_id"]) if s["parent_span_id"] else None
        if parent is not None:
            parent["children"].append(s)
        elif s["parent_span_id"] is None:
            turns.append(s)
    return turns


def render_sessions(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield f"{'SESSION':<38} {'AGENT':<16} {'TURNS':>5} {'IN TOK':>9} {'OUT TOK':>9}  FIRST / LAST"
    for r in rows:
        yield (
            f"{r['session_id']:<38} {(r['agent'] or '-')[:16]:<16} {r['turns']:>5} "
            f"{r['input_tokens']:>9} {r['output_tokens']:>9}  {r['first']} / {r['last']}"
        )


def _summary(span: dict[str, Any]) -> str:
    a = span["attributes"]
    if span["operation"] == "chat":
        tokens_in = a.get("gen_ai.usage.input_tokens", 0)
        return f"in={tokens_in} out={a.get('gen_ai.usage.output_tokens', 0)}"
    if span["operation"] == "execute_tool":
        return _clip(str(a.get("gen_ai.tool.call.arguments", "")))
    return ""


def _clip(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _first_text(messages_json: object) -> str:
    if not isinstance(messages_json, str):
        return ""
    try:
        messages = orjson.loads(messages_json)
    except orjson.JSONDecodeError:
        return ""
    for m in messages if isinstance(messages, list) else []:
        for part in m.get("parts", []) if isinstance(m, dict) else []:
            if isinstance(part, dict) and part.get("content"):
                return str(part["content"])
    return ""


def render_show(turns: list[dict[str, Any]]) -> Iterator[str]:
    for n, turn in enumerate(turns, 1):
        a = turn["attributes"]
        yield f"turn {n}  {turn['start']} .. {turn['end']}  trace {turn['trace_id']}"
        prompt = _first_text(a.get("gen_ai.input.messages"))
        answer = _first_text(a.get("gen_ai.output.messages"))
        if prompt:
            yield f"  user: {_clip(prompt)}"
        yield from _render_children(turn["children"], "  ")
        if answer:
            yield f"  assistant: {_clip(answer)}"


def _render_children(children: list[dict[str, Any]], indent: str) -> Iterator[str]:
    for child in children:
        yield f"{indent}- {child['name']}  {_summary(child)}".rstrip()
        yield from _render_children(child["children"], indent + "  ")


def status(state_dir: Path) -> dict[str, Any]:
    """Per watched file: offset, size, lag, turns emitted, dead letters; per sink: its health."""
    store = CheckpointStore(state_dir, readonly=True)  # never blocks nor alters the daemon's
    try:
        checkpoints = store.load()
    finally:
        store.close()
    status_path = state_dir / "status.json"
    live: dict[str, Any] = {}
    if status_path.exists():
        try:
            live = orjson.loads(status_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            live = {}  # half written by a crashed daemon: the checkpoints still say it all
    files = []
    for cp in sorted(checkpoints.values(), key=lambda c: c.path):
        if cp.removed_at is not None:
            continue
        try:
            size: int | None = Path(cp.path).stat().st_size
        except OSError:
            size = None
        seen = live.get("files", {}).get(cp.path, {})
        files.append(
            {
                "path": cp.path,
                "format": cp.format or None,
                "offset": cp.offset,
                "size": size,
                "lag_bytes": None if size is None else max(0, size - cp.offset),
                "turns_emitted": cp.turns_emitted,
                "dead_letters": cp.dead_letters,
                "unknown_record_types": seen.get("unknown_record_types", {}),
                "quarantined": seen.get("quarantined"),
                "pending_turns": seen.get("pending_turns", 0),
                "open_turns": seen.get("open_turns", []),
                "open_since": seen.get("open_since"),
                "quiet_since": seen.get("quiet_since"),
            }
        )
    return {
        "state_dir": str(state_dir),
        "daemon_pid": live.get("pid"),
        "updated": live.get("time"),
        "sinks": live.get("sinks", {}),
        "redactions": live.get("redactions", {}),
        "duplicates_skipped": live.get("duplicates_skipped", 0),
        "dry_run": bool(live.get("dry_run", False)),
        "files": files,
    }


def render_status(doc: dict[str, Any]) -> Iterator[str]:
    yield f"state dir {doc['state_dir']}"
    if doc["daemon_pid"]:
        yield f"last report from pid {doc['daemon_pid']} at {_time(int(doc['updated'] * 1e9))}"
    for name, h in doc["sinks"].items():
        line = f"sink {name}: delivered={h['delivered']} pending={h.get('pending', 0)}"
        line += f" rejected={h['rejected']}"
        if h.get("failing_since"):
            line += f" retrying since {_time(int(h['failing_since'] * 1e9))}: {h['last_error']}"
        yield line
    if doc.get("dry_run"):
        yield "dry run: checkpoints and the history index were not written"
    if doc.get("duplicates_skipped"):
        yield (
            f"duplicates skipped: {doc['duplicates_skipped']} turns copied from history"
            " already shipped from another file"
        )
    if doc["redactions"]:
        yield "redacted: " + ", ".join(f"{k}={v}" for k, v in sorted(doc["redactions"].items()))
    yield f"{'OFFSET':>12} {'SIZE':>12} {'LAG':>10} {'TURNS':>6} {'DEAD':>5}  FORMAT      PATH"
    for f in doc["files"]:
        size = "-" if f["size"] is None else f["size"]
        lag = "-" if f["lag_bytes"] is None else f["lag_bytes"]
        yield (
            f"{f['offset']:>12} {size:>12} {lag:>10} {f['turns_emitted']:>6} "
            f"{f['dead_letters']:>5}  {(f['format'] or '-'):<11} {f['path']}"
        )
        for kind, count in sorted(f["unknown_record_types"].items()):
            yield f"{'':>48}unknown record type {kind}: {count}"
        if f.get("quarantined"):
            yield f"{'':>48}quarantined (no longer read): {f['quarantined']}"
        for turn in f.get("open_turns", []):
            since = f" since {_time(int(f['open_since'] * 1e9))}" if f.get("open_since") else ""
            yield (
                f"{'':>48}turn open from byte {turn['from']}{since} (not sent yet),"
                f" waiting for {turn['closes_on']}"
            )


def dead_letters(state_dir: Path) -> list[dict[str, Any]]:
    return dead_letter_store.load(state_dir)
