"""File identity: which checkpoint a file found on disk resumes from. Pure: values in, values out.

A file is identified by (device, inode) plus a fingerprint of its first bytes (`HEAD_BYTES`),
so inode reuse, replacement and truncation are told apart. The same content under another name
also resumes where it stopped:

* a rollout compressed to `.jsonl.zst` or moved to an archive keeps its stable name (the name
  without compression suffix) and its first bytes;
* a copy made by logrotate's `copytruncate` keeps a full `HEAD_BYTES` head.

Every question is a dictionary lookup, so matching N files costs O(N), not O(N²) (Vector's
fingerprinter/checkpointer split, shared/reference/architecture-anchors.md §1).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import PurePath
from typing import Generic, Protocol, TypeVar

HEAD_BYTES = 1024


def head_hash(data: bytes) -> str:
    """The fingerprint of a file's first bytes: 32 hex digits of blake2b."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Identified(Protocol):
    """What the index needs of a checkpoint (edges.checkpoint_store.FileCheckpoint has it)."""

    path: str
    head_len: int
    head_hash: str
    offset: int
    stable_name: str
    document: bool
    removed_at: float | None

    @property
    def key(self) -> str: ...


T = TypeVar("T", bound=Identified)


class IdentityIndex(Generic[T]):
    """Checkpoints indexed by inode key, by path, by stable name and by full-head fingerprint."""

    def __init__(self, checkpoints: Iterable[T] = ()) -> None:
        self._by_key: dict[str, T] = {}
        self._by_path: dict[str, set[str]] = defaultdict(set)
        self._by_stable: dict[str, set[str]] = defaultdict(set)
        self._by_full_head: dict[str, set[str]] = defaultdict(set)
        for cp in checkpoints:
            self.add(cp)

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._by_key.values()))

    def get(self, key: str) -> T | None:
        return self._by_key.get(key)

    def add(self, cp: T) -> None:
        """Index `cp` (replacing any entry under the same key)."""
        old = self._by_key.get(cp.key)
        if old is not None:
            self.remove(old.key)
        self._by_key[cp.key] = cp
        self._by_path[cp.path].add(cp.key)

        if cp.stable_name:
            self._by_stable[cp.stable_name].add(cp.key)
        if cp.head_len == HEAD_BYTES:
            self._by_full_head[cp.head_hash].add(cp.key)

    def remove(self, key: str) -> T | None:
        cp = self._by_key.pop(key, None)
        if cp is not None:
            _discard(self._by_path, cp.path, key)
            _discard(self._by_stable, cp.stable_name, key)
            _discard(self._by_full_head, cp.head_hash, key)
        return cp

    def reindex(self, cp: T, old_path: str, old_head_hash: str) -> None:
        """Call after changing a checkpoint's path or head in place (no-op if not indexed)."""
        if self._by_key.get(cp.key) is not cp:
            return
        _discard(self._by_path, old_path, cp.key)
        _discard(self._by_full_head, old_head_hash, cp.key)
        self._by_path[cp.path].add(cp.key)

        if cp.head_len == HEAD_BYTES:
            self._by_full_head[cp.head_hash].add(cp.key)

    def rotations_of(self, path: str) -> list[T]:
        """Checkpoints whose file `path` is a rotated copy of, by name (`rotated_name`), with a
        fingerprint to check: followed files first, then retired generations, newest first.
        A lookup per name `path` may be a rotation of, never a scan of the directory."""
        where = PurePath(path)
        found = [
            self._by_key[key]
            for name in _originals(where.name)
            for key in self._by_path.get(str(where.parent / name), ())
            if self._by_key[key].head_len > 0 and rotated_name(self._by_key[key].path, path)
        ]
        return sorted(found, key=lambda cp: (cp.removed_at is not None, -(cp.removed_at or 0)))

    def rotation_of(self, path: str, full_head: bool = False) -> T | None:
        """The first of `rotations_of(path)` (with a full HEAD_BYTES head, if `full_head`)."""
        for cp in self.rotations_of(path):
            if not full_head or cp.head_len == HEAD_BYTES:
                return cp
        return None

    def documents_at(self, path: str) -> list[T]:
        """The whole-document checkpoints recorded for this path (resumed by path, not inode),
        best first: the one followed now (not removed), then the most recently removed. A
        document replaced by a rename (a new inode) leaves one per inode; the order never
        depends on the set's (per-process, hash-seeded) iteration order."""
        found = [self._by_key[k] for k in self._by_path.get(path, ()) if self._by_key[k].document]
        return sorted(
            found, key=lambda cp: (cp.removed_at is not None, -(cp.removed_at or 0), cp.key)
        )

    def resume_candidates(self, key: str, stable_name: str, path: str = "") -> Iterator[T]:
        """Checkpoints this file (inode `key`, first bytes `head`, at `path`) may continue, best
        first: the same inode, then the same stable name, then an identical full head under a
        rotated name of it (`rotated_name`): two sessions may well share their first KiB, a
        copy made by rotation also shares the name. The caller still checks each candidate's
        head and offset against the file."""
        seen: set[str] = set()
        own = self._by_key.get(key)
        if own is not None:
            seen.add(key)
            yield own
        for other in sorted(self._by_stable.get(stable_name, ())):
            if other not in seen:
                seen.add(other)
                yield self._by_key[other]
        if path:
            for cp in self.rotations_of(path):
                if cp.key not in seen:
                    seen.add(cp.key)
                    yield cp


def rotated_name(original: str, candidate: str) -> bool:
    """True if `candidate` is a name logrotate (or a copy by hand) gives to `original` in the
    same directory: `a.jsonl` → `a.jsonl.1`, `a.jsonl-20260906`, `a.jsonl.1.gz`, or with
    logrotate's `extension` option `a-20260906.jsonl`, `a.1.jsonl`."""
    orig, cand = PurePath(original), PurePath(candidate)
    if orig.parent != cand.parent or orig.name == cand.name:
        return False
    if cand.name.startswith(orig.name) and cand.name[len(orig.name)] in "-._":
        return True
    stem = orig.name.split(".", 1)[0]
    suffix = orig.name[len(stem) :]
    rest = cand.name[len(stem) :]
    return (
        bool(suffix)
        and cand.name.startswith(stem)
        and rest.endswith(suffix)
        and rest[:1] in ("-", ".", "_")
        and len(rest) > len(suffix)
    )


def _originals(name: str) -> set[str]:
    """Every name of which `name` may be a rotated copy (see `rotated_name`): its prefixes cut
    at a separator (`a.jsonl.1.gz` → `a`, `a.jsonl`, `a.jsonl.1`), and for logrotate's
    `extension` style a prefix joined to a suffix (`a-20260906.jsonl` → `a.jsonl`)."""
    cuts = [i for i, c in enumerate(name) if c in ".-_" and i > 0]
    out = {name[:i] for i in cuts}
    dots = [i for i in cuts if name[i] == "."]
    for i in cuts:
        for j in dots:
            if j > i:
                out.add(name[:i] + name[j:])
    out.discard(name)
    return out


def matches(cp: Identified, head: bytes, size: int) -> bool:
    """True if a file with these first bytes and this size can continue checkpoint `cp`."""
    if cp.head_len > len(head) or cp.offset > size:
        return False
    return head_hash(head[: cp.head_len]) == cp.head_hash


def _discard(index: dict[str, set[str]], value: str, key: str) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]
