"""The identity index answers by lookup what a scan over every checkpoint would answer."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from tailerd.core.identity import HEAD_BYTES, IdentityIndex, head_hash, matches, rotated_name


@dataclass
class Cp:
    path: str
    inode: int
    head_len: int = 10
    head_hash: str = ""
    offset: int = 0
    stable_name: str = ""
    document: bool = False
    removed_at: float | None = None

    @property
    def key(self) -> str:
        return f"1:{self.inode}"


ROTATED = ["a.jsonl.1", "a.jsonl.2.gz", "a.jsonl-20260906", "a-20260906.jsonl", "a.1.jsonl"]
OTHERS = ["ab.jsonl", "b.jsonl", "b.jsonl.1", "a", "a.log", "a.log.1", "x-y.jsonl", "x-y.jsonl.1"]
NAMES = st.sampled_from(["a.jsonl", *ROTATED, *OTHERS])
DIRS = st.sampled_from(["/w", "/w/sub"])


@given(st.lists(st.tuples(DIRS, NAMES), max_size=12), DIRS, NAMES)
def test_rotations_by_lookup_equal_rotations_by_scan(files, directory, name) -> None:
    cps = [Cp(f"{d}/{n}", inode=i + 1) for i, (d, n) in enumerate(files)]
    index: IdentityIndex[Cp] = IdentityIndex(cps)
    path = f"{directory}/{name}"
    by_scan = {cp.key for cp in cps if rotated_name(cp.path, path)}
    assert {cp.key for cp in index.rotations_of(path)} == by_scan


def test_rotated_names_by_hand() -> None:
    assert rotated_name("/w/a.jsonl", "/w/a.jsonl.1")
    assert rotated_name("/w/a.jsonl", "/w/a.jsonl-20260906")
    assert rotated_name("/w/a.jsonl", "/w/a.jsonl.1.gz")
    assert rotated_name("/w/a.jsonl", "/w/a-20260906.jsonl")
    assert not rotated_name("/w/a.jsonl", "/w/a.jsonl")
    assert not rotated_name("/w/a.jsonl", "/w/ab.jsonl")  # another session, not a rotation
    assert not rotated_name("/w/a.jsonl", "/v/a.jsonl.1")  # another directory
    assert not rotated_name("/w/abc.jsonl", "/w/abcd.jsonl")


def test_full_head_is_no_reason_to_resume_under_an_unrelated_name() -> None:
    """Two sessions sharing their first KiB: the second must not continue the first."""
    head = b"x" * HEAD_BYTES
    first = Cp("/w/s1.jsonl", 1, HEAD_BYTES, head_hash(head), offset=5000)
    index: IdentityIndex[Cp] = IdentityIndex([first])
    assert list(index.resume_candidates("1:2", "s2.jsonl", "/w/s2.jsonl")) == []
    assert list(index.resume_candidates("1:2", "s1.jsonl.1", "/w/s1.jsonl.1")) == [first]
    assert matches(first, head, size=6000) and not matches(first, head, size=4000)
