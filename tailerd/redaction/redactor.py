"""The redaction stage: scrub secrets out of a finished turn before any sink sees it.

Every string that carries conversation content (message content, tool arguments and results,
LLM input/output messages, reasoning, sub-agent messages, string attribute values) is passed
through an ordered list of detectors (tailerd/redaction/detectors.py). A match becomes
``[REDACTED:<kind>]``; for detectors that find a secret *in a context* (``KEY=value``,
``scheme://user:pass@host``, ``Bearer <token>``) only the secret part is replaced.

Policy (``content``):

- ``"redacted"`` (default): detectors on, then the size cap.
- ``"full"``: no detectors, only the size cap.
- ``"none"``: content strings are dropped (messages keep their role, arguments/results/reasoning
  become ``""``); structure, names, timing and token usage are kept. Metadata strings
  (``session_name``, attributes) are still run through the detectors.

``enabled=False`` turns the detectors off whatever ``content`` says; ``content="none"`` and the
size cap still apply, because they are data-volume policy rather than secret scanning.

Speed: one multi-pattern scan per string (tailerd/redaction/engine.py) names the detectors that
can match; a clean string costs that one scan. Only the named detectors run their ``re`` pattern,
in their fixed order, and after a replacement the changed string is scanned again, so the result
is the same as running every detector in order. A turn's strings are scanned in one batch.

The size cap runs after the detectors, so a secret is never split by the cut before it is seen;
the kept part is scrubbed once more, since a cut can make the head of a longer word look like a
key. ``redact_text`` is idempotent, including on capped strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal

from tailerd.domain import Turn
from tailerd.redaction.detectors import (
    BUILTIN_DETECTORS,
    MARKER_PREFIX,
    Detector,
    custom_detector,
    secret_span,
)
from tailerd.redaction.engine import Engine, Gates, Hits, Span, build_gates
from tailerd.redaction.turns import turn_strings, walk_turn

ContentPolicy = Literal["full", "redacted", "none"]
DEFAULT_MAX_ATTRIBUTE_CHARS = 64 * 1024
_TRUNCATION = re.compile(r"…\[truncated \d+ chars\]\Z")
_BUILTIN_GATES: dict[Engine, Gates] = {}


def _gates(detectors: tuple[Detector, ...], engine: Engine) -> Gates:
    if detectors is not BUILTIN_DETECTORS:
        return build_gates(detectors, engine)
    if engine not in _BUILTIN_GATES:  # compiled once per process
        _BUILTIN_GATES[engine] = build_gates(detectors, engine)
    return _BUILTIN_GATES[engine]


def _drop(_text: str) -> str:
    return ""


class Redactor:
    """Applies the redaction policy to strings and turns; counts what it redacted per kind.

    ``engine`` picks the multi-pattern scan: ``"auto"`` (Hyperscan, or the pure-Python trigger
    scan with one warning when Hyperscan cannot be imported or compile the gates), ``"hyperscan"``
    (raising ImportError or ``hyperscan.error`` instead) or ``"regex"`` (the pure-Python scan).
    Every engine redacts the same text.
    Raises ValueError for an unknown ``content``, a cap below 1, or a bad custom pattern.
    """

    def __init__(
        self,
        enabled: bool = True,
        custom_patterns: Mapping[str, str] | None = None,
        content: ContentPolicy = "redacted",
        max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
        engine: Engine = "auto",
    ) -> None:
        if content not in ("full", "redacted", "none"):
            raise ValueError(f"content must be 'full', 'redacted' or 'none', not {content!r}")
        if max_attribute_chars < 1:
            raise ValueError("max_attribute_chars must be positive")
        if engine not in ("auto", "hyperscan", "regex"):
            raise ValueError(f"engine must be 'auto', 'hyperscan' or 'regex', not {engine!r}")
        self.enabled = enabled
        self.content: ContentPolicy = content
        self.max_attribute_chars = max_attribute_chars
        custom = tuple(custom_detector(k, p) for k, p in (custom_patterns or {}).items())
        self._detectors = BUILTIN_DETECTORS + custom if custom else BUILTIN_DETECTORS
        self._gates = _gates(self._detectors, engine)
        self._counts: dict[str, int] = {}
        self._replacers = tuple(self._replacer(d) for d in self._detectors)
        self._scans = enabled and content != "full"

    @property
    def engine(self) -> str:
        """The scan in use: ``"hyperscan"`` or ``"regex"``."""
        return self._gates.name

    @property
    def keeps_content(self) -> bool:
        """False for content="none": only structure, timing and tokens are shipped."""
        return self.content != "none"

    def counts(self) -> dict[str, int]:
        """Matches redacted so far, per kind (a copy)."""
        return dict(self._counts)

    # -- strings -------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """Detectors (unless off by policy), then the size cap; `text` itself when unchanged."""
        if self._scans and text:
            hits = self._gates.hits(text)
            if hits:
                text = self._run(text, hits)
        if len(text) <= self.max_attribute_chars:
            return text
        return self.cap(text, rescrub=self._scans)

    def redact_many(self, texts: Sequence[str]) -> list[str]:
        """`redact_text` of each string, with one batched scan for all of them."""
        return self._redact_many(texts)[0]

    def _redact_many(self, texts: Sequence[str]) -> tuple[list[str], bool]:
        """The redacted strings, and whether any differs from its input."""
        out = list(texts)
        changed = False
        if self._scans:
            default, specific = self._gates.hits_many(texts)
            for i in range(len(out)) if default else specific:
                redacted = self._run(out[i], specific.get(i, default))
                if redacted is not out[i]:
                    out[i], changed = redacted, True
        limit = self.max_attribute_chars
        if out and max(map(len, out)) > limit:
            for i, text in enumerate(out):
                if len(text) > limit:
                    out[i], changed = self.cap(text, rescrub=self._scans), True
        return out, changed

    def scrub(self, text: str, *, precheck: bool = True) -> str:
        """Replace every detected secret; `precheck=False` runs every detector (for tests)."""
        if not text:
            return text
        if not precheck:
            return self._run(text, None)
        hits = self._gates.hits(text)
        return self._run(text, hits) if hits else text

    def _run(self, text: str, hits: Hits | None) -> str:
        """Detectors in order; with `hits`, only those and where they say, re-scanned on change.

        The result equals running every detector's ``pattern.sub`` over the whole text in order.
        """
        for i, detector in enumerate(self._detectors):
            if hits is None:
                replaced = detector.pattern.sub(self._replacers[i], text)
            elif i not in hits:
                continue
            else:
                replaced = self._sub(i, text, hits[i])
            if replaced != text:
                text = replaced
                if hits is not None:
                    hits = self._gates.hits(text, likely=True)
        return text

    def _sub(self, index: int, text: str, spans: list[Span] | None) -> str:
        """``pattern.sub`` trying only start offsets inside `spans` (every other one fails).

        Same result as the whole-text ``sub``: its leftmost-first, non-overlapping matches are
        found by the same ``match`` attempts (lookbehinds see the text before the offset).
        """
        pattern, replacer = self._detectors[index].pattern, self._replacers[index]
        if spans is None:
            return pattern.sub(replacer, text)
        parts: list[str] = []
        done = 0  # text[:done] is final
        for start, end in spans:
            at = max(start, done)
            while at < end:
                match = pattern.match(text, at)
                if match is None or match.end() == match.start():
                    at += 1
                    continue
                parts.append(text[done : match.start()])
                parts.append(replacer(match))
                done = at = match.end()
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    def cap(self, text: str, *, rescrub: bool = False) -> str:
        """Cut a string longer than the cap to the cap and mark how much was cut.

        With `rescrub`, the kept part is scrubbed again: the cut can turn the tail of a longer
        token into a complete-looking secret (an AWS key id cut out of a longer word).
        """
        limit = self.max_attribute_chars
        if len(text) <= limit:
            return text
        marker = _TRUNCATION.search(text)
        if marker is not None and marker.start() <= limit:
            return text  # already capped
        kept = text[:limit]
        for _ in range(4) if rescrub else ():  # a replacement may outgrow the cap: cut, retry
            again = self.scrub(kept)[:limit]
            if again == kept:
                break
            kept = again
        return f"{kept}…[truncated {len(text) - limit} chars]"

    def _replacer(self, detector: Detector) -> Callable[[re.Match[str]], str]:
        def replace_match(match: re.Match[str]) -> str:
            whole = match.group()
            start, end = secret_span(match)
            secret = match.string[start:end]
            if not secret or MARKER_PREFIX in secret:
                return whole
            if detector.accept is not None and not detector.accept(secret, match):
                return whole
            self._counts[detector.kind] = self._counts.get(detector.kind, 0) + 1
            offset = match.start()
            return (
                whole[: start - offset] + f"{MARKER_PREFIX}{detector.kind}]" + whole[end - offset :]
            )

        return replace_match

    # -- turns ---------------------------------------------------------------------------------

    def apply(self, turn: Turn) -> Turn:
        """`turn` with every content string redacted, dropped or capped by policy.

        The same object when nothing changed; otherwise a copy sharing every unchanged part.
        """
        content = _drop if self.content == "none" else self.redact_text
        if not self._scans:
            return walk_turn(turn, content, self.redact_text)
        texts = turn_strings(turn, content=self.content != "none")
        redacted_texts, changed = self._redact_many(texts)
        if not changed and self.content != "none":
            return turn  # the common case: nothing to redact, no second walk
        results: Iterator[str] = iter(redacted_texts)

        def redacted(_text: str) -> str:
            return next(results)

        return walk_turn(turn, _drop if self.content == "none" else redacted, redacted)


def redact_text(text: str) -> str:
    """`text` through the built-in detectors and the default cap (a fresh Redactor's policy)."""
    return Redactor().redact_text(text)
