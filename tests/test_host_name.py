"""`host_name` (TAILERD_HOST_NAME): the host part of ids of turns the agent gave no id, and
`host.name`. A pod's kernel host name changes when it is replaced; the setting keeps ids stable."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import run_tailerd
from tests.otlp_receiver import Receiver

# A native turn with no turn_id: its id is minted from (host, directory, file, offset).
LINE = (
    '{"type":"turn","session_id":"s","messages":[{"role":"user","content":"q"},'
    '{"role":"assistant","content":"a"}],"spans":[]}\n'
)


def _ship(logs: Path, state: Path, receiver: Receiver, host: str) -> tuple[str, str]:
    """--once into the receiver as `host`; the (span id, host.name) of the turn it got."""
    before = len(receiver.roots())
    result = run_tailerd(
        "--once", "--watch", logs, "--state-dir", state, "--data-dir", state,
        "--sink", "otlp", "--otlp-endpoint", receiver.url, TAILERD_HOST_NAME=host,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (root,) = receiver.roots()[before:]
    return root["span_id"], root["resource"]["host.name"]


def test_host_name_setting_decides_the_ids_of_turns_without_an_agent_id(
    tmp_path: Path, receiver: Receiver
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text(LINE)
    os.utime(logs / "a.jsonl", (1, 1))
    first = _ship(logs, tmp_path / "s1", receiver, "node-a")
    again = _ship(logs, tmp_path / "s2", receiver, "node-a")  # a new state dir: shipped again
    other = _ship(logs, tmp_path / "s3", receiver, "node-b")
    assert first == again  # same host name: the same turn, whatever the pod's kernel name
    assert first[1] == "node-a" and other[1] == "node-b"
    assert other[0] != first[0]  # same path, same bytes, another host: another turn


def test_host_details_false_leaves_weaves_host_attributes_out(
    tmp_path: Path, receiver: Receiver
) -> None:
    """weave adds the host's OS and Python to every span unless told not to."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text(LINE)
    os.utime(logs / "a.jsonl", (1, 1))
    host_keys = {"weave.os_name", "weave.os_version", "weave.os_release", "weave.sys_version"}
    for details, state in (("true", "s1"), ("false", "s2")):
        before = len(receiver.spans)
        result = run_tailerd(
            "--once", "--watch", logs, "--state-dir", tmp_path / state,
            "--data-dir", tmp_path / state, "--sink", "otlp", "--otlp-endpoint", receiver.url,
            TAILERD_HOST_DETAILS=details,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        keys = set().union(*(s["attributes"] for s in receiver.spans[before:]))
        if details == "true":
            assert host_keys <= keys  # weave's default: sent
        else:
            assert not keys & host_keys
