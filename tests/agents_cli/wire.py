"""The provider wire formats the scripted server speaks: one scripted `Reply` as each API sends it.

Anthropic Messages (a message, or its SSE events `message_start` … `message_stop`), OpenAI
Responses (SSE `response.created` … `response.completed` with usage), OpenAI Chat Completions
(one chunk, a finish chunk, a usage chunk, `[DONE]`; or one JSON completion) and Gemini
`generateContent` (one response; streamed as a single SSE event). Token counts follow each
provider: Anthropic reports uncached input, cache reads and cache writes apart; OpenAI and
Gemini report the whole prompt with its cached part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


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
    """One scripted model response: text, then tool calls (if any), with exact usage.

    `lane` names who asks: "" the main agent; another name a sub-agent that runs at the same
    time as its parent (its requests are answered from its own queue, in order).
    """

    usage: Usage
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    lane: str = ""


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event: `event:` line (if named) and `data:` (JSON unless a string)."""
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
    yield sse("message_start", {"type": "message_start", "message": start})
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": {**block, "text": ""}},
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            empty = {**block, "input": {}}
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": empty},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield sse(
            "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
        )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": i})
    yield sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": message["usage"],
        },
    )
    yield sse("message_stop", {"type": "message_stop"})


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
            **_namespaced(c.name),
            "arguments": json.dumps(c.arguments),
            "status": "completed",
        }
        for c in reply.tool_calls
    ]
    return items


def _namespaced(name: str) -> dict[str, str]:
    """A Responses function call's name: "ns.tool" is tool `tool` of namespace `ns` (Codex's
    `multi_agent_v1` tools)."""
    namespace, _, tool = name.rpartition(".")
    return {"name": tool, "namespace": namespace} if namespace else {"name": name}


def responses_stream(reply: Reply, model: str, n: int) -> Iterator[bytes]:
    rid = f"resp_scripted_{n:04d}"
    base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model}
    yield sse(
        "response.created",
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
    )
    items = responses_items(reply, n)
    for i, item in enumerate(items):
        yield sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": i, "item": item},
        )
        if item["type"] == "message":
            yield sse(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": i,
                    "content_index": 0,
                    "delta": reply.text,
                },
            )
        yield sse(
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
    yield sse("response.completed", {"type": "response.completed", "response": done})


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
    yield sse(
        None,
        {**base, "choices": [{"index": 0, "delta": chat_message(reply), "finish_reason": None}]},
    )
    yield sse(None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    yield sse(None, {**base, "choices": [], "usage": chat_usage(reply.usage)})
    yield sse(None, "[DONE]")


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
