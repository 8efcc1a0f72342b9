"""What a live daemon says when a followed path stops leading to its file: "file gone" at INFO
only when the path really no longer exists and was a wanted file; Amp's save (write
`T-<id>.json.amptmp`, rename it over `T-<id>.json`: the temporary name goes away, and so does
the old inode of the thread, but the path is there) says nothing at INFO; files a reload's
narrower `include` no longer matches are said once, as such.

Expected lines counted by hand from what the test does: one file deleted -> one "file gone"
line; one `.jsonl` file left when `include` narrows to Amp threads -> one "no longer matched by
include" line; three Amp saves -> no INFO line naming the thread or its temporary name."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.formats.test_amp import A, thread, two_turns, write_like_amp
from tests.live_daemon import RunningTailerd, append, poll, turn_line


def _roots(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM spans WHERE parent_span_id IS NULL")
                       .fetchone()[0])  # fmt: skip
    except sqlite3.OperationalError:
        return 0  # not made yet


def _info(log: str, text: str) -> list[str]:
    return [x for x in log.splitlines() if text in x]


def test_renames_say_nothing_a_deletion_once_a_narrower_include_once(tmp_path: Path) -> None:
    root, state = tmp_path / "home", tmp_path / "state"
    threads, native = root / "amp" / "threads", root / "native"
    threads.mkdir(parents=True)
    native.mkdir()
    kept, deleted = native / "kept.jsonl", native / "deleted.jsonl"
    append(kept, turn_line("s1", "k1"))
    append(deleted, turn_line("s2", "d1"))
    path = threads / f"{A}.json"
    running = thread(A)
    running["messages"] = running["messages"][:2]  # its first call asked for tools: open
    write_like_amp(path, running)
    config = tmp_path / "tailerd.toml"
    config.write_text(f'watch = ["{root}"]\nsinks = ["local"]\nrescan_interval = 3600\n')
    daemon = RunningTailerd("--config", config, "--state-dir", state, "--data-dir", state)
    try:
        store = state / "tailerd.db"
        assert poll(lambda: _roots(store) == 2, timeout=90) is not None, daemon.log  # k1, d1
        write_like_amp(path, thread(A))  # the turn ends
        assert poll(lambda: _roots(store) == 3, timeout=90) is not None, daemon.log
        write_like_amp(path, two_turns())  # a second prompt and its answer
        assert poll(lambda: _roots(store) == 4, timeout=90) is not None, daemon.log

        deleted.unlink()
        assert poll(lambda: bool(_info(daemon.log, "file gone")), timeout=30), daemon.log

        config.write_text(config.read_text() + 'include = ["T-*.json"]\n')
        before = daemon.log.count("configuration reloaded")
        daemon.proc.send_signal(signal.SIGHUP)
        assert poll(lambda: daemon.log.count("configuration reloaded") > before, 30), daemon.log
        append(kept, turn_line("s1", "k2"))  # still there: no longer wanted, not gone
        write_like_amp(path, two_turns())  # a save after the reload, too
        assert poll(lambda: bool(_info(daemon.log, "no longer matched")), 30), daemon.log
    finally:
        code, _ = daemon.terminate(timeout=60)
        daemon.stop()
    log = daemon.log
    assert code == 0, log[-2000:]
    assert "Traceback" not in log
    (gone,) = _info(log, "file gone")
    assert str(deleted) in gone
    (dropped,) = _info(log, "no longer matched by include")
    assert str(kept) in dropped and " 1 file(s) no longer matched by include" in dropped
    assert not _info(log, A), [x for x in log.splitlines() if A in x]  # Amp's saves: quiet
