"""Any other JSONL, by configuration: a `[[mapping]]` in the config file describes a custom shape.

Each field below (except the top-level `name`, `match`, `agent_name` and the booleans and
numbers) is a JMESPath expression evaluated on one JSON record (one line). A record may play
several roles at once (say, a reply that is also an LLM call). The worked example is
`config/custom-agent.example.toml` with `examples/custom/agent.log.jsonl`. An expression that
yields null, false, "" or an empty list/object means "absent" (JMESPath truthiness), so
`user_message = "evt == 'request' && data.text"` is the prompt on request records and absent
elsewhere. Every expression is compiled once, when the config is loaded; a bad one is a
config error naming the mapping and the field.

Top level:

* `name` (required): the format name (`--format NAME`, status output, first part of turn keys).
* `match`: file-name globs this mapping claims (matched on the name without `.gz`/`.zst`).
* `detect`: a file is also claimed when this is truthy on its first JSON record.
  A mapping with neither `match` nor `detect` is used only through `--format NAME`.
* `agent_name`: the agent name on every turn (default: `name`; `--agent-name` overrides it).
* `session_id` (required): the session id. A record where it is absent is a dead letter.
* `session_name`: a session's display name; remembered from whichever record carries it.
* `timestamp`: the record's time: ISO-8601, or epoch seconds or milliseconds.
* `turn_id`: the agent's id of the turn. It keys the turn; without `turn_start`, a record with
  a different `turn_id` than the open turn's starts a new turn.
* `turn_start`: predicate: this record starts a new turn. With it, only such records open
  turns, and records with content outside a turn are dead letters.
* `turn_end`: predicate: this record finishes the turn (it is the turn's last record).
* `end_on_next_start` (true): a turn still open when the next one starts is finished, and not
  marked interrupted; false marks it interrupted.
* `user_message` / `assistant_message`: text of the user's prompt / of the assistant's answer.
  The trailing assistant messages of a turn are its output; earlier ones stay in its input.
* `input_includes_cache` (true): the agent's input token count already includes cache reads
  and writes (OpenAI style). Set false for Anthropic-style counts: the cache tokens are then
  added to `input_tokens`, which is Weave's convention.
* `idle_close` (30 s), `stale_close` (600 s): see "Turn boundaries" below.

`[mapping.llm]`, a record that is one LLM call: `when` (required predicate), `model`,
`provider`, `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`,
`reasoning_tokens`, `response` (the model's text), `started_at` (ended_at is the record's time).

`[mapping.tool]`, a record that is one tool call: `when` (required), `name` (required),
`arguments`, `result`, `call_id`, `is_error`, `started_at`. When `result` is absent, the call has
a `call_id` and `[mapping.tool_result]` is configured, the call waits for its result record.

`[mapping.tool_result]`, a record that is the result of an earlier tool call of the same turn:
`when` (required), `call_id` (required), `result`, `is_error`.

Turn boundaries. Turns are tracked per session (one open turn per session). A turn opens at a
`turn_start` record; without `turn_start`, at the first record with content (a message, an LLM or
tool call) when none is open, or at a record with a new `turn_id`. Records without content never
open a turn. A turn finishes at its `turn_end` record (inclusive), when the next turn of its
session starts, or when the file has been quiet: after `idle_close` seconds when the mapping has
no `turn_end` and no tool call is waiting (the normal end, not interrupted), otherwise after
`stale_close` seconds (marked interrupted: the agent most likely died). `source.options`
(`format_options`) overrides both. A late record naming a recently finished turn id never
reopens it: it is a dead letter if it carries content, ignored otherwise.

A turn's model is its last LLM call's; it spans its first record's start to its last record's
end (its times likewise). Turn keys: `name|session|turn_id`, else
`name|session|<time of the first record>`, else `name|session|<file name>|<start offset>`.

This package: `spec` (the table's models and compiled expressions), `records` (one record read
through them), `turns` (the parser); the format and `formats_from_config` are below.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import PurePath
from typing import Any

import orjson
from pydantic import ValidationError

from tailerd.errors import ConfigError
from tailerd.formats.base import COMPRESSION_SUFFIXES, Source, TurnParser
from tailerd.formats.mapped.records import present
from tailerd.formats.mapped.spec import (
    DEFAULT_IDLE_CLOSE,
    DEFAULT_STALE_CLOSE,
    LLMSpec,
    MappingSpec,
    ToolResultSpec,
    ToolSpec,
    compile_expressions,
)
from tailerd.formats.mapped.turns import MappedParser
from tailerd.formats.options import SECONDS, OptionSchema

__all__ = [
    "DEFAULT_IDLE_CLOSE",
    "DEFAULT_STALE_CLOSE",
    "LLMSpec",
    "MappedFormat",
    "MappedParser",
    "MappingSpec",
    "ToolResultSpec",
    "ToolSpec",
    "formats_from_config",
]

HEAD_RECORDS = 20  # lines of a file's head tried when looking for its first JSON record


def _first_record(head: bytes) -> dict[str, Any] | None:
    for text in head.split(b"\n")[:HEAD_RECORDS]:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(raw, dict):
            return raw
    return None


class MappedFormat:
    """A format described by a `MappingSpec`; every expression compiled once, here."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.compiled = compile_expressions(spec)

    def claims(self, path: PurePath, head: bytes) -> bool:
        name = path.name
        for suffix in COMPRESSION_SUFFIXES:
            name = name.removesuffix(suffix)
        if any(fnmatchcase(name, glob) for glob in self.spec.match):
            return True
        detect = self.compiled.get("detect")
        if detect is None:
            return False
        record = _first_record(head)
        if record is None:
            return False
        try:
            return present(detect.search(record))
        except Exception:  # a detect failing on a foreign file means "not mine"
            return False

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return MappedParser(self.spec, self.compiled, source, context)


def formats_from_config(raw: object) -> list[MappedFormat]:
    """The formats of the config file's `[[mapping]]` array; ConfigError (one line) if invalid."""
    if not isinstance(raw, list):
        raise ConfigError("mapping must be an array of tables ([[mapping]])")
    formats: list[MappedFormat] = []
    for index, item in enumerate(raw):
        label = f"mapping[{index}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        try:
            spec = MappingSpec.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "table"
            raise ConfigError(f"invalid {label}: {where}: {first['msg']}") from None
        if any(f.name == spec.name for f in formats):
            raise ConfigError(f"invalid {label}: name {spec.name!r} is used by an earlier mapping")
        formats.append(MappedFormat(spec))
    return formats


# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS: OptionSchema = {"idle_close": SECONDS, "stale_close": SECONDS}
