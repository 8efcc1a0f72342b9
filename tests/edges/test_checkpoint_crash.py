"""Crash safety and resumption: kill -9 during commits; a real `tailerd --once` resuming from
a checkpoints.json written in today's format."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tailerd.edges.checkpoint_store import CheckpointStore
from tests.conftest import ROOT, run_tailerd
from tests.edges.checkpoint_writer import FILES
from tests.edges.legacy_format import LEGACY_FIELDS, legacy_entry, write_legacy
from tests.otlp_receiver import Receiver

KILLS = 20


def test_kill_9_during_commits_leaves_one_whole_generation(tmp_path):
    rng = random.Random(20261130)
    seen: list[int] = []
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.edges.checkpoint_writer", str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        store = CheckpointStore(tmp_path)
        loaded = store.load()
        store.close()
        gens = {(c.offset, c.context["gen"], tuple(c.resolved_ahead)) for c in loaded.values()}
        if not loaded:
            assert not seen or seen[-1] == 0, "state vanished after a kill"
            seen.append(0)
            continue
        assert len(loaded) == FILES
        assert len(gens) == 1, f"a mix of generations after a kill: {sorted(gens)[:3]}"
        ((g, context_gen, ahead),) = gens
        assert (context_gen, ahead) == (g, (f"a{g}", f"b{g}"))
        assert not seen or g >= seen[-1], f"generation went back from {seen[-1]} to {g}"
        seen.append(g)
    assert seen[-1] >= KILLS // 2, seen  # the writer did make progress between kills


def once(logs: Path, state: Path, *extra: str | Path):
    return run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", state, *extra)


def test_once_resumes_from_todays_checkpoints_json_without_resending(
    logs, tmp_path, receiver: Receiver
):
    """Checkpoints written as tailerd 0.1 wrote them (checkpoints.json) are imported; the next
    run sends nothing, and an appended turn is the only thing sent after that."""
    state = tmp_path / "state"
    sink = ("--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert once(logs, state, *sink).returncode == 0
    sent = len(receiver.spans)
    assert sent == 19  # hand count of examples/logs, see tests/test_once.py
    # Rewrite the state as today's code leaves it: only checkpoints.json, in its shape.
    reader = CheckpointStore(state, readonly=True)
    files = {
        key: legacy_entry(**{f: getattr(c, f) for f in LEGACY_FIELDS})
        for key, c in reader.load().items()
    }
    reader.close()
    assert sorted(Path(f["path"]).name for f in files.values()) == [
        "2026-11-24.jsonl",
        "session-r1.jsonl",
    ]
    for name in ("checkpoints.db", "checkpoints.db-wal", "checkpoints.db-shm"):
        (state / name).unlink(missing_ok=True)
    write_legacy(state, files)

    again = once(logs, state, *sink)
    assert again.returncode == 0, again.stderr
    assert len(receiver.spans) == sent  # nothing re-sent
    assert "migrated 2 file checkpoints" in again.stderr
    assert not (state / "checkpoints.json").exists()
    assert (state / "checkpoints.json.migrated").exists()

    with (logs / "research-agent" / "session-r1.jsonl").open("a") as fh:
        fh.write('{"type":"turn_end","session_id":"ra-0001","turn_id":"t3"}\n')
    third = once(logs, state, *sink)
    assert third.returncode == 0, third.stderr
    assert len(receiver.spans) == sent + 2  # t3 only: its root and its one chat span
    assert "migrated" not in third.stderr
