"""The real agent CLIs, pinned from npm, against scripted model servers: the script is the oracle.

For each agent (tests/agents_cli/scenarios.py) the CLI really runs its turns — its shell tool
really executes `ls` and `cat notes.txt` in the temporary working directory, the sub-agent (where
the agent has one) runs `wc -l` — and tailerd must then hold exactly what the script says: one
root span per prompt, one chat span per scripted reply with that reply's tokens (input counts
cache reads and writes), one `execute_tool` span per scripted tool call, one nested
`invoke_agent` per sub-agent. Twice: a daemon running while the CLI writes, then `--once` from
scratch over the same files (one CLI run serves both, which halves the time). A format tailerd
does not have yet (`tailerd.formats.BY_NAME`) is skipped by name until it lands. Without npm
the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tailerd.formats import BY_NAME
from tests.agents_cli import install, model_server
from tests.agents_cli.harness import (
    SETTLE,
    expected,
    prepare_home,
    run_cli,
    status_counts,
    stored,
    tailerd_config,
)
from tests.agents_cli.scenarios import SCENARIOS, Scenario
from tests.conftest import run_tailerd
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
def test_live_daemon_and_once_ship_exactly_the_script(agent: str, tmp_path: Path) -> None:
    """One CLI run, read twice: by a daemon running while the CLI writes, then by `--once`
    from scratch (a second state directory) after it finished."""
    scenario = SCENARIOS[agent]
    binary = binary_for(scenario)
    home = tmp_path / "home"
    prepare_home(home)
    (home / scenario.watch).mkdir(parents=True, exist_ok=True)
    config = tailerd_config(scenario, tmp_path)
    live, once = tmp_path / "live", tmp_path / "once"
    want = expected(scenario)
    daemon = RunningTailerd(
        "--watch", home / scenario.watch, "--state-dir", live, "--data-dir", live,
        "--config", config,
    )  # fmt: skip
    try:
        with model_server.running(
            scenario.all_replies,
            scenario.model,
            scenario.side,
            scenario.side_text,
            scenario.lane,
        ) as server:
            run_cli(scenario, binary, home, server)
        waited = poll(lambda: stored(live / "tailerd.db") == want, LIVE_TIMEOUT, every=0.2)
        assert waited is not None, (stored(live / "tailerd.db"), want, daemon.log[-3000:])
        code, _ = daemon.terminate(timeout=30)
        assert code == 0, daemon.log[-3000:]
    finally:
        daemon.stop()
    assert stored(live / "tailerd.db") == want
    assert status_counts(live)[0] == 0
    time.sleep(SETTLE)
    result = run_tailerd(
        "--once", "--watch", home / scenario.watch, "--state-dir", once, "--data-dir", once,
        "--config", config,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "0 unacknowledged" in result.stderr, result.stderr
    assert stored(once / "tailerd.db") == want
    assert status_counts(once)[0] == 0
