"""`tailerd status` and `dead-letters`: the state directory, read while a daemon may be
running, never taking its lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from tailerd.edges import dead_letter_store
from tailerd.edges.checkpoint_schema import FileCheckpoint
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.status import CHANGED, NOT_READ, NOT_RECORDED, UP_TO_DATE, whole_read_state

WHOLE_LAG = {  # the LAG column
    UP_TO_DATE: "current", CHANGED: "changed", NOT_READ: "unread", NOT_RECORDED: "read",
}  # fmt: skip


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_per_path(
    checkpoints: Iterable[FileCheckpoint],
) -> Iterator[tuple[FileCheckpoint, int | None]]:
    """Each path's checkpoint, sorted by path, with the file's size now (None when gone): of
    several for one path (a document replaced by rename keeps its old inode's checkpoint,
    history rather than work) the file's current inode's, else the one that shipped most."""
    by_path: dict[str, list[FileCheckpoint]] = {}
    for cp in checkpoints:
        if cp.removed_at is None:
            by_path.setdefault(cp.path, []).append(cp)
    for path in sorted(by_path):
        found = by_path[path]
        try:
            st = Path(path).stat()
        except OSError:
            yield max(found, key=lambda c: (c.turns_emitted, c.offset)), None
            continue
        live = [c for c in found if (c.device, c.inode) == (st.st_dev, st.st_ino)]
        yield (live or [max(found, key=lambda c: (c.turns_emitted, c.offset))])[0], st.st_size


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
    for cp, size in _one_per_path(checkpoints.values()):
        seen = live.get("files", {}).get(cp.path, {})
        files.append(
            {
                "path": cp.path,
                "format": cp.format or None,
                "offset": cp.offset,
                "size": size,
                # a file read whole has no byte lag: whether it is shipped is `whole_read`
                "lag_bytes": None if size is None or cp.document else max(0, size - cp.offset),
                "whole_read": (
                    whole_read_state(
                        cp.path, cp.context, cp.turns_emitted > 0 or bool(cp.sent_keys)
                    )
                    if cp.document
                    else None
                ),
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
        offset = f["offset"]
        if f.get("whole_read"):  # read whole: no offset, no byte lag (see whole_read_state)
            offset, lag = "-", WHOLE_LAG[f["whole_read"]]
        yield (
            f"{offset:>12} {size:>12} {lag:>10} {f['turns_emitted']:>6} "
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
