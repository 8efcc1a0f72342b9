"""The detectors: one compiled Python pattern per kind of secret, its validators, and its gates.

A detector replaces the first participating ``secret*`` group of each match (or the whole match)
by ``[REDACTED:<kind>]``, unless its validator vetoes the value. Each built-in detector also
declares two cheap necessary conditions, used only to skip it on text where it cannot match:

- ``triggers`` / ``lowered_triggers``: substrings, one of which must occur (the fallback engine);
- ``gate``: a regex in the common Hyperscan/RE2 subset (no lookarounds, no named groups) over the
  text's UTF-8 bytes that matches, *starting at the same offset*, wherever ``pattern`` matches:
  the pattern with its lookarounds, upper bounds, validators and (possibly) its tail dropped.
  The multi-pattern engine runs all gates in one pass; a gate match ``[start, end)`` tells that
  ``pattern`` can only match at an offset in ``[start, end)``, so only those are tried.

A gate that is not a superset would let a secret through; tests/test_redaction_engine.py checks
gate-skipping against running every detector on every string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MARKER_PREFIX = "[REDACTED:"

Validator = Callable[[str, "re.Match[str]"], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of secret.

    The replaced span is the first participating group whose name starts with ``secret``, or the
    whole match when the pattern has no such group. ``triggers`` are substrings of which at least
    one must occur for the pattern to possibly match (``lowered`` ones are searched in the
    lower-cased text). ``gate`` is a lookaround-free superset of ``pattern`` for a multi-pattern
    engine (caseless when ``pattern`` is); ``None`` (custom detectors) means "always run".
    ``accept`` may veto a match (placeholders, code).
    """

    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...] = ()
    lowered_triggers: tuple[str, ...] = ()
    accept: Validator | None = None
    gate: str | None = None

    @property
    def caseless(self) -> bool:
        """Whether the gate must be matched ignoring ASCII case (the pattern is IGNORECASE)."""
        return bool(self.pattern.flags & re.IGNORECASE)

    def may_match(self, text: str, lowered: str) -> bool:
        if not self.triggers and not self.lowered_triggers:
            return True
        return any(t in text for t in self.triggers) or any(
            t in lowered for t in self.lowered_triggers
        )


