"""Where state lives, and the lock that keeps a second tailerd off it."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import platformdirs

from tailerd.errors import AccessError, ConfigError, StateLockedError

log = logging.getLogger("tailerd")


def resolve_state_dir(explicit: Path | None) -> Path:
    """--state-dir, else $STATE_DIRECTORY (systemd), else the platform's user state dir."""
    if explicit is not None:
        return explicit
    from_systemd = os.environ.get("STATE_DIRECTORY")
    if from_systemd:
        return Path(from_systemd.split(":")[0])
    return Path(platformdirs.user_state_dir("tailerd"))


def resolve_data_dir(explicit: Path | None, state_dir: Path) -> Path:
    """Where the local store lives: the given one (--data-dir, config, env), else the one
    recorded in `<state_dir>/data-dir` (so a state dir keeps its store when reused without
    --data-dir), else under systemd the state dir (no $HOME with DynamicUser), else the
    platform's user data dir."""
    if explicit is not None:
        return explicit
    recorded = recorded_data_dir(state_dir)
    if recorded is not None:
        return recorded
    if os.environ.get("STATE_DIRECTORY"):
        return state_dir
    return Path(platformdirs.user_data_dir("tailerd"))


DATA_DIR_FILE = "data-dir"  # in the state dir: where the daemon using it keeps its local store


def record_data_dir(state_dir: Path, data_dir: Path) -> None:
    """Write down (in `<state>/data-dir`, one line, mode 0600) where this state dir's local
    store is, so reports and later runs given only --state-dir find it. A data dir different
    from the one recorded replaces it, with one INFO line naming both. Best effort: a report
    can still be told."""
    path = state_dir / DATA_DIR_FILE
    text = f"{data_dir.absolute()}\n"
    try:
        before = recorded_data_dir(state_dir)
    except AccessError:
        return
    try:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            path.chmod(0o600)
            return
        tmp = path.with_name(DATA_DIR_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        tmp.chmod(0o600)  # an old .tmp kept its mode through O_CREAT
        tmp.replace(path)
    except (OSError, UnicodeDecodeError):
        return
    if before is not None and before != data_dir.absolute():
        log.info(
            "state dir %s now uses the local store in %s (it used %s)",
            state_dir,
            data_dir.absolute(),
            before,
        )


def recorded_data_dir(state_dir: Path) -> Path | None:
    """The data dir a daemon recorded in `state_dir`, or None. AccessError when the record is
    there but not readable (0600: another user's), rather than guessing another store."""
    path = state_dir / DATA_DIR_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except PermissionError:
        raise AccessError(
            f"cannot read state dir {state_dir}: permission denied on {path} (run as the user"
            " that runs the daemon, e.g. with sudo, or give --data-dir)"
        ) from None
    except (OSError, UnicodeDecodeError):
        return None
    return Path(text) if text else None


def prepare(state_dir: Path) -> Path:
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state_dir.chmod(0o700)
    except OSError as exc:
        raise unusable("state dir", state_dir, exc.strerror or str(exc)) from None
    return state_dir


def unusable(kind: str, path: Path, why: str) -> ConfigError:
    """The one line (exit 78) for a state or data dir (`kind`: "state dir" / "data dir") that
    cannot be made or used, `why` being the system's words: it names the path and what to do,
    since "File exists" or "No such file or directory" alone say neither."""
    flag = "--" + kind.replace(" ", "-")
    head = f"cannot use {kind} {path}: "
    try:
        if path.exists() and not path.is_dir():
            return ConfigError(
                f"{head}it is a file, not a directory (give {flag} a directory, or move the file)"
            )
        there = path.is_dir()
        ancestor = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    except OSError:
        there, ancestor = False, path.absolute().parent
    if there:
        return ConfigError(f"{head}{why} (check its permissions, or give {flag} another one)")
    return ConfigError(
        f"{head}{why}; it cannot be created in {ancestor} (give {flag} a directory this user"
        " can create or write)"
    )


class StateLock:
    """An exclusive flock on <state>/lock, held for the life of the process."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StateLockedError(
                f"another tailerd (pid {holder}) is using state dir {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
