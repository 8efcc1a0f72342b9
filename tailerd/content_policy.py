"""The redaction stage as configured: every turn passes it before any sink."""

from __future__ import annotations

from tailerd.errors import ConfigError
from tailerd.redaction import Redactor
from tailerd.settings import Settings


def build_redactor(settings: Settings) -> Redactor:
    r = settings.redaction
    try:
        return Redactor(
            enabled=r.enabled,
            custom_patterns=r.patterns,
            content=r.content,
            max_attribute_chars=r.max_attribute_chars,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid [redaction] setting: {exc}") from None
