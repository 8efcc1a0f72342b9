"""Commands that read whole files: `import` (backfill), `preview` and `retry`.

`tailerd import PATH...` backfills whole sessions through weave's `log_conversation`.

It streams each file through the same per-file pipeline as the daemon (tailerd/pipeline.py),
keeps only finished turns, groups a file's turns by session, and emits every
session with the same deterministic ids as the live path, so importing what was already tailed
adds nothing to a store that keys by span id. It keeps no checkpoints of its own.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from tailerd import formats, sinks
from tailerd.content_policy import build_redactor
from tailerd.domain import DeadLetter, Delivered, Outcome, Retry, Turn
from tailerd.edges import dead_letter_store
from tailerd.edges.discovery import Globs, walk
from tailerd.edges.state_dir import prepare, resolve_data_dir, resolve_state_dir
from tailerd.emitter import Emitter
from tailerd.errors import EX_TEMPFAIL, ConfigError
from tailerd.formats.base import Format
from tailerd.pipeline import whole_file
from tailerd.settings import Settings
from tailerd.sinks.base import Sink, span_record

log = logging.getLogger("tailerd")


def finished_turns(
    path: Path, settings: Settings, mapped: tuple[Format, ...] = ()
) -> Iterator[Turn]:
    """Every finished turn in one file, streamed; its dead letters are logged."""
    try:
        quiet = max(0.0, time.time() - path.stat().st_mtime)
        for out in whole_file(path, settings, mapped, quiet):
            if isinstance(out, DeadLetter):
                log.warning("dead letter path=%s offset=%d reason=%s", path, out.start, out.reason)
            else:
                yield out
    except OSError as exc:
        log.warning("cannot read path=%s error=%s", path, exc.strerror or exc)


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


def _sessions(settings: Settings, paths: Sequence[Path]) -> Iterator[list[Turn]]:
    """The finished turns of the files, one session at a time (a file's sessions together)."""
    mapped = formats.configured(settings.mapping, settings.format)
    for path in _files(paths, settings):
        by_session: dict[str, list[Turn]] = defaultdict(list)
        for turn in finished_turns(path, settings, mapped):
            by_session[turn.session_id].append(turn)
        yield from by_session.values()


def run(settings: Settings, paths: Sequence[Path]) -> int:
    """`tailerd import`: every finished turn of the files, one `log_conversation` per session."""
    state_dir = prepare(resolve_state_dir(settings.state_dir))
    redactor = build_redactor(settings)
    outputs = sinks.build(settings, resolve_data_dir(settings.data_dir, state_dir))
    emitter = Emitter(include_content=redactor.keeps_content)
    failed = sessions = total = 0
    for turns in _sessions(settings, paths):
        session_id = turns[0].session_id
        sessions, total = sessions + 1, total + len(turns)
        spans = emitter.emit_session([redactor.apply(t) for t in turns])
        for sink in outputs:
            outcome = _send_with_retry(sink, spans, settings.once_timeout)
            if not isinstance(outcome, Delivered):
                failed += 1
                log.error(
                    "session %s not imported into %s: %s", session_id, sink.name, outcome.reason
                )
    log.info("imported %d sessions, %d turns", sessions, total)
    for sink in outputs:
        sink.close()
    return EX_TEMPFAIL if failed else 0


def preview(settings: Settings, paths: Sequence[Path]) -> int:
    """`tailerd preview`: exactly the spans that would be sent, after redaction; sends nothing."""
    redactor = build_redactor(settings)
    emitter = Emitter(include_content=redactor.keeps_content)
    out = sys.stdout
    for turns in _sessions(settings, paths):
        for turn in turns:
            for span in emitter.emit(redactor.apply(turn)):
                out.write(orjson.dumps(span_record(span)).decode() + "\n")
    counts = redactor.counts()
    if counts:
        log.info("redacted: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


def retry(settings: Settings) -> int:
    """`tailerd retry`: send again the turns a sink refused (after the cause was fixed)."""
    state_dir = prepare(resolve_state_dir(settings.state_dir))
    pending = [r for r in dead_letter_store.load(state_dir) if r.get("kind") == "turn"]
    if not pending:
        log.info("no refused turns to retry")
        return 0
    redactor = build_redactor(settings)
    outputs = {
        s.name: s for s in sinks.build(settings, resolve_data_dir(settings.data_dir, state_dir))
    }
    emitter = Emitter(include_content=redactor.keeps_content)
    mapped = formats.configured(settings.mapping, settings.format)
    failed = 0
    for path, records in _group(pending, "path").items():
        wanted = {r["key"]: r for r in records}
        turns = [t for t in finished_turns(Path(path), settings, mapped) if t.key in wanted]
        for turn in turns:
            record = wanted.pop(turn.key)
            sink = outputs.get(record["sink"])
            if sink is None:
                log.warning(
                    "turn %s was refused by %s, which is not configured now",
                    turn.key,
                    record["sink"],
                )
                failed += 1
                continue
            outcome = _send_with_retry(
                sink, emitter.emit(redactor.apply(turn)), settings.once_timeout
            )
            if isinstance(outcome, Delivered):
                dead_letter_store.mark_retried(state_dir, record)
                log.info("delivered turn %s to %s", turn.key, sink.name)
            else:
                failed += 1
                log.error(
                    "turn %s still not delivered to %s: %s", turn.key, sink.name, outcome.reason
                )
        for key in wanted:
            failed += 1
            log.warning("turn %s is no longer in %s; left in dead letters", key, path)
    for sink in outputs.values():
        sink.close()
    return EX_TEMPFAIL if failed else 0


def _group(records: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[str(r[field])].append(r)
    return groups


def _send_with_retry(sink: Sink, spans: list[ReadableSpan], timeout: float) -> Outcome:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        outcome = sink.send(spans)
        if not isinstance(outcome, Retry) or time.monotonic() + delay > deadline:
            return outcome
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
