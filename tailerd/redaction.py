"""The redaction stage: scrub secrets out of a finished turn before any sink sees it.

Every string that carries conversation content (message content, tool arguments and results,
LLM input/output messages, reasoning, sub-agent messages, string attribute values) is passed
through an ordered list of detectors. A match becomes ``[REDACTED:<kind>]``; for detectors that
find a secret *in a context* (``KEY=value``, ``scheme://user:pass@host``, ``Bearer <token>``)
only the secret part is replaced and the context is kept.

Policy (``content``):

- ``"redacted"`` (default): detectors on, then the size cap.
- ``"full"``: no detectors, only the size cap.
- ``"none"``: content strings are dropped (messages keep their role, arguments/results/reasoning
  become ``""``); structure, names, timing and token usage are kept. Metadata strings
  (``session_name``, attributes) are still run through the detectors.

``enabled=False`` turns the detectors off whatever ``content`` says; ``content="none"`` and the
size cap still apply, because they are data-volume policy rather than secret scanning.

Speed: every detector declares trigger substrings without which it cannot match. One regex over
the lower-cased text, shaped as a prefix tree of all triggers, lets a string without any trigger
through untouched (most strings); otherwise only the detectors whose triggers occur (plain ``in``
checks) run. Everything is compiled once, at import time. See benchmarks/bench_redaction.py.

The size cap runs after the detectors, so a secret is never split by the cut before it is seen;
the kept part is scrubbed once more, since a cut can make the head of a longer word look like a
key. ``redact_text`` is idempotent, including on capped strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from tailerd.domain import LLMCall, Message, SpanCall, ToolCall, Turn

ContentPolicy = Literal["full", "redacted", "none"]
DEFAULT_MAX_ATTRIBUTE_CHARS = 64 * 1024
MARKER_PREFIX = "[REDACTED:"
_TRUNCATION = re.compile(r"…\[truncated \d+ chars\]\Z")

Validator = Callable[[str, "re.Match[str]"], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of secret.

    The replaced span is the first participating group whose name starts with ``secret``, or the
    whole match when the pattern has no such group. ``triggers`` are substrings of which at least
    one must occur for the pattern to possibly match (``lowered`` ones are searched in the
    lower-cased text). ``accept`` may veto a match (placeholders, code).
    """

    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...] = ()
    lowered_triggers: tuple[str, ...] = ()
    accept: Validator | None = None

    def may_match(self, text: str, lowered: str) -> bool:
        if not self.triggers and not self.lowered_triggers:
            return True
        return any(t in text for t in self.triggers) or any(
            t in lowered for t in self.lowered_triggers
        )


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    for name in match.re.groupindex:
        if name.startswith("secret") and match.start(name) >= 0:
            return match.span(name)
    return match.span()


# ---------------------------------------------------------------------------------------------
# Heuristics that keep ordinary text and code intact.

