"""Cline CLI / SDK sessions: `~/.cline/data/sessions/<id>/<id>.messages.json` (+ `<id>.json`).

Layout (real sample: cline/cline sdk/packages/core/fixtures/session/, a session of the new
Cline CLI): `<id>.json` is the session manifest `{session_id, source, status, started_at,
ended_at, provider, model, cwd, metadata: {title, fork: {forkedFromSessionId, forkedAt}},
messages_path}`; `<id>.messages.json` is `{version, updated_at, agent, sessionId, system_prompt,
messages: [...]}`, **rewritten whole** on every update. (The classic VS Code extension's
`tasks/<taskId>/api_conversation_history.json` is another layout, not read here.)

A rewritten-whole file is a `DocumentFormat` (formats.base): the daemon re-reads it on change
and ships only turns whose key is new, the last turn once the manifest records the CLI
process's end (`ended_at`; `status` "completed" in the sample) or the file has been quiet for
`idle_close` seconds (formats.base.DEFAULT_DOCUMENT_IDLE_CLOSE, option `idle_close`). Turns,
spans, tokens and cost: `cline.turns`. The manifest, read through `Source.read_related`, gives
the session title (`metadata.title` -> `gen_ai.conversation.name`), the working directory
(`cwd` -> `tailerd.cwd`) and the fork link (`cline.forked_from`). A fork copies its parent's
messages with their ids (the sample, a fork, holds only messages dated before its `forkedAt`),
so `Turn.identities` are the turn's message ids (`cline:message:<id>`): copied history already
shipped from the parent is not shipped again. Keys: session id and the prompt message's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.domain import Turn
from tailerd.formats.base import Source, WholeDocumentsOnly, messages_document
from tailerd.formats.cline.turns import AGENT_NAME, Record, build_turn, is_prompt
from tailerd.formats.options import IDLE_CLOSE_ONLY

MESSAGES_SUFFIX = ".messages.json"
MANIFEST_CAP = 1 << 20  # bytes of a manifest read (the real one is 1.3 KB)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def manifest_of(source: Source) -> dict[str, Any]:
    """The session manifest beside the messages file; {} when absent or unreadable."""
    path = source.path.removesuffix(MESSAGES_SUFFIX) + ".json"
    data = source.read_related(path, MANIFEST_CAP)
    try:
        raw = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _session_facts(manifest: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    meta = manifest.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    attrs: dict[str, Any] = {}
    if _str(manifest.get("cwd")):
        attrs["tailerd.cwd"] = manifest["cwd"]
    fork = meta.get("fork")
    if isinstance(fork, dict) and _str(fork.get("forkedFromSessionId")):
        attrs["cline.forked_from"] = fork["forkedFromSessionId"]
    if _str(manifest.get("source")):
        attrs["cline.source"] = manifest["source"]
    return _str(meta.get("title")), attrs


def turns_from_document(data: bytes, source: Source, *, final: bool) -> list[Turn]:
    """Every finished turn of a messages document ([] while it is half-written); the last turn
    counts only when `final` (the file has been quiet long enough)."""
    doc = messages_document(data)
    if doc is None:
        return []
    manifest = manifest_of(source)
    session = (
        _str(doc.get("sessionId"))
        or _str(manifest.get("session_id"))
        or PurePath(source.path).name.removesuffix(MESSAGES_SUFFIX)
    )
    title, attrs = _session_facts(manifest)
    groups: list[list[Record]] = []
    for message in doc["messages"]:
        if not isinstance(message, dict):
            continue
        if is_prompt(message):
            groups.append([message])
        elif groups:
            groups[-1].append(message)
    if groups and not (final or _str(manifest.get("ended_at"))):
        groups.pop()  # the last turn may still grow, unless the CLI process has ended
    return [
        build_turn(
            session,
            g,
            end=len(data),
            agent_name=source.agent_name,
            session_name=title,
            attributes=attrs,
        )
        for g in groups
    ]


class ClineFormat(WholeDocumentsOnly):
    name = AGENT_NAME

    def reads_whole(self, path: PurePath) -> bool:
        return path.name.endswith(MESSAGES_SUFFIX)

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        return turns_from_document(data, source, final=final)

    def claims(self, path: PurePath, head: bytes) -> bool:
        """`<id>.messages.json` holding a JSON object with `sessionId` or `messages`."""
        return (
            path.name.endswith(MESSAGES_SUFFIX)
            and head.lstrip().startswith(b"{")
            and (b'"sessionId"' in head or b'"messages"' in head)
        )


FORMAT = ClineFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
