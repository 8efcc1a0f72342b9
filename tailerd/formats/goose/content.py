"""One goose `messages` row: its `content_json` and `metadata_json` read into plain values.

Shapes (block/goose `crates/goose/src/conversation/message.rs` and
`conversation/tool_result_serde.rs`, read at commit 6416fe74f076aa5779e877ef2161ec6826b27d08):
`content_json` is the serde JSON of `Vec<MessageContent>`, each item tagged by `type`
(camelCase): `text` {text}, `image` {data, mimeType}, `toolRequest` {id, toolCall}, `toolResponse`
{id, toolResult}, `thinking` {thinking, signature}, `redactedThinking` {data},
`toolConfirmationRequest`, `actionRequired`, `frontendToolRequest` {id, toolCall},
`systemNotification` {notificationType, msg}, `jsonRenderSpec` (and, from older sessions,
`reasoning` {text}, which goose now reads as thinking). `toolCall` and `toolResult` are
`{"status": "success", "value": ...}` or `{"status": "error", "error": "<text>"}`; a call's value
is MCP `CallToolRequestParams` {name, arguments}, a result's value MCP `CallToolResult`
{content: [{type: "text", text}, ...], isError} (or, from older sessions, the content list
itself). `metadata_json` is `MessageMetadata` {userVisible, agentVisible} (both default true),
later with `inference` {provider, requestedModel, resolvedModel} on the model's messages
(`conversation/message/mod.rs` InferenceMetadata, commit 865e4a030a67eb0c51869874b9c758cb1eb10595).
Every value is read defensively: a value of another type reads as empty, never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tailerd.formats.base import json_text
from tailerd.formats.json_values import as_dict, as_str

PROMPT_KINDS = frozenset({"text", "image"})  # what a person's message holds
REQUEST_KINDS = ("toolRequest", "frontendToolRequest")


@dataclass(frozen=True, slots=True)
class Row:
    """One message: `key` is goose's own message id (`messages.message_id` from schema 7 on,
    else `msg_<session>_<row id>`, the value goose's migration 7 gives older rows), `index` its
    position in the session, `created` epoch seconds (`created_timestamp`)."""

    key: str
    index: int
    role: str
    items: tuple[dict[str, Any], ...]
    created: float
    user_visible: bool
    model: str = ""  # metadata.inference: resolvedModel, else requestedModel
    provider: str = ""

    def reasoning(self) -> str:
        """Thinking text (`thinking` items, and older sessions' `reasoning` items)."""
        return "\n".join(
            t for t in (self.text("thinking", "thinking"), self.text("reasoning")) if t
        )

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("type") == kind]

    def text(self, kind: str = "text", key: str = "text") -> str:
        return "\n".join(t for item in self.of(kind) if (t := as_str(item.get(key))))

    def requests(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("type") in REQUEST_KINDS]

    @property
    def is_prompt(self) -> bool:
        """A message a person wrote: role user, shown to the user, holding text or an image and
        no tool response (goose sends tool responses back as user-role messages)."""
        kinds = {as_str(item.get("type")) for item in self.items}
        return (
            self.role == "user"
            and self.user_visible
            and bool(kinds & PROMPT_KINDS)
            and "toolResponse" not in kinds
        )

    @property
    def is_call(self) -> bool:
        """An assistant message from the model (not only a notice goose itself wrote)."""
        kinds = {as_str(item.get("type")) for item in self.items}
        return self.role == "assistant" and bool(kinds - {"systemNotification", ""})


def content_items(raw: object) -> tuple[dict[str, Any], ...]:
    """The `content_json` list's objects; () for anything that is not a JSON list."""
    parsed = _json(raw)
    return tuple(i for i in parsed if isinstance(i, dict)) if isinstance(parsed, list) else ()


def user_visible(raw: object) -> bool:
    """`metadata_json.userVisible` (true when absent or unreadable, goose's default)."""
    value = as_dict(_json(raw)).get("userVisible")
    return value if isinstance(value, bool) else True


def inference_of(raw: object) -> tuple[str, str]:
    """`metadata_json.inference`'s (model, provider): the resolved model, else the requested
    one; ("", "") when goose recorded none (before late 2025 it never did)."""
    inference = as_dict(as_dict(_json(raw)).get("inference"))
    model = as_str(inference.get("resolvedModel")) or as_str(inference.get("requestedModel"))
    return model, as_str(inference.get("provider"))


def call_of(request: dict[str, Any]) -> tuple[str, str, str]:
    """A `toolRequest`'s (name, arguments as JSON text, error text): an unparseable call goose
    recorded as `{"status": "error"}` has no name and its error."""
    call = as_dict(request.get("toolCall"))
    if as_str(call.get("status")) == "error":
        return "", "", as_str(call.get("error")) or "invalid tool call"
    value = as_dict(call.get("value"))
    return as_str(value.get("name")), json_text(value.get("arguments")), ""


def result_of(response: dict[str, Any]) -> tuple[str, bool]:
    """A `toolResponse`'s (result text, is_error): the text items of its CallToolResult joined
    by newlines (other items as JSON), or the error text."""
    result = as_dict(response.get("toolResult"))
    if as_str(result.get("status")) == "error":
        return as_str(result.get("error")), True
    value = result.get("value")
    content = value if isinstance(value, list) else as_dict(value).get("content")
    parts = []
    for item in content if isinstance(content, list) else ():
        if isinstance(item, dict) and as_str(item.get("type")) == "text":
            parts.append(as_str(item.get("text")))
        elif item is not None:
            parts.append(json_text(item))
    is_error = isinstance(value, dict) and value.get("isError") is True
    return "\n".join(parts), is_error


def model_of(raw: object) -> str:
    """`sessions.model_config_json.model_name` (schema 6 on: goose's ModelConfig), or ""."""
    return as_str(as_dict(_json(raw)).get("model_name"))


def _json(raw: object) -> Any:
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
