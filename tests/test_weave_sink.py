"""--sink weave against a local endpoint that enforces the Agents endpoint's contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import run_tailerd
from tests.test_once import EXAMPLE_SPANS, EXAMPLE_TURNS
from tests.weave_endpoint import WeaveEndpoint, serve

KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def weave_endpoint() -> Iterator[WeaveEndpoint]:
    endpoint = WeaveEndpoint(api_key=KEY)
    server = serve(endpoint)
    yield endpoint
    server.shutdown()
    server.server_close()


def ship(logs, tmp_path, endpoint: WeaveEndpoint, *args: str, **env: str):
    env = {"WF_TRACE_SERVER_URL": endpoint.base_url, "HOME": str(tmp_path), **env}
    return run_tailerd(
        "--watch", logs, "--once", "--sink", "weave", "--state-dir", tmp_path / "s", *args, **env
    )


def test_turns_reach_the_project_with_weave_routing_and_auth(logs, tmp_path, weave_endpoint):
    result = ship(logs, tmp_path, weave_endpoint, "--project", "acme/agents", WANDB_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    spans = weave_endpoint.stored["acme/agents"]
    assert len(spans) == EXAMPLE_SPANS
    assert len([s for s in spans if s["parent_span_id"] is None]) == EXAMPLE_TURNS
    assert weave_endpoint.dropped == 0
    assert {s["resource"]["wandb.project"] for s in spans} == {"agents"}
    assert all("gen_ai.operation.name" in s["attributes"] for s in spans)
    assert KEY not in result.stderr + result.stdout


def test_project_from_wandb_environment(logs, tmp_path, weave_endpoint):
    result = ship(
        logs, tmp_path, weave_endpoint, WANDB_API_KEY=KEY, WANDB_ENTITY="e", WANDB_PROJECT="p"
    )
    assert result.returncode == 0, result.stderr
    assert len(weave_endpoint.stored["e/p"]) == EXAMPLE_SPANS


def test_key_from_netrc_as_wandb_login_writes_it(logs, tmp_path, weave_endpoint):
    netrc = tmp_path / ".netrc"
    host = weave_endpoint.base_url.removeprefix("http://")
    netrc.write_text(f"machine {host}\n  login user\n  password {KEY}\n")
    netrc.chmod(0o600)
    result = ship(
        logs, tmp_path, weave_endpoint, "--project", "e/p", WANDB_BASE_URL=weave_endpoint.base_url
    )
    assert result.returncode == 0, result.stderr
    assert len(weave_endpoint.stored["e/p"]) == EXAMPLE_SPANS


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--project", "e/p"), {}, "needs W&B credentials"),
        (("--project", "e/p"), {"WANDB_API_KEY": "wrong"}, "rejected the credentials"),
        ((), {"WANDB_API_KEY": KEY}, "needs a project"),
    ],
)
def test_bad_credentials_or_routing_fail_at_start(  # noqa: PLR0917 - pytest parametrization
    logs, tmp_path, weave_endpoint, args, env, message
):
    result = ship(logs, tmp_path, weave_endpoint, *args, **env)
    assert result.returncode == 78
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert weave_endpoint.stored == {}


def test_transient_failures_are_retried_until_delivered(logs, tmp_path, weave_endpoint):
    weave_endpoint.fail_next = [200, 503, 503, 429]  # the first answers the credential check
    result = ship(logs, tmp_path, weave_endpoint, "--project", "e/p", WANDB_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    ids = [s["span_id"] for s in weave_endpoint.stored["e/p"]]
    assert len(ids) == len(set(ids)) == EXAMPLE_SPANS
