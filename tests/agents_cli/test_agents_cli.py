"""The real agent CLIs, pinned from npm, against scripted model servers: the script is the oracle.

For each agent (tests/agents_cli/scenarios.py) the CLI really runs its turns — its shell tool
really executes `ls` and `cat notes.txt` in the temporary working directory, Claude Code's
sub-agent runs `wc -l` — and tailerd must then hold exactly what the script says: one root span
per prompt, one chat span per scripted reply with that reply's tokens (input counts cache reads
and writes), one `execute_tool` span per scripted tool call, one nested `invoke_agent` per
sub-agent. Twice: `tailerd --once` after the CLI finished, and a daemon running while the CLI
writes. A format tailerd does not have yet (`tailerd.formats.BY_NAME`) is skipped by name until
it lands. Without npm the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tailerd.formats import BY_NAME
from tests.agents_cli import install, model_server
from tests.agents_cli.harness import (
    expected,
    play_and_read_once,
    prepare_home,
    run_cli,
    status_counts,
    stored,
    tailerd_config,
)
from tests.agents_cli.scenarios import SCENARIOS, Scenario
from tests.live_daemon import RunningTailerd, poll

pytestmark = pytest.mark.slow

LIVE_TIMEOUT = 60.0


def binary_for(scenario: Scenario) -> Path:
    if scenario.format not in BY_NAME:
        pytest.skip(f"tailerd has no `{scenario.format}` format yet (not in formats.BY_NAME)")
    try:
        return install.install(scenario.agent)
    except install.Unavailable as exc:
        if shutil.which("npm") is None and not os.environ.get("CI"):
            pytest.skip(f"the real-CLI tests need npm: {exc}")
        pytest.fail(str(exc))


@pytest.mark.parametrize("agent", list(SCENARIOS))
def test_once_after_the_cli_ships_exactly_the_script(agent: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[agent]
    outcome = play_and_read_once(scenario, binary_for(scenario), tmp_path)
    assert outcome.tailerd.returncode == 0, outcome.tailerd.stderr
    assert "0 unacknowledged" in outcome.tailerd.stderr, outcome.tailerd.stderr
    assert outcome.got == outcome.want
    assert outcome.dead_letters == 0


@pytest.mark.parametrize("agent", list(SCENARIOS))
def test_live_daemon_while_the_cli_writes_ships_exactly_the_script(
    agent: str, tmp_path: Path
) -> None:
    scenario = SCENARIOS[agent]
    binary = binary_for(scenario)
    home = tmp_path / "home"
    prepare_home(home)
    (home / scenario.watch).mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    want = expected(scenario)
    daemon = RunningTailerd(
        "--watch", home / scenario.watch, "--state-dir", state, "--data-dir", state,
        "--config", tailerd_config(scenario, tmp_path),
    )  # fmt: skip
    try:
        with model_server.running(
            scenario.all_replies, scenario.model, scenario.side, scenario.side_text
        ) as server:
            run_cli(scenario, binary, home, server)
        waited = poll(lambda: stored(state / "tailerd.db") == want, LIVE_TIMEOUT, every=0.2)
        assert waited is not None, (stored(state / "tailerd.db"), want, daemon.log[-3000:])
        code, _ = daemon.terminate(timeout=30)
        assert code == 0, daemon.log[-3000:]
    finally:
        daemon.stop()
    assert stored(state / "tailerd.db") == want
    assert status_counts(state)[0] == 0
