"""Walk every string of a Turn through a function, rebuilding only the parts that changed.

``walk_turn(turn, content, metadata)`` passes each content string (message content, tool
arguments and results, reasoning, at every depth of nested sub-agent spans) to ``content`` and
each metadata string (``session_name``, string values anywhere inside ``attributes`` mappings,
lists and tuples) to ``metadata``, always in the same order. A part whose strings all come back
as the same objects is returned as is: a turn with nothing to redact is returned unchanged,
without copying a single dataclass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from tailerd.domain import LLMCall, Message, SpanCall, ToolCall, Turn

StringMap = Callable[[str], str]


def turn_strings(turn: Turn, *, content: bool = True) -> list[str]:
    """The strings `walk_turn` visits, in its order (content ones only if `content`).

    A read-only walk, cheaper than ``walk_turn`` with a collecting function: no identity checks.
    """
    out: list[str] = [turn.session_name]
    if content:
        out.extend(m.content for m in turn.messages)
        out.extend(m.content for m in turn.output_messages)
    _span_strings(turn.spans, content, out)
    if turn.attributes:
        _value_strings(turn.attributes, out)
    return out


def _span_strings(spans: tuple[SpanCall, ...], content: bool, out: list[str]) -> None:
    for span in spans:
        if isinstance(span, ToolCall):
            if content:
                out.append(span.arguments)
                out.append(span.result)
        else:
            if content:
                out.extend(m.content for m in span.input_messages)
                out.extend(m.content for m in span.output_messages)
                if isinstance(span, LLMCall):
                    out.append(span.reasoning)
            if not isinstance(span, LLMCall):
                _span_strings(span.spans, content, out)
        if span.attributes:
            _value_strings(span.attributes, out)


def _value_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif type(value) in _LEAVES:
        return
    elif isinstance(value, Mapping):
        for v in value.values():
            _value_strings(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _value_strings(v, out)


def walk_turn(turn: Turn, content: StringMap, metadata: StringMap) -> Turn:
    """`turn` with its strings mapped; the same object when every string came back unchanged."""
    session_name = metadata(turn.session_name)
    messages = _messages(turn.messages, content)
    output_messages = _messages(turn.output_messages, content)
    spans = _spans(turn.spans, content, metadata)
    attributes = _attributes(turn.attributes, metadata)
    if (
        session_name is turn.session_name
        and messages is turn.messages
        and output_messages is turn.output_messages
        and spans is turn.spans
        and attributes is turn.attributes
    ):
        return turn
    return replace(
        turn,
        session_name=session_name,
        messages=messages,
        output_messages=output_messages,
        spans=spans,
        attributes=attributes,
    )


def _messages(messages: tuple[Message, ...], content: StringMap) -> tuple[Message, ...]:
    changed = False
    out: list[Message] = []
    for message in messages:
        text = content(message.content)
        if text is not message.content:
            changed = True
            message = replace(message, content=text)  # noqa: PLW2901 - the rebuilt message
        out.append(message)
    return tuple(out) if changed else messages


def _spans(
    spans: tuple[SpanCall, ...], content: StringMap, metadata: StringMap
) -> tuple[SpanCall, ...]:
    out = [_span(span, content, metadata) for span in spans]
    if all(new is old for new, old in zip(out, spans, strict=True)):
        return spans
    return tuple(out)


def _span(span: SpanCall, content: StringMap, metadata: StringMap) -> SpanCall:
    if isinstance(span, ToolCall):
        arguments, result = content(span.arguments), content(span.result)
        attributes = _attributes(span.attributes, metadata)
        if arguments is span.arguments and result is span.result and attributes is span.attributes:
            return span
        return replace(span, arguments=arguments, result=result, attributes=attributes)
    inputs = _messages(span.input_messages, content)
    outputs = _messages(span.output_messages, content)
    if isinstance(span, LLMCall):
        reasoning = content(span.reasoning)
        attributes = _attributes(span.attributes, metadata)
        if (
            inputs is span.input_messages
            and outputs is span.output_messages
            and reasoning is span.reasoning
            and attributes is span.attributes
        ):
            return span
        return replace(
            span,
            input_messages=inputs,
            output_messages=outputs,
            reasoning=reasoning,
            attributes=attributes,
        )
    nested = _spans(span.spans, content, metadata)
    attributes = _attributes(span.attributes, metadata)
    if (
        inputs is span.input_messages
        and outputs is span.output_messages
        and nested is span.spans
        and attributes is span.attributes
    ):
        return span
    return replace(
        span, input_messages=inputs, output_messages=outputs, spans=nested, attributes=attributes
    )


def _attributes(attributes: Mapping[str, Any], metadata: StringMap) -> Mapping[str, Any]:
    if not attributes:
        return attributes
    mapped = _value(attributes, metadata)
    return attributes if mapped is attributes else dict(mapped)


_LEAVES = (int, float, bool, type(None))


def _value(value: Any, metadata: StringMap) -> Any:
    """Strings mapped inside Mappings (rebuilt as dicts), lists and tuples; others as they are."""
    if isinstance(value, str):
        return metadata(value)
    if type(value) in _LEAVES:
        return value  # before the Mapping check: isinstance against an ABC is slow
    if isinstance(value, Mapping):
        items = {k: _value(v, metadata) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if isinstance(value, (list, tuple)):
        values = [_value(v, metadata) for v in value]
        if all(n is o for n, o in zip(values, value, strict=True)):
            return value
        return values if isinstance(value, list) else tuple(values)
    return value
