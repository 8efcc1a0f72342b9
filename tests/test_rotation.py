"""Rotation by copy-then-truncate (logrotate's `copytruncate`): a turn written after tailerd's
last read and before the rotation survives only in the copy. It must arrive, once, whatever the
copy's name (`a.jsonl.1`, `a.jsonl-20260906`, `a.jsonl.1.gz` — none matches `*.jsonl`) and
whatever the file's size; the turns read before are not sent again.

Each case: run 1 (`--once`) reads turn `before`; then `unread` is appended, the file is copied
to its rotated name and truncated, and `after` is written to the original; run 2 (`--once`,
same state dir) must send exactly `unread` and `after`. Hand count: 3 turns, each once.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_tailerd
from tests.live_daemon import append, duplicate_span_ids, labels, turn_line
from tests.otlp_receiver import Receiver


def _once(logs: Path, state: Path, receiver: Receiver) -> None:
    args = ["--watch", logs, "--once", "--state-dir", state, "--data-dir", state]
    result = run_tailerd(*args, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert result.returncode == 0, result.stderr


def _rotate(path: Path, copy_name: str) -> None:
    copy = path.with_name(copy_name)
    if copy_name.endswith(".gz"):
        with path.open("rb") as src, gzip.open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(path, copy)
    os.truncate(path, 0)


@pytest.mark.parametrize("pad", [0, 1500], ids=["small", "over-1KiB"])
@pytest.mark.parametrize("copy_name", ["a.jsonl.1", "a.jsonl-20260906", "a.jsonl.1.gz"])
def test_copytruncate_copy_gives_its_unread_turn_once(
    tmp_path: Path, receiver: Receiver, copy_name: str, pad: int
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    path = logs / "a.jsonl"
    filler = {"pad": "x" * pad} if pad else {}
    append(path, turn_line("s", "before", **filler))
    _once(logs, state, receiver)
    assert labels(receiver) == ["before"]

    append(path, turn_line("s", "unread", **filler))
    _rotate(path, copy_name)
    append(path, turn_line("s", "after"))
    _once(logs, state, receiver)

    assert sorted(labels(receiver)) == ["after", "before", "unread"]
    assert duplicate_span_ids(receiver) == 0


def test_a_file_merely_named_like_a_rotation_is_not_read(tmp_path: Path, receiver: Receiver):
    """`b.jsonl.1` with other content than `b.jsonl` had is no copy of it: not read (it does
    not match the include globs), and `b.jsonl` is not disturbed."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    append(logs / "b.jsonl", turn_line("s", "one"))
    _once(logs, state, receiver)
    append(logs / "b.jsonl.1", turn_line("other", "stranger"))
    _once(logs, state, receiver)
    assert labels(receiver) == ["one"]
