"""The safety net under inotify stats directories, not files: it finds what inotify missed
(a new file, a new directory) for one stat per directory and one listing per changed one."""

from __future__ import annotations

import os
from pathlib import Path

from tailerd.settings import Settings
from tailerd.tracking import FileTable
from tests.live_daemon import turn_line


def test_the_safety_net_finds_a_missed_file_and_directory_for_a_stat_per_directory(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    for d in range(20):
        (logs / f"d{d}").mkdir(parents=True)
        for i in range(10):
            (logs / f"d{d}" / f"s{i}.jsonl").write_bytes(turn_line(f"s{d}-{i}", "t"))
    table = FileTable(Settings(watch=(logs,)), {})
    table.scan()
    assert len(table.files) == 200 and len(table.dirs) == 21  # 20 + the root

    table.dirty.clear()
    stats = table.stats
    table.safety_net()  # nothing changed: one stat per directory, no file looked at
    assert table.stats == stats and not table.dirty

    (logs / "d3" / "missed.jsonl").write_bytes(turn_line("m", "t"))
    (logs / "new" / "deep").mkdir(parents=True)
    (logs / "new" / "deep" / "x.jsonl").write_bytes(turn_line("x", "t"))
    with (logs / "d5" / "s1.jsonl").open("ab") as fh:  # an append: inotify's to report
        fh.write(turn_line("s5-1", "u"))
    os.utime(logs / "d3", ns=(1, 1))  # a coarse clock must not hide the change
    table.safety_net()
    found = {str(p.relative_to(logs)) for p in (f.path for f in table.dirty.values())}
    assert found == {"d3/missed.jsonl", "new/deep/x.jsonl"}
