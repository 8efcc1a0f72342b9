"""`weave`: W&B Weave's Agents view, through its OTLP endpoint.

Routing and credentials the way W&B users already have them: the API key from WANDB_API_KEY or
the netrc entry `wandb login` writes; the project from --project or WANDB_ENTITY/WANDB_PROJECT;
the endpoint from the installed weave (it honours WF_TRACE_SERVER_URL and WANDB_BASE_URL for
dedicated and self-managed installs). The endpoint takes protobuf only, authenticates with
`Authorization: Basic api:<key>`, and drops spans it cannot route to a project: tailerd sends
both the `project_id` header weave itself uses and the `wandb.entity`/`wandb.project` resource
attributes. Delivery is tailerd's own (see sinks/otlp.py), so every turn's outcome is known; a
turn refused as too large (HTTP 413, which W&B answers above its request size limit) is sent
again with its content cut (tailerd/shrink.py), so its structure, timing and tokens arrive.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import ReadableSpan

from tailerd.domain import Outcome, Rejected, Retry
from tailerd.errors import ConfigError
from tailerd.sinks.otlp import OtlpSink

_AUTH_FAILURES = ("HTTP 401", "HTTP 403")


def resolve_project(explicit: str | None, env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    value = explicit or ""
    if not value and env.get("WANDB_ENTITY") and env.get("WANDB_PROJECT"):
        value = f"{env['WANDB_ENTITY']}/{env['WANDB_PROJECT']}"
    entity, _, project = value.partition("/")
    if not entity or not project or "/" in project:
        raise ConfigError(
            "sink weave needs a project: --project ENTITY/PROJECT or WANDB_ENTITY and WANDB_PROJECT"
        )
    return entity, project


def resolve_api_key() -> str:
    from weave.trace import env as weave_env

    try:
        key = weave_env.weave_wandb_api_key()
    except Exception as exc:
        raise ConfigError(f"cannot read W&B credentials: {exc}") from None
    if not key:
        raise ConfigError(
            "sink weave needs W&B credentials: set WANDB_API_KEY or run `wandb login`"
        )
    return str(key)


def resolve_endpoint() -> str:
    from weave.trace.urls import otel_traces_endpoint

    return str(otel_traces_endpoint())


class WeaveSink:
    name = "weave"

    def __init__(
        self, endpoint: str, api_key: str, entity: str, project: str, timeout: float = 10.0
    ) -> None:
        basic = base64.b64encode(f"api:{api_key}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "project_id": f"{entity}/{project}"}
        self._http = OtlpSink(endpoint, headers, timeout=timeout)
        self.endpoint = endpoint
        self._routing = (("wandb.entity", entity), ("wandb.project", project))

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        request = encode_spans(spans)
        for resource_spans in request.resource_spans:
            for key, value in self._routing:
                resource_spans.resource.attributes.append(
                    KeyValue(key=key, value=AnyValue(string_value=value))
                )
        return bytes(request.SerializeToString())

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        return self._http.post(self.encode(spans))

    def check_credentials(self) -> None:
        """An empty export: a 401/403 now is a clear error at start, not a silent no-op later."""
        outcome = self._http.post(self.encode([]))
        reason = outcome.reason if isinstance(outcome, (Retry, Rejected)) else ""
        if reason.startswith(_AUTH_FAILURES):
            raise ConfigError(f"W&B rejected the credentials: {reason}")

    def close(self) -> None:
        return None
