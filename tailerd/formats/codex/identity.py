"""Codex turn identities: what a turn is made of, whichever file it was read from.

A fork (`session_meta.forked_from_id`) replays its parent's records into the fork's own rollout,
re-stamped at or after the fork's creation, under the fork's session id: the replayed turns get
new keys (the key holds the session id and, without a turn id, the prompt's timestamp), so keys
cannot tell a replay from new work. Identities can, because they hold nothing a replay changes:

* `"codex:turn:<turn_id>"` when the records carry the agent's turn id (`task_started.turn_id`);
* otherwise `"codex:content:<32 hex>"`: a SHA-256 of the turn's user prompt(s), the model's output
  messages and the tool call ids, in order, chained to the identity of the turn before it in the
  same rollout, and nothing else (no timestamps, offsets, session ids or usage). The chain keeps
  two identical short exchanges of one thread ("continue" / "Ok") apart, and a replay, which
  copies the history from its start, rebuilds the same chain.

The host-wide index skips a turn whose identities were all shipped before, from any file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from tailerd.domain import Message
from tailerd.formats.codex.spans import Request

TURN_PREFIX = "codex:turn:"
CONTENT_PREFIX = "codex:content:"


def turn_identities(
    turn_id: str, messages: Sequence[Message], requests: Sequence[Request], previous: str
) -> tuple[str, ...]:
    """The turn's identities: one string, `codex:turn:<id>` or `codex:content:<32 hex digits>`;
    `previous` is the identity of the rollout's turn before this one ("" for the first)."""
    if turn_id:
        return (TURN_PREFIX + turn_id,)
    content = [
        previous,
        [m.content for m in messages],
        [[[o.content for o in r.outputs], [c.call_id for c in r.tools]] for r in requests],
    ]
    digest = hashlib.sha256(orjson.dumps(content)).hexdigest()[:32]
    return (CONTENT_PREFIX + digest,)
