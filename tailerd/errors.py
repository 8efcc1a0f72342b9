"""Errors that end the program with one clear line. Per-line problems never raise."""

from __future__ import annotations

EX_CONFIG = 78  # os.EX_CONFIG; the systemd unit sets RestartPreventExitStatus=78
EX_TEMPFAIL = 75  # another tailerd holds the state directory
EX_SOFTWARE = 70  # a bug in tailerd: reported in one line, details with -v
EX_DATAERR = 65  # a state file is corrupt: refuse rather than silently start over


class TailerdError(Exception):
    exit_code = 1


class ConfigError(TailerdError):
    exit_code = EX_CONFIG


class StateLockedError(TailerdError):
    exit_code = EX_TEMPFAIL


class StateCorruptError(TailerdError):
    exit_code = EX_DATAERR


EX_NOINPUT = 66  # a report found nothing to read: no state dir, no store, no such session
EX_IOERR = 74  # a file or directory tailerd needs cannot be read or written (permissions, disk)


class NoInputError(TailerdError):
    exit_code = EX_NOINPUT


class AccessError(TailerdError):
    """A path tailerd needs cannot be read or written: permissions, read-only, disk full."""

    exit_code = EX_IOERR
