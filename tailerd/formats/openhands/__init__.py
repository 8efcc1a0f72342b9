"""OpenHands conversations: `~/.openhands/conversations/<id>/base_state.json` + `events/*.json`.

The first "directory of per-event files" source (issue 9). A conversation is a directory:
`base_state.json`, rewritten in place (agent and LLM settings, working directory, execution
status, per-completion token usage and cost: `state`), and `events/event-<seq>-<id>.json`,
one file per event, each written once (`events`). It is read as one document:

* `base_state.json` is the tracked file, a `DocumentFormat` (formats.base): on every change
  the daemon re-reads it whole, `document_turns` lists and reads the conversation's event files
  through `Source.find_related` / `read_related`, and only turns whose key is new are sent.
* Event files are `is_auxiliary` (never tailed alone); `reader_of(event path)` names the
  `base_state.json` that reads them, so the file table turns a change to an event file into a
  re-read of its conversation (tailerd/tracking.py `look_at`).
* The last turn is finished when the file has been quiet for `idle_close` seconds (option,
  default formats.base.DEFAULT_DOCUMENT_IDLE_CLOSE) or at once when base_state.json says the
  run stopped (`execution_status` finished, error or stuck).

Cost of a re-read: every event file of the conversation (the sample: 8 files, 23 KB); each is
read up to EVENT_CAP bytes (a larger event is skipped). Measured on this machine with the
sample's turn repeated (best of 3): 100 turns (501 files, 0.3 MB) in 0.3 s, 1,000 turns
(5,001 files, 3.2 MB) in 1.8 s, once per change of base_state.json.

Keys: the conversation id and the prompt event's id;
`Turn.identities` `openhands:event:<id>`. `workspace.working_dir` is `tailerd.cwd`. Not in
these files: a conversation title (the OpenHands server keeps it elsewhere), sub-agents
(a V1 delegate is a conversation of its own).
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath

import orjson

from tailerd.domain import Turn
from tailerd.formats.base import Source, WholeDocumentsOnly
from tailerd.formats.openhands.events import AGENT_NAME, Event, build_turn, is_prompt
from tailerd.formats.openhands.state import parse_state
from tailerd.formats.options import IDLE_CLOSE_ONLY

STATE_FILE = "base_state.json"
EVENTS_DIR = "events"
EVENT_CAP = 8 << 20  # bytes of one event file read (the sample's largest: 16.6 KB)
_EVENT_NAME = re.compile(r"^event-(\d+)-.*\.json$")
STOPPED = frozenset({"finished", "error", "stuck"})


def _events(source: Source) -> list[Event]:
    directory = str(PurePath(source.path).parent / EVENTS_DIR)
    numbered = []
    for path in source.find_related(directory, "event-*.json"):
        parent, name = os.path.split(path)  # not PurePath: this loop runs per event file
        found = _EVENT_NAME.match(name)
        if found is None or parent != directory:
            continue  # a file in a subdirectory of events/
        data = source.read_related(path, EVENT_CAP)
        try:
            event = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            continue  # half-written: the next re-read sees it whole
        if isinstance(event, dict):
            numbered.append((int(found.group(1)), event))
    numbered.sort(key=lambda pair: pair[0])
    return [e for _, e in numbered]


def turns_from_document(data: bytes, source: Source, *, final: bool) -> list[Turn]:
    """Every finished turn of one conversation ([] while base_state.json is half-written)."""
    state = parse_state(data)
    if state is None:
        return []
    conversation = state.conversation_id or PurePath(source.path).parent.name
    groups: list[list[Event]] = []
    for event in _events(source):
        if is_prompt(event):
            groups.append([event])
        elif groups:
            groups[-1].append(event)
    if groups and not (final or state.execution_status in STOPPED):
        groups.pop()
    attrs = {"tailerd.cwd": state.cwd} if state.cwd else {}
    return [
        build_turn(
            conversation, g, state, end=len(data), agent_name=source.agent_name, attributes=attrs
        )
        for g in groups
    ]


class OpenHandsFormat(WholeDocumentsOnly):
    name = AGENT_NAME

    def reads_whole(self, path: PurePath) -> bool:
        return path.name == STATE_FILE

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        return turns_from_document(data, source, final=final)

    def claims(self, path: PurePath, head: bytes) -> bool:
        """`base_state.json` holding a JSON object with an `agent`."""
        return path.name == STATE_FILE and head.lstrip().startswith(b"{") and b'"agent"' in head

    def is_auxiliary(self, path: PurePath) -> bool:
        """An event file, read through its conversation's base_state.json."""
        return path.parent.name == EVENTS_DIR and _EVENT_NAME.match(path.name) is not None

    def reader_of(self, path: PurePath) -> PurePath | None:
        """The base_state.json that reads this event file; None for any other file."""
        return path.parent.parent / STATE_FILE if self.is_auxiliary(path) else None


FORMAT = OpenHandsFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
