"""`import` and `preview` after a daemon: what the state dir's checkpoints say was shipped is not
sent (or shown) again, unless `--resend`; a path no format recognises is said in one line.

Before tailerd/shipped_before.py, `import` after `--once` re-sent every span to an OTLP receiver
(a reviewer's repro: Claude 190 spans, Cline 21, ...), so a pipeline counting spans counted tokens
and cost twice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import FIXTURES, ROOT, run_tailerd
from tests.live_daemon import turn_line
from tests.otlp_receiver import running

CLINE = FIXTURES / "cline" / "cline-cline" / "sdk" / "packages" / "core" / "fixtures" / "session"
CLINE_SESSION = "1784094124598_rruoq"
# Cline fixture, by hand (tests/formats/test_cline.py's jq counts): 5 turns, 16 chat spans and
# 11 tool spans: 5 + 16 + 11 = 32 spans.
CLINE_SPANS = 32


def _otlp(url: str, state: Path) -> tuple[str, ...]:
    return ("--sink", "otlp", "--otlp-endpoint", url, "--state-dir", str(state))


def test_import_after_once_sends_only_what_the_daemon_did_not(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "a.jsonl"
    # By hand: 3 native turns of one session, each a root span + 1 chat span = 6 spans.
    log.write_bytes(turn_line("s1", "t1") + turn_line("s1", "t2") + turn_line("s1", "t3"))
    state = tmp_path / "state"
    with running() as rec:
        once = run_tailerd("--watch", logs, "--once", *_otlp(rec.url, state))
        assert once.returncode == 0, once.stderr
        assert len(rec.spans) == 6, once.stderr

        checkpoints = (state / "checkpoints.db").read_bytes()
        again = run_tailerd("import", log, *_otlp(rec.url, state))
        assert again.returncode == 0, again.stderr
        assert len(rec.spans) == 6, again.stderr  # nothing new reached the receiver
        assert (state / "checkpoints.db").read_bytes() == checkpoints  # import writes none
        assert "imported 0 sessions, 0 turns" in again.stderr, again.stderr
        assert "3 turns already shipped by the daemon left out" in again.stderr, again.stderr

        shown = run_tailerd("preview", log, "--state-dir", state)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == "", shown.stdout  # preview shows what import would send
        assert "3 turns already shipped by the daemon left out" in shown.stderr, shown.stderr

        resent = run_tailerd("import", log, "--resend", *_otlp(rec.url, state))
        assert resent.returncode == 0, resent.stderr
        assert len(rec.spans) == 12, resent.stderr  # all 6 again, the same ids
        assert sorted(rec.span_ids()[6:]) == sorted(rec.span_ids()[:6])

        with log.open("ab") as f:  # appended after the --once: 1 turn = 2 spans
            f.write(turn_line("s1", "t4"))
        new = run_tailerd("import", log, *_otlp(rec.url, state))
        assert new.returncode == 0, new.stderr
        assert "imported 1 sessions, 1 turns" in new.stderr, new.stderr
        assert len(rec.spans) == 14, new.stderr
        assert not set(rec.span_ids()[12:]) & set(rec.span_ids()[:12])
        assert (state / "checkpoints.db").read_bytes() == checkpoints


def test_import_after_once_leaves_out_a_documents_sent_turns(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dest = home / ".cline" / "data" / "sessions" / CLINE_SESSION
    dest.mkdir(parents=True)
    shutil.copyfile(CLINE / "session.json", dest / f"{CLINE_SESSION}.json")
    messages = dest / f"{CLINE_SESSION}.messages.json"
    shutil.copyfile(CLINE / "session.messages.json", messages)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: the last turn is finished
    state = tmp_path / "state"
    with running() as rec:
        once = run_tailerd("--watch", home / ".cline", "--once", *_otlp(rec.url, state))
        assert once.returncode == 0, once.stderr
        assert len(rec.spans) == CLINE_SPANS, once.stderr

        again = run_tailerd("import", home / ".cline", *_otlp(rec.url, state))
        assert again.returncode == 0, again.stderr
        assert len(rec.spans) == CLINE_SPANS, again.stderr
        assert "5 turns already shipped by the daemon left out" in again.stderr, again.stderr

        resent = run_tailerd("import", messages, "--resend", *_otlp(rec.url, state))
        assert resent.returncode == 0, resent.stderr
        assert len(rec.spans) == 2 * CLINE_SPANS, resent.stderr


def test_import_after_once_leaves_out_a_databases_sessions_up_to_their_cursors(
    tmp_path: Path,
) -> None:
    # tests/test_import_databases.py's hand count of this OpenCode database: 2 turns.
    data_home = tmp_path / "home" / ".local" / "share" / "opencode"
    data_home.mkdir(parents=True)
    db = data_home / "opencode.db"
    shutil.copyfile(ROOT / "tests" / "data" / "opencode-storage" / "migrated" / "opencode.db", db)
    state = tmp_path / "state"
    with running() as rec:
        once = run_tailerd("--watch", data_home, "--once", *_otlp(rec.url, state))
        assert once.returncode == 0, once.stderr
        shipped = len(rec.spans)
        assert len(rec.roots()) == 2, once.stderr

        again = run_tailerd("import", db, *_otlp(rec.url, state))
        assert again.returncode == 0, again.stderr
        assert len(rec.spans) == shipped, again.stderr
        assert "2 turns already shipped by the daemon left out" in again.stderr, again.stderr
