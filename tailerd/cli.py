"""Command line: argv -> settings -> daemon or a report. Every error: one line, an exit code."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from tailerd.cli_args import COMMANDS, report_parser, run_parser
from tailerd.errors import (
    EX_DATAERR,
    EX_IOERR,
    EX_SOFTWARE,
    AccessError,
    ConfigError,
    NoInputError,
    TailerdError,
)
from tailerd.sinks.local import DB_FILE


def _settings(args: argparse.Namespace) -> Any:
    from tailerd import settings

    # defaults < --config file < TAILERD_* environment < the flags given (tailerd/settings.py)
    flags = {k: v for k, v in vars(args).items() if k in settings.Settings.model_fields}
    cfg = settings.build(settings.config_file(args.config), flags)
    from tailerd.edges import host

    host.configure(cfg.host_name, cfg.host_details)  # before any turn gets an id
    return cfg


def _print(doc: Any, as_json: bool, lines: Any) -> None:
    """`doc` as indented JSON, or the text lines `lines(doc)` gives."""
    if as_json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines(doc):
            sys.stdout.write(line + "\n")


def _report(command: str, argv: Sequence[str]) -> int:
    from tailerd import reports
    from tailerd.edges.state_dir import resolve_state_dir

    args = report_parser(command).parse_args(argv)
    _quiet(args)
    if command == "check-config":
        from tailerd import config_check, settings

        return config_check.run(settings.config_file(args.config), vars(args), args.json)
    cfg = _settings(args)
    state_dir = resolve_state_dir(cfg.state_dir)
    terminal = sys.stdout.isatty()
    if command == "status":
        return _status(args, state_dir, cfg.heartbeat_interval)
    if command == "sessions":
        _sessions(args, _store(cfg, state_dir), terminal)
    elif command == "show":
        _show(args, _store(cfg, state_dir), terminal)
    elif command == "usage":
        from tailerd import usage

        return usage.run(args, _store(cfg, state_dir))
    elif command == "dead-letters":
        _need_state(state_dir)
        rows = reports.dead_letters(state_dir)
        if not rows and not args.json:
            sys.stdout.write(f"no dead letters in {state_dir}\n")
        _print(rows, args.json, _render_dead_letters)
    else:
        if command == "retry":  # like dead-letters: a state dir with nothing is said, not made
            _need_state(state_dir)
        return _backfill(command, cfg, args)
    return 0


def _backfill(command: str, cfg: Any, args: argparse.Namespace) -> int:
    from tailerd import backfill

    if command == "import":
        return backfill.run(cfg, _readable(args.paths), args.resend)
    if command == "preview":
        return backfill.preview(cfg, _readable(args.paths), args.resend)
    return backfill.retry(cfg)


def _readable(paths: Sequence[Path]) -> list[Path]:
    """The paths given to import/preview that exist; each missing one is one warning line
    ("… does not exist: skipped"); none at all: NoInputError (66), as `--once` does."""
    import logging

    found, missing = [], []
    for path in paths:
        try:
            path.stat()
        except OSError as exc:
            missing.append(f"{path}: {exc.strerror or exc}")
            continue
        found.append(path)
    if not found:
        raise NoInputError(f"none of the paths given can be read ({'; '.join(missing)})")
    for line in missing:
        logging.getLogger("tailerd").warning("%s: skipped", line)
    return found


def _sessions(args: argparse.Namespace, db: Path, terminal: bool) -> None:
    from tailerd import reports
    from tailerd.reports import sessions_view

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: give a number of sessions, 1 or more")
    since = sessions_view.parse_since(args.since) if args.since else None
    rows = sessions_view.select(reports.sessions(db), args.sort, since, args.agent, args.limit)
    if args.json:
        _print(rows, True, None)
    else:
        sessions_view.draw(rows, sys.stdout, terminal)


def _show(args: argparse.Namespace, db: Path, terminal: bool) -> None:
    from tailerd import reports
    from tailerd.reports import show_view
    from tailerd.reports.store import resolve_session

    args.session_id = resolve_session(db, args.session_id)  # an id or a unique prefix of one
    turns = reports.session_spans(db, args.session_id)
    if not turns:
        raise NoInputError(f"no session {args.session_id!r} in {db} (see `tailerd sessions`)")
    if args.json:
        for turn in turns:
            turn["totals"] = show_view.totals(turn).as_dict()
        _print(turns, True, None)
    else:
        show_view.draw(turns, args.session_id, sys.stdout, terminal)


def _doctor(argv: Sequence[str]) -> int:
    from tailerd import agent_homes, doctor
    from tailerd.edges.state_dir import resolve_data_dir, resolve_state_dir

    args = report_parser("doctor").parse_args(argv)
    _quiet(args)
    cfg = _settings(args)
    state_dir = resolve_state_dir(cfg.state_dir)
    data_dir = resolve_data_dir(cfg.data_dir, state_dir)
    # what a daemon with these settings would watch: the roots given, else the agent homes
    roots = [agent_homes.Root("watch", p, "default") for p in cfg.watch]
    zero_config = not roots
    if zero_config:
        roots = agent_homes.roots(cfg.agents or None)
    checks = doctor.run(cfg, state_dir, data_dir, roots, zero_config)
    if args.json:
        rows = [{"level": c.level, "check": c.what, "detail": c.detail} for c in checks]
        _print(rows, True, None)
    else:
        for check in checks:
            sys.stdout.write(check.line() + "\n")
    return 1 if any(c.level == "fail" for c in checks) else 0


def _status(args: argparse.Namespace, state_dir: Path, heartbeat_interval: float) -> int:
    """`status`, or with --alive a liveness check: 0 alive, 1 not, 78 heartbeats off in the
    config read (the same --config / TAILERD_* as the daemon's: a probe could never pass)."""
    from tailerd import reports
    from tailerd.edges.heartbeat import HEARTBEATS_OFF, alive

    if args.alive is None:
        _need_state(state_dir)
        _print(reports.status(state_dir), args.json, reports.render_status)
        return 0
    if heartbeat_interval <= 0:
        raise ConfigError(HEARTBEATS_OFF)
    why = alive(state_dir, args.alive)
    if why is not None:
        sys.stderr.write(f"tailerd: {why}\n")
        return 1
    return 0


def _quiet(args: argparse.Namespace) -> None:
    if getattr(args, "quiet", None) and not getattr(args, "verbose", None):
        import logging

        logging.getLogger("tailerd").setLevel(logging.WARNING)


def _need_state(state_dir: Path) -> None:
    """A report on a state dir that holds nothing says so, naming it (exit 66)."""
    from tailerd.edges.checkpoint_store import FILE_NAME as CHECKPOINTS

    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigError(f"state dir {state_dir} is a file, not a directory (see --state-dir)")
    checkpoints = state_dir / CHECKPOINTS
    try:
        found = checkpoints.exists() or (state_dir / "checkpoints.json").exists()
    except OSError as exc:
        found, checkpoints = True, Path(exc.filename or checkpoints)
    if found and not os.access(checkpoints, os.R_OK):
        raise AccessError(
            f"cannot read state dir {state_dir}: permission denied on {checkpoints} (run as the"
            " user that runs the daemon, e.g. with sudo)"
        )
    if not found:
        raise NoInputError(
            f"no tailerd state in {state_dir}: run `tailerd --watch DIR --state-dir {state_dir}`"
            " first (or give the --state-dir it used)"
        )


def _store(cfg: Any, state_dir: Path) -> Path:
    """The local store to read: --data-dir, else the one the daemon recorded in the state
    dir, else the default data dir (all three: edges/state_dir.resolve_data_dir). A state dir
    given (flag, config, env) without a data dir must hold tailerd state: NoInputError (66)."""
    from tailerd.edges.state_dir import recorded_data_dir, resolve_data_dir

    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigError(f"state dir {state_dir} is a file, not a directory (see --state-dir)")
    if cfg.state_dir is not None and cfg.data_dir is None and not recorded_data_dir(state_dir):
        _need_state(state_dir)  # a mistyped --state-dir is said, not the home's store shown
    return resolve_data_dir(cfg.data_dir, state_dir) / DB_FILE


def _render_dead_letters(rows: list[dict[str, Any]]) -> Any:
    for r in rows:
        yield f"{r['path']}:{r['start']}-{r['end']}  {r['reason']}"


def _serve(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(argv)
    _quiet(args)
    from tailerd import service
    from tailerd.agent_homes import with_agent_homes

    def load() -> Any:  # at start and on every reload (SIGHUP)
        given = _settings(args)
        if given.once:
            _need_a_root(given.watch)
        cfg = with_agent_homes(given)
        _warn_include(cfg)
        return cfg

    return service.run(load(), load)


def _need_a_root(watch: Sequence[Path]) -> None:
    """`--once` over watch roots given (flag, config, env) none of which can be listed:
    NoInputError (66) naming each and why, rather than "0 files" and exit 0 (a typo in a cron
    job). One readable root is enough: the others are skipped with a warning each
    (edges/discovery.Roots). Zero-config agent homes are not given: never checked here."""
    why = []
    for root in watch:
        try:
            with os.scandir(root):
                return
        except OSError as exc:
            why.append(f"{root} ({exc.strerror or exc})")
    if why:
        raise NoInputError(
            f"no watch directory could be read: {', '.join(why)}; check --watch (or `watch` in"
            " the config)"
        )


def _warn_include(cfg: Any) -> None:
    """The start log's (and each reload's) warning when `include` leaves formats unread."""
    from tailerd.config_check import include_warning

    warning = include_warning(cfg.include, cfg.format)
    if warning is not None:
        import logging

        logging.getLogger("tailerd").warning("%s", warning)


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

            loudness = {"-v", "--verbose", "-q", "--quiet"}  # taken here for every command
            if {"-q", "--quiet"} & set(argv) and not {"-v", "--verbose"} & set(argv):
                import logging

                logging.getLogger("tailerd").setLevel(logging.WARNING)
            return service_install.main([a for a in argv[1:] if a not in loudness])
        if argv and argv[0] == "doctor":
            return _doctor(argv[1:])
        if argv and argv[0] in COMMANDS:
            return _report(argv[0], argv[1:])
        return _serve(argv)
    except Exception as exc:
        expected = (TailerdError, BrokenPipeError, sqlite3.DatabaseError, OSError)
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
    if isinstance(exc, sqlite3.OperationalError):  # permissions, a locked or read-only place
        sys.stderr.write(
            f"tailerd: cannot read the local store: {exc} (check the permissions of the store"
            " and its directory, or see --data-dir)\n"
        )
        return EX_IOERR
    if isinstance(exc, sqlite3.DatabaseError):  # a report read a store that is not one
        sys.stderr.write(f"tailerd: cannot read the local store: {exc} (see --data-dir)\n")
        return EX_DATAERR
    if isinstance(exc, OSError) and exc.filename:  # the machine's, not tailerd's, problem
        sys.stderr.write(f"tailerd: {exc.filename}: {exc.strerror or exc} (check it)\n")
        return EX_IOERR
    sys.stderr.write(
        f"tailerd: internal error: {type(exc).__name__}: {exc} (run with -v for details)\n"
    )
    return EX_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
