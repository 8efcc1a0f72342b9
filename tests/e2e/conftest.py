"""A real Arize Phoenix (OTLP backend with a REST API), started once per test session.

Phoenix lives in its own virtualenv, `.phoenix-venv/`, made by `scripts/phoenix.sh install`.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_SCRIPT = ROOT / "scripts" / "phoenix.sh"
PHOENIX_BIN = ROOT / ".phoenix-venv" / "bin" / "phoenix"
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_phoenix() -> None:
    if PHOENIX_BIN.exists():
        return
    message = f"Arize Phoenix is not installed ({PHOENIX_BIN} missing); "
    message += "install it with: scripts/phoenix.sh install"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def phoenix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phoenix's working directory (SQLite database, phoenix.log, phoenix.pid)."""
    return tmp_path_factory.mktemp("phoenix")


@pytest.fixture(scope="session")
def phoenix(phoenix_dir: Path) -> Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of a fresh Phoenix with an empty database."""
    require_phoenix()
    started = subprocess.run(
        [PHOENIX_SCRIPT, "start", phoenix_dir, str(free_port())],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"Phoenix did not start:\n{started.stderr}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([PHOENIX_SCRIPT, "stop", phoenix_dir], timeout=60, check=False)
