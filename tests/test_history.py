"""The host-wide history index (tailerd/history.py): its table in checkpoints.db, its rules,
and its kill safety, against a real SQLite database and the real daemon.

Expected values come from the cases' EXPECTED.md files (../shared/cases/) and from hand counts
written next to each assertion.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from tailerd.daemon import Daemon
from tailerd.domain import Delivered, Outcome, Retry, Turn
from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint
from tailerd.history import HistoryIndex
from tailerd.settings import Settings
from tests.conftest import ROOT, run_tailerd
from tests.otlp_receiver import Receiver

CASES = ROOT.parent / "shared" / "cases"
GEMINI = CASES / "gemini-resume-migrates-legacy"
CLAUDE = CASES / "claude-resume-copies-history"

# ---- the table --------------------------------------------------------------------------------

SCHEMA_1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    key TEXT PRIMARY KEY, path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
    head_len INTEGER NOT NULL, head_hash TEXT NOT NULL, "offset" INTEGER NOT NULL,
    format TEXT NOT NULL, stable_name TEXT NOT NULL, context TEXT NOT NULL,
    document INTEGER NOT NULL, turns_emitted INTEGER NOT NULL, dead_letters INTEGER NOT NULL,
    removed_at REAL
);
CREATE TABLE turn_keys (
    file_key TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('sent', 'ahead')),
    turn_key TEXT NOT NULL, PRIMARY KEY (file_key, kind, turn_key)
) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO files VALUES ('7:1', '/logs/1.jsonl', 7, 1, 1024, 'ab', 4096, 'native', '1.jsonl',
    '{}', 0, 3, 0, NULL);
INSERT INTO turn_keys VALUES ('7:1', 'ahead', 'k9');
"""


def cp(inode: int, offset: int = 0) -> FileCheckpoint:
    return FileCheckpoint(f"/logs/{inode}.jsonl", 7, inode, 1024, "ab", offset)


def test_schema_1_database_is_upgraded_in_place_keeping_every_checkpoint(tmp_path):
    db = sqlite3.connect(tmp_path / "checkpoints.db", isolation_level=None)
    db.executescript(SCHEMA_1)
    db.close()
    reader = CheckpointStore(tmp_path, readonly=True)  # a reader of a v1 database: no history
    assert reader.shipped(["x"]) == {}
    reader.close()
    store = CheckpointStore(tmp_path)
    loaded = store.load()
    assert (loaded["7:1"].offset, loaded["7:1"].resolved_ahead) == (4096, ["k9"])
    assert any("schema 1 to 3" in w for w in store.warnings)  # 1 -> 2 -> 3
    store.save([], shipped=[("gemini:message:a", "k", "7:1", 100.0)])
    store.close()
    db = sqlite3.connect(tmp_path / "checkpoints.db")
    assert db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone() == ("3",)
    assert db.execute("SELECT * FROM history").fetchall() == [
        ("gemini:message:a", "k", "7:1", 100.0)
    ]
    db.close()


