"""Configuration layers: defaults < TOML file < TAILERD_* environment < flags, and
`tailerd check-config`. Expected values are the ones each test writes into its layers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tailerd.errors import ConfigError
from tailerd.settings import Settings, layered
from tests.conftest import ROOT, run_tailerd, tailerd_env
from tests.live_daemon import turn_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tailerd.toml"
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        'include = ["*.log"]\nbatch_spans = 100\nrescan_interval = 5.0\n'
        "[redaction]\nmax_attribute_chars = 1000\n",
    )
    env = {
        "TAILERD_INCLUDE": "*.a, *.b",  # comma-separated list
        "TAILERD_BATCH_SPANS": "200",
        "TAILERD_REDACTION__CONTENT": "none",  # nested, merged with the file's table
        "TAILERD_SOAK": "1",  # not a setting: ignored
    }
    cfg, origin = layered(config, {"include": ["*.c"], "json": True}, env)
    assert cfg.include == ("*.c",)  # flag > environment > file
    assert cfg.batch_spans == 200  # environment > file
    assert cfg.rescan_interval == 5.0  # file > default
    assert cfg.max_open_files == 256  # the default
    assert (cfg.redaction.content, cfg.redaction.max_attribute_chars) == ("none", 1000)
    assert origin["include"] == "flag" and origin["batch_spans"] == "env"
    assert origin["rescan_interval"] == "file" and origin["redaction.content"] == "env"
    assert "max_open_files" not in origin


def test_lists_and_tables_from_the_environment_as_json(tmp_path: Path) -> None:
    env = {
        "TAILERD_WATCH": json.dumps([str(tmp_path / "a"), str(tmp_path / "b")]),
        "TAILERD_SINKS": '["local", "console"]',
        "TAILERD_OTLP_HEADERS": '{"x-team": "agents"}',
    }
    cfg, _ = layered(None, {}, env)
    assert cfg.watch == (tmp_path / "a", tmp_path / "b")  # not there yet: waited for
    assert cfg.sinks == ("local", "console")
    assert cfg.otlp_headers == {"x-team": "agents"}


@pytest.mark.parametrize(
    ("file_text", "env", "flags", "message"),
    [
        ("batch_spans = 0\n", {}, {}, "invalid setting batch_spans (in {file}): "),
        ("nope = 1\n", {}, {}, "unknown setting `nope` (in {file})"),
        (
            "batch_spans = 5\n",
            {"TAILERD_BATCH_SPANS": "many"},
            {},
            "invalid setting batch_spans (from environment variable TAILERD_BATCH_SPANS): ",
        ),
        (
            "",
            {"TAILERD_REDACTION__CONTENT": "some"},
            {},
            "invalid setting redaction.content (from environment variable"
            " TAILERD_REDACTION__CONTENT): ",
        ),
        (
            "",
            {"TAILERD_OTLP_HEADERS": "a=b"},
            {},
            "environment variable TAILERD_OTLP_HEADERS is not valid JSON",
        ),
        ("", {}, {"sinks": ["nowhere"]}, "invalid setting sinks.0 (from flag --sink): "),
        (
            "",
            {"TAILERD_SINKS": "local,nowhere"},
            {},
            "invalid setting sinks.1 (from environment variable TAILERD_SINKS): ",
        ),
    ],
)
def test_an_error_is_one_line_naming_its_source(
    tmp_path: Path, file_text: str, env: dict[str, str], flags: dict[str, object], message: str
) -> None:
    config = _file(tmp_path, file_text)
    with pytest.raises(ConfigError) as caught:
        layered(config, flags, env)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message.format(file=config)), text


def test_settings_built_directly_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILERD_BATCH_SPANS", "7")
    assert Settings().batch_spans == 512


def test_the_environment_reaches_a_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(turn_line("s1", "one", llm_calls=0))  # one root span
    result = run_tailerd(
        "--watch", logs, "--once", "--state-dir", tmp_path / "s", TAILERD_SINKS="console"
    )
    assert result.returncode == 0, result.stderr
    spans = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(spans) == 1 and spans[0]["attributes"]["gen_ai.conversation.id"] == "s1"


def test_check_config_passes_the_shipped_config_and_prints_toml_tailerd_accepts(
    tmp_path: Path,
) -> None:
    shipped = ROOT / "config" / "tailerd.toml"
    result = run_tailerd("check-config", "--config", shipped)
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["watch"] == ["/var/log/agents"]  # as the shipped file says
    assert printed["redaction"]["content"] == "redacted"
    assert f"# rescan_interval in {shipped}" in result.stdout
    again = _file(tmp_path, result.stdout)  # what it prints is a config tailerd accepts
    assert run_tailerd("check-config", "--config", again).returncode == 0


def test_check_config_masks_secrets_and_says_where_values_came_from(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        'sinks = ["otlp"]\notlp_endpoint = "http://127.0.0.1:4318/v1/traces"\n'
        '[otlp_headers]\nx-scope-orgid = "agents"\n',
    )
    result = run_tailerd(
        "check-config",
        "--config",
        config,
        "--json",
        TAILERD_OTLP_HEADERS='{"authorization": "Bearer s3cr3t"}',
    )
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout
    doc = json.loads(result.stdout)
    masked = {"x-scope-orgid": "********", "authorization": "********"}
    assert doc["settings"]["otlp_headers"] == masked
    assert doc["sources"]["otlp_headers.authorization"] == (
        "from environment variable TAILERD_OTLP_HEADERS__AUTHORIZATION"
    )
    assert doc["sources"]["sinks"] == f"in {config}"


def test_check_config_gives_the_start_error_and_exit_78(tmp_path: Path) -> None:
    config = _file(tmp_path, 'sinks = ["otlp"]\n')  # no endpoint anywhere
    result = run_tailerd("check-config", "--config", config)
    assert result.returncode == 78
    assert len(result.stderr.strip().splitlines()) == 1
    assert "sink otlp needs an endpoint" in result.stderr


def test_format_options_by_variable_are_typed_and_merge_with_the_file(tmp_path: Path) -> None:
    config = _file(tmp_path, "[format_options.codex]\nabort_grace = 5.0\n")
    env = {
        "TAILERD_FORMAT_OPTIONS__CODEX__IDLE_CLOSE": "12",
        "TAILERD_FORMAT_OPTIONS__CODEX__NEST_SUBAGENTS": "false",
        "TAILERD_FORMAT_OPTIONS__NATIVE__IDLE_CLOSE": "7.5",
    }
    cfg, _ = layered(config, {}, env)
    assert cfg.format_options == {
        "codex": {"abort_grace": 5.0, "idle_close": 12, "nest_subagents": False},
        "native": {"idle_close": 7.5},
    }


def _check_config_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`tailerd check-config` without --config, with `env` on top of the test environment
    (TAILERD_CONFIG, which conftest sets empty, removed unless `env` sets it)."""
    full = tailerd_env()
    del full["TAILERD_CONFIG"]
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "tailerd", "check-config"],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=False,
    )


def test_without_config_the_user_config_file_is_read_and_named(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "tailerd").mkdir(parents=True)
    user_file = xdg / "tailerd" / "tailerd.toml"  # as README and `service install --user` say
    user_file.write_text("batch_spans = 77\n")
    result = _check_config_with({"XDG_CONFIG_HOME": str(xdg)})
    assert result.returncode == 0, result.stderr
    assert f"# config file read: {user_file}\n" in result.stdout
    assert tomllib.loads(result.stdout)["batch_spans"] == 77
    named = _file(tmp_path, "batch_spans = 78\n")  # $TAILERD_CONFIG wins over the user file
    result = _check_config_with({"XDG_CONFIG_HOME": str(xdg), "TAILERD_CONFIG": str(named)})
    assert f"# config file read: {named}\n" in result.stdout
    assert tomllib.loads(result.stdout)["batch_spans"] == 78


def test_without_any_config_file_check_config_says_none_was_read(tmp_path: Path) -> None:
    result = _check_config_with({"XDG_CONFIG_HOME": str(tmp_path / "empty")})
    assert result.returncode == 0, result.stderr
    assert "# config file read: none" in result.stdout
    assert tomllib.loads(result.stdout)["batch_spans"] == 512  # the default
