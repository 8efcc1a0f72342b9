"""Cline's messages as turns: a prompt and the assistant and tool-result messages after it.

Message shapes (real sample: cline/cline sdk/packages/core/fixtures/session/session.messages.json):
`{"id", "role": "user"|"assistant", "ts": <epoch ms>, "content": [blocks]}`; blocks are
Anthropic-style `text`, `tool_use` `{id, name, input}`, `tool_result` `{tool_use_id, name,
content, is_error?}`, `thinking`, and `file` `{path, content}` (a file the user attached with
`@path`). Assistant messages add `modelInfo {id, provider, family}` and
`metrics {inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens, cost}`.

Token convention, checked against the sample's own `cost`: `inputTokens` already **includes**
the cache reads (message msg_WLUQWTo-: 35,912 input of which 34,332 cache reads, 164 output,
cost $0.06539085 = 1,580 x $13.125/M + 34,332 x $1.05/M + 164 x $52.5/M within $0.00001;
counted without the cache reads the uncached part alone would cost $0.47), i.e. already
Weave's convention; cache writes are taken to be included the same way (the sample has none).
`cost` (USD, as Cline billed it) becomes the chat span's `gen_ai.usage.cost`; Cline 3.0.65
writes no `cost` for a model it has no price for (left to tailerd's pricing then) and wraps
prompts in `<user_input mode="act">...</user_input>` (unwrapped here); both seen by running
the real CLI (tests/formats/test_cline.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, Turn, Usage
from tailerd.formats.base import json_text, parse_time, turn_key
from tailerd.formats.content_blocks import tool_calls

AGENT_NAME = "cline"
IDENTITY_PREFIX = "cline:message:"
_USER_INPUT = re.compile(r"^\s*<user_input\b[^>]*>(.*)</user_input>\s*$", re.DOTALL)

Record = dict[str, Any]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else 0


def blocks(message: Record) -> list[Record]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text(message: Record) -> str:
    return "\n".join(
        _str(b.get("text")) for b in blocks(message) if b.get("type") == "text" and b.get("text")
    )


def is_prompt(message: Record) -> bool:
    """A user message the person wrote (text or attached files), not tool results."""
    kinds = {_str(b.get("type")) for b in blocks(message)}
    return message.get("role") == "user" and "tool_result" not in kinds and bool(kinds)


def prompt_text(message: Record) -> str:
    """A prompt's text without the `<user_input mode="act">` wrapper Cline 3.x adds."""
    text = _text(message)
    found = _USER_INPUT.match(text)
    return found.group(1) if found else text


def _prompt_messages(message: Record) -> tuple[Message, ...]:
    out = [Message("user", prompt_text(message))]
    for b in blocks(message):
        if b.get("type") == "file":
            out.append(Message("user", f"File: {_str(b.get('path'))}\n{_str(b.get('content'))}"))
    return tuple(out)


def _usage(metrics: Any) -> Usage:
    m = metrics if isinstance(metrics, dict) else {}
    cache_write = _count(m.get("cacheWriteTokens"))
    return Usage(
        input_tokens=_count(m.get("inputTokens")),
        output_tokens=_count(m.get("outputTokens")),
        cache_read_input_tokens=_count(m.get("cacheReadTokens")),
        cache_creation_input_tokens=cache_write,
    )


def _cost(metrics: Any) -> dict[str, Any]:
    """Cline's own price of the call; {} when it recorded none (pricing is then tailerd's)."""
    cost = metrics.get("cost") if isinstance(metrics, dict) else None
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
        return {"gen_ai.usage.cost": float(cost), "tailerd.cost.source": "agent"}
    return {}


def _model(message: Record) -> tuple[str, str]:
    info = message.get("modelInfo")
    info = info if isinstance(info, dict) else {}
    return _str(info.get("id")), _str(info.get("provider"))


def _result_text(content: Any) -> str:
    """Text blocks as their text; anything else (the CLI's `[{query, result}]`) as JSON."""
    if isinstance(content, list) and all(
        isinstance(c, dict) and c.get("type") == "text" for c in content
    ):
        return "\n".join(_str(c.get("text")) for c in content)
    return json_text(content)


def _results(messages: list[Record]) -> dict[str, tuple[str, bool, Any]]:
    out: dict[str, tuple[str, bool, Any]] = {}
    for m in messages:
        for b in blocks(m):
            if b.get("type") == "tool_result" and _str(b.get("tool_use_id")):
                out[b["tool_use_id"]] = (
                    _result_text(b.get("content")),
                    b.get("is_error") is True,
                    m.get("ts"),
                )
    return out


def _spans(messages: list[Record]) -> list[SpanCall]:
    results = _results(messages)
    spans: list[SpanCall] = []
    for m in messages:
        if m.get("role") != "assistant":
            continue
        model, provider = _model(m)
        when = parse_time(m.get("ts"))
        text = _text(m)
        thinking = [
            _str(b.get("thinking")) or _str(b.get("text"))
            for b in blocks(m)
            if b.get("type") in ("thinking", "reasoning")
        ]
        spans.append(
            LLMCall(
                model=model,
                provider_name=provider,
                output_messages=(Message("assistant", text),) if text else (),
                usage=_usage(m.get("metrics")),
                reasoning="\n\n".join(t for t in thinking if t),
                response_id=_str(m.get("id")),
                started_at=when,
                ended_at=when,
                attributes=_cost(m.get("metrics")),
            )
        )
        spans.extend(tool_calls(blocks(m), results, when))
    return spans


def build_turn(
    session_id: str,
    group: list[Record],
    *,
    end: int,
    agent_name: str,
    session_name: str,
    attributes: Mapping[str, Any],
) -> Turn:
    """One turn from a prompt message and the messages after it (`end`: the document's size)."""
    prompt, rest = group[0], group[1:]
    answers = [t for t in (_text(m) for m in rest if m.get("role") == "assistant") if t]
    models = [_model(m)[0] for m in rest if _model(m)[0]]
    times = [t for t in (parse_time(m.get("ts")) for m in group) if t is not None]
    return Turn(
        key=turn_key(AGENT_NAME, session_id, _str(prompt.get("id"))),
        session_id=session_id,
        start=0,
        end=end,
        agent_name=agent_name or AGENT_NAME,
        model=models[-1] if models else "",
        session_name=session_name,
        messages=_prompt_messages(prompt),
        output_messages=(Message("assistant", answers[-1]),) if answers else (),
        spans=tuple(_spans(rest)),
        started_at=times[0] if times else None,
        ended_at=times[-1] if times else None,
        attributes=dict(attributes),
        identities=tuple(
            dict.fromkeys(f"{IDENTITY_PREFIX}{m['id']}" for m in group if _str(m.get("id")))
        ),
    )
