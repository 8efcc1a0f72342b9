"""A scripted model server on 127.0.0.1 speaking the provider APIs the agent CLIs use.

A scenario is data: a list of `Reply` (text, tool calls with arguments, exact usage). The n-th
*scripted* request gets reply n, whatever API it came in on:
- Anthropic Messages `POST /v1/messages` (SSE when `"stream": true`, else JSON);
- OpenAI Responses `POST …/responses` (SSE) and Chat Completions `POST …/chat/completions` (SSE
  when streaming, with a final usage chunk);
- Gemini `POST …/models/<m>:generateContent` and `:streamGenerateContent` (SSE with `alt=sse`).

A request is scripted when it offers the model tools (every turn of an agent loop does, the
sub-agent's too). Requests without tools are the CLIs' side requests (title generation, topic
or next-speaker checks, quota probes): they are answered with `SIDE_TEXT` and the usage
`SIDE_USAGE`, and recorded, as are token counting (`count_tokens`, `:countTokens`: 1 token) and
model lists (`GET …/models`). Side calls do not appear in the agents' transcripts, so the
oracle for tailerd is the scripted replies alone; `Server.side` lists what was answered.
When the script runs out, the server answers `OVERRUN_TEXT` and records it in `overruns`.
Set as the CLIs' HTTP(S) proxy, it refuses (403) and records in `blocked` every request meant
for another host: what a CLI would have sent elsewhere.
The wire formats themselves are in tests/agents_cli/wire.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.agents_cli.wire import (
    Reply,
    ToolCall,
    Usage,
    anthropic_message,
    anthropic_stream,
    chat_completion,
    chat_stream,
    gemini_response,
    responses_stream,
    sse,
)

__all__ = ["Reply", "Server", "ToolCall", "Usage", "running"]

# a side answer that parses as the JSON several CLIs ask their side calls for
SIDE_TEXT = '{"reasoning": "scripted side answer", "next_speaker": "user", "title": "scripted"}'
OVERRUN_TEXT = "The scripted model has no more replies."


SIDE_USAGE = Usage(input=1, output=1)


@dataclass
class Server:
    """The running server: its script, what it answered, and its base URL."""

    replies: list[Reply]
    model: str
    port: int = 0
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    side: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    overruns: int = 0
    answered: int = 0
    side_rule: Callable[[dict[str, Any]], str | None] | None = None
    side_text: str = SIDE_TEXT
    lane_rule: Callable[[dict[str, Any]], str] | None = None
    used: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_reply(self, body: dict[str, Any], has_tools: bool, what: str) -> Reply:
        """Reply n for the n-th scripted request; the side answer for a side request (one
        without tools, or one `side_rule` names)."""
        side = self.side_rule(body) if self.side_rule else None
        if side is None and not has_tools:
            side = what
        with self.lock:
            if side is not None:
                self.side.append(side)
                return Reply(SIDE_USAGE, self.side_text)
            lane = self.lane_rule(body) if self.lane_rule else ""
            waiting = [
                i for i, r in enumerate(self.replies) if r.lane == lane and i not in self.used
            ]
            if not waiting:
                self.overruns += 1
                return Reply(SIDE_USAGE, OVERRUN_TEXT)
            self.used.add(waiting[0])
            self.answered += 1
            return _fill_spawned(self.replies[waiting[0]], body)


SPAWNED = "{spawned agent id}"
_AGENT_ID = re.compile(r'agent_id\\*"\s*:\s*\\*"([^"\\]+)')


def _fill_spawned(reply: Reply, body: dict[str, Any]) -> Reply:
    """`reply` with every tool argument `SPAWNED` replaced by the last sub-agent id the request
    carries (a Codex parent must name the id its `spawn_agent` call returned)."""
    if SPAWNED not in json.dumps([c.arguments for c in reply.tool_calls]):
        return reply
    ids = _AGENT_ID.findall(json.dumps(body))
    spawned = ids[-1] if ids else SPAWNED
    calls = tuple(
        replace(c, arguments=json.loads(json.dumps(c.arguments).replace(SPAWNED, spawned)))
        for c in reply.tool_calls
    )
    return replace(reply, tool_calls=calls)


# ---- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_state: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _stream(self, chunks: Iterator[bytes]) -> None:
        body = b"".join(chunks)
        self._send(200, body, "text/event-stream")

    def _refuse_proxying(self) -> bool:
        """As the CLIs' HTTP(S) proxy: record and refuse a request meant for another host."""
        if self.command != "CONNECT" and not self.path.startswith(("http://", "https://")):
            return False
        self.server_state.blocked.append(f"{self.command} {self.path}")
        self.close_connection = True
        self._send(403, b"")
        return True

    def do_CONNECT(self) -> None:
        self._refuse_proxying()

    def do_GET(self) -> None:
        if self._refuse_proxying():
            return
        state = self.server_state
        state.requests.append(("GET", self.path, {}))
        if self.path.split("?")[0].rstrip("/").endswith("models"):
            state.side.append(f"GET {self.path}")
            m = state.model
            self._json(
                {
                    "object": "list",
                    "data": [
                        {
                            "id": m,
                            "object": "model",
                            "type": "model",
                            "display_name": m,
                            "created_at": "2026-01-01T00:00:00Z",
                        }
                    ],
                    "models": [{"name": f"models/{m}", "slug": m}],
                    "has_more": False,
                }
            )
            return
        self._json({"error": {"message": f"not scripted: GET {self.path}"}}, 404)

    def do_HEAD(self) -> None:
        self._send(200, b"")

    def do_POST(self) -> None:
        if self._refuse_proxying():
            return
        state = self.server_state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        path = self.path.split("?")[0]
        state.requests.append(("POST", self.path, body))
        model = state.model
        n = len(state.requests)
        if path.endswith("count_tokens") or path.endswith(":countTokens"):
            state.side.append(f"POST {path}")
            self._json({"input_tokens": 1, "totalTokens": 1})
            return
        if path.endswith("/messages"):
            reply = state.next_reply(
                body, bool(body.get("tools")), f"anthropic {body.get('model')}"
            )
            message = anthropic_message(reply, str(body.get("model") or model), n)
            if body.get("stream"):
                self._stream(anthropic_stream(message))
            else:
                self._json(message)
        elif path.endswith("/responses"):
            reply = state.next_reply(
                body, bool(body.get("tools")), f"responses {body.get('model')}"
            )
            self._stream(responses_stream(reply, str(body.get("model") or model), n))
        elif path.endswith("/chat/completions"):
            reply = state.next_reply(body, bool(body.get("tools")), f"chat {body.get('model')}")
            if body.get("stream"):
                self._stream(chat_stream(reply, str(body.get("model") or model), n))
            else:
                self._json(chat_completion(reply, str(body.get("model") or model), n))
        elif ":generateContent" in path or ":streamGenerateContent" in path:
            tools = [t for t in body.get("tools") or [] if t.get("functionDeclarations")]
            name = path.rsplit("/", 1)[-1].split(":")[0]
            reply = state.next_reply(body, bool(tools), f"gemini {name}")
            data = gemini_response(reply, name)
            if ":stream" in path:
                self._stream(iter([sse(None, data)]))
            else:
                self._json(data)
        else:
            self._json({"error": {"message": f"not scripted: POST {self.path}"}}, 404)


@contextmanager
def running(
    replies: list[Reply],
    model: str,
    side_rule: Callable[[dict[str, Any]], str | None] | None = None,
    side_text: str = SIDE_TEXT,
    lane_rule: Callable[[dict[str, Any]], str] | None = None,
) -> Iterator[Server]:
    """A scripted server on 127.0.0.1 (a free port) for the `with` block."""
    state = Server(
        list(replies), model, side_rule=side_rule, side_text=side_text, lane_rule=lane_rule
    )
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
