"""Turn -> OpenTelemetry spans, through the installed weave's own `log_turn` / `log_conversation`.

tailerd owns the TracerProvider: weave only creates spans, a capturing processor collects them
synchronously, and the sinks deliver them, so tailerd knows exactly what was acknowledged.
Ids are deterministic: a turn's trace id and span ids are hashes of its stable key, so a turn
re-sent after a crash, or re-imported on another host, carries exactly the same ids.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from tailerd import __version__, pricing
from tailerd.domain import LLMCall, Message, SpanCall, SubAgentCall, ToolCall, Turn
from tailerd.edges import host

_NANOS = 1_000_000_000


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")
    return value or 1  # 0 is OTel's invalid id


@dataclass(slots=True)
class _Emission:
    """Ids and extra attributes for the turns being emitted on this thread, in order."""

    turns: list[Turn]
    extras: list[list[Mapping[str, Any]]]  # per turn: attributes for span 1, 2, ... in order
    index: int = -1
    count: int = 0
    namespace: str = "span"
    spans: list[ReadableSpan] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.turns[self.index].key


_current: contextvars.ContextVar[_Emission | None] = contextvars.ContextVar(
    "tailerd_emission", default=None
)


class TurnKeyedIdGenerator(IdGenerator):
    """Random ids outside an emission. Inside, every new trace is the next turn's, and its span ids
    count in creation order — deterministic because weave creates them synchronously in order."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_trace_id(self) -> int:
        em = _current.get()
        if em is None:
            return self._random.generate_trace_id()
        em.index += 1
        em.count = 0
        return _digest(f"{em.key}|trace", 16)

    def generate_span_id(self) -> int:
        em = _current.get()
        if em is None:
            return self._random.generate_span_id()
        em.count += 1
        return _digest(f"{em.key}|{em.namespace}|{em.count}", 8)


class _CapturingProcessor(SpanProcessor):
    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        em = _current.get()
        if em is None or em.namespace != "span":
            return
        extras = em.extras[em.index]
        if em.count - 1 < len(extras):
            span.set_attributes(dict(extras[em.count - 1]))

    def on_end(self, span: ReadableSpan) -> None:
        em = _current.get()
        if em is not None:
            em.spans.append(span)


class _CachingTracerProvider(TracerProvider):
    """weave asks for a tracer for every span it emits; the SDK then builds two scope objects and
    re-registers a warnings filter (about a tenth of a millisecond a span). Same tracer, cached
    by the arguments."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cached: dict[tuple[Any, ...], trace.Tracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        try:
            scope = None if attributes is None else tuple(sorted(dict(attributes).items()))
            key = (instrumenting_module_name, instrumenting_library_version, schema_url, scope)
            hash(key)
        except TypeError:  # unhashable attribute values: nothing to cache by
            return super().get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        tracer = self._cached.get(key)
        if tracer is None:
            tracer = self._cached[key] = super().get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        return tracer


_provider: TracerProvider | None = None


def install_provider() -> TracerProvider:
    """Install tailerd's recording TracerProvider once per process; importing weave after this."""
    global _provider  # noqa: PLW0603 - the OTel global provider is process-wide by design
    if _provider is None:
        os.environ["WANDB_ERROR_REPORTING"] = "false"  # no phoning home at exit
        os.environ.pop("WEAVE_DISABLED", None)  # would turn log_turn into a silent no-op
        _provider = _CachingTracerProvider(
            # host.name tells hosts apart when a fleet feeds one Collector.
            resource=Resource.create(
                {
                    "service.name": "tailerd",
                    "service.version": __version__,
                    "host.name": host.name(),
                }
            ),
            id_generator=TurnKeyedIdGenerator(),
        )
        _provider.add_span_processor(_CapturingProcessor())
        trace.set_tracer_provider(_provider)
    return _provider


def _attrs(value: Any) -> dict[str, Any]:
    """Flatten extra attributes to OTel-legal scalars (anything else becomes JSON text)."""
    import orjson

    out: dict[str, Any] = {}
    for k, v in dict(value).items():
        if isinstance(v, (str, bool, int, float)):
            out[k] = v
        elif v is not None:
            out[k] = orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return out


