"""The predecessor of checkpoints.db: `checkpoints.json`, read once to migrate it.

Format (tailerd 0.1): `{"version": 1, "checksum": sha256 hex of the sorted-keys JSON of
"files", "files": {"<device>:<inode>": {FileCheckpoint fields}}}`, with the previous generation
kept as `checkpoints.json.prev`. Only reading is left here; the checkpoint store imports the
entries and renames both files to `*.migrated`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from tailerd.errors import StateCorruptError

FILE_NAME = "checkpoints.json"
PREVIOUS_NAME = FILE_NAME + ".prev"
VERSION = 1


def paths(state_dir: Path) -> list[Path]:
    """The legacy files that may exist in `state_dir`, current generation first."""
    return [state_dir / FILE_NAME, state_dir / PREVIOUS_NAME]


def read(state_dir: Path, warnings: list[str]) -> dict[str, dict[str, Any]] | None:
    """The `files` entries (key -> field dict) of `checkpoints.json`; of its `.prev` generation,
    with a line added to `warnings`, if the current one is unreadable. None if neither exists;
    StateCorruptError (one line, how to start over) if both are bad."""
    path, previous = paths(state_dir)
    if not path.exists() and not previous.exists():
        return None
    try:
        return _read_file(path)
    except StateCorruptError as current_error:
        if not previous.exists():
            raise
        try:
            loaded = _read_file(previous)
        except StateCorruptError:
            raise current_error from None
        warnings.append(
            f"{current_error}; resumed from the previous generation {previous}"
            " (turns since then are re-sent with the same ids)"
        )
        return loaded


def checksum(files: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(files, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    hint = f"move it aside to start over (history is then re-sent): {path}"
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise StateCorruptError(f"checkpoint file missing: {path}") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise StateCorruptError(f"checkpoint file unreadable ({exc}); {hint}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise StateCorruptError(f"checkpoint file has unknown version {version!r}; {hint}")
    files = doc.get("files")
    if not isinstance(files, dict) or doc.get("checksum") != checksum(files):
        raise StateCorruptError(f"checkpoint file fails its checksum; {hint}")
    if not all(isinstance(v, dict) for v in files.values()):
        raise StateCorruptError(f"checkpoint entry malformed; {hint}")
    return files
