"""`tailerd import PATH...`: backfill whole sessions through weave's `log_conversation`.

It reads each file whole, keeps only finished turns, groups them by session, and emits every
session with the same deterministic ids as the live path, so importing what was already tailed
adds nothing to a store that keys by span id. It keeps no checkpoints of its own.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path, PurePath

from tailerd import formats, sinks
from tailerd.core.framing import LineFramer
from tailerd.daemon import read_related
from tailerd.domain import DeadLetter, Delivered, Outcome, Rejected, Retry, Turn
from tailerd.edges.discovery import Globs, walk
from tailerd.edges.source_file import open_reader
from tailerd.edges.state_dir import prepare, resolve_data_dir, resolve_state_dir
from tailerd.emitter import Emitter
from tailerd.errors import EX_TEMPFAIL, ConfigError
from tailerd.formats.base import Format, Source
from tailerd.settings import Settings

log = logging.getLogger("tailerd")


def finished_turns(
    path: Path, settings: Settings, mapped: tuple[Format, ...] = ()
) -> tuple[list[Turn], int]:
    """Every finished turn in one file, and how many dead letters it has."""
    reader = open_reader(path)
    try:
        size = reader.stat().st_size
        data = reader.read(0, size)
        mtime = reader.stat().st_mtime
    finally:
        reader.close()
    fmt = formats.choose(PurePath(path), data[: 64 * 1024], settings.format, mapped)
    if fmt is None:
        log.info("no format recognises path=%s; skipped", path)
        return [], 0
    options = settings.format_options.get(fmt.name, {})
    parser = fmt.new_parser(Source(str(path), settings.agent_name, options, read_related), None)
    turns: list[Turn] = []
    dead = 0
    for item in LineFramer(max_line=settings.max_line_bytes).feed(data):
        results = [item] if isinstance(item, DeadLetter) else parser.feed(item)
        for out in results:
            if isinstance(out, DeadLetter):
                dead += 1
                log.warning("dead letter path=%s offset=%d reason=%s", path, out.start, out.reason)
            else:
                turns.append(out)
    turns.extend(parser.close_idle(max(0.0, time.time() - mtime)))
    return turns, dead


def _files(paths: Sequence[Path], settings: Settings) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(path for path, _ in walk([p], Globs(settings.include, settings.exclude)))
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError(f"no such file or directory: {p}")
    return sorted(p for p in out if not formats.is_auxiliary(PurePath(p)))


def run(settings: Settings, paths: Sequence[Path]) -> int:
    state_dir = prepare(resolve_state_dir(settings.state_dir))
    outputs = sinks.build(settings, resolve_data_dir(settings.data_dir, state_dir))
    emitter = Emitter()
    by_session: dict[str, list[Turn]] = defaultdict(list)
    mapped = formats.configured(settings.mapping, settings.format)
    for path in _files(paths, settings):
        turns, _dead = finished_turns(path, settings, mapped)
        for turn in turns:
            by_session[turn.session_id].append(turn)
    failed = 0
    for session_id, turns in by_session.items():
        spans = emitter.emit_session(turns)
        for sink in outputs:
            outcome = _send_with_retry(sink, spans, settings.once_timeout)
            if not isinstance(outcome, Delivered):
                failed += 1
                log.error("session %s not imported into %s: %s", session_id, sink.name, outcome.reason)
    total = sum(len(t) for t in by_session.values())
    log.info("imported %d sessions, %d turns", len(by_session), total)
    for sink in outputs:
        sink.close()
    return EX_TEMPFAIL if failed else 0


def _send_with_retry(sink: sinks.Sink, spans: list, timeout: float) -> Outcome:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        outcome = sink.send(spans)
        if not isinstance(outcome, Retry) or time.monotonic() + delay > deadline:
            return outcome
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


__all__ = ["Rejected", "finished_turns", "run"]
