"""Cost of one LLM call against the providers' published prices, computed by hand here.

Published prices used (USD per million tokens), which the pinned genai-prices table carries:
* Anthropic Claude Haiku 4.5: input 1, cache write 5 min 1.25 / 1 hour 2, cache read 0.10,
  output 5.
* Anthropic Claude Sonnet 4.5: input 3, cache write (5 min) 3.75, cache read 0.30, output 15;
  a prompt above 200k tokens: input 6, cache write 7.50, cache read 0.60, output 22.50
  (every token of that call, "cliff" pricing).
* OpenAI GPT-5 (and gpt-5-codex): input 1.25, cached input 0.125, output 10; no cache-write price.
* OpenAI o3: input 10 / output 40 until 2025-06-09, input 2 / output 8 from 2025-06-10.
* Google Gemini 2.5 Pro: input 1.25 / output 10; a prompt above 200k tokens: 2.50 / 15.
Token convention: tailerd's Usage counts cache reads and writes inside input_tokens.
"""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailerd import pricing
from tailerd.domain import LLMCall, Message, SubAgentCall, Turn, Usage
from tailerd.emitter import Emitter

WHEN = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
SONNET = "claude-sonnet-4-5-20250929"


def usage(prompt: int, output: int, read: int = 0, write: int = 0, reasoning: int = 0) -> Usage:
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
        reasoning_tokens=reasoning,
    )


def test_sonnet_call_with_cache_reads_and_writes():
    # prompt 1,000 = 500 uncached + 400 read + 100 written; 10 output
    # 500*3 + 400*0.30 + 100*3.75 + 10*15 = 1500 + 120 + 375 + 150 = 2145 per 1e6 -> $0.002145
    cost = pricing.price("anthropic", SONNET, usage(1000, 10, read=400, write=100), WHEN)
    assert cost == pytest.approx(0.002145, rel=1e-12)


def test_one_hour_cache_writes_cost_more():
    # Haiku 4.5, prompt 20,000 = 1,000 uncached + 9,000 read + 10,000 written, of them 4,000 for
    # an hour; 100 output: 1,000*1 + 9,000*0.10 + 6,000*1.25 + 4,000*2 + 100*5
    #   = 1,000 + 900 + 7,500 + 8,000 + 500 = 17,900 per 1e6 -> $0.0179
    call = usage(20_000, 100, read=9000, write=10_000)
    cost = pricing.price("anthropic", "claude-haiku-4-5-20251001", call, WHEN, cache_write_1h=4000)
    assert cost == pytest.approx(0.0179, rel=1e-12)
    # more 1-hour writes than writes is not a call: unpriced
    assert pricing.price("anthropic", "claude-haiku-4-5", call, WHEN, cache_write_1h=10_001) is None


def test_sonnet_prompt_above_200k_pays_the_higher_tier_on_every_token():
    # prompt 250,000 = 40,000 uncached + 200,000 read + 10,000 written; 1,000 output
    # 40,000*6 + 200,000*0.60 + 10,000*7.50 + 1,000*22.50
    #   = 240,000 + 120,000 + 75,000 + 22,500 = 457,500 per 1e6 -> $0.4575
    cost = pricing.price("anthropic", SONNET, usage(250_000, 1000, read=200_000, write=10_000))
    assert cost == pytest.approx(0.4575, rel=1e-12)
    # exactly 200,000 is not above the threshold: 200,000*3 + 1,000*15 = 615,000 -> $0.615
    at = pricing.price("anthropic", SONNET, usage(200_000, 1000), WHEN)
    assert at == pytest.approx(0.615, rel=1e-12)


def test_gpt5_cached_input_and_reasoning_inside_output():
    # prompt 10,000 = 2,000 uncached + 8,000 cached; output 500 (300 of them reasoning, billed
    # as output): 2,000*1.25 + 8,000*0.125 + 500*10 = 2,500 + 1,000 + 5,000 = 8,500 -> $0.0085
    call = usage(10_000, 500, read=8000, reasoning=300)
    assert pricing.price("openai", "gpt-5-codex", call, WHEN) == pytest.approx(0.0085, rel=1e-12)
    assert pricing.price("openai", "gpt-5", call, WHEN) == pytest.approx(0.0085, rel=1e-12)


def test_cache_writes_without_a_price_of_their_own_are_input():
    # OpenAI lists no cache-write price: 1,000 prompt tokens (400 "written") * 1.25 -> $0.00125
    cost = pricing.price("openai", "gpt-5", usage(1000, 0, write=400), WHEN)
    assert cost == pytest.approx(0.00125, rel=1e-12)


