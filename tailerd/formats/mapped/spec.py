"""Mapping configuration: the `[[mapping]]` table's pydantic models and its compiled expressions.

`MappingSpec` validates one table (unknown keys refused); `compile_expressions` compiles every
JMESPath expression of a spec once, keyed by dotted field name (`"llm.model"`), and raises
`ConfigError` (one line naming the mapping and the field) for a bad one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field

from tailerd.errors import ConfigError

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_STALE_CLOSE = 600.0

Expression = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSpec(_Strict):
    when: Expression
    model: Expression | None = None
    provider: Expression | None = None
    input_tokens: Expression | None = None
    output_tokens: Expression | None = None
    cache_read_tokens: Expression | None = None
    cache_write_tokens: Expression | None = None
    reasoning_tokens: Expression | None = None
    response: Expression | None = None
    started_at: Expression | None = None


class ToolSpec(_Strict):
    when: Expression
    name: Expression
    arguments: Expression | None = None
    result: Expression | None = None
    call_id: Expression | None = None
    is_error: Expression | None = None
    started_at: Expression | None = None


class ToolResultSpec(_Strict):
    when: Expression
    call_id: Expression
    result: Expression | None = None
    is_error: Expression | None = None


class MappingSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    match: tuple[str, ...] = ()
    detect: Expression | None = None
    agent_name: str = ""
    session_id: Expression
    session_name: Expression | None = None
    timestamp: Expression | None = None
    turn_id: Expression | None = None
    turn_start: Expression | None = None
    turn_end: Expression | None = None
    end_on_next_start: bool = True
    user_message: Expression | None = None
    assistant_message: Expression | None = None
    input_includes_cache: bool = True
    idle_close: float = Field(default=DEFAULT_IDLE_CLOSE, gt=0)
    stale_close: float = Field(default=DEFAULT_STALE_CLOSE, gt=0)
    llm: LLMSpec | None = None
    tool: ToolSpec | None = None
    tool_result: ToolResultSpec | None = None


_PLAIN_TEXT = frozenset({"name", "agent_name"})  # the mapping's own strings, not expressions


def _expression_fields(spec: BaseModel, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field name, expression text) of every expression set in the spec."""
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, BaseModel):
            yield from _expression_fields(value, f"{prefix}{name}.")
        elif isinstance(value, str) and (prefix or name not in _PLAIN_TEXT):
            yield f"{prefix}{name}", value


def compile_expressions(spec: MappingSpec) -> dict[str, Any]:
    """Dotted field name -> compiled JMESPath of every expression set; ConfigError if one is bad."""
    compiled: dict[str, Any] = {}
    for where, text in _expression_fields(spec):
        try:
            compiled[where] = jmespath.compile(text)
        except JMESPathError as exc:
            first = str(exc).splitlines()[0].removesuffix(", for expression:").rstrip(":")
            raise ConfigError(
                f"mapping {spec.name!r}: {where}: invalid JMESPath {text!r}: {first}"
            ) from None
    return compiled
