"""An OpenHands conversation's `base_state.json`: what the events do not carry.

Shape (real sample: OpenHands/software-agent-sdk at 4f4c68c, .pr/event-json-to-openai-messages/
.../conversations/<id>/base_state.json): `{"id", "agent": {"llm": {"model", "usage_id"}},
"workspace": {"working_dir"}, "execution_status", "stats": {"usage_to_metrics": {<usage_id>:
{"model_name", "accumulated_cost", "accumulated_token_usage", "costs": [{model, cost,
timestamp}], "response_latencies": [{model, latency, response_id}], "token_usages":
[{model, prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,
reasoning_tokens, response_id}]}}}}`, rewritten in place as the conversation runs.

Per-call usage is `token_usages`, keyed by the `llm_response_id` the events carry. Convention
(LiteLLM's, OpenAI's): `prompt_tokens` already includes the cache reads and `completion_tokens`
the reasoning tokens; checked on the sample's own costs: call 2, 3,869 prompt (3,712 cached) and
32 completion tokens of gpt-4o-mini at $0.15/$0.075/$0.60 per M = $0.00032115, its `costs[1]`.
`costs` carry no response id: they are matched to `token_usages` by position only when both
lists of a usage id have the same length (one entry per completion, as in the sample), else the
call is left to tailerd's own pricing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tailerd.domain import Usage


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else 0


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class Call:
    """One completion as base_state.json records it."""

    model: str
    usage: Usage
    cost: float | None = None
    latency: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class State:
    conversation_id: str = ""
    model: str = ""
    cwd: str = ""
    execution_status: str = ""
    calls: dict[str, Call] = field(default_factory=dict)  # by llm_response_id


def _usage(u: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_count(u.get("prompt_tokens")),
        output_tokens=_count(u.get("completion_tokens")),
        cache_read_input_tokens=_count(u.get("cache_read_tokens")),
        cache_creation_input_tokens=_count(u.get("cache_write_tokens")),
        reasoning_tokens=_count(u.get("reasoning_tokens")),
    )


def _calls(metrics: dict[str, Any], default_model: str) -> dict[str, Call]:
    usages = [u for u in _list(metrics.get("token_usages")) if isinstance(u, dict)]
    costs = _list(metrics.get("costs"))
    aligned = len(costs) == len(usages)
    latencies = {
        _str(x.get("response_id")): _number(x.get("latency"))
        for x in _list(metrics.get("response_latencies"))
        if isinstance(x, dict)
    }
    out: dict[str, Call] = {}
    for i, u in enumerate(usages):
        rid = _str(u.get("response_id"))
        if not rid:
            continue
        cost = costs[i].get("cost") if aligned and isinstance(costs[i], dict) else None
        out[rid] = Call(
            _str(u.get("model")) or default_model, _usage(u), _number(cost), latencies.get(rid)
        )
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_state(data: bytes) -> State | None:
    """base_state.json's content; None while it is half-written or not an object."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    model = _str(_dict(_dict(raw.get("agent")).get("llm")).get("model"))
    calls: dict[str, Call] = {}
    for metrics in _dict(_dict(raw.get("stats")).get("usage_to_metrics")).values():
        if isinstance(metrics, dict):
            calls.update(_calls(metrics, _str(metrics.get("model_name")) or model))
    return State(
        conversation_id=_str(raw.get("id")),
        model=model,
        cwd=_str(_dict(raw.get("workspace")).get("working_dir")),
        execution_status=_str(raw.get("execution_status")),
        calls=calls,
    )
