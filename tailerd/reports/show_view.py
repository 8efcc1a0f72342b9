"""`tailerd show SESSION`: each turn with its prompt, LLM calls (model, tokens, cost), tool
calls (full arguments, wrapped; results capped with a visible marker), error flags, durations,
nested sub-agents and per-turn totals.

The view is a list of `Line`s (indent, label, text, style), wrapped to the terminal's width (or
100 columns when piped) with the text's continuation lines under its first; a terminal gets
colours through rich, a pipe plain text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from rich.console import Console
from rich.text import Text

from tailerd.reports.sessions_view import cost_text
from tailerd.usage_totals import COST_DIGITS

RESULT_CAP = 600  # characters of a tool result shown; the rest is in `--json`
PROMPT_CAP = 4000  # characters of a prompt or answer shown
PIPE_WIDTH = 100


@dataclass
class Totals:
    """A turn's sums over its spans, nested sub-agents included."""

    llm_calls: int = 0
    tool_calls: int = 0
    errors: int = 0
    input_tokens: int = 0  # Weave's: with cache reads and writes
    cache_read: int = 0
    cache_write: int = 0
    output_tokens: int = 0
    cost: float | None = None
    unpriced: int = 0
    input_unrecorded: int = 0  # priced calls with no input tokens: `cost` is a lower bound
    models: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`show --json` adds it to each turn as `totals`)."""
        return {
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "tool_errors": self.errors,
            "input_tokens": self.input_tokens,
            "uncached_input_tokens": max(0, self.input_tokens - self.cache_read - self.cache_write),
            "cache_read_tokens": self.cache_read,
            "cache_write_tokens": self.cache_write,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost is None else round(self.cost, COST_DIGITS),
            "unpriced_calls": self.unpriced,
            "input_unrecorded_calls": self.input_unrecorded,
            "models": sorted(self.models),
        }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def totals(span: dict[str, Any], into: Totals | None = None) -> Totals:
    """Sum the LLM and tool spans under `span` (recursively)."""
    t = into or Totals()
    for child in span["children"]:
        a = child["attributes"]
        if child["operation"] == "chat":
            # a synthetic span of session totals (Copilot, goose, Crush) is no LLM call
            t.llm_calls += 0 if a.get("tailerd.usage.session_totals") is True else 1
            t.input_tokens += _int(a.get("gen_ai.usage.input_tokens"))
            t.cache_read += _int(a.get("gen_ai.usage.cache_read.input_tokens"))
            t.cache_write += _int(a.get("gen_ai.usage.cache_write.input_tokens"))
            t.output_tokens += _int(a.get("gen_ai.usage.output_tokens"))
            cost = a.get("gen_ai.usage.cost")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                t.cost = (t.cost or 0.0) + float(cost)
                t.input_unrecorded += 1 if a.get("tailerd.usage.input_recorded") is False else 0
            recorded = a.get("tailerd.usage.recorded") is not False  # else: lacks no price
            if a.get("tailerd.cost.unpriced") is True and recorded:
                t.unpriced += 1
            if isinstance(a.get("gen_ai.request.model"), str):
                t.models.add(a["gen_ai.request.model"])
        elif child["operation"] == "execute_tool":
            t.tool_calls += 1
            t.errors += 1 if _is_error(a) else 0
        totals(child, t)
    return t


def _is_error(a: dict[str, Any]) -> bool:
    return bool(a.get("error.type")) or a.get("tailerd.tool.is_error") is True


@dataclass(frozen=True)
class Line:
    indent: int
    label: str
    text: str = ""
    style: str = ""


def _texts(messages_json: object) -> list[str]:
    """The text parts of an OTel GenAI messages attribute (a JSON string)."""
    if not isinstance(messages_json, str):
        return []
    try:
        messages = orjson.loads(messages_json)
    except orjson.JSONDecodeError:
        return [messages_json]
    out = []
    for m in messages if isinstance(messages, list) else []:
        for part in m.get("parts", []) if isinstance(m, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("content"), str) and part["content"]:
                out.append(part["content"])
    return out


def cap(text: str, limit: int) -> str:
    """`text` up to `limit` characters, then a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" …[{len(text) - limit:,} more chars; --json shows all]"


def _seconds(span: dict[str, Any]) -> str:
    d = span.get("duration_s")
    if d is None:
        return ""
    return f"{d * 1000:.0f} ms" if d < 1 else f"{d:.1f} s"


