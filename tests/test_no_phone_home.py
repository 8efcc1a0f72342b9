"""tailerd talks to the sinks it was given and to nothing else, exit included
(`import weave` alone would look up an error-reporting host at interpreter exit)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import tailerd_env
from tests.otlp_receiver import Receiver


def test_only_the_configured_endpoint_is_contacted(logs, tmp_path, receiver: Receiver):
    if shutil.which("strace") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("strace is required in CI (scripts/bootstrap installs it)")
        pytest.skip("strace not installed")
    trace = tmp_path / "connect.trace"
    port = receiver.url.split(":")[2].split("/")[0]
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmmsg", "-o", str(trace),
         sys.executable, "-m", "tailerd", "--watch", str(logs), "--once", "--sink", "otlp",
         "--otlp-endpoint", receiver.url, "--state-dir", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=120, env=tailerd_env(), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(receiver.roots()) == 5
    calls = trace.read_text()
    inet = re.findall(
        r"sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr|inet_pton)\(\"?([^\")]+)", calls
    )
    assert inet, "strace saw no connect at all: the test is not observing the sender"
    assert {(p, a) for p, a in inet} == {(port, "127.0.0.1")}, inet
    assert "nscd" not in calls and "htons(53)" not in calls  # no name lookups
