"""checkpoints.json exactly as tailerd 0.1 wrote it (frozen copy of its writer), for migration
tests. The field list is today's FileCheckpoint shape, kept here on purpose: a field added to
FileCheckpoint later must still be migrated from files that lack it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

LEGACY_FIELDS = (
    "path", "device", "inode", "head_len", "head_hash", "offset", "format", "stable_name",
    "context", "resolved_ahead", "document", "sent_keys", "turns_emitted", "dead_letters",
    "removed_at",
)  # fmt: skip


def legacy_entry(**fields: Any) -> dict[str, Any]:
    """One file's record in today's shape; missing fields get today's defaults."""
    defaults: dict[str, Any] = {
        "offset": 0, "format": "", "stable_name": "", "context": {}, "resolved_ahead": [],
        "document": False, "sent_keys": [], "turns_emitted": 0, "dead_letters": 0,
        "removed_at": None,
    }  # fmt: skip
    entry = {**defaults, **fields}
    assert set(entry) == set(LEGACY_FIELDS), set(entry) ^ set(LEGACY_FIELDS)
    return entry


def write_legacy(state_dir: Path, files: dict[str, dict[str, Any]], name: str = "checkpoints.json"):
    """The body of tailerd 0.1's CheckpointStore.save (without the .prev link)."""
    files = dict(sorted(files.items()))
    checksum = hashlib.sha256(orjson.dumps(files, option=orjson.OPT_SORT_KEYS)).hexdigest()
    doc = {"version": 1, "checksum": checksum, "files": files}
    data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
