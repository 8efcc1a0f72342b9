"""A dry run is dry (issue 8 kind 9): `--sink console` alone moves no checkpoint and writes no
history, so the next real run on the same state dir sends everything."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tailerd
from tests.otlp_receiver import Receiver
from tests.test_once import EXAMPLE_SPANS, EXAMPLE_TURNS

GEMINI = ROOT.parent / "shared" / "cases" / "gemini-resume-migrates-legacy"


def rows(state: Path, table: str) -> int:
    db = sqlite3.connect(state / "checkpoints.db")
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def test_console_run_then_real_run_sends_everything(logs, tmp_path, receiver: Receiver):
    state = tmp_path / "state"
    common = ("--watch", logs, "--once", "--state-dir", state, "--data-dir", state)
    dry = run_tailerd(*common, "--sink", "console")
    assert dry.returncode == 0, dry.stderr
    printed = [json.loads(line) for line in dry.stdout.splitlines()]
    assert len(printed) == EXAMPLE_SPANS  # the dry run shows what would be sent
    assert rows(state, "files") == 0
    again = run_tailerd(*common, "--sink", "console")  # a dry run twice shows it all twice
    assert len(again.stdout.splitlines()) == EXAMPLE_SPANS
    real = run_tailerd(*common, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert real.returncode == 0, real.stderr
    assert len(receiver.roots()) == EXAMPLE_TURNS
    assert len(receiver.spans) == EXAMPLE_SPANS
    assert rows(state, "files") > 0
    status = json.loads(run_tailerd("status", "--json", "--state-dir", state).stdout)
    assert status["dry_run"] is False


def test_console_with_another_sink_is_not_a_dry_run(logs, tmp_path, receiver: Receiver):
    state = tmp_path / "state"
    common = ("--watch", logs, "--once", "--state-dir", state, "--data-dir", state)
    otlp = ("--sink", "otlp", "--otlp-endpoint", receiver.url)
    both = run_tailerd(*common, "--sink", "console", *otlp)
    assert both.returncode == 0, both.stderr
    assert rows(state, "files") > 0
    again = run_tailerd(*common, *otlp)
    assert again.returncode == 0
    assert len(receiver.spans) == EXAMPLE_SPANS  # nothing twice


@pytest.mark.skipif(
    not GEMINI.is_dir() and not os.environ.get("CI"), reason="shared cases not present"
)  # CI: fail
def test_dry_run_writes_no_history_but_dedupes_within_itself(tmp_path, receiver: Receiver):
    # EXPECTED.md of gemini-resume-migrates-legacy: 8 spans, 3 turns, whether dry or real.
    home = tmp_path / "home"
    shutil.copytree(GEMINI / "input", home, copy_function=shutil.copyfile)
    then = time.time() - 7200
    for p in home.rglob("*"):
        if p.is_file():
            os.utime(p, (then, then))
    state = tmp_path / "state"
    common = ("--watch", home / ".gemini/tmp", "--once", "--state-dir", state, "--data-dir", state)
    dry = run_tailerd(*common, "--sink", "console")
    assert dry.returncode == 0, dry.stderr
    assert len(dry.stdout.splitlines()) == 8
    assert rows(state, "history") == 0
    real = run_tailerd(*common, "--sink", "otlp", "--otlp-endpoint", receiver.url)
    assert real.returncode == 0, real.stderr
    assert len(receiver.spans) == len(set(receiver.span_ids())) == 8
    assert rows(state, "history") == 6  # message ids m-u1, m-g1, m-u2, m-g2, m-u3, m-g3
