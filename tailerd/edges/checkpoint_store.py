"""Checkpoints on disk: versioned, checksummed JSON, written crash-safely.

Write: temp file, fsync, keep the previous generation, rename, fsync the directory. Read: a
file that does not parse or whose checksum does not match is reported; the previous generation
is used only with a warning, and if both are bad tailerd refuses to start rather than silently
re-reading (and re-sending) everything from zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tailerd.errors import StateCorruptError

VERSION = 1
FILE_NAME = "checkpoints.json"


@dataclass(slots=True)
class FileCheckpoint:
    """Everything needed to resume one file: identity, committed offset, parser context."""

    path: str
    device: int
    inode: int
    head_len: int
    head_hash: str
    offset: int = 0
    format: str = ""
    stable_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    resolved_ahead: list[str] = field(default_factory=list)
    document: bool = False  # rewritten whole: resumed by path, turns diffed by key
    sent_keys: list[str] = field(default_factory=list)  # whole-document files only
    turns_emitted: int = 0
    dead_letters: int = 0
    removed_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.device}:{self.inode}"


def _checksum(files: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(files, option=orjson.OPT_SORT_KEYS)).hexdigest()


class CheckpointStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self.previous = state_dir / (FILE_NAME + ".prev")
        self.warnings: list[str] = []

    def load(self) -> dict[str, FileCheckpoint]:
        if not self.path.exists() and not self.previous.exists():
            return {}
        try:
            return self._read(self.path)
        except StateCorruptError as current_error:
            if not self.previous.exists():
                raise
            try:
                loaded = self._read(self.previous)
            except StateCorruptError:
                raise current_error from None
            self.warnings.append(
                f"{current_error}; resumed from the previous generation {self.previous}"
                " (turns since then are re-sent with the same ids)"
            )
            return loaded

    def _read(self, path: Path) -> dict[str, FileCheckpoint]:
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
        if not isinstance(files, dict) or doc.get("checksum") != _checksum(files):
            raise StateCorruptError(f"checkpoint file fails its checksum; {hint}")
        try:
            return {k: FileCheckpoint(**v) for k, v in files.items()}
        except TypeError as exc:
            raise StateCorruptError(f"checkpoint entry malformed ({exc}); {hint}") from None

    def save(self, checkpoints: Mapping[str, FileCheckpoint]) -> None:
        files = {k: asdict(v) for k, v in sorted(checkpoints.items())}
        doc = {"version": VERSION, "checksum": _checksum(files), "files": files}
        data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.path.exists():
            with contextlib.suppress(FileNotFoundError):
                self.previous.unlink()
            os.link(self.path, self.previous)
        tmp.replace(self.path)
        fsync_dir(self.path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
