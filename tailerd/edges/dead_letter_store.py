"""Dead letters on disk: an append-only JSONL file in the state dir, private to the service user.

Lines that could not be parsed (`kind: line`) and turns a sink refused for good (`kind: turn`).
A turn sent again successfully by `tailerd retry` gets a `kind: retried` record; appends are
atomic, so a running daemon and `tailerd retry` can share the file without a lock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

FILE_NAME = "dead-letters.jsonl"


def append(state_dir: Path, record: dict[str, Any]) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    fd = os.open(state_dir / FILE_NAME, flags, 0o600)
    try:
        os.write(fd, orjson.dumps(record) + b"\n")
    finally:
        os.close(fd)


def _identity(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("path"), record.get("key"), record.get("sink"))


def load(state_dir: Path) -> list[dict[str, Any]]:
    """Dead letters still standing: refused turns that were retried successfully are left out."""
    path = state_dir / FILE_NAME
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # a torn last line after a crash
    retried = {_identity(r) for r in records if r.get("kind") == "retried"}
    return [r for r in records if r.get("kind") != "retried" and _identity(r) not in retried]


def mark_retried(state_dir: Path, record: dict[str, Any]) -> None:
    append(state_dir, {**record, "kind": "retried", "time": time.time()})
