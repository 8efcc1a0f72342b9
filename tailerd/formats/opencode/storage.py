"""OpenCode's older JSON `storage/` tree, beside (or instead of) its database: releases before
the SQLite migration (opencode-ai 1.1.65 and earlier on npm; 1.2.1 migrates the tree into
`opencode.db` on first start) and users who never upgraded keep everything there:

    <data dir>/opencode/storage/session/<projectID>/<sessionID>.json   session (title, directory,
                                                                        parentID of a sub-agent)
    <data dir>/opencode/storage/message/<sessionID>/<messageID>.json    one per message
    <data dir>/opencode/storage/part/<messageID>/<partID>.json          one per part

(anomalyco/opencode `packages/opencode/src/storage/json-migration.ts` reads exactly these
globs, `session/*/*.json`, `message/*/*.json`, `part/*/*.json`, and takes every id from the
file names; seen in the tree opencode-ai 1.1.65 wrote, tests/data/opencode-storage/.) A message
file holds what the database keeps in `message.data`, a part file what it keeps in `part.data`
(plus their own ids), so the tree feeds the database reader's turn builder (opencode/turns.py)
with the same `Row`s: turn keys, span ids, tokens, tool calls and sub-agents (child sessions,
`parentID`) are the ones the database gives for the same session after migration, and a turn
shipped from here is not shipped again from `opencode.db` (same key and `Turn.identities`).

Watching: a session file is the tracked file, read whole (`reads_whole`); on every change the
session's message and part files are listed and read through `Source.find_related` /
`read_related`, and only turns whose key is new are sent. Message and part files are
`is_auxiliary` (never tracked alone; their paths do not name the session file's project
directory, so they cannot point at it). OpenCode rewrites the session file when a prompt starts
and again after its last answer (`time.updated` and the diff summary: in the 1.1.65 tree the
session's `time.updated` is later than its last message's `time.completed`), so a finished
turn is read at once. A turn is finished by OpenCode's own marks, as in the database
(`time.completed` with a final finish reason, every tool call completed or failed), or by the
next user message; once the session file has been quiet for the document idle time, a turn
whose newest message is also older than `idle_close` (option, default 600 s as for the
database) is closed as interrupted. Sub-agent session files are claimed and yield nothing
(their turns are nested in the parent's). Not read: the 0.x layout `storage/session/info/`
(moved by OpenCode's own storage migrations long before 1.1), todos, diffs, shares.

Cost of a re-read: every message and part file of the session and of its sub-agents' sessions
(each read once). Measured on this machine (best of 3, `document_turns` of the top-level
session): the 1.1.65 sample (2 turns, 40 files) 9 ms; its messages and parts copied to 200
turns (2,515 files) 0.9 s, once per rewrite of the session file (a prompt's start and end).
"""

from __future__ import annotations

import os
import time
from pathlib import PurePath
from typing import Any

from tailerd.domain import Turn
from tailerd.edges.agent_db.protocol import DEFAULT_IDLE_CLOSE
from tailerd.formats.base import Source, WholeDocumentsOnly
from tailerd.formats.json_values import as_dict, as_str
from tailerd.formats.opencode.turns import Row, json_object, number, session_turns
from tailerd.formats.options import IDLE_CLOSE_ONLY

STORAGE = "storage"
ROW_DIRS = ("message", "part")
FILE_CAP = 8 << 20  # bytes of one session, message or part file read (a larger one is skipped)
OLD_LAYOUT = "info"  # storage/session/info/<id>.json: the 0.x layout, not read


def _in_storage(path: PurePath, kind: tuple[str, ...]) -> bool:
    """`<...>/storage/<kind>/<dir>/<name>.json`."""
    parents = path.parents
    return (
        path.suffix == ".json"
        and len(parents) > 3
        and parents[1].name in kind
        and parents[2].name == STORAGE
    )


def is_session_file(path: PurePath) -> bool:
    """`storage/session/<projectID>/ses_<id>.json`."""
    return (
        _in_storage(path, ("session",))
        and path.name.startswith("ses_")
        and path.parent.name != OLD_LAYOUT
    )