class Emitter:
    """Builds weave objects from turns and returns the spans weave made for them."""

    def __init__(self, include_content: bool = True) -> None:
        install_provider()
        import weave

        self._weave: Any = weave  # called with version-dependent keywords (session vs conversation)
        self._include_content = include_content
        params = inspect.signature(weave.log_turn).parameters
        self._id_kw = "conversation_id" if "conversation_id" in params else "session_id"

    def emit(self, turn: Turn) -> list[ReadableSpan]:
        """One turn via `log_turn`; its spans, root first."""
        with self._emission([turn]) as em:
            self._weave.log_turn(
                **{self._id_kw: turn.session_id},
                **self._turn_fields(turn),
                include_content=self._include_content,
            )
        return self._with_nested(em, [turn])

    def emit_session(self, turns: Sequence[Turn]) -> list[ReadableSpan]:
        """A whole session via `log_conversation` (or `log_session`); the same ids as `emit`."""
        if not turns:
            return []
        log = getattr(self._weave, "log_conversation", None)
        id_kw = "conversation_id"
        if log is None:
            log, id_kw = self._weave.log_session, "session_id"
        turn_cls = self._weave.conversation.Turn
        with self._emission(list(turns)) as em:
            log(
                **{id_kw: turns[0].session_id},
                conversation_name=turns[0].session_name,
                turns=[turn_cls(**self._turn_fields(t, for_model=True)) for t in turns],
                include_content=self._include_content,
            )
        return self._with_nested(em, list(turns))

    @contextmanager
    def _emission(self, turns: list[Turn]) -> Iterator[_Emission]:
        em = _Emission(turns, [self._extras(t) for t in turns])
        token = _current.set(em)
        try:
            yield em
        finally:
            _current.reset(token)

    def _extras(self, turn: Turn) -> list[Mapping[str, Any]]:
        root = _attrs(turn.attributes)
        if turn.interrupted:
            root["tailerd.turn.interrupted"] = True
        return [root, *(_span_extras(s, turn) for s in turn.spans)]

    def _turn_fields(self, turn: Turn, for_model: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "agent_name": turn.agent_name,
            "model": turn.model,
            "messages": [self._message(m) for m in turn.messages],
            "output_messages": [self._message(m) for m in turn.output_messages],
            "spans": [self._span(s, turn) for s in turn.spans],
            "started_at": turn.started_at,
            "ended_at": turn.ended_at,
        }
        if not for_model:
            fields["conversation_name"] = turn.session_name
        return fields

    def _message(self, m: Message) -> Any:
        role = m.role if m.role in {"user", "assistant", "system", "tool"} else "user"
        return self._weave.Message(
            role=role, content=m.content, tool_call_id=m.tool_call_id, tool_name=m.tool_name
        )

    def _span(self, s: SpanCall, turn: Turn) -> Any:
        w = self._weave
        start = s.started_at or turn.started_at
        end = s.ended_at or start
        if isinstance(s, LLMCall):
            u = s.usage
            return w.LLM(
                model=s.model,
                provider_name=s.provider_name,
                input_messages=[self._message(m) for m in s.input_messages],
                output_messages=[self._message(m) for m in s.output_messages],
                usage=w.Usage(
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    total_tokens=u.total_tokens,
                    reasoning_tokens=u.reasoning_tokens,
                    cache_creation_input_tokens=u.cache_creation_input_tokens,
                    cache_read_input_tokens=u.cache_read_input_tokens,
                ),
                reasoning=w.conversation.Reasoning(content=s.reasoning),
                response_id=s.response_id,
                finish_reasons=list(s.finish_reasons),
                started_at=start,
                ended_at=end,
            )
        if isinstance(s, ToolCall):
            return w.Tool(
                name=s.name,
                arguments=s.arguments,
                result=s.result,
                tool_call_id=s.tool_call_id,
                started_at=start,
                ended_at=end,
            )
        return w.SubAgent(
            name=s.name,
            model=s.model,
            agent_id=s.agent_id,
            input_messages=[self._message(m) for m in s.input_messages],
            output_messages=[self._message(m) for m in s.output_messages],
            tool_name=s.tool_name,
            tool_call_id=s.tool_call_id,
            started_at=start,
            ended_at=end,
        )

    def _with_nested(self, em: _Emission, turns: list[Turn]) -> list[ReadableSpan]:
        """`log_turn` emits only flat children: emit each sub-agent's own spans under it."""
        spans = list(em.spans)
        roots = [i for i, s in enumerate(spans) if s.parent is None]
        for turn, root_at in zip(turns, roots, strict=False):
            children = spans[root_at + 1 : root_at + 1 + len(turn.spans)]
            for call, span in zip(turn.spans, children, strict=False):
                if isinstance(call, SubAgentCall) and call.spans:
                    spans.extend(self._nested(turn, call, span))
        return spans

    def _nested(
        self, turn: Turn, parent_call: SubAgentCall, parent: ReadableSpan
    ) -> list[ReadableSpan]:
        from weave.conversation import conversation as wc

        em = _Emission([turn], [[]], index=0, namespace=f"nested|{parent.context.span_id:016x}")
        token = _current.set(em)
        try:
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent.context))
            for call in parent_call.spans:
                name, attrs = wc._attrs_for_span(
                    self._span(call, turn),
                    conversation_id=turn.session_id,
                    conversation_name=turn.session_name,
                    include_content=self._include_content,
                )
                attrs.update(_span_extras(call, turn))
                wc._emit_span_now(
                    name,
                    parent_ctx=ctx,
                    start_time_ns=_ns(call.started_at or turn.started_at),
                    end_time_ns=_ns(call.ended_at or call.started_at or turn.started_at),
                    attrs=attrs,
                )
        finally:
            _current.reset(token)
        nested = list(em.spans)
        for call, span in zip(parent_call.spans, list(nested), strict=False):
            if isinstance(call, SubAgentCall) and call.spans:
                nested.extend(self._nested(turn, call, span))
        return nested


def _span_extras(s: SpanCall, turn: Turn) -> dict[str, Any]:
    """A span's own attributes plus what tailerd adds: the cost contract on a chat span
    (`gen_ai.usage.cost` in USD, or `tailerd.cost.unpriced`), `error.type` on a failed tool."""
    extras = _attrs(s.attributes)
    if isinstance(s, ToolCall) and s.is_error:
        extras["error.type"] = "tool_error"
    elif isinstance(s, LLMCall) and pricing.COST not in extras:  # the agent's own bill wins
        if _usage_recorded(s, turn):
            when = s.started_at or turn.started_at
            hour = s.attributes.get(pricing.CACHE_WRITE_1H, 0)
            hour = hour if isinstance(hour, int) and not isinstance(hour, bool) else 0
            extras.update(pricing.cost_attributes(s.provider_name, s.model, s.usage, when, hour))
        else:  # the agent wrote no token counts: the cost is unknown, not 0
            extras[pricing.UNPRICED] = True
    return extras


def _usage_recorded(s: LLMCall, turn: Turn) -> bool:
    """False where the format said the agent records no usage (`tailerd.usage.recorded`)."""
    key = "tailerd.usage.recorded"
    return s.attributes.get(key, turn.attributes.get(key, True)) is not False


def _ns(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * _NANOS)
