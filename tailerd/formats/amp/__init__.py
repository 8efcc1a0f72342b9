"""Amp (Sourcegraph's agent, npm `@sourcegraph/amp`, now `@ampcode/cli`) local threads:
`${XDG_DATA_HOME:-~/.local/share}/amp/threads/T-<uuid>.json`.

Layout (real sample: git-ai-project/git-ai tests/fixtures/amp-threads/, two threads of the Amp
CLI 0.0.1772237000; the directory from Amp's bundle, `@sourcegraph/amp` 0.0.1771243550-geaf318
dist/main.js: `XDG_DATA_HOME || ~/.local/share` + `amp/threads`, `threads-development` for
development builds): ONE JSON document per thread, **rewritten whole** on every change
(`JSON.stringify(thread, null, 2)` to `T-<id>.json.amptmp`, renamed over the file; Amp itself
refuses to load one over 50 MiB),
`{v: <version>, id: "T-<uuid>", created: <epoch ms>, title, agentMode, messages: [...],
nextMessageId, meta: {traces}, env: {initial: {trees: [{displayName, uri, repository}],
platform: {client, clientVersion, ...}, tags}}, mainThreadID?, "~debug"}`. Amp moved threads
to its servers in 2026: local files are from before.

A rewritten-whole file is a `DocumentFormat` (formats.base) as Cline's and Gemini's legacy ones:
the daemon re-reads it on change and ships only turns whose key is new, so a thread rewritten
with more messages ships only its new finished turns. Keys are Amp's own: the thread id and the
prompt's `messageId` (`amp|T-...|0`). Turns, LLM calls, tools and sub-agents:
`amp.turns`, `amp.tools`; tokens: `amp.usage`. The thread's `title` is the session name, the
first workspace tree's `file://` URI its working directory (`tailerd.cwd`); a sub-thread (Amp's
REPL and other helper threads) names its main thread (`amp.main_thread_id`).
Amp records no price: cost is tailerd's (pricing). A fork (Amp's bundle, `createForkedThread`)
is a new thread with `originThreadID`, `forkPointIndex` and a verbatim copy of the origin's
`messages[: forkPointIndex + 1]`: a copied message's identity (`Turn.identities`,
`amp:message:<thread>:<messageId>`) names the origin thread, so a turn made only of copies is
recognised as shipped from the origin (tailerd.history) and a turn the fork went on with is not
(`amp.forked_from` names the origin). The copy of a fork of a fork names its own origin only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote, urlparse

from tailerd.domain import Turn
from tailerd.formats.amp.tools import Traces
from tailerd.formats.amp.turns import AGENT_NAME, Thread, build_turn, finished, groups_of
from tailerd.formats.base import Source, WholeDocumentsOnly, messages_document
from tailerd.formats.json_values import as_dict, as_str
from tailerd.formats.options import IDLE_CLOSE_ONLY

THREAD_NAME = re.compile(r"T-[0-9A-Za-z-]+\.json")
THREAD_DIRS = frozenset({"threads", "threads-development"})


def _cwd(doc: Mapping[str, Any]) -> str:
    """The first workspace tree's path (`env.initial.trees[0].uri`, a file:// URI); ""."""
    trees = as_dict(as_dict(doc.get("env")).get("initial")).get("trees")
    first = as_dict(trees[0]) if isinstance(trees, list) and trees else {}
    uri = urlparse(as_str(first.get("uri")))
    return unquote(uri.path) if uri.scheme == "file" and uri.path else ""


def _attributes(doc: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if cwd := _cwd(doc):
        attrs["tailerd.cwd"] = cwd
    platform = as_dict(as_dict(as_dict(doc.get("env")).get("initial")).get("platform"))
    if version := as_str(platform.get("clientVersion")):
        attrs["amp.client_version"] = version
    if main := as_str(doc.get("mainThreadID")):
        attrs["amp.main_thread_id"] = main
    if origin := as_str(doc.get("originThreadID")):
        attrs["amp.forked_from"] = origin
    return attrs


def _copied(doc: Mapping[str, Any]) -> frozenset[int]:
    """The messages a fork copied from its origin (`messages[: forkPointIndex + 1]`), by id()."""
    point = doc.get("forkPointIndex")
    if not as_str(doc.get("originThreadID")) or isinstance(point, bool):
        return frozenset()
    if not isinstance(point, int) or point < 0:
        return frozenset()
    return frozenset(id(m) for m in doc["messages"][: point + 1])


def turns_from_document(data: bytes, source: Source, *, final: bool) -> list[Turn]:
    """Every finished turn of a thread document ([] while it is half-written or not a thread);
    an unfinished last turn counts only when `final` (the file has been quiet long enough)."""
    doc = messages_document(data)
    if doc is None:
        return []
    thread = Thread(
        session_id=as_str(doc.get("id")) or PurePath(source.path).stem,
        title=as_str(doc.get("title")),
        attributes=_attributes(doc),
        traces=Traces.of(doc),
        agent_name=source.agent_name,
        end=len(data),
        origin=as_str(doc.get("originThreadID")),
        copied=_copied(doc),
    )
    groups = groups_of(doc["messages"])
    if groups and not (final or finished(groups[-1])):
        groups.pop()  # the last turn may still grow
    return [build_turn(thread, g) for g in groups]


class AmpFormat(WholeDocumentsOnly):
    name = AGENT_NAME

    def reads_whole(self, path: PurePath) -> bool:
        return path.parent.name in THREAD_DIRS and THREAD_NAME.fullmatch(path.name) is not None

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        return turns_from_document(data, source, final=final)

    def claims(self, path: PurePath, head: bytes) -> bool:
        """`.../threads/T-<id>.json` holding a JSON object with `"v":` and `"messages"`."""
        return (
            self.reads_whole(path)
            and head.lstrip().startswith(b"{")
            and b'"v":' in head
            and b'"messages"' in head
        )


FORMAT = AmpFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
