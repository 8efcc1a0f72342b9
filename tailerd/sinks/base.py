"""The interface every sink implements, and the span record the local sinks share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Outcome


class Sink(Protocol):
    name: str

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        """Deliver one batch of whole turns. Never raises: failures are Retry or Rejected."""
        ...

    def close(self) -> None: ...


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A span as plain JSON-able data: the shape printed by `console` and stored by `local`."""
    ctx = span.context
    parent = span.parent
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": dict(span.attributes or {}),
    }
