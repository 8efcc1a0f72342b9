"""The daemon builds its file table once, and a start still resumes from the stored checkpoints
(the table built at construction is given them: no second table, no second walk set-up)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tailerd import daemon as daemon_module
from tailerd.daemon import Daemon
from tailerd.settings import Settings
from tailerd.sinks.console import ConsoleSink
from tailerd.tracking import FileTable
from tests.live_daemon import turn_line


def test_one_file_table_which_resumes_the_stored_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    state.mkdir()
    path = logs / "a.jsonl"
    path.write_bytes(turn_line("s1", "t1"))
    settings = Settings(watch=(logs,), state_dir=state)
    first = Daemon(settings, state, [ConsoleSink(io.StringIO())], threaded_delivery=False)
    first.dry_run = False  # a console sink alone is a dry run: this one commits checkpoints
    first.start(watch=False)
    assert first.run_once()
    first.drain(5)
    offset = path.stat().st_size  # one whole line read and acknowledged

    built: list[Any] = []

    class Counted(FileTable):
        def __init__(self, *args: Any) -> None:
            built.append(args)
            super().__init__(*args)

    monkeypatch.setattr(daemon_module, "FileTable", Counted)
    second = Daemon(settings, state, [ConsoleSink(io.StringIO())], threaded_delivery=False)
    second.start(watch=False)
    assert len(built) == 1  # before: 2 (one in __init__, one in start)
    f = second.files[second.table.by_path[str(path)]]
    assert second.table.open(f)
    assert f.checkpoint.offset == offset  # resumed, not read again from 0
    second.drain(5)
