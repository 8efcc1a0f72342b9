"""Which `agent-*.jsonl` files are Claude Code sub-agent transcripts read through their parent.

A layout rule applies only inside Claude Code's layout: a file named `agent-*.jsonl` is a
sub-agent transcript only if its first record is a Claude Code sidechain record
(`isSidechain: true` or an `agentId`, with a `uuid` and `sessionId`). Anything else (a native
log under /var/log/agents named `agent-2026-09-06.jsonl`) is an ordinary file.

A sub-agent transcript is read through its parent (auxiliary: never tailed alone) only when a
parent can ship it: its session file (`<dir>/<session>.jsonl` for `<dir>/<session>/subagents/…`,
else `<dir>/<sessionId>.jsonl`) exists and is not empty, and it is not a Warmup sidechain. Those
that fail this are tailed on their own (`standalone`). The look costs one read of at most
64 KiB of the file and one stat, and only for files named `agent-*.jsonl`; a compressed one
(`.zst`/`.gz`) is judged by its path alone (under `.claude/projects/`).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

import orjson

from tailerd.formats.base import COMPRESSION_SUFFIXES

_HEAD_BYTES = 64 * 1024
_SIDECHAIN = re.compile(rb'"isSidechain":\s*true')
_SESSION_ID = re.compile(rb'"sessionId":\s*"([^"]+)"')


def _under_claude_projects(path: PurePath) -> bool:
    parts = path.parts
    return any(parts[i : i + 2] == (".claude", "projects") for i in range(len(parts) - 1))


def _first_line(path: PurePath) -> bytes:
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return b""
    return next((ln for ln in head.split(b"\n") if ln.strip()), b"")


def _sidechain_head(line: bytes) -> tuple[bool, str, bool]:
    """(is a Claude sidechain record, its sessionId, is a Warmup prompt) of a first line."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:  # a first line longer than the head: look at its bytes
        found = _SESSION_ID.search(line)
        sidechain = bool(_SIDECHAIN.search(line)) and b'"uuid":' in line and found is not None
        return sidechain, found.group(1).decode("utf-8", "replace") if found else "", False
    if not isinstance(rec, dict):
        return False, "", False
    session = rec.get("sessionId")
    if not isinstance(session, str) or "uuid" not in rec:
        return False, "", False
    if rec.get("isSidechain") is not True and not isinstance(rec.get("agentId"), str):
        return False, "", False
    message = rec.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return True, session, isinstance(content, str) and content.strip() == "Warmup"


def _parent_session_file(path: PurePath, session_id: str) -> PurePath:
    parts = path.parts
    if "subagents" in parts:
        i = len(parts) - 1 - parts[::-1].index("subagents")
        session_dir = PurePath(*parts[:i])
        return session_dir.parent / f"{session_dir.name}.jsonl"
    return path.parent / f"{session_id}.jsonl"


def is_subagent_file_read_by_parent(path: PurePath) -> bool:
    """True for a Claude Code sub-agent transcript that its session's parser reads and ships."""
    name = path.name
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    if not (name.startswith("agent-") and name.endswith(".jsonl")):
        return False
    if name != path.name:
        return _under_claude_projects(path)
    sidechain, session_id, warmup = _sidechain_head(_first_line(path))
    if not sidechain or warmup:
        return False
    try:
        return Path(_parent_session_file(path, session_id)).stat().st_size > 0
    except OSError:
        return False


def is_subagent_file(path: PurePath) -> bool:
    """A Claude Code sub-agent transcript by name and first record (whether or not its parent
    reads it); a compressed one by name under `.claude/projects/`."""
    name = path.name
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    if not name.startswith("agent-"):
        return False
    if name != path.name:
        return _under_claude_projects(path)
    return _sidechain_head(_first_line(path))[0]
