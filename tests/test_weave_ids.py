"""The ids a turn's spans get are pinned: a weave release that creates log_turn's spans in
another order, or on another thread, would give the same turn other ids than earlier tailerds
(and other hosts) gave it, and backends would store it twice. scripts/check-weave-newest runs
this against the newest weave.

Expected values follow the documented scheme (README "Deterministic ids"; platform-notes.md 3):
trace id = blake2b(key + "|trace", 16 bytes), span id = blake2b(key + "|span|" + n, 8 bytes),
n counting the spans weave creates for the turn in order from 1 (the turn span first, then its
children as given). They are computed here with hashlib, not read from tailerd.
"""

from __future__ import annotations

import hashlib

from tailerd.emitter import Emitter
from tests.test_emitter import sample_turn


def blake(text: str, size: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")


def test_span_ids_follow_the_order_weave_creates_them_in():
    key = "native|s1|1"
    spans = Emitter().emit(sample_turn(key))
    got = {s.name: (s.context.trace_id, s.context.span_id) for s in spans}
    trace = blake(f"{key}|trace", 16)
    expected = {
        "invoke_agent weather-bot": (trace, blake(f"{key}|span|1", 8)),
        "chat gpt-4o": (trace, blake(f"{key}|span|2", 8)),
        "execute_tool get_weather": (trace, blake(f"{key}|span|3", 8)),
        "invoke_agent helper": (trace, blake(f"{key}|span|4", 8)),
    }
    assert {name: got[name] for name in expected} == expected
    # written down once (python -c with hashlib.blake2b on "native|s1|1|span|1"): a literal
    assert format(got["invoke_agent weather-bot"][1], "016x") == "a6540bb38d525708"
