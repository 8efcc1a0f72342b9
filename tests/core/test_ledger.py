"""Checkpoint arithmetic: the committed offset never passes an open or unresolved turn."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tailerd.core.ledger import DeliveryLedger


@st.composite
def histories(draw):
    """Non-overlapping turns over a file, emitted in order, resolved in any order."""
    n = draw(st.integers(0, 12))
    gaps = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    sizes = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))
    turns, pos = [], 0
    for i, (gap, size) in enumerate(zip(gaps, sizes, strict=True)):
        turns.append((f"t{i}", pos + gap, pos + gap + size))
        pos += gap + size
    order = draw(st.permutations(range(n)))
    resolved = draw(st.integers(0, n))
    return turns, [turns[i][0] for i in order[:resolved]], pos


@given(histories())
def test_committed_never_passes_an_unresolved_turn(history):
    turns, resolved, consumed = history
    ledger = DeliveryLedger()
    for key, start, _end in turns:
        ledger.emitted(key, start)
    for key in resolved:
        ledger.resolved(key)
        ledger.advance(consumed, None)
    committed = ledger.advance(consumed, None)
    unresolved = [start for key, start, _ in turns if key not in resolved]
    assert committed == (min(unresolved) if unresolved else consumed)
    # Every resolved turn at or past the committed offset is remembered, so a re-read skips it.
    ahead = {key for key, start, _ in turns if key in resolved and start >= committed}
    assert set(ledger.resolved_ahead()) == ahead


@given(histories(), st.integers(0, 500))
def test_open_turn_in_the_parser_bounds_the_offset(history, pending):
    _turns, _resolved, consumed = history
    ledger = DeliveryLedger()
    assert ledger.advance(consumed, pending) == min(consumed, pending)


def test_offset_never_moves_backwards():
    ledger = DeliveryLedger(committed=100)
    assert ledger.advance(50, None) == 100


def test_restored_keys_are_skipped_once_reread_then_forgotten_past_them():
    """After a restart, a turn resolved ahead of the checkpoint is not sent again."""
    ledger = DeliveryLedger.restore(10, ["b"])
    assert ledger.already_resolved("b", 40)
    assert not ledger.already_resolved("a", 10)
    ledger.emitted("a", 10)
    ledger.resolved("a")
    assert ledger.advance(30, None) == 30
    assert ledger.resolved_ahead() == ["b"]  # b starts at 40, still ahead
    assert ledger.advance(60, None) == 60
    assert ledger.resolved_ahead() == []
