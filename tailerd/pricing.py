"""The price of one LLM call in US dollars, from genai-prices' bundled price table.

`price(provider, model, usage, when)` -> USD as a float, or None when the model has no known
price (never 0 for "unknown"). The table is the one shipped inside the pinned `genai-prices`
wheel: tailerd never starts its `UpdatePrices` background fetcher, so pricing works offline and
never contacts anything. Prices include cache reads, cache writes (5-minute writes, and the
1-hour writes Anthropic prices higher where the format records them, `CACHE_WRITE_1H`) and the
tiers above 200k
input tokens (the tier is chosen by the call's whole prompt, cache included, and then applies to
every token of the call, as Anthropic and Google bill it). Prices valid at `when` are used
(a provider's price changes are dated in the table).

Token convention: tailerd's `Usage` (Weave's) counts cache reads and writes inside
`input_tokens`; so does genai-prices' `Usage`, which subtracts them to price the uncached
rest. Reasoning tokens are inside `output_tokens` in every format and are billed as output.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from tailerd.domain import Usage

log = logging.getLogger(__name__)

# span attributes of the cost contract (shared with the reports)
COST = "gen_ai.usage.cost"  # USD, float, on a priced chat span
UNPRICED = "tailerd.cost.unpriced"  # True on a chat span whose model has no known price
# genai-prices table used when the call's provider's own table lacks the model (pricing._maker)
PRICE_TABLE = "tailerd.cost.price_table"
# of `gen_ai.usage.cache_write.input_tokens`, the tokens cached for an hour (Anthropic's
# `cache_creation.ephemeral_1h_input_tokens`), which cost more than 5-minute writes
CACHE_WRITE_1H = "tailerd.usage.cache_write_1h.input_tokens"


@functools.lru_cache(maxsize=4096)
def _resolve(provider: str, model: str) -> tuple[Any, Any] | None:
    """genai-prices' (Provider, ModelInfo) for a call, or None when it knows no price.

    A provider genai-prices knows is asked first (falling back to the providers it names for that
    provider's models); when that provider's table lacks the model, the model's maker is found
    from the model name alone (`find_provider_model` without a provider: GitHub Copilot's table
    has no `claude-opus-4.6`, Anthropic's prices it): the returned Provider then is not the
    call's one (see `price_table`). With no provider, the provider is inferred from the model
    name. A provider it does not know prices nothing: the same model name there may cost
    anything."""
    from genai_prices import data_snapshot

    if not model:
        return None
    snapshot = data_snapshot.get_snapshot()
    try:
        found: tuple[Any, Any] = snapshot.find_provider_model(
            model, None, provider.lower() or None, None
        )
    except LookupError:
        return _maker(snapshot, provider, model)
    if _priceless(found[1]):  # listed without any price (Copilot's gpt-4o): not a price of $0
        return _maker(snapshot, provider, model)
    return found


def _priceless(model_info: Any) -> bool:
    """Whether genai-prices lists the model with no price at all (an empty `ModelPrice()`, as
    its GitHub Copilot table does for models included in the subscription): unknown, not free."""
    prices = model_info.prices
    if isinstance(prices, list):  # conditional prices: priceless only if every one is empty
        return all(_priceless_price(c.prices) for c in prices)
    return _priceless_price(prices)


def _priceless_price(prices: Any) -> bool:
    return all(v is None for k, v in vars(prices).items() if not k.startswith("_"))


def _maker(snapshot: Any, provider: str, model: str) -> tuple[Any, Any] | None:
    """The model's maker's (Provider, ModelInfo) when `provider` is one genai-prices knows
    whose table lacks `model`; None otherwise (an unknown provider, or an unknown model)."""
    try:
        if provider:
            snapshot.find_provider(model, provider.lower(), None)  # known to genai-prices?
        found: tuple[Any, Any] = snapshot.find_provider_model(model, None, None, None)
    except LookupError:
        log.debug("no price known for model %r of provider %r", model, provider)
        return None
    return found


def price_table(provider: str, model: str) -> str | None:
    """The id of the genai-prices provider table that priced `model` called through `provider`
    when it is not that provider's own (a fallback to the model's maker, e.g. "anthropic" for
    Copilot's `claude-opus-4.6`); None when the provider's own table priced it or none did."""
    if not (isinstance(provider, str) and isinstance(model, str) and provider):
        return None
    resolved = _resolve(provider, model)
    if resolved is None:
        return None
    from genai_prices import data_snapshot

    try:
        own = data_snapshot.get_snapshot().find_provider(model, provider.lower(), None)
    except LookupError:
        return None
    table: str = resolved[0].id
    return None if table == own.id else table


def price(
    provider: str,
    model: str,
    usage: Usage,
    when: datetime | None = None,
    cache_write_1h: int = 0,
) -> float | None:
    """USD for one call of `model` at `provider` with `usage` made at `when` (default: now);
    `cache_write_1h` of the usage's cache writes were kept for an hour (the rest 5 minutes).

    None when the price is unknown. A call that recorded no tokens at all costs 0.0 whatever the
    model (Claude Code's `<synthetic>` messages: nothing was sent to a model). Never raises for
    bad values: negative or absurd counts make the call unpriced."""
    if not (isinstance(provider, str) and isinstance(model, str)):
        return None  # a format's bug must not stop the emitter: unpriced
    if not (usage.input_tokens or usage.output_tokens):
        return 0.0
    resolved = _resolve(provider, model)
    if resolved is None:
        return None
    from genai_prices import Usage as PriceUsage

    found_provider, found_model = resolved
    if when is None:
        when = datetime.now(timezone.utc)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        prices = found_model.get_prices(when)
        if _fast_path(prices):
            return _linear_price(prices, usage, cache_write_1h)
        counts = {
            "input_tokens": usage.input_tokens,
            "cache_read_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "output_tokens": usage.output_tokens,
        }
        if cache_write_1h:
            counts["cache_write_1h_tokens"] = cache_write_1h
        calc = found_model.calc_price(
            PriceUsage(**counts),
            found_provider,
            genai_request_timestamp=when,
        )
    except (ValueError, TypeError, ArithmeticError) as exc:  # inconsistent counts
        log.debug("cannot price %r %r %r: %s", provider, model, usage, exc)
        return None
    return float(calc.total_price)


# Price keys the fast path prices exactly as genai-prices does: the token prices, and
# per-search prices (no searches are given, so they add nothing).
_TOKEN_KEYS = frozenset(
    {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok"}
)
_IDLE_KEYS = frozenset({"web_searches_kcount", "storage_searches_kcount"})
_MTOK = 1_000_000


def _fast_path(prices: Any) -> bool:
    """Whether `prices` (a genai-prices ModelPrice) holds only prices `_linear_price` knows.

    genai-prices' own `calc_price` decomposes the usage through its unit registry, about 0.7 ms a
    call; the arithmetic for text tokens is four products. Anything else (audio, images, a
    per-request fee, a 1-hour write price without a 5-minute one) takes the library's path."""
    keys = {k for k, v in vars(prices).items() if v is not None and not k.startswith("_")}
    if "cache_write_1h_mtok" in keys and "cache_write_mtok" not in keys:
        return False
    return keys <= _TOKEN_KEYS | _IDLE_KEYS


def _linear_price(prices: Any, usage: Usage, cache_write_1h: int) -> float | None:
    """genai-prices' arithmetic for text tokens: cache reads and writes (and of the writes,
    the 1-hour ones) are taken out of the prompt only where they have a price of their own,
    each count times its (tiered) price, the tier chosen by the whole prompt
    (`genai_prices.types.calc_unit_price`)."""
    from genai_prices.types import calc_unit_price

    prompt = usage.input_tokens
    read = usage.cache_read_input_tokens if prices.cache_read_mtok is not None else 0
    write = usage.cache_creation_input_tokens if prices.cache_write_mtok is not None else 0
    hour = cache_write_1h if write and prices.cache_write_1h_mtok is not None else 0
    uncached = prompt - read - write
    if min(uncached, read, write - hour, hour, usage.output_tokens) < 0:
        return None
    total = sum(
        calc_unit_price(unit_price, count, prompt, _MTOK)
        for unit_price, count in (
            (prices.input_mtok, uncached),
            (prices.cache_read_mtok, read),
            (prices.cache_write_mtok, write - hour),
            (prices.cache_write_1h_mtok, hour),
            (prices.output_mtok, usage.output_tokens),
        )
    )
    return float(total)


def cost_attributes(
    provider: str, model: str, usage: Usage, when: datetime | None = None, cache_write_1h: int = 0
) -> dict[str, Any]:
    """The cost contract's attributes for one chat span: `{COST: usd}` or `{UNPRICED: True}`;
    a price from the model maker's table rather than the provider's own adds
    `{PRICE_TABLE: "<genai-prices provider id>"}` (see `_resolve`)."""
    usd = price(provider, model, usage, when, cache_write_1h)
    if usd is None:
        return {UNPRICED: True}
    table = price_table(provider, model) if usd else None
    return {COST: usd} if table is None else {COST: usd, PRICE_TABLE: table}


def usage_from_attributes(attrs: Mapping[str, Any]) -> Usage:
    """A stored chat span's `gen_ai.usage.*` attributes back as a `Usage` (missing: 0)."""

    def count(key: str) -> int:
        value = attrs.get(f"gen_ai.usage.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Usage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read_input_tokens=count("cache_read.input_tokens"),
        cache_creation_input_tokens=count("cache_write.input_tokens"),
        reasoning_tokens=count("reasoning.output_tokens"),
    )
