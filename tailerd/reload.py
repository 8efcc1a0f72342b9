"""Reload (SIGHUP, `systemctl reload`): read the configuration again and apply it to the running
daemon without losing state or sending anything twice.

Runs on the daemon's thread between two ticks (tailerd/service.py asks
`edges.signals.reload_requested()` after each), so no file is half-read. Everything that can
fail is built first (layers, mappings, redaction, sinks); an invalid configuration is refused
with one warning line and the running one stays. Then:

* sinks (and batch sizes): the turns in flight are delivered and committed (up to
  `shutdown_timeout`), the old sinks closed, the new ones used; if turns are still
  unacknowledged then (a backend is down), the sinks stay as they were and a warning says so;
* redaction: the new rules apply to turns read from now on;
* mappings: used for files no format recognised yet (and new files);
* watch roots, globs, watch mode: files under a root no longer watched are drained and let go
  (their checkpoints kept), the watches are set up again and every root is walked: a new
  root's files are read from their checkpoint (or the start), known files are not re-read;
* format options (`[format_options]`): a file's parser takes them when it is made, so they
  apply to files opened after the reload; files already open keep theirs until a restart (an
  INFO line says so);
* other settings (intervals, limits) apply from the next tick.

`state_dir` and `data_dir` need a restart (the lock and the stores are open); a change to them
is reported and ignored. Checkpoints, the history index and per-file parser state are untouched:
every turn already sent keeps its acknowledgement, and no file goes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tailerd import formats, sinks
from tailerd.content_policy import build_redactor
from tailerd.daemon import Daemon
from tailerd.edges.systemd import Notifier
from tailerd.errors import TailerdError
from tailerd.formats.base import Format
from tailerd.pipeline import FilePipeline
from tailerd.settings import Settings

log = logging.getLogger("tailerd")

# Settings the sinks are built from: a change to any of them builds new sinks.
SINK_FIELDS: tuple[str, ...] = (
    "sinks",
    "otlp_endpoint",
    "otlp_headers",
    "project",
    "batch_spans",
    "max_pending_spans",
)
WATCH_FIELDS = ("watch", "include", "exclude", "watch_mode", "poll_interval")
RESTART_FIELDS = ("state_dir", "data_dir")


def _changed(old: Settings, new: Settings, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if getattr(old, f) != getattr(new, f)]


def reload(
    daemon: Daemon, load: Callable[[], Settings], notifier: Notifier, data_dir: Path
) -> bool:
    """Read the configuration with `load` and apply it. True if applied (maybe in part: see
    the log), False if refused (one warning line; the running configuration stays)."""
    notifier.reloading()
    try:
        applied = _apply(daemon, load(), data_dir)
    except TailerdError as exc:
        log.warning("reload refused, the running configuration stays: %s", exc)
        applied = False
    except Exception as exc:  # a bug must not stop a daemon that was running fine
        log.error("reload failed (%s: %s); going on as configured before", type(exc).__name__, exc)
        log.debug("traceback of the failed reload", exc_info=exc)
        applied = False
    notifier.ready(f"tailing {len(daemon.files)} files")
    return applied


def _apply(daemon: Daemon, new: Settings, data_dir: Path) -> bool:
    old = daemon.settings
    kept = _changed(old, new, RESTART_FIELDS)
    if kept:
        log.warning("reload: %s changes only with a restart; kept as it was", ", ".join(kept))
        new = new.model_copy(update={f: getattr(old, f) for f in kept})
    mapped = formats.configured(new.mapping, new.format)
    redactor = build_redactor(new)
    new_sinks = sinks.build(new, data_dir) if _changed(old, new, SINK_FIELDS) else None
    if new_sinks is not None and all(s.name == "console" for s in new_sinks) != daemon.dry_run:
        for sink in new_sinks:
            sink.close()
        raise TailerdError("switching to or from a dry run (console only) needs a restart")

    if new_sinks is not None and not daemon.replace_sinks(new_sinks, new):
        for sink in new_sinks:
            sink.close()
        log.warning(
            "reload: sinks kept as they were: %d turns are still unacknowledged (reload again"
            " once they are)",
            len(daemon.delivery),
        )
        new = new.model_copy(update={f: getattr(old, f) for f in SINK_FIELDS})
    daemon.use_redactor(redactor)
    _use_mappings(daemon, new, mapped)
    watching = _changed(old, new, WATCH_FIELDS)
    daemon.settings = new
    if watching:
        daemon.table.reconfigure(new)
        daemon.start_watcher()
        daemon.table.scan()
    else:
        daemon.table.settings = new
    changed = [f for f in Settings.model_fields if getattr(old, f) != getattr(new, f)]
    log.info("configuration reloaded; changed: %s", ", ".join(changed) or "nothing")
    if "format_options" in changed:  # a parser takes its options when it is made
        log.info(
            "reload: format options apply to files opened after the reload; files already"
            " open (%d) keep theirs until a restart",
            len(daemon.files),
        )
    return True


def _use_mappings(daemon: Daemon, new: Settings, mapped: tuple[Format, ...]) -> None:
    """New [[mapping]] tables: files no format recognised are tried again with them."""
    daemon.mapped = mapped
    for f in daemon.files.values():
        if f.unrecognised:
            f.unrecognised = False
            f.pipe = FilePipeline.at(f.path, new, f.checkpoint.offset)
            daemon.table.mark_dirty(f)
