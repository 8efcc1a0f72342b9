"""`tailerd service install --user` for real: the unit it writes runs under a real `systemd --user`
manager (tests/systemd/harness.py: private mount and PID namespaces, as root), reaches READY,
ships the transcripts of the agent homes, reloads on `systemctl --user reload` and uninstalls.

The installer runs inside the manager's namespaces with a temp HOME, so `systemctl --user` reaches
that manager; the unit it writes is used unchanged. One drop-in is added,
`tailerd.service.d/log.conf` with StandardError=append:FILE: there is no journald there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.systemd.harness import (
    TAILERD,
    Ran,
    UserManager,
    access_mode,
    manager_in,
    missing_requirement,
    proc_status,
    sessions,
    wait_for,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.slow

# Hand counts over examples/logs: finished turns per session (ra-0001's t3 has no turn_end yet).
EXAMPLE_SESSIONS = {"wb-7f3a": 2, "wb-91c2": 1, "ra-0001": 2}
T3_END = '{"type":"turn_end","session_id":"ra-0001","turn_id":"t3"}\n'
# One finished native turn (README "The native format", one line per turn): one session, 1 turn.
RELOAD_TURN = (
    '{"type":"turn","session_id":"reload-1","turn_id":"1","agent_name":"reload-bot",'
    '"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}],'
    '"started_at":"2026-11-30T10:00:00Z","ended_at":"2026-11-30T10:00:01Z"}\n'
)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[UserManager]:
    yield from manager_in(tmp_path / "sd", lifetime=150, home=home_of(tmp_path))


def home_of(tmp_path: Path) -> Path:
    # Systemd's escapes tried for real: a space, a `$` and a `%` in the data dir's path.
    return tmp_path / "my $HOME at 100%"


class Home:
    """A user's home with Codex's agent home holding a copy of examples/logs (native files, which
    the native format claims wherever they are), and no Claude Code or Gemini home."""

    def __init__(self, tmp_path: Path, manager: UserManager) -> None:
        self.path = home_of(tmp_path)  # also the manager's $HOME
        self.codex = self.path / ".codex" / "sessions"
        shutil.copytree(EXAMPLES, self.codex, copy_function=shutil.copyfile)
        self.manager = manager
        self.config = manager.base / "config" / "tailerd" / "tailerd.toml"  # $XDG_CONFIG_HOME
        self.state = manager.base / "state-home" / "tailerd"  # $XDG_STATE_HOME
        self.data = self.path / ".local" / "share" / "tailerd"
        self.err = tmp_path / "tailerd.stderr"
        dropin = manager.units / "tailerd.service.d"
        dropin.mkdir()
        (dropin / "log.conf").write_text(f"[Service]\nStandardError=append:{self.err}\n")

    def tailerd(self, *args: str) -> Ran:
        return self.manager.run(str(TAILERD), *args, timeout=60)

    def sessions(self) -> dict[str, int]:
        return sessions(self.state, self.data)


def install(home: Home) -> str:
    """`tailerd service install --user`, checked: the config, the unit, READY; returns MainPID."""
    manager = home.manager
    installed = home.tailerd("service", "install", "--user")
    assert installed.rc == 0, installed.stderr
    # What to watch is in the config file alone: nothing named, so every agent home (one exists).
    assert f"wrote {home.config}; agent homes there now:\n  codex: {home.codex}\n" in (
        installed.stdout
    )
    assert tomllib.loads(home.config.read_text()) == {"sinks": ["local"]}

    # `enable --now` returned once READY=1 came (Type=notify).
    expected = {
        "Type": "notify",
        "ActiveState": "active",
        "SubState": "running",
        "UnitFileState": "enabled",
        "StatusText": "tailing 2 files",
        "WatchdogUSec": "30s",
        "LimitNOFILE": "8192",
        "NRestarts": "0",
    }
    shown = manager.show("tailerd", *expected, "MainPID")
    pid = shown.pop("MainPID")
    assert shown == expected, home.err.read_text()
    # The command line the process got: systemd's quoting and escapes were right.
    cmdline = manager.run("cat", f"/proc/{pid}/cmdline").stdout.split("\0")
    flags = ["--config", home.config, "--state-dir", home.state, "--data-dir", home.data]
    assert cmdline[-8:] == [str(TAILERD), *map(str, flags), ""], cmdline
    wait_for("the example turns", home.sessions, lambda seen: seen == EXAMPLE_SESSIONS)
    return pid


def test_service_install_user_ships_shows_status_and_uninstalls(
    manager: UserManager, tmp_path: Path
) -> None:
    home = Home(tmp_path, manager)
    # Not installed yet: the manager answers that it knows no such unit; one line, exit 1.
    before = home.tailerd("service", "status", "--user")
    assert (before.rc, before.stdout) == (1, ""), before.stderr
    assert before.stderr == (
        "tailerd: tailerd.service is not installed for this user: install it with"
        " `tailerd service install`\n"
    )
    pid = install(home)
    status = proc_status(manager, pid)
    hardened = {"Seccomp": "2", "NoNewPrivs": "1"}
    assert {k: status[k] for k in hardened} == hardened
    assert access_mode(manager, pid, home.codex) == "ro"
    assert access_mode(manager, pid, Path("/usr")) == "ro"
    assert access_mode(manager, pid, home.state) == "rw"
    assert access_mode(manager, pid, home.data) == "rw"

    # `tailerd service status`: systemd's view, then tailerd's own per-file status.
    shown_status = home.tailerd("service", "status", "--user")
    assert shown_status.rc == 0, shown_status.stderr
    assert "Active: active (running)" in shown_status.stdout
    assert "session-r1.jsonl" in shown_status.stdout
    assert "2026-11-24.jsonl" in shown_status.stdout

    # A second install keeps the user's config file as it is.
    home.config.write_text(f'watch = ["{home.codex}"]\nsinks = ["local"]\n# mine\n')
    again = home.tailerd("service", "install", "--user")
    assert again.rc == 0, again.stderr
    assert home.config.read_text().endswith("# mine\n")

    # Uninstall: stopped, disabled, unit gone; state and data kept.
    removed = home.tailerd("service", "uninstall", "--user")
    assert removed.rc == 0, removed.stderr
    assert not (manager.units / "tailerd.service").exists()
    assert manager.show("tailerd", "LoadState")["LoadState"] == "not-found"
    assert (home.state / "checkpoints.db").exists()
    assert (home.data / "tailerd.db").exists()
    log = home.err.read_text()
    assert "done: 2 files, 5 turns emitted" in log, log


def test_systemctl_reload_applies_an_edited_config_in_the_same_process(
    manager: UserManager, tmp_path: Path
) -> None:
    """ExecReload= sends SIGHUP; tailerd re-reads its config (RELOADING=1 ... READY=1): a root
    added there is read, nothing is sent twice (the store is keyed by span id, so the counts
    per session would not change anyway: the `done:` line counts what was emitted), and the
    process is the same one."""
    home = Home(tmp_path, manager)
    pid = install(home)
    extra = home.path / "more-logs"
    extra.mkdir()
    (extra / "reload.jsonl").write_text(RELOAD_TURN)
    home.config.write_text(f'watch = ["{home.codex}", "{extra}"]\nsinks = ["local"]\n')
    reloaded = manager.systemctl("reload", "tailerd")
    assert reloaded.rc == 0, reloaded.stderr
    with_extra = {**EXAMPLE_SESSIONS, "reload-1": 1}
    wait_for("the new root's turn", home.sessions, lambda seen: seen == with_extra)
    after = manager.show("tailerd", "MainPID", "ActiveState", "SubState", "NRestarts")
    running = {"MainPID": pid, "ActiveState": "active", "SubState": "running", "NRestarts": "0"}
    assert after == running

    # An invalid config is refused; the running one goes on.
    home.config.write_text('sinks = ["bogus"]\n')
    assert manager.systemctl("reload", "tailerd").rc == 0
    assert manager.show("tailerd", *running) == running
    with (home.codex / "research-agent" / "session-r1.jsonl").open("a") as fh:
        fh.write(T3_END)
    wait_for(
        "the turn finished after the refused reload",
        home.sessions,
        lambda seen: seen == {**with_extra, "ra-0001": 3},
    )
    assert manager.systemctl("stop", "tailerd").rc == 0
    log = home.err.read_text()
    assert "reload refused, the running configuration stays" in log, log
    # 5 example turns, the new root's 1, ra-0001's t3: each emitted once.
    assert "done: 3 files, 7 turns emitted" in log, log


UNPRIVILEGED = Path(__file__).resolve().parent / "systemd" / "unprivileged_manager.py"
NOBODY = 65534


def probe_unit(unit: str, *extra: str) -> str:
    """The user unit with its command replaced by a probe (`sleep`): tailerd's Python lives under
    /root here, out of a normal user's reach; the hardening lines are what is tried."""
    replaced = {"ExecStart": "ExecStart=/bin/sleep 60", "Type": "Type=exec"}
    keep = []
    for line in unit.splitlines():
        key = line.partition("=")[0]
        if key in {"ExecReload", "WatchdogSec", "NotifyAccess"}:
            continue
        keep.append(replaced.get(key, line))
        if line == "[Service]":
            keep.extend(extra)
    return "\n".join(keep) + "\n"


