"""`tailerd service install --dry-run`, and the mishaps of `tailerd service`: one line, an exit
code, never a traceback. (The installed units running under systemd: test_systemd_user_unit.py,
test_systemd_manager.py; systemd-analyze on both: test_systemd.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tailerd import cli, service_install
from tests.conftest import run_tailerd, tailerd_env

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


def no_systemd_here() -> bool:
    """sd_booted(3): systemd is PID 1 iff /run/systemd/system/ is a directory (this sandbox: not;
    a CI runner: yes). Without it, every systemctl call fails the same way."""
    return not Path("/run/systemd/system").is_dir()


def expected_no_manager(runtime: str) -> str:
    if no_systemd_here():
        return "this host does not run systemd (systemctl said: "
    return (
        f"no systemd user manager to talk to ({runtime}; systemctl said: Failed to connect to bus"
    )


def test_no_reachable_manager_is_one_line_and_writes_nothing(tmp_path):
    """Without a user manager to talk to (no session bus here), or without systemctl at all:
    exit 69, one line saying what happened and what to do, and no unit, config or state dir
    left behind."""
    home = tmp_path / "home"
    runtime = tmp_path / "no-runtime"
    env = {**home_env(home), "XDG_RUNTIME_DIR": str(runtime)}
    cases = [
        (env, expected_no_manager(f"XDG_RUNTIME_DIR={runtime}")),
        ({**env, "PATH": str(tmp_path / "empty-path")}, "systemctl not found: this host does not"),
    ]
    for case_env, message in cases:
        ran = run_tailerd("service", "install", "--user", **case_env)
        assert ran.returncode == 69, ran.stderr
        assert ran.stderr.count("\n") == 1 and message in ran.stderr, ran.stderr
        assert not home.exists()


def test_no_runtime_dir_at_all_says_so(tmp_path):
    """`su`/`sudo -i` sessions have no XDG_RUNTIME_DIR: the line names that and the way out."""
    home = tmp_path / "home"
    env = tailerd_env(**home_env(home))
    for name in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
        env.pop(name, None)
    for action in ("install", "status", "uninstall"):
        ran = subprocess.run(
            [sys.executable, "-m", "tailerd", "service", action, "--user"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        expected = expected_no_manager("XDG_RUNTIME_DIR is not set")
        if action == "uninstall":  # no unit file: nothing to stop, nothing to ask a manager
            assert ran.returncode == 0 and "nothing to remove" in ran.stdout, ran.stderr
            continue
        assert ran.returncode == 69, (action, ran.stderr)
        assert ran.stderr.count("\n") == 1 and expected in ran.stderr, ran.stderr
        assert ran.stdout == "", ran.stdout  # no raw systemctl text, no `tailerd status`
        if not no_systemd_here():
            assert "loginctl enable-linger" in ran.stderr
    assert not home.exists()


def test_system_status_without_a_unit_or_without_systemd_is_one_line():
    ran = run_tailerd("service", "status", "--system")
    if no_systemd_here():
        assert ran.returncode == 69, ran.stderr
        assert "this host does not run systemd" in ran.stderr, ran.stderr
    else:  # a systemd host without tailerd's system unit (a CI runner)
        assert ran.returncode == 1, ran.stderr
        assert "tailerd.service is not installed on this system: install it with `sudo" in (
            ran.stderr
        )
    assert ran.stderr.count("\n") == 1 and ran.stdout == "", ran.stderr + ran.stdout


def test_the_system_unit_without_root_is_one_line(monkeypatch, capsys):
    """Installing or removing the system unit as a normal user: 78 and the sudo command. (As
    root, as here, the process is told it is uid 1000: this interpreter lives under /root,
    which another user cannot run. A CI runner's normal user runs it for real.)"""
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for action in ("install", "uninstall"):
        assert cli.main(["service", action, "--system"]) == 78
        said = capsys.readouterr()
        assert said.out == ""
        assert said.err == (
            f"tailerd: {'installing' if action == 'install' else 'removing'} the system unit"
            f" needs root: run `sudo tailerd service {action} --system`\n"
        )


def test_dry_runs_read_as_an_operator_would(tmp_path):
    """Fresh-user review: the user unit said "this line is only an example." right above the
    real ExecStart; `--system --dry-run` did not show the /etc/tailerd/tailerd.toml it writes."""
    home = tmp_path / "home"
    user = run_tailerd("service", "install", "--user", "--dry-run", **home_env(home))
    unit = sections(user.stdout)[str(home / ".config/systemd/user/tailerd.service")]
    assert "only an example" not in unit
    system = run_tailerd("service", "install", "--system", "--dry-run")
    assert system.returncode == 0, system.stderr
    if Path("/etc/tailerd/tailerd.toml").exists():  # kept as it is: nothing to show
        return
    shipped = (Path(__file__).resolve().parents[1] / "config" / "tailerd.toml").read_text()
    assert system.stdout.endswith(f"# /etc/tailerd/tailerd.toml\n{shipped}")


def test_a_system_unit_executable_in_a_closed_home_is_warned_about(monkeypatch, capsys):
    """Under DynamicUser= a tailerd inside a 0700 home (a venv under /root) fails 203/EXEC:
    the install says so in one line. Built under a fresh /tmp dir (pytest's own tmp_path sits
    in a 0700 directory, which would be the answer for every path)."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        closed, opened = base / "home" / "venv" / "bin", base / "opt" / "venv" / "bin"
        closed.mkdir(parents=True)
        opened.mkdir(parents=True)
        (base / "home").chmod(0o700)
        assert service_install.closed_to_others(closed / "tailerd") == base / "home"
        assert service_install.closed_to_others(opened / "tailerd") is None
        monkeypatch.setattr(service_install, "tailerd_executable", lambda: closed / "tailerd")
        assert cli.main(["service", "install", "--system", "--dry-run"]) == 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tailerd: warning: ")
        assert f"{closed / 'tailerd'} is inside {base / 'home'}" in err
        assert "203/EXEC" in err and "/opt/tailerd/venv" in err
    finally:
        (base / "home").chmod(0o755)
        shutil.rmtree(base)