# fmt: off
_PLACEHOLDER_WORDS = frozenset((
    "none", "null", "nil", "true", "false", "undefined", "empty", "string", "str", "int", "bool",
    "bytes", "number", "boolean", "any", "optional", "secretstr", "required", "redacted",
    "hidden", "masked", "placeholder", "dummy", "example", "sample", "test", "changeit", "todo",
    "tbd", "password", "passwd", "pass", "secret", "token", "key", "apikey", "api_key",
))
# fmt: on
_PLACEHOLDER = re.compile(
    r"""(?ix)
    [<{$\[(…].*                         # <your-key> ${VAR} $VAR {{var}} [REDACTED:x] (expr)
    | %(?:\(\w+\)[sd]|\w+%|[sd])         # %(name)s %VAR% %s
    | [!&*][a-z_]+                       # YAML tag, anchor or alias: !vault &base *base
    | [x*.\#_\-•]+                       # xxx *** ... ----
    | \*.*                               # ****abcd
    | (?:your|insert|enter|replace|put)[-_\ ].*
    | .*[-_\ ]here
    | .*(?:\.\.\.|…).*                    # elided: sk-...abcd
    | .*redacted.*
    """
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_DOTTED_IDENTIFIER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def _is_placeholder(value: str) -> bool:
    return (
        len(value) < 3
        or value.lower() in _PLACEHOLDER_WORDS
        or _PLACEHOLDER.fullmatch(value) is not None
    )


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _accept_token(value: str, _match: re.Match[str]) -> bool:
    """A free-form token (bearer, URL password) must not be a placeholder and must look random."""
    return not _is_placeholder(value) and (_has_digit(value) or len(value) >= 24)


def _accept_url_password(value: str, _match: re.Match[str]) -> bool:
    return not _is_placeholder(value)


def _accept_has_digit(value: str, _match: re.Match[str]) -> bool:
    return _has_digit(value)


def _accept_assignment(value: str, match: re.Match[str]) -> bool:
    """Decide whether the value of ``<key><sep><value>`` is a literal secret.

    "Env style" (an UPPER-CASE key, no space before ``=``) takes any non-placeholder literal: in
    ``.env`` files and docker-compose environments bare words are values. Otherwise (code, JSON,
    YAML, prose) an unquoted value that is a variable, call, attribute access or a plain word is
    code, not a secret.
    """
    if _is_placeholder(value):
        return False
    keyword, separator = match.group("kw"), match.group("sep")
    if keyword.isupper() and not separator.startswith((" ", "\t")):
        return True  # env style
    if match.group("secret_unquoted") is None:
        return " " not in value  # quoted: labels and sentences ("Password must be ...") are not
    return not _looks_like_code(value) and (
        _has_digit(value) or (len(value) >= 16 and not value.isalpha())
    )


def _looks_like_code(value: str) -> bool:
    """A call, index, attribute access, plain variable name, or number."""
    return (
        "(" in value
        or "[" in value
        or value.isdigit()  # a JSON/YAML number: "token": 4096
        or _DOTTED_IDENTIFIER.fullmatch(value) is not None
        or (_IDENTIFIER.fullmatch(value) is not None and not _has_digit(value))
    )


# ---------------------------------------------------------------------------------------------
# The detectors, in the order they run: specific formats first, so that the generic
# KEY=value detector sees their markers (which it leaves alone) and the kind stays specific.

_B = r"(?<![A-Za-z0-9_\-])"  # token start: not inside a longer word
_E = r"(?![A-Za-z0-9_\-])"  # token end
_QUOTE = r"(?:\\?[\"'])?"  # optional quote, possibly JSON-escaped


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.ASCII)


_PEM_BODY = r"(?:[A-Za-z0-9+/=\s:,.\-]|\\+[nrt/])"  # also \\n in JSON, \\\\n in JSON-in-JSON
_PRIVATE_KEY_LABEL = r"[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?"

_KEYWORDS = (
    r"secret|token|passw(?:or)?d|passphrase|[_.\-]pass|credentials?"
    r"|(?:api|access|secret|private|signing|encryption|master|auth)[_\-]?key"
)
_ASSIGNMENT = _compile(
    r"(?=[sStTpPcCaAeEmM_.\-])"  # a first-character filter: doubles the scan speed
    r"(?P<kw>" + _KEYWORDS + r")"
    r"(?:\\?[\"'])?"  # the closing quote of a quoted key
    r"(?P<sep>[ \t]*(?::=|=(?!=)|:(?![:/]))[ \t]*)"
    r"(?:\\\"(?P<secret_escaped>[^\"\\\n]*)\\\""  # {\"password\": \"...\"} inside JSON text
    r"|\"(?P<secret_double>(?:[^\"\\\n]|\\.)*)\""
    r"|'(?P<secret_single>[^'\\\n]*)'"
    r"|(?P<secret_unquoted>[^\s\"'`\\,;)}\]]+))",
    re.IGNORECASE,
)

