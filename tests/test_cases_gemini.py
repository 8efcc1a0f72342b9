"""Case `gemini-resume-migrates-legacy` (../shared/cases/): Gemini CLI resuming a legacy `.json`
session writes `<same name>.jsonl` with every earlier message again. Each turn ships once.

Expected values from the case's EXPECTED.md: 3 turns, 8 spans on the wire (3 turn roots, 3 LLM,
2 tools), tokens in 3700 / out 63, no span id twice. By hand from the input files: turns
m-u1 (in 900 / out 15), m-u2 (in 1300 / out 40, tool `replace`), m-u3 (in 1500 / out 8, tool
`run_shell_command`); the `.jsonl` repeats m-u1..m-g2 with the same ids.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from tests.conftest import ROOT, run_tailerd
from tests.live_daemon import otlp_daemon, quiet
from tests.otlp_receiver import Receiver

CASE = ROOT.parent / "shared" / "cases" / "gemini-resume-migrates-legacy"
CHATS = Path(".gemini/tmp/f0e1d2c3b4a5/chats")
LEGACY = "session-2026-08-20T09-00-7a7a7a7a.json"
RESUMED = "session-2026-08-20T09-00-7a7a7a7a.jsonl"
TURNS, SPANS, LLM, TOOLS, TOKENS_IN, TOKENS_OUT = 3, 8, 3, 2, 3700, 63
PROMPTS = ["what does make lint run?", "add shellcheck to it", "and run it"]


def aged_copy(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(CASE / "input", home, copy_function=shutil.copyfile)
    age(home)
    return home


def age(home: Path) -> None:
    """As the cases README says: files 2 hours old, so idle turns count as finished."""
    then = time.time() - 2 * 3600
    for path in home.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def tally(receiver: Receiver) -> dict[str, int]:
    ops = [s["attributes"].get("gen_ai.operation.name") for s in receiver.spans]
    llm = [s for s in receiver.spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    return {
        "turns": len(receiver.roots()),
        "spans": len(receiver.spans),
        "distinct": len(set(receiver.span_ids())),
        "llm": ops.count("chat"),
        "tools": ops.count("execute_tool"),
        "in": sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in llm),
        "out": sum(s["attributes"].get("gen_ai.usage.output_tokens", 0) for s in llm),
    }


EXPECTED = {"turns": TURNS, "spans": SPANS, "distinct": SPANS, "llm": LLM, "tools": TOOLS,
            "in": TOKENS_IN, "out": TOKENS_OUT}  # fmt: skip


def prompts(receiver: Receiver) -> list[str]:
    out = []
    for root in receiver.roots():
        messages = json.loads(root["attributes"]["gen_ai.input.messages"])
        out.append(messages[0]["parts"][0]["content"])
    return sorted(out)


def test_once_ships_each_turn_once_and_counts_the_copies(tmp_path, receiver: Receiver):
    home, state = aged_copy(tmp_path), tmp_path / "state"
    args = ("--watch", home / ".gemini/tmp", "--once", "--state-dir", state, "--data-dir", state,
            "--sink", "otlp", "--otlp-endpoint", receiver.url)  # fmt: skip
    result = run_tailerd(*args)
    assert result.returncode == 0, result.stderr
    assert tally(receiver) == EXPECTED
    assert prompts(receiver) == sorted(PROMPTS)
    status = run_tailerd("status", "--json", "--state-dir", state)
    assert json.loads(status.stdout)["duplicates_skipped"] == 2  # m-u1 and m-u2 copied
    again = run_tailerd(*args)
    assert again.returncode == 0, again.stderr
    assert tally(receiver) == EXPECTED  # nothing new on a second run


def test_once_resumed_file_arriving_in_a_later_run_ships_only_the_new_turn(
    tmp_path, receiver: Receiver
):
    """The real order: the legacy session was shipped on an earlier day; the resume happens
    later. The index in checkpoints.db (not this run's memory) must recognise the copy."""
    home, state = aged_copy(tmp_path), tmp_path / "state"
    resumed = home / CHATS / RESUMED
    parked = tmp_path / RESUMED
    resumed.rename(parked)
    args = ("--watch", home / ".gemini/tmp", "--once", "--state-dir", state, "--data-dir", state,
            "--sink", "otlp", "--otlp-endpoint", receiver.url)  # fmt: skip
    assert run_tailerd(*args).returncode == 0
    assert len(receiver.roots()) == 2  # the legacy file's two turns
    parked.rename(resumed)
    assert run_tailerd(*args).returncode == 0
    assert tally(receiver) == EXPECTED
    assert prompts(receiver) == sorted(PROMPTS)


def test_live_resume_while_tailing_ships_only_the_new_turn(tmp_path, receiver: Receiver):
    home, state = aged_copy(tmp_path), tmp_path / "state"
    resumed = home / CHATS / RESUMED
    data = resumed.read_bytes()
    resumed.unlink()
    config = tmp_path / "tailerd.toml"
    config.write_text("[format_options.gemini]\nidle_close = 1.0\n")
    daemon = otlp_daemon(home / ".gemini/tmp", state, receiver.url, "--config", config)
    try:
        assert receiver.wait_for(lambda r: len(r.roots()) == 2, timeout=30), daemon.log
        with resumed.open("wb") as fh:  # Gemini CLI writes the resumed session as it goes
            fh.write(data)
        assert receiver.wait_for(lambda r: len(r.roots()) == TURNS, timeout=30), daemon.log
        assert quiet(receiver, for_seconds=2.5, timeout=20)
        assert tally(receiver) == EXPECTED
        assert prompts(receiver) == sorted(PROMPTS)
    finally:
        daemon.stop()
