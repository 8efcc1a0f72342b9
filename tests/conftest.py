from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.otlp_receiver import Receiver, running

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "logs"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "agents"

os.environ["WANDB_ERROR_REPORTING"] = "false"
# No test reads the user's ~/.config/tailerd/tailerd.toml: empty means "no config file" (a test
# of the default file sets TAILERD_CONFIG or XDG_CONFIG_HOME itself).
os.environ["TAILERD_CONFIG"] = ""
# No test writes the machine's default store, state or config (~/.local/share/tailerd,
# ~/.local/state/tailerd, ~/.config): the XDG dirs platformdirs reads point into this session's
# temp dir, for tests and the tailerd processes they start. A test that gives its own HOME to
# `tailerd_env` gets the XDG dirs of that home instead (as on a login without XDG variables);
# XDG variables a test sets itself win. Not XDG_CACHE_HOME: tests/agents_cli keep the agent CLIs
# they install in ~/.cache/tailerd/agents-cli (or $AGENTS_CLI_CACHE) across sessions.
SESSION_XDG = Path(tempfile.mkdtemp(prefix="tailerd-tests-xdg-"))
XDG_DIRS = {
    "XDG_DATA_HOME": str(SESSION_XDG / "data"),
    "XDG_STATE_HOME": str(SESSION_XDG / "state"),
    "XDG_CONFIG_HOME": str(SESSION_XDG / "config"),
}
os.environ.update(XDG_DIRS)
atexit.register(shutil.rmtree, SESSION_XDG, ignore_errors=True)

LONG = os.environ.get("TAILERD_LONG") == "1" or os.environ.get("TAILERD_SOAK") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`@pytest.mark.long` tests (slow repeats of what a shorter test already covers: a second
    real-CLI scenario, an agent whose format another real-CLI run already exercises) run only in
    the long form, `TAILERD_LONG=1 scripts/check` (or with the soak, `TAILERD_SOAK=1`)."""
    if LONG:
        return
    skip = pytest.mark.skip(reason="long form: set TAILERD_LONG=1")
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(skip)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running() as rec:
        yield rec


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A copy of the shipped example logs, safe to append to."""
    dest = tmp_path / "logs"
    # Fresh mtimes: the examples' unfinished turn must not look idle for 10 minutes already.
    shutil.copytree(EXAMPLES, dest, copy_function=shutil.copyfile)
    return dest


def tailerd_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TAILERD_"))}
    env.pop("STATE_DIRECTORY", None)
    env.pop("WANDB_ERROR_REPORTING", None)
    env["TAILERD_CONFIG"] = ""  # no user config file (see above)
    if "HOME" in extra:  # the XDG dirs of that home, unless the test names its own
        for name in XDG_DIRS:
            env.pop(name, None)
    env.update(extra)
    return env


def run_tailerd(
    *args: str | Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tailerd", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tailerd_env(**env),
        check=False,
    )


def popen_tailerd(
    *args: str | Path, preexec_fn: Callable[[], None] | None = None, **env: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tailerd", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=tailerd_env(**env),
        preexec_fn=preexec_fn,  # noqa: PLW1509 - only setrlimit, which takes no lock
    )