_KEY_PREFIXES = ("api", "access", "secret", "private", "signing", "encryption", "master", "auth")
_ASSIGNMENT_TRIGGERS = (
    "secret", "token", "passw", "passphrase", "_pass", ".pass", "-pass", "credential",
    *(prefix + joint + "key" for prefix in _KEY_PREFIXES for joint in ("", "_", "-")),
)  # fmt: skip

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        _compile(
            r"-----BEGIN " + _PRIVATE_KEY_LABEL + r"-----" + _PEM_BODY + r"*?"
            r"(?:-----END " + _PRIVATE_KEY_LABEL + r"-----|(?!" + _PEM_BODY + r"))"
        ),
        triggers=("PRIVATE KEY-----",),
    ),
    Detector(
        "jwt",
        _compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _E),
        triggers=("eyJ",),
    ),
    Detector(
        "anthropic_api_key",
        _compile(_B + r"sk-ant-[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("sk-ant-",),
    ),
    Detector(
        "openai_api_key",
        _compile(_B + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("sk-",),
        accept=_accept_has_digit,  # not "sk-some-long-option-name-here"
    ),
    Detector(
        "stripe_key",
        _compile(_B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E),
        triggers=("k_live_", "k_test_"),
    ),
    Detector(
        "github_token",
        _compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})" + _E),
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Detector(
        "gitlab_token",
        _compile(_B + r"gl(?:pat|dt|rt|ptt|cbt|soat|ft)-[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-", "glft-"),
    ),
    Detector(
        "slack_token",
        _compile(_B + r"xox[baprse]-[A-Za-z0-9\-]{10,}" + _E),
        triggers=("xox",),
    ),
    Detector(
        "slack_webhook",
        _compile(r"hooks\.slack\.com/services/(?P<secret>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)"),
        triggers=("hooks.slack.com",),
    ),
    Detector(
        "huggingface_token",
        _compile(_B + r"(?:hf|api_org)_[A-Za-z0-9]{30,}" + _E),
        triggers=("hf_", "api_org_"),
    ),
    Detector(
        "gcp_api_key",
        _compile(_B + r"AIza[0-9A-Za-z_\-]{35}" + _E),
        triggers=("AIza",),
    ),
    Detector(
        "aws_access_key_id",
        _compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
        triggers=("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    Detector(
        "aws_secret_access_key",
        _compile(
            r"(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)"
            + _QUOTE
            + r"(?:[ \t]*[:=][ \t]*|[ \t]+)"
            + _QUOTE
            + r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
            re.IGNORECASE,
        ),
        lowered_triggers=("secret_access_key", "secretaccesskey", "aws_secret_key"),
    ),
    Detector(
        "azure_storage_key",
        _compile(r"(?:AccountKey|SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{20,}={0,2})"),
        triggers=("AccountKey=", "SharedAccessKey="),
    ),
    Detector(
        "wandb_api_key",
        _compile(
            r"(?:wandb_?api_?key(?:\\?[\"'])?[ \t]*[:=][ \t]*(?:\\?[\"'])?"
            r"|wandb\s+login(?:\s+--?[a-z\-]+(?:[= ][^\s-]\S*)?)*?\s+"
            r"|wandb\.login\([^)]{0,200}?key\s*=\s*(?:\\?[\"'])?)"
            r"(?P<secret>(?:[A-Za-z0-9_]+-)?[A-Za-z0-9_]{40,})(?![A-Za-z0-9_\-])"
            r"|(?<![A-Za-z0-9_\-])(?P<secret_local>local-[0-9a-f]{40})(?![A-Za-z0-9_\-])",
            re.IGNORECASE,
        ),
        lowered_triggers=("wandb", "local-"),
    ),
    Detector(
        "url_password",
        _compile(
            r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"'\\\[\]]*:"
            r"(?P<secret>[^\s@/\"'\\]+)@(?=[A-Za-z0-9\[])"  # raw # or ? happen in DSNs
        ),
        triggers=("://",),
        accept=_accept_url_password,
    ),
    Detector(
        "bearer_token",
        _compile(r"\bBearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})", re.IGNORECASE),
        lowered_triggers=("bearer",),
        accept=_accept_token,
    ),
    Detector(
        "basic_auth",
        _compile(
            r"\bAuthorization(?:\\?[\"'])?[ \t]*[:=][ \t]*(?:\\?[\"'])?"
            r"Basic[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})",
            re.IGNORECASE,
        ),
        lowered_triggers=("basic",),
    ),
    Detector(
        "secret_assignment",
        _ASSIGNMENT,
        lowered_triggers=_ASSIGNMENT_TRIGGERS,
        accept=_accept_assignment,
    ),
)


def _prefix_tree_pattern(words: set[str]) -> str:
    """A regex matching any of `words`, shaped as a prefix tree: ~3x faster than a flat `a|b|c`.

    Only existence matters (it gates the detectors), so a word that extends another is dropped.
    """
    if "" in words:
        return ""
    branches: dict[str, set[str]] = {}
    for word in words:
        branches.setdefault(word[0], set()).add(word[1:])
    parts = [re.escape(c) + _prefix_tree_pattern(tails) for c, tails in sorted(branches.items())]
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


_ANY_TRIGGER = re.compile(
    _prefix_tree_pattern(
        {t.lower() for d in BUILTIN_DETECTORS for t in d.triggers}
        | {t for d in BUILTIN_DETECTORS for t in d.lowered_triggers}
    )
)


def _custom_detector(kind: str, pattern: str) -> Detector:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", kind):
        raise ValueError(f"redaction kind {kind!r}: use letters, digits, '_', '.', '-'")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"redaction pattern for {kind!r} is not a valid regex: {exc}") from exc
    return Detector(kind, compiled)


