"""The Copilot CLI parser: `events.jsonl` events in, finished turns out.

A turn is one user interaction: a `user.message` and the model rounds that answer it
(`assistant.turn_start` .. `assistant.turn_end`, each with one `assistant.message` and the tool
executions it requested). A `user.message` written while the agent is still working (a
steering message typed mid-turn: it arrives between rounds and carries its own interactionId)
joins the open turn. The turn finishes at the `assistant.turn_end` of a round whose message
requested no tool, or after `session.task_complete`; at `abort` (interrupted); at
`session.shutdown` or `session.resume` (interrupted unless it looked finished); and after quiet
time: `idle_close` (30 s) once the final message is written or after a `session.error` the
agent did not go on from (interrupted; the next prompt then starts a new turn),
`abandon_close` (6 h, interrupted) while the agent may still be waiting for a tool or a
permission prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tailerd.domain import DeadLetter, Line, LLMCall, Message, Turn
from tailerd.formats.base import Source, decode_object
from tailerd.formats.copilot_cli.build import finished_turn, session_turn
from tailerd.formats.copilot_cli.events import (
    Record,
    Tokens,
    ToolState,
    as_dict,
    as_str,
    by_model,
    compaction_span,
    data_of,
    llm_call,
    prompt_text,
    session_totals,
    time_of,
    tool_requests,
    tool_result,
    tool_state,
    usage_of,
)
from tailerd.formats.copilot_cli.state import IGNORED, Context, OpenTurn

DEFAULT_IDLE_CLOSE = 30.0
DEFAULT_ABANDON_CLOSE = 21600.0
IDENTITY_PREFIX = "copilot:event:"


class CopilotParser:
    def __init__(self, source: Source, context: Mapping[str, Any] | None) -> None:
        self._source = source
        self._idle_close = float(source.options.get("idle_close", DEFAULT_IDLE_CLOSE))
        self._abandon_close = float(source.options.get("abandon_close", DEFAULT_ABANDON_CLOSE))
        self._ctx = Context.from_json(as_dict(as_dict(context).get("context")))
        self._ctx_at_open = self._ctx.copy()
        self._open: OpenTurn | None = None
        self.ignored = 0
        self._unknown: Counter[str] = Counter()  # event types this parser does not know

    # -- the TurnParser protocol --------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        event = decode_object(line)
        if not isinstance(event, dict):
            return [] if event is None else [event]
        kind = event.get("type")
        if not isinstance(kind, str) or not kind:
            return [DeadLetter(line.start, line.end, "Copilot event without a type")]
        out: list[Turn | DeadLetter] = []
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event, line, out)
        elif kind not in IGNORED:
            self._unknown[f"{self._ctx.version or '?'}:{kind}"] += 1
        if self._open is not None:
            self._open.end = max(self._open.end, line.end)
            self._open.ended_at = time_of(event) or self._open.ended_at
            if kind.startswith(("assistant.", "tool.", "subagent.")):
                self._open.stalled = False  # the agent went on after an error
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        turn = self._open
        if turn is None:
            return []
        if (turn.final or turn.stalled) and quiet_for >= self._idle_close:
            turn.interrupted = turn.interrupted or not turn.final
            return [self._close()]
        if quiet_for >= self._abandon_close:
            turn.interrupted = True
            return [self._close()]
        return []

    def pending_from(self) -> int | None:
        return self._open.start if self._open is not None else None

    def open_turns(self) -> list[tuple[int, str]]:
        """The open turn, if any, as (first byte offset, what would close it)."""
        if self._open is None:
            return []
        if self._open.final or self._open.stalled:
            rule = f"assistant.turn_end, the next prompt or {self._idle_close:g} s of quiet"
        else:
            rule = f"a final answer, abort, shutdown or {self._abandon_close:g} s of quiet"
        return [(self._open.start, rule)]

    def unknown_types(self) -> dict[str, int]:
        """Event types met and not understood, as "<copilotVersion>:<type>" -> count."""
        return dict(self._unknown)

    def snapshot(self) -> dict[str, Any]:
        ctx = self._ctx_at_open if self._open is not None else self._ctx
        return {"context": ctx.to_json()}

    # -- session events -----------------------------------------------------------------------

    def _session_start(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        data = data_of(event)
        self._ctx.session_id = self._ctx.session_id or as_str(data.get("sessionId"))
        self._ctx.version = as_str(data.get("copilotVersion")) or self._ctx.version
        self._resume(event, line, out)

    def _resume(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        """A new CLI process on this session (start or `session.resume`): the open turn's
        process is gone, and the next shutdown's totals count from here (they are per process)."""
        if self._open is not None:
            self._open.interrupted = not self._open.final
            out.append(self._close())
        data = data_of(event)
        self._ctx.cwd = as_str(as_dict(data.get("context")).get("cwd")) or self._ctx.cwd
        self._ctx.model = as_str(data.get("selectedModel")) or self._ctx.model
        self._ctx.recorded = {}

    def _model_change(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        self._ctx.model = as_str(data_of(event).get("newModel")) or self._ctx.model

    def _shutdown(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        if self._open is not None:
            self._open.interrupted = not self._open.final
            out.append(self._close())
        data = data_of(event)
        when = time_of(event)
        metrics = by_model(data, self._ctx.model)
        calls = session_totals(metrics, self._ctx.recorded, when)
        self._ctx.recorded = {}
        if not calls:
            return
        attributes: dict[str, Any] = {"tailerd.synthetic": "session_totals"}
        for key in ("shutdownType", "totalPremiumRequests", "totalApiDurationMs"):
            value = data.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                attributes[f"copilot.{key}"] = value
        out.append(
            self._turn(
                key_part=f"session_totals|{as_str(event.get('id')) or line.start}",
                start=line.start,
                end=line.end,
                spans=tuple(calls),
                started_at=when,
                ended_at=when,
                attributes=attributes,
                model=calls[-1].model,
            )
        )

    def _error(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        data = data_of(event)
        if self._open is not None:
            self._open.stalled = event["type"] == "session.error" or self._open.stalled
            kind = as_str(data.get("errorType")) or as_str(data.get("warningType"))
            self._open.notices.append(f"{event['type']}: {kind}: {as_str(data.get('message'))}")

    def _compaction(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        span = compaction_span(data_of(event), self._ctx.model, time_of(event))
        self._record(span.spans[0])  # type: ignore[arg-type]  # compaction_span's one LLMCall
        if self._open is not None:
            self._open.items.append(span)
            return
        out.append(
            self._turn(
                key_part=f"compaction|{as_str(event.get('id')) or line.start}",
                start=line.start,
                end=line.end,
                spans=(span,),
                started_at=span.started_at,
                ended_at=span.ended_at,
                attributes={"tailerd.synthetic": "compaction"},
                model=span.model,
            )
        )

    # -- turn events --------------------------------------------------------------------------

    def _user_message(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        data = data_of(event)
        turn = self._open
        if turn is not None and not turn.final and not turn.stalled:
            turn.messages.append(Message("user", prompt_text(data)))  # steering, mid-turn
        else:
            if turn is not None:
                out.append(self._close())
            turn = self._begin(event, line)
            turn.interaction_id = as_str(data.get("interactionId"))
            turn.messages.append(Message("user", prompt_text(data)))
        if as_str(event.get("id")):
            turn.identities.append(IDENTITY_PREFIX + event["id"])

    def _turn_start(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        data = data_of(event)
        if self._open is None:  # a round with no prompt before it (a continuation)
            self._begin(event, line).interaction_id = as_str(data.get("interactionId"))
        assert self._open is not None
        self._open.final = False
        self._ctx.model = as_str(data.get("model")) or self._ctx.model

    def _assistant_message(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        turn = self._open
        if turn is None:
            self.ignored += 1
            return
        data = data_of(event)
        when = time_of(event)
        call = llm_call(data, self._ctx.model, when)
        self._record(call)
        turn.model = call.model or turn.model
        parent = turn.tools.get(as_str(data.get("parentToolCallId")))
        target = parent.inner if parent is not None else turn.items
        target.append(call)
        requests = tool_requests(data)
        for request in requests:
            state = tool_state(request, when)
            known = turn.tools.get(state.call_id) if state.call_id else None
            if known is not None:  # its execution was written first
                known.name, known.arguments = known.name or state.name, state.arguments
                known.attributes.update(state.attributes)
                continue
            target.append(state)
            if state.call_id:
                turn.tools[state.call_id] = state
        if parent is None:
            turn.final = not requests

    def _usage(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        """`assistant.usage` (when a CLI version writes it): the input side of the latest call."""
        turn = self._open
        if turn is None:
            return
        for i in range(len(turn.items) - 1, -1, -1):
            item = turn.items[i]
            if isinstance(item, LLMCall):
                if item.attributes.get("tailerd.usage.input_recorded") is False:
                    usage = usage_of(data_of(event))
                    extra = replace(usage, output_tokens=0)
                    self._record(LLMCall(model=item.model, usage=extra))
                    usage = replace(usage, output_tokens=item.usage.output_tokens)
                    turn.items[i] = replace(item, usage=usage, attributes={})
                return

    def _tool(self, event: Record, line: Line) -> ToolState | None:
        turn = self._open
        data = data_of(event)
        call_id = as_str(data.get("toolCallId"))
        if turn is None or not call_id:
            self.ignored += 1
            return None
        state = turn.tools.get(call_id)
        if state is None:  # no request seen for it (written before its message, or trimmed)
            request = {"toolCallId": call_id, "name": data.get("toolName")}
            request["arguments"] = data.get("arguments")
            state = tool_state(request, time_of(event))
            parent = turn.tools.get(as_str(data.get("parentToolCallId")))
            (parent.inner if parent is not None else turn.items).append(state)
            turn.tools[call_id] = state
        return state

    def _tool_start(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        state = self._tool(event, line)
        if state is not None:
            state.started_at = time_of(event) or state.started_at

    def _tool_complete(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        state = self._tool(event, line)
        if state is None:
            return
        data = data_of(event)
        state.result, state.is_error = tool_result(data)
        state.ended_at = time_of(event) or state.ended_at
        state.done = True
        model = as_str(data.get("model"))
        if model and self._open is not None:
            self._open.model = self._open.model or model

    def _subagent(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        state = self._tool(event, line)
        if state is None:
            return
        data = data_of(event)
        state.agent = {**(state.agent or {}), **data}
        if event["type"] == "subagent.failed":
            state.is_error = True
            state.result = state.result or as_str(data.get("error"))

    def _task_complete(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        if self._open is not None:
            self._open.task_complete = as_str(data_of(event).get("summary"))

    def _turn_end(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        turn = self._open
        if turn is not None and (turn.final or turn.task_complete is not None):
            turn.end = max(turn.end, line.end)
            turn.ended_at = time_of(event) or turn.ended_at
            out.append(self._close())

    def _abort(self, event: Record, line: Line, out: list[Turn | DeadLetter]) -> None:
        turn = self._open
        if turn is not None:
            turn.interrupted = True
            turn.notices.append(f"abort: {as_str(data_of(event).get('reason'))}")
            turn.end = max(turn.end, line.end)
            out.append(self._close())

    # -- building turns -----------------------------------------------------------------------

    def _begin(self, event: Record, line: Line) -> OpenTurn:
        self._ctx_at_open = self._ctx.copy()
        anchor = as_str(event.get("id")) or str(line.start)
        self._open = OpenTurn(anchor, line.start, line.end, time_of(event))
        return self._open

    def _record(self, call: LLMCall) -> None:
        self._ctx.recorded.setdefault(call.model, Tokens()).add(call.usage)

    def _close(self) -> Turn:
        turn = self._open
        assert turn is not None
        self._open = None
        return finished_turn(self._source, self._ctx, turn)

    def _turn(self, key_part: str, attributes: dict[str, Any], **fields: Any) -> Turn:
        """A synthetic Turn of this session (`build.session_turn`)."""
        return session_turn(self._source, self._ctx, key_part, attributes, **fields)


_HANDLERS = {
    "session.start": CopilotParser._session_start,
    "session.resume": CopilotParser._resume,
    "session.model_change": CopilotParser._model_change,
    "session.shutdown": CopilotParser._shutdown,
    "session.error": CopilotParser._error,
    "session.warning": CopilotParser._error,
    "session.compaction_complete": CopilotParser._compaction,
    "session.task_complete": CopilotParser._task_complete,
    "user.message": CopilotParser._user_message,
    "assistant.turn_start": CopilotParser._turn_start,
    "assistant.message": CopilotParser._assistant_message,
    "assistant.usage": CopilotParser._usage,
    "assistant.turn_end": CopilotParser._turn_end,
    "tool.execution_start": CopilotParser._tool_start,
    "tool.execution_complete": CopilotParser._tool_complete,
    "subagent.started": CopilotParser._subagent,
    "subagent.completed": CopilotParser._subagent,
    "subagent.failed": CopilotParser._subagent,
    "abort": CopilotParser._abort,
}
