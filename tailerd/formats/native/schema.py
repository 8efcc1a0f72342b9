"""The native format's JSON Schema, generated from its pydantic models.

`python -m tailerd.formats.native` rewrites `tailerd/schema/native.schema.json`; a test checks
the checked-in file equals `json_schema()`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tailerd.formats.native.models import LINE

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "native.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one native line, as a JSON-able dict."""
    schema = LINE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tailerd native JSONL line"
    return schema


def write_schema() -> None:
    """Rewrite SCHEMA_PATH from the models (sorted keys, 2-space indent, final newline)."""
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
