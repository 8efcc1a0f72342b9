"""tailerd JSONL: the native format for agents that write their own logs.

Keys mirror weave's constructors (Message, LLM, Tool, SubAgent, Usage). Two styles, mixable:

* one `{"type": "turn", ...}` line per finished turn;
* event lines sharing `session_id` and `turn_id`: `turn_start`, any number of `llm`, `tool`,
  `subagent` and `message`, then `turn_end`, which finishes the turn. `session_end` finishes
  the session (closing any turn still open in it as interrupted).

Unknown keys are kept as span attributes. The JSON Schema in `tailerd/schema/native.schema.json`
is generated from the models (`python -m tailerd.formats.native`).

This package: `models` (the pydantic models of each line), `spans` (models to domain spans),
`turns` (the parser), `schema` (the JSON Schema); the format itself is below.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from tailerd.formats.base import Source, TurnParser
from tailerd.formats.native.models import TYPES
from tailerd.formats.native.schema import SCHEMA_PATH, json_schema
from tailerd.formats.native.turns import DEFAULT_IDLE_CLOSE, NativeParser, split_output
from tailerd.formats.options import IDLE_CLOSE_ONLY

__all__ = [
    "DEFAULT_IDLE_CLOSE",
    "FORMAT",
    "SCHEMA_PATH",
    "NativeFormat",
    "NativeParser",
    "json_schema",
    "split_output",
]


class NativeFormat:
    name = "native"

    def claims(self, path: PurePath, head: bytes) -> bool:
        first = head.split(b"\n", 1)[0]
        try:
            raw = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return (
            isinstance(raw, dict)
            and isinstance(raw.get("type"), str)
            and raw["type"] in TYPES
            and "session_id" in raw
        )

    def is_auxiliary(self, path: PurePath) -> bool:
        return False

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> TurnParser:
        return NativeParser(source)


FORMAT = NativeFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
