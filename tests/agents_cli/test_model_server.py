"""The scripted server's own rules, with a plain HTTP client (fast; the real CLIs are slow).

Expected values are the script's own numbers: reply n answers scripted request n per lane, a
request without tools is a side request, a request past the script is an overrun, and a request
for another host (as the CLIs' proxy) is refused and recorded.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from tests.agents_cli.model_server import SPAWNED, Reply, ToolCall, Usage, running

TOOLS = [{"type": "function", "name": "shell"}]


def post(port: int, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def test_lanes_side_requests_overruns_and_the_spawned_id() -> None:
    replies = [
        Reply(Usage(101, 13), "main 1"),
        Reply(Usage(201, 23), "sub 1", lane="sub"),
        Reply(Usage(301, 33), "", (ToolCall("wait", {"targets": [SPAWNED]}, "c1"),)),
    ]
    lane = lambda body: "sub" if body.get("who") == "sub" else ""  # noqa: E731
    with running(replies, "m", lane_rule=lane) as server:
        port = server.port
        _, first = post(port, "/v1/responses", {"model": "m", "tools": TOOLS, "stream": True})
        _, sub = post(port, "/v1/responses", {"tools": TOOLS, "who": "sub"})
        _, side = post(port, "/v1/responses", {"model": "m"})  # no tools: a side request
        spawned = {"output": json.dumps({"agent_id": "A-7", "nickname": "N"})}
        _, wait = post(port, "/v1/responses", {"tools": TOOLS, "input": [spawned]})
        _, over = post(port, "/v1/responses", {"tools": TOOLS})
        status, _ = post(port, "http://example.com/x", {})
        assert status == 403
        assert (server.answered, server.overruns, server.side) == (3, 1, ["responses m"])
        assert server.blocked == ["POST http://example.com/x"]

    def completed(raw: bytes) -> dict[str, Any]:
        (done,) = [e for e in events(raw) if e["type"] == "response.completed"]
        return dict(done["response"])

    assert completed(first)["usage"]["input_tokens"] == 101
    assert completed(sub)["output"][0]["content"][0]["text"] == "sub 1"
    assert completed(side)["usage"] == completed(over)["usage"]  # both the fixed 1/1
    assert completed(side)["usage"]["input_tokens"] == 1
    (call,) = completed(wait)["output"]
    assert json.loads(call["arguments"]) == {"targets": ["A-7"]}


def test_anthropic_stream_carries_the_scripted_usage_and_tool_call() -> None:
    reply = Reply(Usage(101, 11, cache_read=1000, cache_write=200), "hi",
                  (ToolCall("Bash", {"command": "ls"}, "toolu_1"),))  # fmt: skip
    with running([reply], "claude-x") as server:
        _, raw = post(server.port, "/v1/messages", {"model": "claude-x", "tools": TOOLS,
                                                    "stream": True})  # fmt: skip
    by_type = {e["type"]: e for e in events(raw)}
    usage = by_type["message_delta"]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (101, 1000)
    assert (usage["cache_creation_input_tokens"], usage["output_tokens"]) == (200, 11)
    deltas = [e["delta"] for e in events(raw) if e["type"] == "content_block_delta"]
    assert deltas == [
        {"type": "text_delta", "text": "hi"},
        {"type": "input_json_delta", "partial_json": '{"command": "ls"}'},
    ]
