"""The SQLite checkpoint store against real files and a real SQLite database."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tailerd.edges import checkpoint_store
from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint
from tailerd.errors import EX_DATAERR, StateCorruptError
from tests.edges.legacy_format import legacy_entry, write_legacy


def cp(inode: int, offset: int = 0, **extra) -> FileCheckpoint:
    return FileCheckpoint(
        path=f"/logs/{inode}.jsonl", device=7, inode=inode, head_len=1024, head_hash="ab12",
        offset=offset, **extra,
    )  # fmt: skip


def raw(state: Path) -> sqlite3.Connection:
    return sqlite3.connect(state / "checkpoints.db", isolation_level=None)


def count(state: Path, sql: str, *args: object) -> int:
    db = raw(state)
    try:
        return int(db.execute(sql, args).fetchone()[0])
    finally:
        db.close()


def test_round_trip_keeps_every_field(tmp_path):
    first = FileCheckpoint(
        path="/logs/a.jsonl", device=64769, inode=1234567, head_len=1024, head_hash="f" * 64,
        offset=987654321, format="claude-code", stable_name="rollout-1",
        context={"session": "s1", "open": [{"turn": 3, "at": 1.5}], "ok": True},
        resolved_ahead=["claude-code|s1|u7", "claude-code|s1|u9"], document=False,
        turns_emitted=41, dead_letters=2, removed_at=None,
    )  # fmt: skip
    second = FileCheckpoint(
        path="/g/session-1.json", device=64769, inode=99, head_len=17, head_hash="00",
        format="gemini", document=True, sent_keys=["gemini|s|1", "gemini|s|2"],
        removed_at=1764500000.25,
    )  # fmt: skip
    store = CheckpointStore(tmp_path)
    assert store.load() == {}
    store.save([first, second])
    store.close()
    loaded = CheckpointStore(tmp_path).load()
    assert loaded == {"64769:1234567": first, "64769:99": second}
    assert loaded["64769:99"].key == "64769:99"


def test_save_writes_only_the_changed_rows(tmp_path):
    store = CheckpointStore(tmp_path)
    everything = {c.key: c for c in (cp(i, 100, resolved_ahead=[f"k{i}"]) for i in range(200))}
    store.save(everything)
    # 200 file rows + 200 turn-key rows + 1 meta row (schema version).
    assert count(tmp_path, "SELECT count(*) FROM files") == 200
    db = store._db
    assert db is not None
    before = db.total_changes
    one = everything["7:5"]
    one.offset, one.resolved_ahead = 250, ["k5", "x"]
    store.save([one])
    assert db.total_changes - before == 2  # the file row, one added turn key
    before = db.total_changes
    store.save(everything)  # the old daemon's call: every checkpoint, none changed since
    assert db.total_changes - before == 0
    one.resolved_ahead = ["x"]
    store.save(everything)
    assert db.total_changes - before == 1  # one deleted turn key; nothing else touched
    store.close()
    loaded = CheckpointStore(tmp_path).load()
    assert (loaded["7:5"].offset, loaded["7:5"].resolved_ahead) == (250, ["x"])
    assert (loaded["7:6"].offset, loaded["7:6"].resolved_ahead) == (100, ["k6"])


def test_removed_keys_go_with_their_turn_keys(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save([cp(1, sent_keys=["a", "b"], document=True), cp(2, resolved_ahead=["c"])])
    store.save([], removed=["7:1"])
    store.close()
    assert list(CheckpointStore(tmp_path).load()) == ["7:2"]
    assert count(tmp_path, "SELECT count(*) FROM turn_keys WHERE file_key = '7:1'") == 0


def test_a_second_store_without_load_still_writes_deltas(tmp_path):
    """A store that never loaded reads the stored turn keys rather than duplicating them."""
    CheckpointStore(tmp_path).save([cp(1, resolved_ahead=["a", "b"])])
    other = CheckpointStore(tmp_path)
    other.save([cp(1, resolved_ahead=["b", "c"])])
    other.close()
    assert CheckpointStore(tmp_path).load()["7:1"].resolved_ahead == ["b", "c"]


def test_turn_keys_are_capped_per_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_store, "MAX_TURN_KEYS_PER_FILE", 3)
    store = CheckpointStore(tmp_path)
    store.save([cp(1, sent_keys=["k1", "k2", "k3", "k4", "k5"], document=True)])
    store.close()
    assert CheckpointStore(tmp_path).load()["7:1"].sent_keys == ["k3", "k4", "k5"]


def test_unknown_schema_version_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save([cp(1)])
    store.close()
    db = raw(tmp_path)
    db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    db.close()
    with pytest.raises(StateCorruptError, match=r"unknown schema version '99'.*move it aside"):
        CheckpointStore(tmp_path).load()
    with pytest.raises(StateCorruptError):
        CheckpointStore(tmp_path, readonly=True).load()


def test_a_foreign_database_is_refused(tmp_path):
    db = raw(tmp_path)
    db.execute("CREATE TABLE something (x)")
    db.close()
    with pytest.raises(StateCorruptError, match="unknown schema version None"):
        CheckpointStore(tmp_path).load()


@pytest.mark.parametrize("readonly", [False, True])
def test_garbage_file_is_refused_and_left_untouched(tmp_path, readonly):
    garbage = b"this is not a database\n" * 300
    (tmp_path / "checkpoints.db").write_bytes(garbage)
    with pytest.raises(StateCorruptError) as err:
        CheckpointStore(tmp_path, readonly=readonly).load()
    assert err.value.exit_code == EX_DATAERR == 65
    message = str(err.value)
    assert "\n" not in message and "move it aside" in message and "checkpoints.db" in message
    assert (tmp_path / "checkpoints.db").read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.db"]


def test_damaged_pages_fail_the_integrity_check(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save([cp(i, context={"pad": "x" * 200}) for i in range(300)])  # many pages
    store.close()
    path = tmp_path / "checkpoints.db"
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = b"\x07" * (2 * page)  # two b-tree pages overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(StateCorruptError, match="move it aside"):
        CheckpointStore(tmp_path).load()
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("device", "'not a number'"),
        ("context", "'{broken'"),
        ("context", "'[1]'"),
        ("inode", "inode + 1"),
    ],
)
def test_malformed_rows_are_refused(tmp_path, column, value):
    store = CheckpointStore(tmp_path)
    store.save([cp(1), cp(2)])
    store.close()
    db = raw(tmp_path)
    db.execute(f"UPDATE files SET {column} = {value} WHERE key = '7:2'")
    db.close()
    with pytest.raises(StateCorruptError, match=r"malformed checkpoint row '7:2'"):
        CheckpointStore(tmp_path).load()


def test_reader_sees_committed_data_and_never_blocks_the_writer(tmp_path):
    writer = CheckpointStore(tmp_path)
    writer.load()
    writer.save([cp(1, 10)])
    reader = CheckpointStore(tmp_path, readonly=True)
    assert reader.load()["7:1"].offset == 10
    # A reader in the middle of a read transaction: the writer commits regardless (WAL), and
    # the reader keeps its snapshot until it ends.
    held = sqlite3.connect(f"{(tmp_path / 'checkpoints.db').as_uri()}?mode=ro", uri=True)
    held.execute("BEGIN")
    assert held.execute('SELECT "offset" FROM files').fetchall() == [(10,)]
    writer.save([cp(1, 20), cp(2, 5)])
    assert held.execute('SELECT "offset" FROM files').fetchall() == [(10,)]
    held.execute("COMMIT")
    held.close()
    fresh = CheckpointStore(tmp_path, readonly=True)
    assert {k: c.offset for k, c in fresh.load().items()} == {"7:1": 20, "7:2": 5}
    with pytest.raises(PermissionError):
        fresh.save([cp(3)])
    fresh.close()
    reader.close()
    writer.close()


def test_reader_of_a_missing_database_creates_nothing(tmp_path):
    state = tmp_path / "state"
    assert CheckpointStore(state, readonly=True).load() == {}
    assert not state.exists()
    state.mkdir()
    assert CheckpointStore(state, readonly=True).load() == {}
    assert list(state.iterdir()) == []


def test_reader_after_a_clean_close_creates_nothing(tmp_path):
    writer = CheckpointStore(tmp_path)
    writer.save([cp(1, 3)])
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.db"]
    reader = CheckpointStore(tmp_path, readonly=True)
    assert reader.load()["7:1"].offset == 3
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.db"]


def test_files_are_0600(tmp_path):
    old = os.umask(0)
    try:
        store = CheckpointStore(tmp_path)
        store.save([cp(1)])
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        store.close()
    finally:
        os.umask(old)
    names = ("checkpoints.db", "checkpoints.db-wal", "checkpoints.db-shm")
    assert modes == dict.fromkeys(names, 0o600)


# ---- migration from checkpoints.json --------------------------------------------------------

LEGACY = {
    "7:1": legacy_entry(
        path="/logs/1.jsonl", device=7, inode=1, head_len=1024, head_hash="ab", offset=512,
        format="native", context={"open": {"s": 1}}, resolved_ahead=["native|s|9"],
        turns_emitted=4,
    ),
    "7:2": legacy_entry(
        path="/g/session-2.json", device=7, inode=2, head_len=40, head_hash="cd",
        format="gemini", document=True, sent_keys=["gemini|s|a", "gemini|s|b"],
        removed_at=1764500000.5,
    ),
}  # fmt: skip


def test_migrates_todays_checkpoints_json_once(tmp_path):
    write_legacy(tmp_path, LEGACY)
    store = CheckpointStore(tmp_path)
    loaded = store.load()
    assert loaded == {k: FileCheckpoint(**v) for k, v in LEGACY.items()}
    assert len(store.warnings) == 1 and "migrated 2 file checkpoints" in store.warnings[0]
    store.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoints.db", "checkpoints.json.migrated"]
    again = CheckpointStore(tmp_path)
    assert again.load() == loaded
    assert again.warnings == []


def test_reader_shows_an_unmigrated_json_without_migrating_it(tmp_path):
    write_legacy(tmp_path, LEGACY)
    assert CheckpointStore(tmp_path, readonly=True).load()["7:1"].offset == 512
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.json"]


def test_migration_uses_prev_generation_with_a_warning(tmp_path):
    write_legacy(tmp_path, LEGACY, name="checkpoints.json.prev")
    (tmp_path / "checkpoints.json").write_text('{"version": 1, "files": {}, "checksum": "x"}')
    store = CheckpointStore(tmp_path)
    assert store.load()["7:1"].offset == 512
    assert "previous generation" in store.warnings[0] and "migrated 2" in store.warnings[1]
    assert not (tmp_path / "checkpoints.json").exists()
    assert (tmp_path / "checkpoints.json.prev.migrated").exists()


@pytest.mark.parametrize(
    "text",
    ['{"version": 1, "files": {}, "checksum": "x"}', "{trunc", '{"version": 9}'],
)
def test_corrupt_json_still_refuses_and_creates_no_database(tmp_path, text):
    (tmp_path / "checkpoints.json").write_text(text)
    with pytest.raises(StateCorruptError, match=r"checkpoints\.json"):
        CheckpointStore(tmp_path).load()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints.json"]
    assert (tmp_path / "checkpoints.json").read_text() == text


def test_malformed_json_entry_refuses(tmp_path):
    write_legacy(tmp_path, {"7:1": {**LEGACY["7:1"], "offset": "twelve"}})
    with pytest.raises(StateCorruptError, match="entry malformed"):
        CheckpointStore(tmp_path).load()
    assert not (tmp_path / "checkpoints.db").exists()


def test_crash_between_migration_and_rename_finishes_the_rename(tmp_path):
    write_legacy(tmp_path, LEGACY)
    CheckpointStore(tmp_path).load()
    # As if killed after the import committed but before the rename: the JSON is still there.
    (tmp_path / "checkpoints.json.migrated").rename(tmp_path / "checkpoints.json")
    store = CheckpointStore(tmp_path)
    assert len(store.load()) == 2
    assert not (tmp_path / "checkpoints.json").exists()
    assert count(tmp_path, "SELECT count(*) FROM files") == 2


def test_a_stray_json_next_to_the_database_is_ignored_with_a_warning(tmp_path):
    CheckpointStore(tmp_path).save([cp(1, 1)])
    write_legacy(tmp_path, LEGACY)
    store = CheckpointStore(tmp_path)
    assert list(store.load()) == ["7:1"]
    assert store.warnings == [
        f"ignoring {tmp_path / 'checkpoints.json'}: checkpoints are kept in"
        f" {tmp_path / 'checkpoints.db'}"
    ]
    assert (tmp_path / "checkpoints.json").exists()
