"""The host-wide history index: a turn is shipped once, whichever file it turns up in.

Agents copy history between files: Claude Code's `--resume` starts a transcript with a verbatim
copy of the earlier records, Gemini CLI resuming a legacy `.json` session writes a `.jsonl` with
every earlier message again. Each file's own checkpoint cannot know that. So every turn carries
the agent's own identities of what it is made of (`Turn.identities`, e.g. `gemini:message:m-u1`),
and once **every sink acknowledged** a turn, each of its identities is indexed as
`identity -> (turn key, file key, time)` in the checkpoint store's `history` table, in the same
transaction as the checkpoint that passes the turn. `kill -9` therefore leaves a turn either
shipped, checkpointed and indexed, or none of these (then it is re-read and re-sent with the same
ids); it can never leave a turn indexed but unshipped, which would make its copies be skipped.

Rule (`HistoryIndex.is_copy`): a turn whose identities are *all* known, each from another turn
key or another file, is a copy and is not shipped: it is resolved at once, counted
(`duplicates_skipped`) and logged at DEBUG. Known means indexed, or emitted earlier in this run
and not yet settled or committed (so two copies read in the same run ship once). A turn with
some identities new carries new content and is shipped. A turn without identities (native and
mapped formats) is never deduplicated. A turn refused by a sink is not indexed: its copies are
shipped (and may be refused too), so nothing is skipped on the strength of a dead letter.

Bounded: rows older than `history_retention` (default 30 days; the time is when a turn was last
shipped) are pruned at start and once a day. Older history cannot recur in practice: a copy is
written when an agent resumes, forks or migrates a session, which reads the earlier file then and
there; a copy made after the retention has passed is shipped again, with the same trace and span
ids when its turn key is the same (span-id keyed backends store it once), under its new key
otherwise.

Dry runs (`write=False`) consult the index but never write it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tailerd.domain import Turn
from tailerd.edges.checkpoint_store import CheckpointStore, Shipped

log = logging.getLogger("tailerd")

DEFAULT_RETENTION = 30 * 86400.0  # seconds
PRUNE_INTERVAL = 86400.0  # seconds between prunes of a long-running daemon

Owner = tuple[str, str]  # (turn key, file key)


class HistoryIndex:
    """The daemon's view of the index: the store's rows plus what this run has in flight.

    All methods run on the daemon's loop thread. Errors: the store's OSError on a failed read
    or write (`is_copy` treats an unreadable index as "not a copy": ship rather than lose).
    """

    def __init__(self, store: CheckpointStore, retention: float, *, write: bool = True) -> None:
        self.store = store
        self.retention = retention
        self.write = write
        self.skipped = 0  # copies not shipped, this run
        self._in_flight: dict[str, Owner] = {}  # emitted, not yet committed as shipped
        self._acknowledged: list[Shipped] = []  # shipped, waiting for the next checkpoint save

    def is_copy(self, turn: Turn, file_key: str) -> Owner | None:
        """The owner of the first identity when every identity of `turn` is known from another
        turn key or another file (the turn is a copy); None when it must be shipped."""
        if not turn.identities:
            return None
        me = (turn.key, file_key)
        owners = {i: self._in_flight[i] for i in turn.identities if i in self._in_flight}
        rest = [i for i in turn.identities if i not in owners]
        if rest:
            try:
                owners.update(self.store.shipped(rest))
            except OSError as exc:
                log.warning("history index unreadable, shipping turn %s: %s", turn.key, exc)
                return None
        if all(i in owners and owners[i] != me for i in turn.identities):
            return owners[turn.identities[0]]
        return None

    def skip(self, turn: Turn, file_key: str, owner: Owner, path: object) -> None:
        self.skipped += 1
        log.debug(
            "not shipping turn %s of path=%s: a copy of turn %s (file %s) already shipped",
            turn.key,
            path,
            owner[0],
            owner[1],
        )

    def emitted(self, turn: Turn, file_key: str) -> None:
        """`turn` was handed to the sinks: its copies read meanwhile are not shipped."""
        for identity in turn.identities:
            self._in_flight.setdefault(identity, (turn.key, file_key))

    def settled(self, turn: Turn, file_key: str, delivered: bool, now: float) -> None:
        """Every sink is done with `turn`; `delivered` if none refused it. Its rows wait for the
        next checkpoint save (`take_rows`)."""
        if delivered and self.write:
            self._acknowledged.extend((i, turn.key, file_key, now) for i in turn.identities)
        elif not delivered:
            self._forget(turn.identities, (turn.key, file_key))

    def take_rows(self) -> list[Shipped]:
        """The rows to write with the next checkpoint save; call `committed` once it is done."""
        return list(self._acknowledged)

    def committed(self, rows: Iterable[Shipped]) -> None:
        """`rows` are in the database now: lookups find them there."""
        written = list(rows)
        del self._acknowledged[: len(written)]
        for identity, turn_key, file_key, _ in written:
            self._forget((identity,), (turn_key, file_key))

    def prune(self, now: float) -> int:
        """Drop rows shipped more than `retention` seconds before `now`; how many."""
        if not self.write:
            return 0
        try:
            removed = self.store.prune_history(now - self.retention)
        except OSError as exc:  # kept until the next prune: a bigger index, nothing lost
            log.warning("cannot prune the history index: %s", exc)
            return 0
        if removed:
            log.info(
                "history index: pruned %d identities older than %.0f s", removed, self.retention
            )
        return removed

    def _forget(self, identities: Iterable[str], owner: Owner) -> None:
        for identity in identities:
            if self._in_flight.get(identity) == owner:
                del self._in_flight[identity]
