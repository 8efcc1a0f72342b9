"""Per-format options (`[format_options.<format>]`): which keys each format reads, and what a
valid value is. A format declares `OPTIONS: OptionSchema` in its package; the registry
(`tailerd.formats.OPTIONS`) gathers them by format name, and `tailerd.settings` checks every
`format_options` table against them when settings are built (start, check-config, reload), so
a mistyped value stops tailerd with one line instead of failing on every file it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

# A key -> a pydantic TypeAdapter that accepts exactly the valid values (strict: no "30s",
# no `true` for a number, no text for a flag).
OptionSchema = Mapping[str, TypeAdapter[Any]]

SECONDS: TypeAdapter[Any] = TypeAdapter(
    Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
)
"""A duration in seconds: a finite number >= 0 (int or float)."""
COUNT: TypeAdapter[Any] = TypeAdapter(Annotated[int, Field(strict=True, ge=0)])
"""A count or size (records, bytes): an integer >= 0."""
FLAG: TypeAdapter[Any] = TypeAdapter(Annotated[bool, Field(strict=True)])
"""On or off: true or false."""

IDLE_CLOSE_ONLY: OptionSchema = {"idle_close": SECONDS}


class OptionError(ValueError):
    """A bad `format_options` entry; `key` is its dotted key below `format_options`
    (`codex.idle_close`, or `nosuchformat` for a whole table)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check(tables: Mapping[str, Any], schemas: Mapping[str, OptionSchema]) -> None:
    """Raise OptionError for the first table naming no format in `schemas`, key the format
    does not read, or value its schema rejects; return None when all are valid."""
    for fmt_name, table in tables.items():
        schema = schemas.get(fmt_name)
        if schema is None:
            known = ", ".join(sorted(schemas))
            raise OptionError(fmt_name, f"no format named {fmt_name!r} (have: {known})")
        if not isinstance(table, Mapping):
            raise OptionError(fmt_name, "must be a table of options")
        for key, value in table.items():
            adapter = schema.get(key)
            if adapter is None:
                known = ", ".join(sorted(schema))
                raise OptionError(
                    f"{fmt_name}.{key}", f"{fmt_name} has no option {key!r} (has: {known})"
                )
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"]
                raise OptionError(f"{fmt_name}.{key}", f"{message}, got {value!r}") from None