# ---------------------------------------------------------------------------------------------


class Redactor:
    """Applies the redaction policy to strings and turns; counts what it redacted per kind."""

    def __init__(
        self,
        enabled: bool = True,
        custom_patterns: Mapping[str, str] | None = None,
        content: ContentPolicy = "redacted",
        max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    ) -> None:
        if content not in ("full", "redacted", "none"):
            raise ValueError(f"content must be 'full', 'redacted' or 'none', not {content!r}")
        if max_attribute_chars < 1:
            raise ValueError("max_attribute_chars must be positive")
        self.enabled = enabled
        self.content: ContentPolicy = content
        self.max_attribute_chars = max_attribute_chars
        custom = tuple(_custom_detector(k, p) for k, p in (custom_patterns or {}).items())
        self._detectors = BUILTIN_DETECTORS + custom
        self._always_scan = bool(custom)  # custom patterns have no triggers
        self._counts: dict[str, int] = {}

    @property
    def keeps_content(self) -> bool:
        """False for content="none": only structure, timing and tokens are shipped."""
        return self.content != "none"

    def counts(self) -> dict[str, int]:
        """Matches redacted so far, per kind (a copy)."""
        return dict(self._counts)

    # -- strings -------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """Detectors (unless off by policy), then the size cap."""
        if not (self.enabled and self.content != "full"):
            return self.cap(text)
        return self.cap(self.scrub(text), rescrub=True)

    def scrub(self, text: str, *, precheck: bool = True) -> str:
        """Replace every detected secret; `precheck=False` runs every detector (for tests)."""
        if not text:
            return text
        lowered = text.lower()
        if precheck and not self._always_scan and _ANY_TRIGGER.search(lowered) is None:
            return text
        for detector in self._detectors:
            if precheck and not detector.may_match(text, lowered):
                continue
            replaced = detector.pattern.sub(self._replacer(detector), text)
            if replaced != text:
                text, lowered = replaced, replaced.lower()
        return text

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
            start, end = _secret_span(match)
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
        """A copy of `turn` with every content string redacted, dropped or capped by policy."""
        return replace(
            turn,
            session_name=self.redact_text(turn.session_name),
            messages=self._messages(turn.messages),
            output_messages=self._messages(turn.output_messages),
            spans=self._spans(turn.spans),
            attributes=self._attributes(turn.attributes),
        )

    def _content(self, text: str) -> str:
        if self.content == "none":
            return ""
        return self.redact_text(text)

    def _messages(self, messages: Iterable[Message]) -> tuple[Message, ...]:
        return tuple(replace(m, content=self._content(m.content)) for m in messages)

    def _spans(self, spans: Iterable[SpanCall]) -> tuple[SpanCall, ...]:
        return tuple(self._span(span) for span in spans)

    def _span(self, span: SpanCall) -> SpanCall:
        attributes = self._attributes(span.attributes)
        if isinstance(span, ToolCall):
            return replace(
                span,
                arguments=self._content(span.arguments),
                result=self._content(span.result),
                attributes=attributes,
            )
        if isinstance(span, LLMCall):
            return replace(
                span,
                input_messages=self._messages(span.input_messages),
                output_messages=self._messages(span.output_messages),
                reasoning=self._content(span.reasoning),
                attributes=attributes,
            )
        return replace(
            span,
            input_messages=self._messages(span.input_messages),
            output_messages=self._messages(span.output_messages),
            spans=self._spans(span.spans),
            attributes=attributes,
        )

    def _attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        return {key: self._attribute_value(value) for key, value in attributes.items()}

    def _attribute_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {k: self._attribute_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._attribute_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._attribute_value(v) for v in value)
        return value


__all__ = ["BUILTIN_DETECTORS", "ContentPolicy", "Detector", "Redactor"]
