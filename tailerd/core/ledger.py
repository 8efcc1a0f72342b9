"""Checkpoint arithmetic: how far a file's committed offset may move.

The committed offset never passes the first byte of a turn that is still open in the parser,
or that was emitted but not yet resolved (delivered to every sink, or rejected for good).
Turns resolved *after* the committed offset (possible when sessions interleave in one file)
are remembered by key, so a restart that re-reads them does not send them twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DeliveryLedger:
    committed: int = 0
    _unresolved: dict[str, int] = field(default_factory=dict)  # turn key -> start offset
    # key -> start offset (>= committed), or -1 while unknown (restored, not yet re-read)
    _resolved_ahead: dict[str, int] = field(default_factory=dict)

    def already_resolved(self, key: str, start: int) -> bool:
        """True if this turn was resolved before; records where it starts for later pruning."""
        if key not in self._resolved_ahead:
            return False
        self._resolved_ahead[key] = start
        return True

    def is_pending(self, key: str) -> bool:
        return key in self._unresolved

    def emitted(self, key: str, start: int) -> None:
        self._unresolved[key] = start

    def resolved(self, key: str) -> None:
        start = self._unresolved.pop(key, None)
        if start is not None:
            self._resolved_ahead[key] = start

    @property
    def unresolved(self) -> int:
        return len(self._unresolved)

    def advance(self, consumed: int, parser_pending: int | None) -> int:
        """Move the committed offset as far as is safe; return it. It never moves backwards."""
        bound = consumed
        if parser_pending is not None:
            bound = min(bound, parser_pending)
        if self._unresolved:
            bound = min(bound, *self._unresolved.values())
        self.committed = max(self.committed, bound)
        self._resolved_ahead = {
            k: s for k, s in self._resolved_ahead.items() if s < 0 or s >= self.committed
        }
        return self.committed

    def resolved_ahead(self) -> list[str]:
        """Keys to persist with the checkpoint (see module docstring)."""
        return sorted(self._resolved_ahead)

    @classmethod
    def restore(cls, committed: int, resolved_ahead: list[str]) -> DeliveryLedger:
        return cls(committed, {}, dict.fromkeys(resolved_ahead, -1))
