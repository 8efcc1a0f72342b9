"""A fleet through a real OpenTelemetry gateway: three hosts' tailerd -> Rotel -> one backend.

The three "hosts" are three tailerd processes, each in its own UTS and mount namespace
(`unshare`), so each has its own host name and sees its own log directory at the *same* path,
`<tmp>/agents` — as three machines of a fleet do. All three write the same session names, the
same file names and the same bytes: the hardest case for ids, since only the host tells the
turns apart. The gateway is Rotel (PyPI `rotel`, the `rotel-agent` binary in its wheel), an
OpenTelemetry collector with an OTLP/HTTP receiver and exporter; the backend is the test's OTLP
receiver, which, like every trace backend, keeps one span per span id.

In the middle, the gateway is stopped (SIGTERM: Rotel flushes what it holds) and restarted on
the same port while the agents keep writing, and one tailerd is killed with -9 and restarted.
Expected: every (host, turn) exactly once by span id, nothing missing, nothing extra — counted
from what the test wrote.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import tailerd_env
from tests.live_daemon import LABEL, append
from tests.otlp_receiver import Receiver

pytestmark = pytest.mark.slow

HOSTS = ("host-1", "host-2", "host-3")
FILES = ("a.jsonl", "b.jsonl")  # the same session (file) names on every host


def _rotel_agent() -> Path | None:
    """The collector binary shipped in the `rotel` wheel (installed with the dev extras)."""
    candidate = Path(sysconfig.get_paths()["purelib"]) / "rotel" / "rotel-agent"
    return candidate if candidate.is_file() else None


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = ["unshare", "--uts", "--mount", "--propagation", "private", "true"]
    return subprocess.run(probe, check=False).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROTEL_ENV = Path(__file__).parent.parent / "config" / "gateway" / "rotel.env"
# What an operator exports before sourcing config/gateway/rotel.env.
OPERATOR_ENV = {
    "WANDB_BASIC": base64.b64encode(b"api:test-key").decode(),
    "WANDB_ENTITY": "team",
    "WANDB_PROJECT": "agents",
}


def shipped_rotel_env(backend: str, http_port: int, grpc_port: int) -> dict[str, str]:
    """The shipped gateway configuration, read as a shell sourcing it would, with only the
    addresses changed for the test (loopback ports, the test backend instead of W&B)."""
    env: dict[str, str] = {}
    for raw in ROTEL_ENV.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        key, _, value = raw.partition("=")
        value = value.strip().removeprefix('"').removesuffix('"')
        for name, operator_value in OPERATOR_ENV.items():
            value = value.replace("${" + name + "}", operator_value)
        env[key.strip()] = value
    env["ROTEL_OTLP_HTTP_ENDPOINT"] = f"127.0.0.1:{http_port}"
    env["ROTEL_OTLP_GRPC_ENDPOINT"] = f"127.0.0.1:{grpc_port}"
    env["ROTEL_OTLP_EXPORTER_ENDPOINT"] = backend
    return env


class Gateway:
    """Rotel as the fleet's gateway, configured by config/gateway/rotel.env."""

    def __init__(self, binary: Path, backend_url: str, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.backend = backend_url.removesuffix("/v1/traces")
        self.http_port, self.grpc_port = _free_port(), _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    def start(self) -> None:
        log = (self.workdir / "rotel.out").open("ab")
        env = {"PATH": os.environ["PATH"]}
        env.update(shipped_rotel_env(self.backend, self.http_port, self.grpc_port))
        self.proc = subprocess.Popen(
            [
                self.binary, "start",
                "--pid-file", self.workdir / "rotel.pid",
                "--log-file", self.workdir / "rotel.log",
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.http_port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the gateway did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None


class Host:
    """One host of the fleet: a tailerd in its own UTS + mount namespace."""

    def __init__(self, name: str, root: Path, gateway_url: str) -> None:
        self.name = name
        self.shared = root / "agents"  # the same watch path on every host, as on a real fleet
        self.logs, self.state = root / name / "logs", root / name / "state"
        self.logs.mkdir(parents=True)
        self.gateway_url = gateway_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr = root / f"{name}.stderr"

    def start(self) -> None:
        tailerd = Path(sys.executable).with_name("tailerd")
        script = (
            f"hostname {self.name} && mount --bind {self.logs} {self.shared} && exec {tailerd} "
            f"--watch {self.shared} --state-dir {self.state} --data-dir {self.state} "
            f"--sink otlp --otlp-endpoint {self.gateway_url}"
        )
        self.proc = subprocess.Popen(
            ["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", script],
            env=tailerd_env(),
            stdout=subprocess.DEVNULL,
            stderr=self.stderr.open("ab"),
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _turn(label: str) -> bytes:
    """A native turn line with no turn id: its identity is where it is (host, path, offset)."""
    return (
        b'{"type":"turn","session_id":"shared","' + LABEL.encode() + b'":"' + label.encode()
        + b'","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}],'
        b'"spans":[{"type":"llm","model":"m","usage":{"input_tokens":3}}]}\n'
    )  # fmt: skip


def _write(hosts: list[Host], labels: range) -> None:
    """The same bytes, in the same files, on every host."""
    for i in labels:
        for host in hosts:
            append(host.logs / FILES[i % 2], _turn(f"t{i}"))


def _received(receiver: Receiver) -> dict[tuple[str, str], set[str]]:
    """(host, label) -> distinct root span ids, as the backend keeps them."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for span in receiver.roots():
        key = (str(span["resource"].get("host.name")), str(span["attributes"].get(LABEL)))
        seen[key].add(span["span_id"])
    return seen


@pytest.fixture
def fleet(tmp_path: Path, receiver: Receiver) -> Iterator[tuple[Gateway, list[Host]]]:
    binary = _rotel_agent()
    if binary is None:
        pytest.fail("rotel is not installed: scripts/bootstrap installs it with the dev extras")
    if not _can_unshare():
        pytest.skip("needs root and unshare(1) for per-host namespaces")
    (tmp_path / "agents").mkdir()
    gateway = Gateway(binary, receiver.url, tmp_path)
    hosts = [Host(name, tmp_path, gateway.url) for name in HOSTS]
    try:
        yield gateway, hosts
    finally:
        for host in hosts:
            host.stop()
        gateway.stop()


def test_three_hosts_through_a_restarted_gateway_lose_nothing_and_send_nothing_twice(
    fleet: tuple[Gateway, list[Host]], receiver: Receiver
) -> None:
    gateway, hosts = fleet
    total = 60
    _write(hosts, range(20))  # history present before start: a backfill
    gateway.start()
    for host in hosts:
        host.start()
    _write(hosts, range(20, 30))  # live
    assert receiver.wait_for(lambda r: len(_received(r)) >= 30 * len(hosts), timeout=60), (
        f"{len(_received(receiver))} of {30 * len(hosts)} turns before the gateway restart"
    )

    gateway.stop()  # the gateway goes away while agents keep writing: tailerd retries
    _write(hosts, range(30, 40))
    time.sleep(1.5)
    gateway.start()  # same port: the tailerds' next attempt reaches it
    _write(hosts, range(40, 45))
    hosts[1].kill()  # kill -9 in the middle of live writing
    _write(hosts, range(45, 55))
    hosts[1].start()
    _write(hosts, range(55, total))

    expected = {(h, f"t{i}") for h in HOSTS for i in range(total)}
    assert receiver.wait_for(lambda r: set(_received(r)) >= expected, timeout=90), sorted(
        expected - set(_received(receiver))
    )[:10]
    time.sleep(2)  # anything more would arrive now
    seen = _received(receiver)
    assert set(seen) == expected  # nothing lost, no stray turn
    # One span id per (host, turn): three hosts with the same names never collide, and
    # nothing re-sent after the restarts minted a new id.
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, twice
    all_ids = [i for ids in seen.values() for i in ids]
    assert len(set(all_ids)) == len(expected)
    # Every host's spans: a turn root and one chat span each, as written.
    assert len(set(receiver.span_ids())) == 2 * len(expected)
    # The shipped gateway config's routing headers reached the backend (W&B's auth + project).
    headers = receiver.requests[-1]["headers"]
    assert headers["authorization"] == f"Basic {OPERATOR_ENV['WANDB_BASIC']}"
    assert headers["project_id"] == "team/agents"


def test_the_shipped_collector_config_acknowledges_only_what_it_has_put_on_disk() -> None:
    """No Collector binary runs here (not in the registries); its config is checked for the two
    properties tailerd relies on: every exporter queues on disk, and no `batch` processor sits
    before the queue (it would answer 200 from memory)."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROTEL_ENV.parent / "otelcol.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert not [p for p in pipeline["processors"] if p.split("/")[0] == "batch"]
    for name in pipeline["exporters"]:
        queue = config["exporters"][name]["sending_queue"]
        assert queue["enabled"] is True
        assert queue["storage"] in config["extensions"]
        assert queue["storage"] in config["service"]["extensions"]
    assert pipeline["receivers"] == ["otlp"]