def test_the_user_unit_starts_under_a_normal_users_manager(tmp_path: Path) -> None:
    """A manager run by a normal user (nobody) cannot drop capabilities: with
    CapabilityBoundingSet= the service fails with 218/CAPABILITIES, which is why the user unit
    leaves out that line and the four that imply it (see the unit's comments). As shipped it
    starts, with no_new_privs and its seccomp filter in force and no capabilities."""
    from tailerd import service_install as si

    base = Path(tempfile.mkdtemp(prefix="tailerd-unpriv-"))  # tmp_path is root's, 0700
    try:
        home = base / "home"
        state, data = home / ".local/state/tailerd", home / ".local/share/tailerd"
        for d in (base / "runtime", base / "config/systemd/user", state, data):
            d.mkdir(parents=True)
        (base / "runtime").chmod(0o700)
        for d in [base, *base.rglob("*")]:
            os.chown(d, NOBODY, NOBODY)
        unit = si.render_user_unit(
            (si.templates_dir() / "tailerd-user.service").read_text(),
            TAILERD,
            base / "config" / "tailerd" / "tailerd.toml",
            state,
            data,
        )
        units = [
            {"name": "shipped", "unit": probe_unit(unit)},
            {"name": "capbnd", "unit": probe_unit(unit, "CapabilityBoundingSet=")},
            {"name": "kmods", "unit": probe_unit(unit, "ProtectKernelModules=yes")},
        ]
        reason = missing_requirement()
        if reason is not None:
            pytest.skip(reason)
        ran = subprocess.run(
            ["timeout", "-k", "5", "90", "unshare", "--mount", "--pid", "--fork",
             "--mount-proc", sys.executable, str(UNPRIVILEGED), str(NOBODY), str(base)],
            input=json.dumps(units), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        results = {r.pop("name"): r for r in json.loads(ran.stdout)}
    finally:
        shutil.rmtree(base)
    assert results["shipped"] == {
        "Result": "success",
        "ExecMainStatus": "0",
        "NoNewPrivs": "1",
        "Seccomp": "2",
        "CapEff": "0000000000000000",
        "CapBnd": results["shipped"]["CapBnd"],  # left as the manager's: it cannot drop any
    }
    assert results["capbnd"] == {"Result": "exit-code", "ExecMainStatus": "218"}
    assert results["kmods"] == {"Result": "exit-code", "ExecMainStatus": "218"}
