"""Checks of the replica corpus (not in the default pytest run: `pytest bench/test_corpus.py`).

Expected values come from the fixtures themselves (their bytes, the ids found in them by a
plain regex here), never from the generator's own bookkeeping.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench import corpus

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IDS = re.compile(rb"\b(?:msg|req|toolu)_[A-Za-z0-9]{12,}")


def _fixture_ids() -> set[bytes]:
    found: set[bytes] = set()
    for path in corpus.FIXTURES.rglob("*.jsonl"):
        data = path.read_bytes()
        found.update(UUID.findall(data), IDS.findall(data))
    return found


def test_rewrite_keeps_length_and_replaces_every_identifier() -> None:
    line = (
        b'{"sessionId":"4d5611e5-241a-462a-8d15-5122611a9569","message":{"id":'
        b'"msg_01FFabcdefghijklmnopqrst"},"requestId":"req_011CSa9PyzwBA9TGcg7ZEXHH"}'
    )
    out0, out1 = corpus.rewrite(0, line), corpus.rewrite(1, line)
    assert len(out0) == len(line) == len(out1)
    assert out0 != out1
    assert corpus.rewrite(0, line) == out0  # deterministic
    for ident in (b"4d5611e5-241a-462a-8d15-5122611a9569", b"msg_01FFabcdefghijklmnopqrst"):
        assert ident not in out0
    assert b'"msg_' in out0
    assert b'"req_' in out0


def test_replicas_are_the_fixture_bytes_with_no_fixture_id_left(tmp_path: Path) -> None:
    built = corpus.claude_corpus(13)
    fixture_files = list(corpus.FIXTURES.rglob("*.jsonl"))
    fixture_bytes = sum(p.stat().st_size for p in fixture_files)
    paths = built.paths()
    assert len(paths) == len(fixture_files) * built.replicas
    assert sum(p.stat().st_size for p in paths) == fixture_bytes * built.replicas
    ids = _fixture_ids()
    assert len(ids) > 1000  # the fixtures are id-rich; the check below is not vacuous
    seen: set[bytes] = set()
    for p in paths:
        data = p.read_bytes()
        seen.update(UUID.findall(data), IDS.findall(data))
    assert not seen & ids
    # Every replica has its own ids: as many distinct ids as the fixtures have, per replica.
    assert len(seen) == len(ids) * built.replicas
