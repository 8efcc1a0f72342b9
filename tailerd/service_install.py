"""`tailerd service install|uninstall|status [--user|--system] [--dry-run]`: tailerd as a systemd
service of this user (the agent transcripts in their home) or of the system (shared log dirs).

The units are templates shipped with tailerd (`packaging/systemd/tailerd-user.service` and
`tailerd.service`; in a wheel under `<prefix>/share/tailerd/systemd/`). Installing fills in the
installed `tailerd` executable and the configuration file; for the user unit also the state and
data dirs (the same dirs `tailerd status` and `tailerd sessions` read by default, and the only
ones the unit may write). What to watch is in the configuration file alone: for the user unit
`~/.config/tailerd/tailerd.toml`, written at the first install without `watch`, so that every
supported agent's home is watched, present or future (kept as it is afterwards;
`systemctl --user reload tailerd` applies an edit). Then it runs
`systemctl [--user] daemon-reload` and `enable --now`. Every failure is one line saying what
happened and what to do, and an exit code (README's table): 78 for what the user can fix (the
system unit without root, systemctl refusing for lack of privilege), 69 when there is no
systemd or no user manager to talk to, or systemctl itself fails; `status` exits 0 when the unit
runs and 1 when it does not (or is not installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import platformdirs

from tailerd.errors import ConfigError, TailerdError

UNIT = "tailerd.service"
# The ExecStart executable written in the shipped templates, replaced at install time.
EXAMPLE_EXECUTABLE = "/opt/tailerd/venv/bin/tailerd"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_CONFIG = Path("/etc/tailerd/tailerd.toml")
SYSTEM_STATE_DIR = Path("/var/lib/tailerd")  # StateDirectory=tailerd of the system unit
EX_UNAVAILABLE = 69  # systemctl is missing or refused
NO_SUCH_UNIT = 4  # `systemctl status`'s exit status for a unit it does not know (LSB)


class SystemctlError(TailerdError):
    exit_code = EX_UNAVAILABLE


def templates_dir() -> Path:
    """Where the unit templates are: the installed data dir of a wheel (pip, pipx), else the
    source checkout's `packaging/systemd` (an editable install). Raises ConfigError if neither."""
    candidates = [Path(sysconfig.get_paths()["data"]) / "share" / "tailerd" / "systemd"]
    user_base = sysconfig.get_config_var("userbase")
    if isinstance(user_base, str):
        candidates.append(Path(user_base) / "share" / "tailerd" / "systemd")
    candidates.append(Path(__file__).resolve().parent.parent / "packaging" / "systemd")
    for folder in candidates:
        if (folder / UNIT).is_file():
            return folder
    raise ConfigError(f"unit templates not found (looked in {', '.join(map(str, candidates))})")


def example_config() -> Path:
    """The documented example configuration shipped beside the templates (config/tailerd.toml)."""
    folder = templates_dir()
    for candidate in (
        folder.parent / "tailerd.toml",
        folder.parent.parent / "config" / "tailerd.toml",
    ):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"example configuration not found near {folder}")


def tailerd_executable() -> Path:
    """The `tailerd` of this installation: beside this interpreter (a venv, pipx), else on PATH."""
    beside = Path(sys.executable).parent / "tailerd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("tailerd")
    if found is None:
        raise ConfigError("cannot find the installed tailerd executable (is it on PATH?)")
    return Path(found).resolve()


@dataclass(frozen=True)
class UserLayout:
    """Where the user unit and tailerd's dirs are for one user (paths absolute)."""

    home: Path
    unit_dir: Path
    config_file: Path
    state_dir: Path
    data_dir: Path

    @classmethod
    def from_environment(cls) -> UserLayout:
        """From $HOME and the XDG variables, as `systemd --user` and platformdirs read them."""
        home = Path(os.environ.get("HOME") or Path.home())
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        return cls(
            home=home,
            unit_dir=config_home / "systemd" / "user",
            config_file=config_home / "tailerd" / "tailerd.toml",
            state_dir=Path(platformdirs.user_state_dir("tailerd")),
            data_dir=Path(platformdirs.user_data_dir("tailerd")),
        )


