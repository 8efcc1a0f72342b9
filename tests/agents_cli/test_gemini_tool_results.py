"""Gemini CLI 0.61 appends each tool result as a `user` record of `functionResponse` parts.

Seen in the recording the pinned CLI wrote in the real-CLI scenario (tests/agents_cli): after
the gemini record that asks for `run_shell_command`, a record
`{"type": "user", "content": [{"functionResponse": {...}}]}` follows. It is part of the turn, not
a new prompt: one prompt with two tool round trips is one turn with three LLM calls. The records
below copy that shape (ids shortened); the expected values are counted from them by hand.
"""

from __future__ import annotations

from typing import Any

import orjson

from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, ToolCall, Turn
from tailerd.formats import gemini
from tailerd.formats.base import Source


def rec(**fields: Any) -> bytes:
    return orjson.dumps(fields) + b"\n"


def result(call: str, output: str) -> dict[str, Any]:
    return {
        "functionResponse": {
            "id": call,
            "name": "run_shell_command",
            "response": {"output": output},
        }
    }


def gemini_call(mid: str, call: str, command: str, output: str, tokens: int) -> bytes:
    tool = {"id": call, "name": "run_shell_command", "args": {"command": command},
            "result": [result(call, output)], "status": "success"}  # fmt: skip
    return rec(id=mid, type="gemini", content="", model="gemini-2.5-pro",
               tokens={"input": tokens, "output": 3, "cached": 0, "thoughts": 0, "tool": 0},
               toolCalls=[tool])  # fmt: skip


RECORDING = b"".join(
    [
        rec(sessionId="S", projectHash="h", startTime="2026-11-30T21:50:20Z", kind="main"),
        rec(id="u1", type="user", content=[{"text": "Look around"}]),
        gemini_call("g1", "c1", "ls", "notes.txt", 101),
        rec(id="r1", type="user", content=[result("c1", "notes.txt")]),
        gemini_call("g2", "c2", "cat notes.txt", "alpha\nbeta", 265),
        rec(id="r2", type="user", content=[result("c2", "alpha\nbeta")]),
        rec(
            id="g3",
            type="gemini",
            content="2 lines.",
            model="gemini-2.5-pro",
            tokens={"input": 429, "output": 33, "cached": 0, "thoughts": 0, "tool": 0},
        ),
        rec(id="u2", type="user", content=[{"text": "Anything else?"}]),
        rec(
            id="g4",
            type="gemini",
            content="No.",
            model="gemini-2.5-pro",
            tokens={"input": 657, "output": 43, "cached": 0, "thoughts": 0, "tool": 0},
        ),
    ]
)


def test_tool_result_records_stay_inside_their_turn() -> None:
    parser = gemini.FORMAT.new_parser(Source("chats/session-x.jsonl"), None)
    out = []
    for line in LineFramer().feed(RECORDING):
        assert isinstance(line, Line)
        out.extend(parser.feed(line))
    out.extend(parser.close_idle(10**9))
    turns = [t for t in out if isinstance(t, Turn)]
    # two prompts (u1, u2) -> two turns; g1..g3 belong to u1, g4 to u2
    assert [t.key for t in turns] == ["gemini|S|u1", "gemini|S|u2"]
    first, second = turns
    assert [(s.usage.input_tokens, s.usage.output_tokens) for s in first.spans
            if isinstance(s, LLMCall)] == [(101, 3), (265, 3), (429, 33)]  # fmt: skip
    assert [s.result for s in first.spans if isinstance(s, ToolCall)] == [
        "notes.txt",
        "alpha\nbeta",
    ]
    assert first.messages[0].content == "Look around"
    assert [s.usage.input_tokens for s in second.spans if isinstance(s, LLMCall)] == [657]
