"""Nothing twice for a whole document replaced by a rename (OpenHands' base_state.json, Cline's
files, Amp's threads): each inode the path had keeps a checkpoint with the turns it shipped.

The fault this guards against: the checkpoint a re-read document continued was the first of a
*set* of inode keys at its path, an order Python's hash seed changes per process, so a `--once`
after a daemon sometimes continued the old inode's checkpoint, which lacked the turn shipped
from the new inode, and sent that turn again (the reviewer's /tmp/u-ohlive: 6 of 14 runs).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

from tailerd.edges.checkpoint_store import FileCheckpoint
from tailerd.settings import Settings
from tailerd.tracking import FileTable
from tests.conftest import run_tailerd
from tests.formats.test_cline import SESSION as CLINE_SESSION
from tests.formats.test_cline import cline_home
from tests.formats.test_openhands import SAMPLE, has_open_turn, openhands_home
from tests.live_daemon import RunningTailerd, poll

T1 = "openhands|s|first"
T2 = "openhands|s|second"
T3 = "openhands|s|third"


def _document(path: Path, inode: int, sent: list[str], removed_at: float | None) -> FileCheckpoint:
    st = path.stat()
    return FileCheckpoint(
        str(path), st.st_dev, inode, 16, "h", format="openhands", document=True,
        sent_keys=sent, removed_at=removed_at,
    )  # fmt: skip


def test_a_replaced_document_continues_with_every_turn_its_inodes_shipped(tmp_path: Path) -> None:
    """The file's own inode left [T1, T2]; an older inode at the same path, removed, left [T1]
    (or [T3]: a turn acknowledged on the old inode after the new one took over). Whatever
    order the keys come in, the file knows T1, T2 and T3 were shipped. Twelve old inode
    numbers: with the old first-of-a-set choice, some of them come first (each half the time)."""
    path = tmp_path / "conversations" / "c1" / "base_state.json"
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    own = path.stat().st_ino
    for old in range(own + 1, own + 13):
        for old_sent in ([T1], [T3]):
            checkpoints = {
                cp.key: cp
                for cp in (
                    _document(path, old, old_sent, removed_at=time.time() - 5),
                    _document(path, own, [T1, T2], removed_at=None),
                )
            }
            table = FileTable(Settings(watch=(tmp_path / "conversations",)), checkpoints)
            table.scan()
            f = table.files[table.by_path[str(path)]]
            assert table.open(f)
            assert f.sent_keys == {T1, T2, *old_sent}, old
            assert f.checkpoint.key == f"{path.stat().st_dev}:{own}"  # its own, not the old


def _roots(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            query = "SELECT COUNT(*) FROM spans WHERE parent_span_id IS NULL"
            return int(db.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not there yet, or its table not yet made


def _replace(path: Path, doc: dict[str, object]) -> None:
    """As OpenHands' LocalFileStore writes base_state.json: a temporary file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def test_once_after_a_daemon_sends_nothing_the_daemon_shipped(tmp_path: Path) -> None:
    """The reviewer's scenario: a daemon ships a live OpenHands conversation (events 00-05 with
    status running, then 06 -> turn 1 ships, then 07 and a finished base_state.json renamed over
    the old one -> turn 2 ships), is stopped with SIGTERM; the state file is touched and
    `--once` runs, under several hash seeds (the old fault depended on the seed): 0 turns."""
    home = tmp_path / "home"
    base = openhands_home(home, upto=6, status="running")
    events = sorted((SAMPLE / "events").glob("event-*.json"))
    live = tmp_path / "live"
    args = ("--watch", home / ".openhands", "--sink", "local")
    daemon = RunningTailerd(*args, "--state-dir", live, "--data-dir", live)
    try:
        opened = poll(lambda: has_open_turn(live / "status.json", base), timeout=60)
        assert opened is not None, daemon.log
        shutil.copyfile(events[6], base.parent / "events" / events[6].name)
        assert poll(lambda: _roots(live / "tailerd.db") == 1, timeout=60), daemon.log
        shutil.copyfile(events[7], base.parent / "events" / events[7].name)
        state = json.loads(base.read_text())
        _replace(base, {**state, "execution_status": "finished"})
        assert poll(lambda: _roots(live / "tailerd.db") == 2, timeout=60), daemon.log
        code, _ = daemon.terminate(timeout=60)
        assert code == 0, daemon.log
    finally:
        daemon.stop()
    for seed in ("0", "1", "2", "3"):
        run = tmp_path / f"once-{seed}"
        shutil.copytree(live, run)
        base.touch()
        result = run_tailerd(
            *args, "--once", "--state-dir", run, "--data-dir", run, PYTHONHASHSEED=seed
        )
        assert result.returncode == 0, result.stderr
        assert "0 turns emitted" in result.stderr, (seed, result.stderr)
        assert _roots(run / "tailerd.db") == 2, seed  # turn 1 and turn 2, each once


def test_once_after_a_daemon_sends_nothing_of_a_cline_session_it_shipped(tmp_path: Path) -> None:
    """The same for Cline, which writes `<id>.messages.json.tmp` and renames it over the file
    (the reviewer's /tmp/u-clive): the manifest says running (4 of the 5 turns ship: the last
    may grow), the messages are rewritten, then the manifest says ended (completed) -> the 5th
    ships; after a SIGTERM and a touch, `--once` under several hash seeds sends none again."""
    home = tmp_path / "home"
    messages = cline_home(home)
    manifest = messages.with_name(f"{CLINE_SESSION}.json")
    ended = json.loads(manifest.read_text())
    running = {k: v for k, v in ended.items() if k not in ("ended_at", "exit_code")}
    manifest.write_text(json.dumps({**running, "status": "running"}))
    live = tmp_path / "live"
    args = ("--watch", home / ".cline", "--sink", "local")
    daemon = RunningTailerd(*args, "--state-dir", live, "--data-dir", live, "--verbose")
    try:
        assert poll(lambda: _roots(live / "tailerd.db") == 4, timeout=60), daemon.log
        # Cline's rewrite, with the daemon looking at the temporary file before the rename (it
        # is named like a rotated copy of the session file and has its content), then the end
        # of the CLI: the 5th turn ships from the new inode
        tmp = messages.with_name(messages.name + ".tmp")
        tmp.write_bytes(messages.read_bytes())
        assert poll(lambda: "same content as path=" in daemon.log, timeout=60), daemon.log
        os.replace(tmp, messages)
        gone = f"replaced or renamed away; draining what is left path={messages}\n"
        assert poll(lambda: gone in daemon.log, timeout=60), daemon.log
        manifest.write_text(json.dumps(ended))
        assert poll(lambda: _roots(live / "tailerd.db") == 5, timeout=60), daemon.log
        code, _ = daemon.terminate(timeout=60)
        assert code == 0, daemon.log
    finally:
        daemon.stop()
    for seed in ("0", "1", "2", "3"):
        run = tmp_path / f"once-{seed}"
        shutil.copytree(live, run)
        messages.touch()
        result = run_tailerd(
            *args, "--once", "--state-dir", run, "--data-dir", run, PYTHONHASHSEED=seed
        )
        assert result.returncode == 0, result.stderr
        assert "0 turns emitted" in result.stderr, (seed, result.stderr)
        assert _roots(run / "tailerd.db") == 5, seed
