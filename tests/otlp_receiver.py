"""A real OTLP/HTTP receiver for tests: decodes protobuf (gzip or not) into plain span dicts.

It can be told to answer with scripted status codes, to be slow, to reject spans whose
attributes match a predicate, or to answer 413 (Payload Too Large) for a request body above a
size or holding a span that matches a predicate, to play a backend's failures.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(i) for i in v.array_value.values]
    return getattr(v, kind) if kind else None


def decode(body: bytes) -> list[dict[str, Any]]:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    spans = []
    for rs in req.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    {
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex() or None,
                        "name": s.name,
                        "start_ns": s.start_time_unix_nano,
                        "end_ns": s.end_time_unix_nano,
                        "attributes": {a.key: _value(a.value) for a in s.attributes},
                        "resource": resource,
                        "scope": ss.scope.name,
                    }
                )
    return spans


@dataclass
class Receiver:
    """Spans received (in arrival order), requests seen, and the knobs for failure injection."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    arrived_at: list[float] = field(default_factory=list)  # time.monotonic() per span, as `spans`
    requests: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # every request body, decompressed
    script: list[int] = field(default_factory=list)  # status codes to answer next, in order
    delay: float = 0.0
    reject_if: Callable[[dict[str, Any]], bool] | None = None
    max_body: int | None = None  # 413 for a request whose (decompressed) body is larger (bytes)
    too_large_if: Callable[[dict[str, Any]], bool] | None = None  # 413 if any span matches
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def span_ids(self) -> list[str]:
        with self.lock:
            return [s["span_id"] for s in self.spans]

    def roots(self) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["parent_span_id"] is None]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)


def serve(receiver: Receiver) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.monotonic()
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with receiver.lock:
                receiver.bodies.append(body)
                code = receiver.script.pop(0) if receiver.script else 200
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "code": code,
                    "size": len(body),
                }
                receiver.requests.append(request)
            if receiver.delay:
                time.sleep(receiver.delay)
            spans = decode(body)
            if code == 200 and receiver.reject_if and any(receiver.reject_if(s) for s in spans):
                code = 400
            too_large = receiver.max_body is not None and len(body) > receiver.max_body
            if receiver.too_large_if and any(map(receiver.too_large_if, spans)):
                too_large = True
            if code == 200 and too_large:
                code = 413
                with receiver.lock:
                    request["code"] = code
            if code == 200:
                with receiver.lock:
                    receiver.spans.extend(spans)
                    receiver.arrived_at.extend([arrived] * len(spans))
            payload = ExportTraceServiceResponse().SerializeToString() if code == 200 else b"nope"
            self.send_response(code)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@contextlib.contextmanager
def running() -> Iterator[Receiver]:
    """A receiver serving on a free loopback port for the duration of the block."""
    rec = Receiver()
    server, thread = serve(rec)
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
