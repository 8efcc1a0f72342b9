"""Command line: argv -> settings -> daemon or a report. Every error: one line, an exit code."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson

from tailerd import __version__
from tailerd.errors import EX_DATAERR, EX_SOFTWARE, ConfigError, TailerdError
from tailerd.settings import SINK_NAMES
from tailerd.sinks.local import DB_FILE

COMMANDS = ("status", "sessions", "show", "import", "preview", "dead-letters", "retry", "service")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _run_parser() -> _Parser:
    p = _Parser(
        prog="tailerd",
        description="Watch agent log files and ship finished turns to Weave or OpenTelemetry. "
        f"Other commands: {', '.join(COMMANDS)} (tailerd COMMAND --help).",
    )
    p.add_argument(
        "--watch", action="append", type=Path, metavar="DIR", help="directory to watch (repeatable)"
    )
    p.add_argument(
        "--sink",
        action="append",
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
    p.add_argument("-v", "--verbose", action="store_true", default=None)
    p.add_argument("--version", action="version", version=f"tailerd {__version__}")
    return p


def _report_parser(command: str) -> _Parser:
    p = _Parser(prog=f"tailerd {command}")
    p.add_argument("--state-dir", type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--config", type=Path)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    if command == "show":
        p.add_argument("session_id")
    if command in {"import", "preview"}:
        p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        p.add_argument("--format")
        p.add_argument("--agent-name")
    if command in {"import", "retry"}:
        p.add_argument("--sink", action="append", choices=SINK_NAMES)
        p.add_argument("--otlp-endpoint", metavar="URL")
        p.add_argument("--project", metavar="ENTITY/PROJECT")
    return p


def _settings(args: argparse.Namespace) -> Any:
    from tailerd import settings

    fields = (
        "watch",
        "sink",
        "state_dir",
        "data_dir",
        "once",
        "format",
        "include",
        "exclude",
        "agent_name",
        "otlp_endpoint",
        "project",
        "verbose",
    )
    overrides = {f: getattr(args, f, None) for f in fields}
    overrides["sinks"] = overrides.pop("sink")
    return settings.build(args.config, overrides)


def _print(doc: Any, as_json: bool, lines: Any) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines(doc):
            sys.stdout.write(line + "\n")


def _report(command: str, argv: Sequence[str]) -> int:
    from tailerd import reports
    from tailerd.edges.state_dir import resolve_data_dir, resolve_state_dir

    args = _report_parser(command).parse_args(argv)
    cfg = _settings(args)
    state_dir = resolve_state_dir(cfg.state_dir)
    db = resolve_data_dir(cfg.data_dir, state_dir) / DB_FILE
    if command == "status":
        _print(reports.status(state_dir), args.json, reports.render_status)
    elif command == "sessions":
        _print(reports.sessions(db), args.json, reports.render_sessions)
    elif command == "show":
        turns = reports.session_spans(db, args.session_id)
        if not turns:
            raise ConfigError(f"no session {args.session_id!r} in {db}")
        _print(turns, args.json, reports.render_show)
    elif command == "dead-letters":
        _print(reports.dead_letters(state_dir), args.json, _render_dead_letters)
    else:
        from tailerd import backfill

        if command == "import":
            return backfill.run(cfg, args.paths)
        if command == "preview":
            return backfill.preview(cfg, args.paths)
        return backfill.retry(cfg)
    return 0


def _render_dead_letters(rows: list[dict[str, Any]]) -> Any:
    for r in rows:
        yield f"{r['path']}:{r['start']}-{r['end']}  {r['reason']}"


def _serve(argv: Sequence[str]) -> int:
    args = _run_parser().parse_args(argv)
    cfg = _settings(args)
    if not cfg.watch:
        raise ConfigError("nothing to watch: give --watch DIR (or watch = [...] in --config)")
    from tailerd import service

    return service.run(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:  # serving: a SIGTERM from now on is a clean stop
        from tailerd.edges.signals import catch_early

        catch_early()
    from tailerd.edges.systemd import configure_logging

    configure_logging("-v" in argv or "--verbose" in argv)
    try:
        if argv and argv[0] == "service":
            from tailerd import service_install

            return service_install.main(argv[1:])
        if argv and argv[0] in COMMANDS:
            return _report(argv[0], argv[1:])
        return _serve(argv)
    except Exception as exc:
        expected = (TailerdError, BrokenPipeError, sqlite3.DatabaseError)
        if ("-v" in argv or "--verbose" in argv) and not isinstance(exc, expected):
            raise  # a bug: the traceback is what -v is for
        return _one_line(exc)
    except KeyboardInterrupt:
        return 130


def _one_line(exc: Exception) -> int:
    """Say what went wrong in one line on stderr; the exit code says what kind of thing."""
    if isinstance(exc, TailerdError):
        sys.stderr.write(f"tailerd: {exc}\n")
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`tailerd sessions | head -1`): nothing more to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if isinstance(exc, sqlite3.DatabaseError):  # a report read a store that is not one
        sys.stderr.write(f"tailerd: cannot read the local store: {exc} (see --data-dir)\n")
        return EX_DATAERR
    sys.stderr.write(
        f"tailerd: internal error: {type(exc).__name__}: {exc} (run with -v for details)\n"
    )
    return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
