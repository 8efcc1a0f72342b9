"""Redaction: secrets out of every string of a turn before any sink sees it.

- ``detectors``: the kinds of secret (patterns, validators, and the gates the engine scans for);
- ``engine``: the one-pass multi-pattern scan (Hyperscan, or a pure-Python fallback) that says
  which detectors can match a string;
- ``turns``: the walk over every string of a Turn, rebuilding only what changed;
- ``redactor``: ``Redactor``, the policy (content full / redacted / none, size cap) and counts.
"""

from __future__ import annotations

from tailerd.redaction.detectors import BUILTIN_DETECTORS, MARKER_PREFIX, Detector
from tailerd.redaction.engine import Engine
from tailerd.redaction.redactor import (
    DEFAULT_MAX_ATTRIBUTE_CHARS,
    ContentPolicy,
    Redactor,
    redact_text,
)

__all__ = [
    "BUILTIN_DETECTORS",
    "DEFAULT_MAX_ATTRIBUTE_CHARS",
    "MARKER_PREFIX",
    "ContentPolicy",
    "Detector",
    "Engine",
    "Redactor",
    "redact_text",
]