def test_gemini_pro_tier_above_200k():
    # 300,000 prompt * 2.50 + 1,000 output * 15 = 750,000 + 15,000 -> $0.765
    cost = pricing.price("google", "gemini-2.5-pro", usage(300_000, 1000), WHEN)
    assert cost == pytest.approx(0.765, rel=1e-12)


def test_the_price_valid_at_the_time_of_the_call():
    # o3: 1M input + 1M output = 10 + 40 = $50 before 2025-06-10, 2 + 8 = $10 after
    call = usage(1_000_000, 1_000_000)
    before = datetime(2025, 6, 1, tzinfo=timezone.utc)
    after = datetime(2025, 7, 1, tzinfo=timezone.utc)
    assert pricing.price("openai", "o3", call, before) == pytest.approx(50.0)
    assert pricing.price("openai", "o3", call, after) == pytest.approx(10.0)
    naive = datetime(2025, 6, 1)  # a naive time is taken as UTC
    assert pricing.price("openai", "o3", call, naive) == pytest.approx(50.0)


def test_unknown_model_or_provider_is_unpriced_never_zero():
    call = usage(1000, 10)
    assert pricing.price("anthropic", "claude-nonexistent-9", call, WHEN) is None
    assert pricing.price("my-own-gateway", "gpt-4o", call, WHEN) is None  # unknown provider
    assert pricing.price("", "", call, WHEN) is None
    assert pricing.price(None, 42, call, WHEN) is None  # type: ignore[arg-type]  # a format's bug
    # without a provider, the model name finds it: gpt-4o 1,000*2.50 + 10*10 = 2,600 -> $0.0026
    assert pricing.price("", "gpt-4o", call, WHEN) == pytest.approx(0.0026, rel=1e-12)


def test_a_model_missing_from_its_providers_table_is_priced_by_its_maker():
    """GitHub Copilot's table in genai-prices lacks claude-opus-4.6 (Copilot CLI 1.0.10 fixture's
    model); Anthropic publishes Opus 4.6 at $5 input / $25 output per Mtok, $0.50 cache read:
    100,000 prompt (40,000 of them cache reads) and 2,000 output =
    60,000*5 + 40,000*0.5 + 2,000*25 = 370,000 per Mtok -> $0.37."""
    call = usage(100_000, 2_000, read=40_000)
    when = datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert pricing.price("github_copilot", "claude-opus-4.6", call, when) == pytest.approx(0.37)
    attributes = pricing.cost_attributes("github_copilot", "claude-opus-4.6", call, when)
    assert attributes == {pricing.COST: pytest.approx(0.37), pricing.PRICE_TABLE: "anthropic"}
    # the provider's own table, when it has the model: no fallback mark (Copilot's Sonnet 4.6,
    # $3 input / $15 output: 1,000*3 + 100*15 = 4,500 per Mtok)
    own = pricing.cost_attributes("github_copilot", "claude-sonnet-4.6", usage(1000, 100), when)
    assert own == {pricing.COST: pytest.approx(0.0045)}
    # a provider genai-prices does not know still prices nothing
    assert pricing.price("my-own-gateway", "claude-opus-4.6", call, when) is None


def test_a_model_listed_without_a_price_is_not_free():
    """genai-prices' GitHub Copilot table lists gpt-4o with an empty price (a model included in
    the subscription): that is no price, not $0. OpenAI publishes gpt-4o at $2.50 input / $10
    output per Mtok: 1,000*2.50 + 100*10 = 3,500 per Mtok -> $0.0035, from OpenAI's table."""
    attributes = pricing.cost_attributes("github_copilot", "gpt-4o", usage(1000, 100), WHEN)
    assert attributes == {pricing.COST: pytest.approx(0.0035), pricing.PRICE_TABLE: "openai"}


def test_no_tokens_cost_nothing_and_bad_counts_are_unpriced():
    assert pricing.price("anthropic", "<synthetic>", usage(0, 0), WHEN) == 0.0
    assert pricing.price("anthropic", SONNET, usage(10, 5, read=400), WHEN) is None  # read > prompt
    assert pricing.price("anthropic", SONNET, usage(-5, 5), WHEN) is None


def test_pricing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pricing._resolve.cache_clear()
    assert pricing.price("anthropic", "claude-haiku-4-5", usage(1000, 0), WHEN) == pytest.approx(
        0.001  # 1,000 * $1 per million
    )
    from genai_prices import data_snapshot

    assert data_snapshot.get_snapshot().from_auto_update is False