class StorageRows:
    """`Rows` (opencode/turns.py) read from a storage/ tree through the source's
    `find_related` / `read_related`. `own` is the tracked session file's session."""

    def __init__(self, source: Source, own: dict[str, str]) -> None:
        path = PurePath(source.path)
        self._source = source
        self._root = path.parents[2]
        self._project = path.parent.name
        self._own = own
        self._read: dict[str, list[Row]] = {}

    def session(self, session_id: str) -> dict[str, str] | None:
        if session_id == self._own["id"]:
            return self._own
        path = self._root / "session" / self._project / f"{session_id}.json"
        data = self._source.read_related(str(path), FILE_CAP)
        if data is None:  # a sub-agent filed under another project
            found = self._source.find_related(str(self._root / "session"), f"{session_id}.json")
            data = self._source.read_related(found[0], FILE_CAP) if found else None
        info = json_object(data)
        return session_fields(session_id, info) if info else None

    def messages(self, session_id: str, cursor: str | None) -> list[Row]:
        """All of the session's messages (`cursor` is unused: the daemon keeps the keys sent),
        read once per re-read (a sub-agent's session may be asked for again)."""
        if session_id not in self._read:
            self._read[session_id] = self._messages(session_id)
        return self._read[session_id]

    def _messages(self, session_id: str) -> list[Row]:
        rows = []
        for path in self._files("message", session_id):
            info = json_object(self._source.read_related(path, FILE_CAP))
            if not info:
                continue  # half-written or unreadable: the next re-read sees it whole
            mid = PurePath(path).stem
            times = as_dict(info.get("time"))
            created = number(times.get("created"))
            updated = number(times.get("updated")) or number(times.get("completed")) or created
            parts = tuple(
                part
                for part in (
                    json_object(self._source.read_related(p, FILE_CAP))
                    for p in self._files("part", mid)
                )
                if part
            )
            rows.append(Row(mid, created, updated, info, parts))
        rows.sort(key=lambda r: (r.created, r.id))
        return rows

    def _files(self, kind: str, owner: str) -> list[str]:
        """`storage/<kind>/<owner>/*.json`, sorted by name (OpenCode's ids ascend): one
        directory, so find_related's sorted paths are in name order."""
        directory = str(self._root / kind / owner)
        found = self._source.find_related(directory, "*.json")
        return [p for p in found if os.path.dirname(p) == directory]  # noqa: PTH120


def session_fields(session_id: str, info: dict[str, Any]) -> dict[str, str]:
    """The session as the turn builder takes it (its id from the file name, as OpenCode's
    migration does)."""
    return {
        "id": session_id,
        "title": as_str(info.get("title")),
        "directory": as_str(info.get("directory")),
    }


def turns_from_session_file(data: bytes, source: Source, *, final: bool) -> list[Turn]:
    """The finished turns of one top-level session ([] for a sub-agent's session file or one
    that is half-written). `final`: the session file has been quiet for the document idle
    time, so a last turn quiet for `idle_close` seconds is closed."""
    info = json_object(data)
    if not info or as_str(info.get("parentID")):
        return []
    own = session_fields(PurePath(source.path).stem, info)
    idle_close = source.options.get("idle_close", DEFAULT_IDLE_CLOSE)
    read = session_turns(
        StorageRows(source, own),
        source,
        own["id"],
        None,
        now=time.time() if final else 0.0,  # not final: only OpenCode's marks finish a turn
        idle_close=float(idle_close) if isinstance(idle_close, (int, float)) else 0.0,
    )
    return [t.turn for t in read.turns]


class OpenCodeStorageFormat(WholeDocumentsOnly):
    name = "opencode-storage"

    def claims(self, path: PurePath, head: bytes) -> bool:
        """A session file of a storage/ tree holding a JSON object."""
        return is_session_file(path) and head.lstrip().startswith(b"{")

    def is_auxiliary(self, path: PurePath) -> bool:
        """A message or part file, read through its session file."""
        return _in_storage(path, ROW_DIRS)

    def reads_whole(self, path: PurePath) -> bool:
        return is_session_file(path)

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        return turns_from_session_file(data, source, final=final)


FORMAT = OpenCodeStorageFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
