"""An Amp assistant message's `usage` in Weave's convention, and the provider of its model.

`usage` is `{model, maxInputTokens, inputTokens, outputTokens, cacheCreationInputTokens,
cacheReadInputTokens, totalInputTokens, timestamp}` (tokens; `timestamp` ISO-8601, written when
the inference ended). How Amp fills it, per provider (its bundle, `@sourcegraph/amp`
0.0.1771243550-geaf318 dist/main.js, the providers' usage mappers):
- Anthropic: Anthropic's own `input_tokens` (uncached), `cache_creation_input_tokens`,
  `cache_read_input_tokens`, and `totalInputTokens` = their sum. Checked on every message of
  the real sample (git-ai tests/fixtures/amp-threads/), e.g. 3 + 1,619 + 13,248 = 14,870.
- OpenAI, Gemini and the rest: `inputTokens` 0, `cacheReadInputTokens` the cached prompt,
  `cacheCreationInputTokens` the *uncached* prompt (not a cache write), `totalInputTokens` the
  whole prompt.
So `totalInputTokens` is the whole input in every case: Weave's `input_tokens` (which includes
cache reads and writes; domain.Usage). The sum of the three parts stands in when it is missing.
Cache writes are counted only for Anthropic models, the one provider where Amp's
`cacheCreationInputTokens` means one.
"""

from __future__ import annotations

from typing import Any

from tailerd.domain import Usage
from tailerd.formats.json_values import as_dict, as_int

# Model-name prefixes of the providers Amp calls; anything else is taken to be Anthropic's
# (Amp's default "smart" mode runs Claude; its thinking blocks say `provider: "anthropic"`).
_PROVIDERS = (
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("codex", "openai"),
    ("gemini", "google"),
    ("grok", "x-ai"),
    ("kimi", "moonshotai"),
)  # genai-prices' provider ids (tailerd.pricing)
ANTHROPIC = "anthropic"


def provider_of(model: str) -> str:
    """The provider of an Amp model name: "anthropic" unless the name says otherwise."""
    name = model.lower().rsplit("/", 1)[-1]
    return next((p for prefix, p in _PROVIDERS if name.startswith(prefix)), ANTHROPIC)


def usage_of(raw: Any) -> Usage:
    """Weave's Usage from an Amp `usage` object (anything else reads as no tokens)."""
    usage = as_dict(raw)
    model = usage.get("model")
    anthropic = provider_of(model if isinstance(model, str) else "") == ANTHROPIC
    uncached = as_int(usage.get("inputTokens"))
    written = as_int(usage.get("cacheCreationInputTokens"))
    read = as_int(usage.get("cacheReadInputTokens"))
    total = as_int(usage.get("totalInputTokens")) or uncached + written + read
    return Usage(
        input_tokens=total,
        output_tokens=as_int(usage.get("outputTokens")),
        cache_read_input_tokens=read,
        cache_creation_input_tokens=written if anthropic else 0,
    )
