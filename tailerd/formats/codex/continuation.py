"""Synthetic continuation turns: usage Codex wrote after its turn was already shipped.

An aborted turn lingers `abort_grace` seconds for its in-flight request's `token_count`. One
that comes later still (or after a restart, with the turn already acknowledged) would be lost;
it becomes a turn of its own holding one LLM call with that usage, tagged
`tailerd.synthetic = "late_usage"` and `codex.continues_turn = <the continued turn's key>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tailerd.domain import Line, LLMCall, Turn, Usage
from tailerd.formats.base import turn_key
from tailerd.formats.codex.records import AGENT_NAME, PROVIDER


def late_usage_turn(
    continued: tuple[str, str],
    usage: Usage,
    fingerprint: str,
    when: datetime | None,
    line: Line,
    *,
    session: str,
    agent_name: str,
    model: str,
    attributes: Mapping[str, Any],
) -> Turn:
    """The continuation of the turn `continued` = (its turn id or implicit id, its identity)
    holding one LLM call with `usage`; `fingerprint` (the usage snapshot's total as text) makes
    its key and identity, so a re-read yields the same turn."""
    turn_id, identity = continued
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    call = LLMCall(model=model, provider_name=PROVIDER, usage=usage, started_at=when, ended_at=when)
    attrs = dict(attributes)
    attrs["tailerd.synthetic"] = "late_usage"
    attrs["codex.continues_turn"] = turn_key(AGENT_NAME, session, turn_id)
    return Turn(
        key=turn_key(AGENT_NAME, session, f"{turn_id}#usage:{digest}"),
        session_id=session,
        start=line.start,
        end=line.end,
        agent_name=agent_name,
        model=model,
        spans=(call,),
        started_at=when,
        ended_at=when,
        interrupted=True,
        attributes=attrs,
        identities=(f"{identity}#usage:{digest}",),
    )