def _library_price(provider: str, model: str, u: Usage, when: datetime, hour: int) -> float:
    """genai-prices' own full calculation (its unit registry), the reference for the fast path."""
    import genai_prices

    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=u.input_tokens,
            cache_read_tokens=u.cache_read_input_tokens,
            cache_write_tokens=u.cache_creation_input_tokens,
            cache_write_1h_tokens=hour,
            output_tokens=u.output_tokens,
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=when,
    )
    return float(calc.total_price)


MODELS = [
    ("anthropic", SONNET),
    ("anthropic", "claude-opus-4-1-20250805"),
    ("anthropic", "claude-haiku-4-5-20251001"),
    ("anthropic", "claude-3-5-haiku-20241022"),
    ("openai", "gpt-5-codex"),
    ("openai", "gpt-4.1"),
    ("openai", "o3"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash"),
]


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    counts=st.tuples(
        st.integers(0, 300_000),  # uncached
        st.integers(0, 400_000),  # cache read
        st.integers(0, 100_000),  # cache write
        st.integers(0, 64_000),  # output
    ),
    hour_share=st.floats(0, 1),
)
def test_fast_path_equals_genai_prices_own_calculation(model, counts, hour_share):
    provider, name = model
    uncached, read, write, output = counts
    u = usage(uncached + read + write, output, read=read, write=write)
    hour = int(write * hour_share)
    ours = pricing.price(provider, name, u, WHEN, cache_write_1h=hour)
    reference = _library_price(provider, name, u, WHEN, hour)
    assert ours == pytest.approx(reference, rel=1e-12, abs=1e-15)


def _turn(*spans: LLMCall | SubAgentCall, **attributes: object) -> Turn:
    return Turn(
        key="native|cost|1",
        session_id="cost",
        start=0,
        end=1,
        agent_name="a",
        messages=(Message("user", "hi"),),
        spans=spans,
        started_at=WHEN,
        ended_at=WHEN,
        attributes=attributes,
    )


def test_chat_spans_carry_the_cost_contract():
    turn = _turn(
        LLMCall(model=SONNET, provider_name="anthropic", usage=usage(1000, 10, 400, 100)),
        LLMCall(model="not-a-real-model", provider_name="anthropic", usage=usage(50, 5)),
        SubAgentCall(
            name="helper",
            spans=(LLMCall(model="gpt-5", provider_name="openai", usage=usage(10_000, 500, 8000)),),
        ),
    )
    spans = Emitter().emit(turn)
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert [s.attributes.get("gen_ai.request.model") for s in chats] == [
        SONNET,
        "not-a-real-model",
        "gpt-5",
    ]
    priced, unknown, nested = (dict(s.attributes) for s in chats)
    assert priced["gen_ai.usage.cost"] == pytest.approx(0.002145, rel=1e-12)  # as above
    assert pricing.UNPRICED not in priced
    assert unknown[pricing.UNPRICED] is True
    assert "gen_ai.usage.cost" not in unknown  # unpriced, never $0
    assert nested["gen_ai.usage.cost"] == pytest.approx(0.0085, rel=1e-12)  # the GPT-5 case
    root = next(s for s in spans if s.parent is None)
    assert "gen_ai.usage.cost" not in root.attributes  # only chat spans: sums never count twice


def test_calls_whose_agent_records_no_usage_are_unpriced():
    no_usage = LLMCall(model=SONNET, provider_name="anthropic", attributes={
        "tailerd.usage.recorded": False})  # fmt: skip
    spans = Emitter().emit(_turn(no_usage))
    chat = next(s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat")
    assert chat.attributes[pricing.UNPRICED] is True
    assert "gen_ai.usage.cost" not in chat.attributes
    # the same said on the turn
    spans = Emitter().emit(
        _turn(LLMCall(model=SONNET, provider_name="anthropic"), **{"tailerd.usage.recorded": False})
    )
    chat = next(s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat")
    assert chat.attributes[pricing.UNPRICED] is True


def test_the_agents_own_cost_is_kept():
    # a format that read the agent's bill (pi, OpenHands, Cline) sets gen_ai.usage.cost itself
    billed = LLMCall(
        model=SONNET,
        provider_name="anthropic",
        usage=usage(1000, 10),
        attributes={"gen_ai.usage.cost": 0.5, "tailerd.cost.source": "agent"},
    )
    unknown_model = LLMCall(
        model="not-a-real-model", usage=usage(1000, 10), attributes={"gen_ai.usage.cost": 0.25}
    )
    spans = Emitter().emit(_turn(billed, unknown_model))
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert [s.attributes["gen_ai.usage.cost"] for s in chats] == [0.5, 0.25]
    assert all(pricing.UNPRICED not in s.attributes for s in chats)
