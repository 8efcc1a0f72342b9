"""A local stand-in for W&B Weave's Agents OTLP endpoint that enforces its published contract
(peers.md §2): POST /agents/otel/v1/traces; protobuf only (gzip/deflate allowed); auth by
`wandb-api-key` header or Basic `api:<key>`; project routing from the `project_id` header or the
`wandb.entity` + `wandb.project` resource attributes; spans it cannot route are dropped (the
real service answers 200 and stores nothing)."""

from __future__ import annotations

import base64
import gzip
import http.server
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from tests.otlp_receiver import decode

PATH = "/agents/otel/v1/traces"


@dataclass
class WeaveEndpoint:
    api_key: str
    stored: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project -> spans
    dropped: int = 0
    failures: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def authorized(self, headers: Any) -> bool:
        if headers.get("wandb-api-key") == self.api_key:
            return True
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            return user == "api" and key == self.api_key
        return False


def serve(endpoint: WeaveEndpoint) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, why: str = "") -> None:
            if why:
                with endpoint.lock:
                    endpoint.failures.append(why)
            body = why.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with endpoint.lock:
                scripted = endpoint.fail_next.pop(0) if endpoint.fail_next else None
            if self.path != PATH:
                return self._answer(404, f"unknown path {self.path}")
            if not endpoint.authorized(self.headers):
                return self._answer(401, "invalid credentials")
            if self.headers.get("Content-Type") != "application/x-protobuf":
                return self._answer(415, "protobuf only")
            if scripted:
                return self._answer(scripted, f"scripted {scripted}")
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            for span in decode(body):
                res = span["resource"]
                project = self.headers.get("project_id") or (
                    f"{res['wandb.entity']}/{res['wandb.project']}"
                    if "wandb.entity" in res and "wandb.project" in res
                    else None
                )
                with endpoint.lock:
                    if project is None:
                        endpoint.dropped += 1
                    else:
                        endpoint.stored.setdefault(project, []).append(span)
            return self._answer(200)

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