def test_rows_keep_their_first_owner_and_are_pruned_by_last_shipment(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save([cp(1, 10)], shipped=[("i1", "t1", "7:1", 100.0), ("i2", "t1", "7:1", 100.0)])
    store.save([cp(2, 20)], shipped=[("i1", "t2", "7:2", 500.0)])  # shipped again elsewhere
    assert store.shipped(["i1", "i2", "i3"]) == {"i1": ("t1", "7:1"), "i2": ("t1", "7:1")}
    assert store.prune_history(before=200.0) == 1  # i2 (time 100); i1 moved to 500
    assert store.shipped(["i1", "i2"]) == {"i1": ("t1", "7:1")}
    assert store.history_size() == 1
    many = [f"m{i}" for i in range(1200)]  # more than one lookup query's worth of variables
    store.save([], shipped=[(m, "t3", "7:3", 900.0) for m in many])
    assert len(store.shipped(many)) == 1200
    store.close()


def turn(key: str, *identities: str) -> Turn:
    return Turn(key=key, session_id="s", start=0, end=1, identities=identities)


def test_a_turn_is_a_copy_only_when_every_identity_is_known_from_elsewhere(tmp_path):
    store = CheckpointStore(tmp_path)
    store.load()
    store.save([], shipped=[("a", "t1", "f1", 1.0), ("b", "t1", "f1", 1.0)])
    index = HistoryIndex(store, retention=86400)
    assert index.is_copy(turn("t1", "a", "b"), "f2") == ("t1", "f1")  # same key, other file
    assert index.is_copy(turn("t9", "a", "b"), "f1") == ("t1", "f1")  # other key, same file
    assert index.is_copy(turn("t1", "a", "b"), "f1") is None  # itself
    assert index.is_copy(turn("t2", "a", "c"), "f2") is None  # "c" is new content
    assert index.is_copy(turn("t2"), "f2") is None  # no identities: never deduplicated
    pending = turn("t5", "p", "q")
    index.emitted(pending, "f5")
    assert index.is_copy(turn("t6", "p", "q"), "f6") == ("t5", "f5")  # in flight this run
    index.settled(pending, "f5", delivered=False, now=2.0)  # refused: its copies ship
    assert index.is_copy(turn("t6", "p", "q"), "f6") is None
    assert index.take_rows() == []
    store.close()


def test_rows_wait_for_the_checkpoint_save_and_a_dry_index_writes_nothing(tmp_path):
    store = CheckpointStore(tmp_path)
    store.load()
    index = HistoryIndex(store, retention=86400)
    shipped = turn("t1", "a")
    index.emitted(shipped, "f1")
    index.settled(shipped, "f1", delivered=True, now=5.0)
    assert store.shipped(["a"]) == {}  # not before the save
    assert index.is_copy(turn("t2", "a"), "f2") == ("t1", "f1")  # still known meanwhile
    rows = index.take_rows()
    store.save([], shipped=rows)
    index.committed(rows)
    assert store.shipped(["a"]) == {"a": ("t1", "f1")}
    dry = HistoryIndex(store, retention=86400, write=False)
    other = turn("t3", "z")
    dry.emitted(other, "f3")
    dry.settled(other, "f3", delivered=True, now=6.0)
    assert dry.take_rows() == []
    assert dry.is_copy(turn("t4", "z"), "f4") == ("t3", "f3")  # the run itself still dedupes
    assert dry.prune(time.time() + 10**9) == 0
    store.close()


# ---- kill -9 between acknowledgement and commit ------------------------------------------------


class Recording:
    """A sink that records every span id offered and answers as `mode` says."""

    name = "recording"

    def __init__(self, mode: str = "up") -> None:
        self.mode = mode
        self.delivered: list[int] = []
        self.prompts: list[str] = []

    def send(self, spans: Sequence[ReadableSpan]) -> Outcome:
        if self.mode == "down":
            return Retry("down")
        for s in spans:
            assert s.context is not None
            self.delivered.append(s.context.span_id)
            if s.parent is None:
                self.prompts.append(str((s.attributes or {}).get("gen_ai.input.messages")))
        return Delivered()

    def close(self) -> None:
        pass


def gemini_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(GEMINI / "input", home, copy_function=shutil.copyfile)
    then = time.time() - 7200  # aged as the cases README says
    for p in home.rglob("*"):
        if p.is_file():
            os.utime(p, (then, then))
    return home / ".gemini" / "tmp"


def run_daemon(watch: Path, state: Path, sink: Recording, *, kill_before_commit: bool) -> Daemon:
    state.mkdir(exist_ok=True)
    settings = Settings(watch=(watch,), once_timeout=0.5, shutdown_timeout=0)
    daemon = Daemon(settings, state, [sink], threaded_delivery=False)
    if kill_before_commit:  # the first acknowledgement is followed by a kill before its commit

        def killed(*_args: object, **_kwargs: object) -> None:
            raise Killed

        daemon.store.save = killed  # type: ignore[method-assign]
    daemon.start(watch=False)
    with contextlib.suppress(Killed):
        daemon.run_once()
    daemon.table.pool.close_all()
    return daemon  # abandoned, as by kill -9 (no drain, no close)


class Killed(BaseException):
    """kill -9: nothing after it runs."""


@pytest.mark.skipif(
    not GEMINI.is_dir() and not os.environ.get("CI"), reason="shared cases not present"
)  # CI: fail
def test_kill_between_ack_and_commit_resends_the_same_ids_and_skips_nothing_unshipped(tmp_path):
    # EXPECTED.md: 3 turns, 8 spans. Run 1 is killed after its first batch was acknowledged,
    # before that batch's commit: nothing is indexed, so run 2 re-sends that batch (same ids)
    # and ships every turn, 8 distinct spans, none skipped.
    watch, state = gemini_home(tmp_path), tmp_path / "state"
    first = Recording()
    run_daemon(watch, state, first, kill_before_commit=True)
    assert first.delivered  # something was acknowledged before the kill
    second = Recording()
    run_daemon(watch, state, second, kill_before_commit=False)
    assert set(first.delivered) <= set(second.delivered)  # re-sent with the same ids
    assert len(second.delivered) == len(set(second.delivered)) == 8
    assert len(second.prompts) == 3
    third = Recording()
    run_daemon(watch, state, third, kill_before_commit=False)
    assert third.delivered == []


@pytest.mark.skipif(
    not GEMINI.is_dir() and not os.environ.get("CI"), reason="shared cases not present"
)  # CI: fail
def test_copy_skipped_while_its_original_is_unacknowledged_is_still_shipped_after_a_kill(
    tmp_path,
):
    """Run 1: the backend is down, so whichever file's turns go first stay unacknowledged and
    their copies in the other file are skipped (and that file's checkpoint may pass them).
    Killed. Run 2, backend up: all 3 turns of EXPECTED.md arrive, 8 distinct spans."""
    watch, state = gemini_home(tmp_path), tmp_path / "state"
    run_daemon(watch, state, Recording("down"), kill_before_commit=False)
    up = Recording()
    run_daemon(watch, state, up, kill_before_commit=False)
    assert len(up.delivered) == len(set(up.delivered)) == 8
    assert len(up.prompts) == 3


# ---- Claude Code resume through a real OTLP receiver -------------------------------------------


@pytest.mark.skipif(
    not CLAUDE.is_dir() and not os.environ.get("CI"), reason="shared cases not present"
)  # CI: fail
@pytest.mark.parametrize("variant", ["input", "input-new-session-id"])
def test_claude_resume_copy_is_shipped_once(tmp_path, receiver: Receiver, variant: str):
    # EXPECTED.md, both inputs: 2 turns, 4 spans (2 roots, 2 LLM), tokens in 4038 / out 10,
    # no span id twice, no turn's content under two sessions.
    home = tmp_path / "home"
    shutil.copytree(CLAUDE / variant, home, copy_function=shutil.copyfile)
    then = time.time() - 7200
    for p in home.rglob("*"):
        if p.is_file():
            os.utime(p, (then, then))
    state = tmp_path / "state"
    args = ("--watch", home / ".claude/projects", "--once", "--state-dir", state, "--data-dir",
            state, "--sink", "otlp", "--otlp-endpoint", receiver.url)  # fmt: skip
    result = run_tailerd(*args)
    assert result.returncode == 0, result.stderr
    llm = [s for s in receiver.spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(receiver.roots()) == 2
    assert len(receiver.spans) == len(set(receiver.span_ids())) == 4
    assert sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in llm) == 4038
    assert sum(s["attributes"].get("gen_ai.usage.output_tokens", 0) for s in llm) == 10
    prompts = [r["attributes"]["gen_ai.input.messages"] for r in receiver.roots()]
    assert len(set(prompts)) == 2  # "what is 3 + 2 * 5?" once, the new prompt once
    assert run_tailerd(*args).returncode == 0
    assert len(receiver.spans) == 4
