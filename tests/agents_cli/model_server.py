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
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# a side answer that parses as the JSON several CLIs ask their side calls for
SIDE_TEXT = '{"reasoning": "scripted side answer", "next_speaker": "user", "title": "scripted"}'
OVERRUN_TEXT = "The scripted model has no more replies."


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply, as the provider reports them.

    `input` is the uncached prompt part; `cache_read` and `cache_write` the cached parts
    (Anthropic reports the three apart; OpenAI and Gemini report `input + cache_read +
    cache_write` as the prompt with `cache_read` as its cached part, and no cache writes).
    """

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0

    @property
    def prompt(self) -> int:
        """Weave's `input_tokens`: every prompt token, cached or not."""
        return self.input + self.cache_read + self.cache_write


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asks for: the CLI's tool name and its JSON arguments."""

    name: str
    arguments: dict[str, Any]
    id: str


@dataclass(frozen=True)
class Reply:
    """One scripted model response: text, then tool calls (if any), with exact usage."""

    usage: Usage
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


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
            if self.answered >= len(self.replies):
                self.overruns += 1
                return Reply(SIDE_USAGE, OVERRUN_TEXT)
            self.answered += 1
            return self.replies[self.answered - 1]


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


# ---- Anthropic Messages ---------------------------------------------------------------------


def anthropic_message(reply: Reply, model: str, n: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in reply.tool_calls
    ]
    u = reply.usage
    return {
        "id": f"msg_scripted_{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": u.input,
            "cache_creation_input_tokens": u.cache_write,
            "cache_read_input_tokens": u.cache_read,
            "output_tokens": u.output,
        },
    }


def anthropic_stream(message: dict[str, Any]) -> Iterator[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": message["usage"]["output_tokens"]}
    yield _sse("message_start", {"type": "message_start", "message": start})
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": {**block, "text": ""}},
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            empty = {**block, "input": {}}
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": empty},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
        )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": message["usage"],
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


# ---- OpenAI Responses and Chat Completions ---------------------------------------------------


def responses_items(reply: Reply, n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {
                "type": "message",
                "id": f"msg_scripted_{n:04d}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    items += [
        {
            "type": "function_call",
            "id": f"fc_{c.id}",
            "call_id": c.id,
            "name": c.name,
            "arguments": json.dumps(c.arguments),
            "status": "completed",
        }
        for c in reply.tool_calls
    ]
    return items


def responses_stream(reply: Reply, model: str, n: int) -> Iterator[bytes]:
    rid = f"resp_scripted_{n:04d}"
    base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model}
    yield _sse(
        "response.created",
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
    )
    items = responses_items(reply, n)
    for i, item in enumerate(items):
        yield _sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": i, "item": item},
        )
        if item["type"] == "message":
            yield _sse(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": i,
                    "content_index": 0,
                    "delta": reply.text,
                },
            )
        yield _sse(
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": i, "item": item},
        )
    u = reply.usage
    usage = {
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": u.cache_read},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt + u.output,
    }
    done = {**base, "status": "completed", "output": items, "usage": usage}
    yield _sse("response.completed", {"type": "response.completed", "response": done})


def chat_usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt,
        "completion_tokens": u.output,
        "total_tokens": u.prompt + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read},
    }


def chat_message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(reply.tool_calls)
        ]
    return message


def chat_stream(reply: Reply, model: str, n: int) -> Iterator[bytes]:
    base = {
        "id": f"chatcmpl-scripted-{n:04d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    finish = "tool_calls" if reply.tool_calls else "stop"
    yield _sse(
        None,
        {**base, "choices": [{"index": 0, "delta": chat_message(reply), "finish_reason": None}]},
    )
    yield _sse(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    yield _sse(None, {**base, "choices": [], "usage": chat_usage(reply.usage)})
    yield _sse(None, "[DONE]")


def chat_completion(reply: Reply, model: str, n: int) -> dict[str, Any]:
    message = chat_message(reply)
    for call in message.get("tool_calls", []):
        call.pop("index")
    return {
        "id": f"chatcmpl-scripted-{n:04d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": chat_usage(reply.usage),
    }


# ---- Gemini ----------------------------------------------------------------------------------


def gemini_response(reply: Reply, model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if reply.text:
        parts.append({"text": reply.text})
    parts += [
        {"functionCall": {"name": c.name, "args": c.arguments, "id": c.id}}
        for c in reply.tool_calls
    ]
    u = reply.usage
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": u.prompt,
            "candidatesTokenCount": u.output,
            "cachedContentTokenCount": u.cache_read,
            "totalTokenCount": u.prompt + u.output,
        },
        "modelVersion": model,
    }


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
                self._stream(iter([_sse(None, data)]))
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
) -> Iterator[Server]:
    """A scripted server on 127.0.0.1 (a free port) for the `with` block."""
    state = Server(list(replies), model, side_rule=side_rule, side_text=side_text)
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
