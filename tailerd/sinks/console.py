"""`console`: one JSON line per emitted span on stdout, for dry runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Delivered, Outcome, Retry
from tailerd.sinks.base import span_record


class ConsoleSink:
    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        text = b"".join(orjson.dumps(span_record(s)) + b"\n" for s in spans).decode()
        try:
            self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            # `tailerd ... --sink console | head`: the reader is gone for good; stop quietly.
            # (A BaseException, so the worker hands it to the loop thread, which exits.)
            raise SystemExit(0) from None
        except OSError as exc:
            return Retry(f"stdout: {exc}")
        return Delivered()

    def close(self) -> None:
        return None