def unit_word(text: str, command: bool = True) -> str:
    """One argument of a unit line, quoted and escaped for systemd: `%` -> `%%` (specifiers),
    in a command line (ExecStart=) also `$` -> `$$` (variables), and double quotes around
    anything with white space, quotes or backslashes."""
    text = text.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if any(c.isspace() or c in "\"'\\" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _replace_line(template: str, key: str, value: str) -> str:
    lines = template.splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{key}=")]
    if len(hits) != 1:
        raise ConfigError(f"unit template has {len(hits)} {key}= lines, expected 1")
    lines[hits[0]] = f"{key}={value}"
    return "\n".join(lines) + "\n"


def render_user_unit(
    template: str, executable: Path, config_file: Path, state_dir: Path, data_dir: Path
) -> str:
    """The user unit: ExecStart runs `executable --config config_file` with the state and data
    dirs, which are also the only ReadWritePaths=. Raises ConfigError if the template changed
    shape (not exactly one ExecStart= and one ReadWritePaths= line)."""
    args = [str(executable), "--config", str(config_file)]
    args += ["--state-dir", str(state_dir), "--data-dir", str(data_dir)]
    text = _replace_line(template, "ExecStart", " ".join(unit_word(a) for a in args))
    paths = dict.fromkeys([str(state_dir), str(data_dir)])  # one entry when they are the same
    return _replace_line(text, "ReadWritePaths", " ".join(unit_word(p, False) for p in paths))


def render_system_unit(template: str, executable: Path) -> str:
    """The system unit with its ExecStart executable replaced; what to watch stays in the config
    file it names. Raises ConfigError if the template does not name EXAMPLE_EXECUTABLE."""
    line = next((x for x in template.splitlines() if x.startswith("ExecStart=")), "")
    if EXAMPLE_EXECUTABLE not in line:
        raise ConfigError(f"unit template's ExecStart does not run {EXAMPLE_EXECUTABLE}")
    new = line.replace(EXAMPLE_EXECUTABLE, unit_word(str(executable)), 1)
    return _replace_line(template, "ExecStart", new.removeprefix("ExecStart="))


def systemctl(scope: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `systemctl [--user] ARGS`; raises SystemctlError or ConfigError (one line, `refusal`)
    if it is missing or, with `check`, fails."""
    exe = shutil.which("systemctl")
    if exe is None:
        raise SystemctlError(
            "systemctl not found: this host does not run systemd; run tailerd under your own"
            " supervisor instead (`tailerd --watch DIR`)"
        )
    argv = [exe, *(["--user"] if scope == "user" else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if check and done.returncode != 0:
        raise refusal(scope, " ".join(argv[1:]), done.stderr or done.stdout, done.returncode)
    return done


def refusal(scope: str, command: str, said: str, code: int) -> TailerdError:
    """systemctl's failure of `command` as one line: what happened and what to do. `said` is its
    output (stderr); the phrases matched are systemctl's own: "System has not been booted with
    systemd" (PID 1 is another init), "Failed to connect to bus" (no manager listening: for
    --user no $XDG_RUNTIME_DIR/bus), "Access denied" / "Interactive authentication required"
    (polkit refused a non-root caller)."""
    lines = said.strip().splitlines()
    first = next((x for x in lines if "System has not been booted" in x), lines[0] if lines else "")
    quoted = f"systemctl said: {first or f'exit {code}'}"
    if "System has not been booted" in said or not booted_with_systemd():
        return SystemctlError(
            f"this host does not run systemd ({quoted}): run tailerd under your own supervisor"
            " instead (`tailerd --watch DIR`)"
        )
    low = said.lower()
    if "access denied" in low or "authentication required" in low or "permission denied" in low:
        return ConfigError(
            f"`systemctl {command}` was refused ({quoted}): run the same `tailerd service`"
            " command as root (with sudo)"
        )
    if scope == "user" and "Failed to connect to bus" in said:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        where = f"XDG_RUNTIME_DIR={runtime}" if runtime else "XDG_RUNTIME_DIR is not set"
        return SystemctlError(
            f"no systemd user manager to talk to ({where}; {quoted}): run this in your own login"
            " session (not under su or sudo), or keep a manager for your user with"
            " `sudo loginctl enable-linger $USER` and XDG_RUNTIME_DIR=/run/user/$(id -u);"
            " or install the system unit: sudo tailerd service install --system"
        )
    journal = "journalctl --user" if scope == "user" else "journalctl"
    return SystemctlError(
        f"`systemctl {command}` failed ({quoted}): see `tailerd service status"
        f"{'' if scope == 'user' else ' --system'}` and `{journal} -u tailerd`"
    )


def booted_with_systemd() -> bool:
    """sd_booted(3): systemd is the init system iff /run/systemd/system/ is a directory."""
    return Path("/run/systemd/system").is_dir()


def _as_root(action: str) -> str:
    return f"run `sudo tailerd service {action} --system`"


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.chmod(mode)
    partial.replace(path)


def user_config_text() -> str:
    """The first configuration of the user unit. It names no watch roots: tailerd then watches
    every supported agent's home (tailerd/agent_homes.py), those that do not exist yet waited
    for, so an agent installed later is picked up without touching the unit."""
    return (
        "# tailerd for this user, written by `tailerd service install --user`. Every key of\n"
        "# tailerd's example config (config/tailerd.toml) may go here; apply an edit with\n"
        "#   systemctl --user reload tailerd\n"
        "# No `watch`: every supported agent's home is watched, the missing ones waited for.\n"
        "# Agents' own variables (CODEX_HOME, CLAUDE_CONFIG_DIR, ...) are read from the\n"
        "# service's environment: put them in ~/.config/tailerd/env.\n"
        '# agents = ["claude-code", "codex"]   # only these agents\' homes\n'
        '# watch = ["/path/to/logs"]           # these directories instead\n'
        'sinks = ["local"]\n'
    )


def homes_now() -> list[str]:
    """One line per supported agent home that exists now (what the service starts reading)."""
    from tailerd import agent_homes

    return [f"{r.agent}: {r.path}" for r in agent_homes.present(agent_homes.roots())]


def user_unit_text(layout: UserLayout) -> str:
    """The user unit for `layout`."""
    template = (templates_dir() / "tailerd-user.service").read_text()
    return render_user_unit(
        template, tailerd_executable(), layout.config_file, layout.state_dir, layout.data_dir
    )


def closed_to_others(path: Path) -> Path | None:
    """The first directory above `path` other users cannot enter (no o+x: a 0700 home such
    as /root), or None: the system unit's DynamicUser could not run it (203/EXEC)."""
    for folder in reversed(path.absolute().parents):
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return folder
    return None


def warn_closed_executable(executable: Path) -> None:
    """One warning line if the system unit's ExecStart or its Python is `closed_to_others`."""
    for path in (executable, Path(sys.executable).resolve()):
        closed = closed_to_others(path)
        if closed is not None:
            sys.stderr.write(
                f"tailerd: warning: {path} is inside {closed}, which the system unit's dynamic"
                " user cannot enter: it would fail with 203/EXEC; install tailerd into"
                " /opt/tailerd/venv (README, Install) and run that tailerd's `service install"
                " --system`\n"
            )
            return


def install(scope: str, dry_run: bool) -> int:
    """Write the unit (or print it with `dry_run`), then daemon-reload and enable --now."""
    if scope == "user":
        layout = UserLayout.from_environment()
        text = user_unit_text(layout)
        unit_path = layout.unit_dir / UNIT
        config = None if layout.config_file.exists() else user_config_text()
    else:
        template = (templates_dir() / UNIT).read_text()
        text = render_system_unit(template, tailerd_executable())
        unit_path = SYSTEM_UNIT_DIR / UNIT
    if dry_run:
        sys.stdout.write(f"# {unit_path}\n{text}")
        if scope == "user" and config is not None:
            sys.stdout.write(f"# {layout.config_file}\n{config}")
        elif scope == "system" and not SYSTEM_CONFIG.exists():  # as the install writes it
            sys.stdout.write(f"# {SYSTEM_CONFIG}\n{example_config().read_text()}")
        if scope == "system":
            warn_closed_executable(tailerd_executable())
        return 0
    if scope == "system" and os.geteuid() != 0:
        raise ConfigError(f"installing the system unit needs root: {_as_root('install')}")
    if scope == "system":
        warn_closed_executable(tailerd_executable())
    systemctl(scope, "show", "--property=Version")  # the manager answers, before writing anything
    if scope == "user":
        for folder in (layout.state_dir, layout.data_dir):  # ReadWritePaths= must exist
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if config is not None:
            _write(layout.config_file, config, mode=0o600)
            homes = homes_now() or ["none yet: each is picked up when its agent creates it"]
            listed = "".join(f"\n  {line}" for line in homes)
            sys.stdout.write(f"wrote {layout.config_file}; agent homes there now:{listed}\n")
    elif not SYSTEM_CONFIG.exists():
        _write(SYSTEM_CONFIG, example_config().read_text())
        sys.stdout.write(f"wrote {SYSTEM_CONFIG} (edit `watch` there)\n")
    _write(unit_path, text)
    systemctl(scope, "daemon-reload")
    systemctl(scope, "enable", "--now", UNIT)
    flag = "--user " if scope == "user" else ""
    sys.stdout.write(
        f"installed {unit_path} and started it; logs: journalctl {flag}-u tailerd, "
        f"state: tailerd service status{' --system' if scope == 'system' else ''}\n"
    )
    return 0


def uninstall(scope: str) -> int:
    """Stop, disable and remove the unit; state, data and configuration are kept."""
    unit_path = UserLayout.from_environment().unit_dir if scope == "user" else SYSTEM_UNIT_DIR
    unit_path = unit_path / UNIT
    if scope == "system" and os.geteuid() != 0:
        raise ConfigError(f"removing the system unit needs root: {_as_root('uninstall')}")
    if unit_path.exists():
        systemctl(scope, "show", "--property=Version")  # the manager answers, before stopping
    systemctl(scope, "disable", "--now", UNIT, check=unit_path.exists())
    if unit_path.exists():
        unit_path.unlink()
        systemctl(scope, "daemon-reload")
        sys.stdout.write(f"removed {unit_path}; state and data were kept\n")
    else:
        sys.stdout.write(f"nothing to remove: {unit_path} does not exist\n")
    return 0


def status(scope: str) -> int:
    """`systemctl status` of the unit, then `tailerd status` of its state dir. Exit status 0
    when the unit runs, 1 when it does not (systemctl's 3) or is not installed (its 4: one
    line on stderr saying how to install it, and no `tailerd status`)."""
    systemctl(scope, "show", "--property=Version")  # a manager to ask, else one line (69)
    shown = systemctl(scope, "status", "--no-pager", "--lines=5", UNIT, check=False)
    if shown.returncode == NO_SUCH_UNIT:
        how = (
            "`tailerd service install`"
            if scope == "user"
            else "`sudo tailerd service install --system`"
        )
        whose = "for this user" if scope == "user" else "on this system"
        sys.stderr.write(f"tailerd: {UNIT} is not installed {whose}: install it with {how}\n")
        return 1
    sys.stdout.write(shown.stdout or shown.stderr)
    if scope == "user":
        layout = UserLayout.from_environment()
        dirs = ["--state-dir", str(layout.state_dir), "--data-dir", str(layout.data_dir)]
    else:
        dirs = ["--state-dir", str(SYSTEM_STATE_DIR), "--data-dir", str(SYSTEM_STATE_DIR)]
    sys.stdout.write("\n")
    sys.stdout.flush()
    subprocess.run([str(tailerd_executable()), "status", *dirs], check=False, timeout=120)
    return 0 if shown.returncode == 0 else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tailerd service", description="Install tailerd as a systemd service.")
    p.add_argument("action", choices=("install", "uninstall", "status"))
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--user", dest="scope", action="store_const", const="user", help="this user (default)"
    )
    scope.add_argument(
        "--system", dest="scope", action="store_const", const="system", help="the system (root)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the unit instead of installing")
    return p


def main(argv: Sequence[str]) -> int:
    """Entry point of `tailerd service ...` (argv after `service`); returns the exit status."""
    args = _parser().parse_args(argv)
    scope = args.scope or "user"
    if args.action == "install":
        return install(scope, args.dry_run)
    if args.dry_run:
        raise ConfigError("--dry-run goes with install")
    return uninstall(scope) if args.action == "uninstall" else status(scope)