def _tokens_text(a: dict[str, Any]) -> str:
    if a.get("tailerd.usage.recorded") is False:  # the agent keeps no token counts (Droid...)
        return "usage not recorded"
    tokens_in = _int(a.get("gen_ai.usage.input_tokens"))
    read = _int(a.get("gen_ai.usage.cache_read.input_tokens"))
    write = _int(a.get("gen_ai.usage.cache_write.input_tokens"))
    no_input = a.get("tailerd.usage.input_recorded") is False  # Copilot CLI: output only
    text = "in not recorded" if no_input else f"in {max(0, tokens_in - read - write)}"
    if read or write:
        text += f" (+cache read {read}, write {write})"
    text += f", out {_int(a.get('gen_ai.usage.output_tokens'))}"
    cost = a.get("gen_ai.usage.cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        text += f", {'≥' if no_input else ''}{cost_text(float(cost), 0)}"
    elif a.get("tailerd.cost.unpriced") is True:
        text += ", unpriced"
    return text


def _span_lines(span: dict[str, Any], indent: int) -> Iterator[Line]:
    a = span["attributes"]
    took = _seconds(span)
    when = f"  [{took}]" if took else ""
    if span["operation"] == "chat":
        model = a.get("gen_ai.request.model")
        if isinstance(model, str) and model:
            yield Line(indent, "llm", f"{model}: {_tokens_text(a)}{when}", "cyan")
        else:
            yield Line(indent, "llm (model not recorded)", f"{_tokens_text(a)}{when}", "cyan")
    elif span["operation"] == "execute_tool":
        error = "  ERROR" if _is_error(a) else ""
        name = a.get("gen_ai.tool.name") or span["name"]
        yield Line(indent, "tool", f"{name}{when}{error}", "red" if error else "yellow")
        arguments = a.get("gen_ai.tool.call.arguments")
        if arguments:
            yield Line(indent + 2, "args", str(arguments))
        result = a.get("gen_ai.tool.call.result")
        if result:
            yield Line(indent + 2, "result", cap(str(result), RESULT_CAP), "dim")
    elif span["operation"] == "invoke_agent":
        name = a.get("gen_ai.agent.name") or span["name"]
        yield Line(indent, "sub-agent", f"{name}{when}", "magenta")
        for prompt in _texts(a.get("gen_ai.input.messages"))[:1]:
            yield Line(indent + 2, "task", cap(prompt, PROMPT_CAP))
        for child in span["children"]:
            yield from _span_lines(child, indent + 2)
        t = totals(span)
        yield Line(indent + 2, "sub-agent total", _totals_text(t), "magenta")
    else:
        yield Line(indent, span["operation"] or "span", f"{span['name']}{when}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _totals_text(t: Totals) -> str:
    uncached = max(0, t.input_tokens - t.cache_read - t.cache_write)
    return (
        f"{_n(t.llm_calls, 'LLM call')}, {_n(t.tool_calls, 'tool call')} ({t.errors} failed), "
        f"in {uncached}, cache read {t.cache_read}, cache write {t.cache_write}, "
        f"out {t.output_tokens}, cost {'≥' if t.input_unrecorded else ''}"
        f"{cost_text(t.cost, t.unpriced)}"
        + (
            f" ({_n(t.input_unrecorded, 'call')} recorded no input tokens)"
            if t.input_unrecorded
            else ""
        )
    )


def turn_lines(turns: list[dict[str, Any]]) -> Iterator[Line]:
    """Every line of the view, turn after turn."""
    for n, turn in enumerate(turns, 1):
        a = turn["attributes"]
        flags = "  INTERRUPTED" if a.get("tailerd.turn.interrupted") is True else ""
        took = _seconds(turn)
        header = f"{turn['start']}" + (f"  [{took}]" if took else "") + flags
        yield Line(0, f"turn {n}", header, "bold")
        for prompt in _texts(a.get("gen_ai.input.messages")):
            yield Line(2, "user", cap(prompt, PROMPT_CAP), "green")
        for child in turn["children"]:
            yield from _span_lines(child, 2)
        for answer in _texts(a.get("gen_ai.output.messages")):
            yield Line(2, "assistant", cap(answer, PROMPT_CAP), "green")
        yield Line(2, "turn total", _totals_text(totals(turn)), "bold")


def session_header(turns: list[dict[str, Any]], session_id: str) -> Line:
    first = turns[0]["attributes"] if turns else {}
    title = first.get("gen_ai.conversation.name")
    agent = first.get("gen_ai.agent.name") or "-"
    text = f"{session_id}  {agent}  {len(turns)} turns" + (f"  {title!r}" if title else "")
    return Line(0, "session", text, "bold")


def draw(turns: list[dict[str, Any]], session_id: str, out: IO[str], terminal: bool) -> None:
    """Print the view: styled and wrapped to the terminal, or plain at 100 columns."""
    lines = [session_header(turns, session_id), *turn_lines(turns)]
    console = Console(file=out) if terminal else None
    width = console.width if console else PIPE_WIDTH
    for line in lines:
        head = " " * line.indent + f"{line.label}: "
        wrapped = _wrap(line.text, head, width)
        if console is None:
            out.write(wrapped + "\n")
        else:
            text = Text(wrapped, style=line.style)
            text.stylize("bold", 0, len(head))
            console.print(text, soft_wrap=True, highlight=False)


def _wrap(text: str, head: str, width: int) -> str:
    """`head` + text, every line of the text wrapped (never cut) under the first."""
    hang = " " * min(len(head), max(0, width // 2))
    out: list[str] = []
    for i, para in enumerate(text.splitlines() or [""]):
        first = head if i == 0 else hang
        out.extend(
            textwrap.wrap(
                para,
                width=max(width, len(first) + 20),
                initial_indent=first,
                subsequent_indent=hang,
                break_long_words=True,
                break_on_hyphens=False,
                drop_whitespace=True,
            )
            or [first.rstrip()]
        )
    return "\n".join(out)
