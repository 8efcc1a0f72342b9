"""`otlp`: OTLP/HTTP protobuf to any endpoint (Phoenix, Langfuse, a Collector).

tailerd posts the spans itself instead of using the SDK's exporter, so that every response is
classified. 2xx: delivered. 400, 413, 415, 422: this payload is refused for good (rejected and
dead-lettered, so it cannot block the file); 413 is marked `too_large`, so delivery first sends
a single refused turn again with its content cut (see tailerd/shrink.py). Anything else
(network errors, 5xx, 429, and also 401/403/404, which say the endpoint or credentials are wrong
rather than the turn): retried with backoff, reading paused, until fixed.
"""

from __future__ import annotations

import gzip
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

from tailerd import __version__
from tailerd.domain import Delivered, Outcome, Rejected, Retry
from tailerd.errors import ConfigError

_REFUSES_PAYLOAD = frozenset({400, 413, 415, 422})
_TOO_LARGE = 413  # Payload Too Large: the same turn may pass with its content cut


def endpoint_from_env(explicit: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The traces URL, by the OTLP exporter conventions (a signal-specific URL is used as is)."""
    if explicit:
        url = explicit
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    else:
        raise ConfigError(
            "sink otlp needs an endpoint: --otlp-endpoint URL or OTEL_EXPORTER_OTLP_ENDPOINT"
        )
    try:
        parsed = urllib.parse.urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError on a malformed host or port
    except ValueError as exc:
        raise ConfigError(f"OTLP endpoint is not a valid URL: {url!r} ({exc})") from None
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ConfigError(f"OTLP endpoint is not an http(s) URL: {url!r}")
    return url


def headers_from_env(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: `k1=v1,k2=v2`, values URL-encoded."""
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers


class OtlpSink:
    name = "otlp"

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compress: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"tailerd/{__version__}",
            **(headers or {}),
        }
        self._timeout = timeout
        self._compress = compress

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        return bytes(encode_spans(spans).SerializeToString())

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        return self.post(self.encode(spans))

    def post(self, body: bytes) -> Outcome:
        headers = dict(self._headers)
        if self._compress:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        # The URL scheme is checked (http/https) in endpoint_from_env.
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - URL scheme checked in endpoint_from_env
                response.read()
        except urllib.error.HTTPError as exc:
            detail = _short(exc.read())
            reason = f"HTTP {exc.code} from {self.endpoint}{': ' + detail if detail else ''}"
            if exc.code in _REFUSES_PAYLOAD:
                return Rejected(reason, too_large=exc.code == _TOO_LARGE)
            return Retry(reason)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return Retry(f"{self.endpoint}: {getattr(exc, 'reason', exc)}")
        return Delivered()

    def close(self) -> None:
        return None


def _short(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())