def secret_span(match: re.Match[str]) -> tuple[int, int]:
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
_ASSIGNMENT_GATE = r"(?:" + _KEYWORDS + r")(?:\\?[\"'])?[ \t]*[:=]"

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
        gate=r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
    ),
    Detector(
        "jwt",
        _compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _E),
        triggers=("eyJ",),
        gate=r"eyJ[A-Za-z0-9_\-]{8}[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]{8}[A-Za-z0-9_\-]*\.",
    ),
    Detector(
        "anthropic_api_key",
        _compile(_B + r"sk-ant-[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("sk-ant-",),
        gate=r"sk-ant-[A-Za-z0-9_\-]{20}",
    ),
    Detector(
        "openai_api_key",
        _compile(_B + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("sk-",),
        accept=_accept_has_digit,  # not "sk-some-long-option-name-here"
        gate=r"sk-[A-Za-z0-9_\-]{20}",
    ),
    Detector(
        "stripe_key",
        _compile(_B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E),
        triggers=("k_live_", "k_test_"),
        gate=r"[sr]k_(?:live|test)_[A-Za-z0-9]{16}",
    ),
    Detector(
        "github_token",
        _compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})" + _E),
        triggers=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        gate=r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40}",
    ),
    Detector(
        "gitlab_token",
        _compile(_B + r"gl(?:pat|dt|rt|ptt|cbt|soat|ft)-[A-Za-z0-9_\-]{20,}" + _E),
        triggers=("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-", "glft-"),
        gate=r"gl(?:pat|dt|rt|ptt|cbt|soat|ft)-[A-Za-z0-9_\-]{20}",
    ),
    Detector(
        "slack_token",
        _compile(_B + r"xox[baprse]-[A-Za-z0-9\-]{10,}" + _E),
        triggers=("xox",),
        gate=r"xox[baprse]-[A-Za-z0-9\-]{10}",
    ),
    Detector(
        "slack_webhook",
        _compile(r"hooks\.slack\.com/services/(?P<secret>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)"),
        triggers=("hooks.slack.com",),
        gate=r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]",
    ),
    Detector(
        "huggingface_token",
        _compile(_B + r"(?:hf|api_org)_[A-Za-z0-9]{30,}" + _E),
        triggers=("hf_", "api_org_"),
        gate=r"(?:hf|api_org)_[A-Za-z0-9]{30}",
    ),
    Detector(
        "gcp_api_key",
        _compile(_B + r"AIza[0-9A-Za-z_\-]{35}" + _E),
        triggers=("AIza",),
        gate=r"AIza[0-9A-Za-z_\-]{35}",
    ),
    Detector(
        "aws_access_key_id",
        _compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
        triggers=("AKIA", "ASIA", "ABIA", "ACCA"),
        gate=r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
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
        gate=(
            r"(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)(?:\\?[\"'])?"
            r"(?:[ \t]*[:=][ \t]*|[ \t]+)(?:\\?[\"'])?[A-Za-z0-9/+]{40}"
        ),
    ),
    Detector(
        "azure_storage_key",
        _compile(r"(?:AccountKey|SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{20,}={0,2})"),
        triggers=("AccountKey=", "SharedAccessKey="),
        gate=r"(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{20}",
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
        gate=(
            r"wandb_?api_?key(?:\\?[\"'])?[ \t]*[:=]|wandb[ \t\n\r\f\x0b]+login|wandb\.login\("
            r"|local-[0-9a-f]{40}"
        ),
    ),
    Detector(
        "url_password",
        _compile(
            r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"'\\\[\]]*:"
            r"(?P<secret>[^\s@/\"'\\]+)@(?=[A-Za-z0-9\[])"  # raw # or ? happen in DSNs
        ),
        triggers=("://",),
        accept=_accept_url_password,
        gate=(
            r"[A-Za-z][A-Za-z0-9+.\-]*://[^ \t\n\r\f\x0b:/?#@\"'\\\[\]]*:"
            r"[^ \t\n\r\f\x0b@/\"'\\]+@[A-Za-z0-9\[]"
        ),
    ),
    Detector(
        "bearer_token",
        _compile(r"\bBearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})", re.IGNORECASE),
        lowered_triggers=("bearer",),
        accept=_accept_token,
        gate=r"bearer[ \t]+[A-Za-z0-9._~+/=\-]{8}",
    ),
    Detector(
        "basic_auth",
        _compile(
            r"\bAuthorization(?:\\?[\"'])?[ \t]*[:=][ \t]*(?:\\?[\"'])?"
            r"Basic[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})",
            re.IGNORECASE,
        ),
        lowered_triggers=("basic",),
        gate=(
            r"authorization(?:\\?[\"'])?[ \t]*[:=][ \t]*(?:\\?[\"'])?basic[ \t]+[A-Za-z0-9+/]{8}"
        ),
    ),
    Detector(
        "secret_assignment",
        _ASSIGNMENT,
        lowered_triggers=_ASSIGNMENT_TRIGGERS,
        accept=_accept_assignment,
        gate=_ASSIGNMENT_GATE,
    ),
)


def custom_detector(kind: str, pattern: str) -> Detector:
    """A user-configured detector (no triggers, no gate: it runs on every string).

    Raises ValueError for a kind outside ``[A-Za-z0-9_.-]+`` or a pattern ``re`` rejects.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", kind):
        raise ValueError(f"redaction kind {kind!r}: use letters, digits, '_', '.', '-'")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"redaction pattern for {kind!r} is not a valid regex: {exc}") from exc
    return Detector(kind, compiled)
