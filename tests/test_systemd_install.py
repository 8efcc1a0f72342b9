"""`tailerd service install --dry-run`, and the mishaps of `tailerd service`: one line, an exit
code, never a traceback. (The installed units running under systemd: test_systemd_user_unit.py,
test_systemd_manager.py; systemd-analyze on both: test_systemd.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import run_tailerd

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TAILERD = Path(sys.executable).parent / "tailerd"


def home_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }


def sections(text: str) -> dict[str, str]:
    """The dry run's output split at its `# <path>` header lines."""
    parts: dict[str, str] = {}
    name = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("# /"):
            name = line[2:].strip()
            parts[name] = ""
        elif name:
            parts[name] += line
    return parts


def test_user_dry_run_prints_the_unit_and_the_first_config(tmp_path):
    home = tmp_path / "home"  # no agent home at all: they are waited for
    ran = run_tailerd("service", "install", "--user", "--dry-run", **home_env(home))
    assert ran.returncode == 0, ran.stderr
    unit_path = home / ".config" / "systemd" / "user" / "tailerd.service"
    config_path = home / ".config" / "tailerd" / "tailerd.toml"
    parts = sections(ran.stdout)
    assert list(parts) == [str(unit_path), str(config_path)]
    state, data = home / ".local/state/tailerd", home / ".local/share/tailerd"
    unit_lines = parts[str(unit_path)].splitlines()
    assert (
        f"ExecStart={TAILERD} --config {config_path} --state-dir {state} --data-dir {data}"
        in unit_lines
    )
    assert f"ReadWritePaths={state} {data}" in unit_lines
    assert "ExecReload=kill -HUP $MAINPID" in unit_lines
    # No watch roots: tailerd's zero configuration watches every agent home, present or not.
    assert tomllib.loads(parts[str(config_path)]) == {"sinks": ["local"]}
    assert not unit_path.exists()
    assert not config_path.exists()  # a dry run writes nothing


def test_paths_with_spaces_percent_and_dollar_are_quoted_for_systemd(tmp_path):
    home = tmp_path / "a $HOME with 100%"
    (home / ".codex/sessions").mkdir(parents=True)
    ran = run_tailerd("service", "install", "--dry-run", **home_env(home))
    assert ran.returncode == 0, ran.stderr
    config = str(home / ".config/tailerd/tailerd.toml").replace("%", "%%").replace("$", "$$")
    assert f' --config "{config}" ' in ran.stdout


def test_system_dry_run_runs_the_installed_tailerd_with_the_etc_config():
    ran = run_tailerd("service", "install", "--system", "--dry-run")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("# /etc/systemd/system/tailerd.service\n")
    assert f"ExecStart={TAILERD} --config /etc/tailerd/tailerd.toml\n" in ran.stdout
    assert "DynamicUser=yes\n" in ran.stdout


def test_mishaps_are_one_line(tmp_path):
    cases = [
        (("service",), "the following arguments are required: action"),
        (("service", "start"), "invalid choice: 'start'"),
        (("service", "install", "--user", "--system"), "not allowed with argument"),
        (("service", "status", "--dry-run"), "--dry-run goes with install"),
    ]
    for args, message in cases:
        ran = run_tailerd(*args, **home_env(tmp_path / "empty"))
        assert ran.returncode == 78, (args, ran.stderr)
        assert ran.stderr.count("\n") == 1, ran.stderr
        assert ran.stderr.startswith("tailerd: ") and message in ran.stderr, ran.stderr


def test_no_reachable_manager_is_one_line_and_writes_nothing(tmp_path):
    """Without a user manager to talk to (no session bus here), or without systemctl at all:
    exit 69, one line, and no unit, config or state dir left behind."""
    home = tmp_path / "home"
    env = {**home_env(home), "XDG_RUNTIME_DIR": str(tmp_path / "no-runtime")}
    cases = [
        (env, "failed: Failed to connect to bus"),
        ({**env, "PATH": str(tmp_path / "empty-path")}, "systemctl not found"),
    ]
    for case_env, message in cases:
        ran = run_tailerd("service", "install", "--user", **case_env)
        assert ran.returncode == 69, ran.stderr
        assert ran.stderr.count("\n") == 1 and message in ran.stderr, ran.stderr
        assert not home.exists()
