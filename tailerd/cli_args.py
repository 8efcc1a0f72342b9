"""The command line's grammar: the serving flags and each report command's flags (argparse).
A parse error is a ConfigError (one line, exit 78), never argparse's usage dump and exit 2.
What the commands do is tailerd/cli.py's."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from tailerd import __version__
from tailerd.errors import ConfigError
from tailerd.settings import SINK_NAMES

COMMANDS = (
    "status",
    "sessions",
    "show",
    "import",
    "preview",
    "dead-letters",
    "retry",
    "service",
    "check-config",
    "usage",
    "doctor",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def run_parser() -> argparse.ArgumentParser:
    """`tailerd [FLAGS]`: the daemon (or `--once`); its flags become Settings fields."""
    p = _Parser(
        prog="tailerd",
        description="Watch agent log files and ship finished turns to Weave or OpenTelemetry. "
        f"Other commands: {', '.join(COMMANDS)} (tailerd COMMAND --help).",
    )
    p.add_argument(
        "--watch",
        action="append",
        type=Path,
        metavar="DIR",
        help="directory to watch (repeatable); none: the homes of every supported agent",
    )
    p.add_argument(
        "--agents",
        type=_agent_list,
        metavar="NAME,...",
        help="with no --watch, only these agents' homes (e.g. claude-code,codex)",
    )
    p.add_argument(
        "--sink",
        action="append",
        dest="sinks",
        choices=SINK_NAMES,
        help="where turns go (default local; repeatable)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="checkpoints and lock (default $STATE_DIRECTORY or the user state dir)",
    )
    p.add_argument("--data-dir", type=Path, help="where the local store lives")
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument(
        "--once", action="store_true", default=None, help="process what is there now, then exit"
    )
    p.add_argument("--format", help="force a format instead of detecting it")
    p.add_argument(
        "--include", action="append", metavar="GLOB", help="file name glob to include (repeatable)"
    )
    p.add_argument(
        "--exclude", action="append", metavar="GLOB", help="file name glob to exclude (repeatable)"
    )
    p.add_argument("--agent-name", help="agent name to report instead of the format's default")
    p.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="OTLP/HTTP traces URL (else OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT)",
    )
    p.add_argument("--project", metavar="ENTITY/PROJECT", help="W&B project for --sink weave")
    _loudness(p)
    p.add_argument("--version", action="version", version=f"tailerd {__version__}")
    return p


def _agent_list(value: str) -> tuple[str, ...]:
    from tailerd.agent_homes import parse_agents

    try:
        return tuple(parse_agents(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(value: str) -> float:
    """A number of seconds above 0 (`status --alive`): a heartbeat age of 0 or less is never
    met, so such a probe could never pass."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0:  # also NaN
        raise argparse.ArgumentTypeError(f"give a number of seconds above 0, not {value}")
    return seconds


def _loudness(p: argparse.ArgumentParser) -> None:
    """-v and -q, accepted by every command."""
    p.add_argument(
        "-v", "--verbose", action="store_true", default=None, help="debug log; tracebacks of bugs"
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", default=None, help="warnings and errors only"
    )


def report_parser(command: str) -> argparse.ArgumentParser:
    """`tailerd COMMAND [FLAGS]` for one of COMMANDS other than `service`."""
    p = _Parser(prog=f"tailerd {command}")
    p.add_argument(
        "--state-dir", type=Path, help="the daemon's state dir (its data dir is recorded there)"
    )
    p.add_argument("--data-dir", type=Path, help="where the local store is (tailerd.db)")
    p.add_argument("--config", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _loudness(p)
    if command == "show":
        p.add_argument("session_id")
    if command == "usage":
        from tailerd import usage

        usage.add_arguments(p)
    if command == "sessions":
        from tailerd.reports.sessions_view import SORT_KEYS

        p.add_argument(
            "--sort",
            choices=SORT_KEYS,
            default="last",
            help="by time oldest first, or by cost/tokens/turns largest first (default last)",
        )
        p.add_argument("--since", metavar="WHEN", help="active since: 7d, 12h, 30m or a date")
        p.add_argument("--agent", metavar="NAME", help="only this agent (e.g. claude-code)")
        p.add_argument("--limit", type=int, metavar="N", help="only the newest / largest N")
    if command in {"import", "preview"}:
        p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        p.add_argument("--format")
        p.add_argument("--agent-name")
        p.add_argument(
            "--resend",
            action="store_true",
            help="also the turns the daemon already shipped (its checkpoints say so)",
        )
    if command == "status":
        p.add_argument(
            "--alive",
            type=_positive_seconds,
            metavar="SECONDS",
            help="exit 0 if a daemon runs on the state dir and beat within SECONDS, 1 if not,"
            " 78 if heartbeat_interval is 0 (default 15 s; for liveness probes)",
        )
    if command == "doctor":
        p.add_argument("--watch", action="append", type=Path, metavar="DIR")
        p.add_argument("--agents", type=_agent_list, metavar="NAME,...")
    if command in {"import", "retry", "doctor"}:
        p.add_argument("--sink", action="append", dest="sinks", choices=SINK_NAMES)
        p.add_argument("--otlp-endpoint", metavar="URL")
        p.add_argument("--project", metavar="ENTITY/PROJECT")
    return p
