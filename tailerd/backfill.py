"""Commands that read whole files: `import` (backfill), `preview` and `retry`.

`tailerd import PATH...` backfills whole sessions through weave's `log_conversation`.

It streams each file through the same per-file pipeline as the daemon (tailerd/pipeline.py;
an agent's SQLite database is read by session, read-only, with no cursor stored:
edges/agent_db/whole.py), keeps only finished turns, groups a file's turns by session, and
emits every session with the same deterministic ids as the live path. It keeps no checkpoints
of its own; the turns the state dir's checkpoints say a daemon already shipped are left out
(tailerd/shipped_before.py; `--resend` sends them again, with the same ids).

History copied into another file (a resumed session; tailerd/history.py) is recognised: import
and preview read the state dir's history index read-only and also remember what they met
themselves, so a copy shipped by the daemon from another file, or met earlier in the same
command, is left out (counted in the last line). They never write the index: import is
idempotent by ids, so importing the same file again re-sends the same spans (stored once by a
span-id keyed backend); a later daemon run ships turns import sent as its own, with the same ids.
Turns still open (not finished by the format's close rules) are listed, not sent.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from tailerd import formats, sinks
from tailerd.content_policy import build_redactor
from tailerd.domain import DeadLetter, Delivered, Outcome, Retry, Turn
from tailerd.edges import dead_letter_store
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.edges.discovery import Globs, walk
from tailerd.edges.readers import open_reader
from tailerd.edges.state_dir import (
    prepare,
    record_data_dir,
    resolve_data_dir,
    resolve_state_dir,
)
from tailerd.emitter import Emitter
from tailerd.errors import EX_TEMPFAIL, ConfigError, NoInputError
from tailerd.formats.base import Format
from tailerd.history import HistoryIndex
from tailerd.pipeline import FilePipeline, format_head, whole_file
from tailerd.progress import Backfill
from tailerd.settings import Settings
from tailerd.shipped_before import ShippedByDaemon
from tailerd.sinks.base import Sink, span_record
from tailerd.status import OpenTurn, open_turn_lines, open_turns

log = logging.getLogger("tailerd")


OpenFiles = list[tuple[str, list[OpenTurn], float]]  # (path, open turns, mtime)


def finished_turns(
    path: Path,
    settings: Settings,
    mapped: tuple[Format, ...] = (),
    still_open: OpenFiles | None = None,
    db_cursors: Mapping[str, str] | None = None,
) -> Iterator[Turn]:
    """Every finished turn in one file, streamed; its dead letters are logged. Turns not
    finished yet (by the format's close rules, against the file's real quiet time) are left
    out and, with `still_open`, appended there as (path, open turns, mtime). `db_cursors`: an
    agent database's sessions read from those cursors (pipeline.whole_file)."""

    def report(pipe: FilePipeline) -> None:
        if still_open is not None and (turns := open_turns(pipe, settings)):
            still_open.append((str(path), turns, mtime))

    try:
        mtime = path.stat().st_mtime
        quiet = max(0.0, time.time() - mtime)
        for out in whole_file(path, settings, mapped, quiet, report, db_cursors=db_cursors):
            if isinstance(out, DeadLetter):
                log.warning("dead letter path=%s offset=%d reason=%s", path, out.start, out.reason)
            else:
                yield out
    except OSError as exc:
        log.warning("cannot read path=%s error=%s", path, exc.strerror or exc)


def _files(paths: Sequence[Path], settings: Settings) -> list[Path]:
    """The files under `paths` a format can read, sorted; each other one is one line ("no
    format recognises PATH", as the daemon logs it, or "cannot read PATH: why"). NoInputError
    (66) when there were files and none could be read by any format; ConfigError for a path
    that does not exist."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(path for path, _ in walk([p], Globs(settings.include, settings.exclude)))
        elif p.is_file():
            found.append(p)
        else:
            raise ConfigError(f"no such file or directory: {p}")
    mapped = formats.configured(settings.mapping, settings.format)
    files = sorted(p for p in found if not formats.is_auxiliary(PurePath(p)))
    why = {p: _unreadable(p, settings, mapped) for p in files}
    readable = [p for p in files if not why[p]]
    if files and not readable:
        raise NoInputError("; ".join(why.values()))
    for path in files:
        if why[path]:
            log.warning("%s; skipped", why[path])
    return readable


def _unreadable(path: Path, settings: Settings, mapped: tuple[Format, ...]) -> str:
    """Why no format can read `path` ("no format recognises PATH": none claims it by its name
    and first bytes, as the pipeline chooses one; "cannot read PATH: ..."), or "" if one can."""
    try:
        reader = open_reader(path)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    try:
        head = format_head(reader, settings.max_line_bytes)
        if FilePipeline.at(path, settings).choose(head, mapped, whole=True) is False:
            return f"no format recognises {path}"
        return ""
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    finally:
        reader.close()


def _sessions(
    settings: Settings,
    files: Sequence[Path],
    still_open: OpenFiles,
    history: HistoryIndex,
    daemon: ShippedByDaemon,
    *,
    shown: Backfill | None = None,
) -> Iterator[list[Turn]]:
    """The finished turns of the files, one session at a time (a file's sessions together);
    files with turns still open are appended to `still_open`. A turn that is a copy of history
    (tailerd/history.py: shipped by the daemon from another file, or met earlier in this
    command) is left out, and so is a turn the daemon shipped (tailerd/shipped_before.py).
    `shown` hears of each file read."""
    mapped = formats.configured(settings.mapping, settings.format)
    for path in files:
        by_session: dict[str, list[Turn]] = defaultdict(list)
        try:
            st = path.stat()
        except OSError:
            continue
        file_key = f"{st.st_dev}:{st.st_ino}"  # as the checkpoint store keys files
        unshipped = None
        if cursors := daemon.db_cursors(path):  # an agent database the daemon read
            unshipped = {t.key for t in finished_turns(path, settings, mapped, db_cursors=cursors)}
        shipped = daemon.of_file(path, st, unshipped)
        for turn in finished_turns(path, settings, mapped, still_open):
            if shipped(turn):
                continue
            owner = history.is_copy(turn, file_key)
            if owner is not None:
                history.skip(turn, file_key, owner, path)
                continue
            history.emitted(turn, file_key)
            by_session[turn.session_id].append(turn)
        if shown is not None:
            shown.file_read(st.st_size)
        yield from by_session.values()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _history(settings: Settings, resend: bool) -> tuple[HistoryIndex, ShippedByDaemon]:
    """The state dir's history index and checkpoints, read-only: import and preview never
    write them."""
    store = CheckpointStore(resolve_state_dir(settings.state_dir), readonly=True)
    index = HistoryIndex(store, settings.history_retention, write=False)
    return index, ShippedByDaemon(store, resend=resend)


def run(settings: Settings, paths: Sequence[Path], resend: bool = False) -> int:
    """`tailerd import`: every finished turn of the files, one `log_conversation` per session.
    NoInputError (66), creating nothing, when no format recognises any of the files."""
    files = _files(paths, settings)
    state_dir = prepare(resolve_state_dir(settings.state_dir))
    redactor = build_redactor(settings)
    data_dir = resolve_data_dir(settings.data_dir, state_dir)
    outputs = sinks.build(settings, data_dir)
    if "local" in settings.sinks:
        record_data_dir(state_dir, data_dir)
    emitter = Emitter(include_content=redactor.keeps_content)
    failed = total = 0
    sessions: set[str] = set()  # distinct: a session may span files (resumed, sub-agents)
    still_open: OpenFiles = []
    history, daemon = _history(settings, resend)
    shown = Backfill("import", lambda: total, quiet=not log.isEnabledFor(logging.INFO))
    shown.expect(len(files), sum(_size(p) for p in files))
    shown.start()
    try:
        for turns in _sessions(settings, files, still_open, history, daemon, shown=shown):
            session_id = turns[0].session_id
            sessions.add(session_id)
            total += len(turns)
            spans = emitter.emit_session([redactor.apply(t) for t in turns])
            for sink in outputs:
                outcome = _send_with_retry(sink, spans, settings.once_timeout)
                if not isinstance(outcome, Delivered):
                    failed += 1
                    log.error(
                        "session %s not imported into %s: %s", session_id, sink.name, outcome.reason
                    )
    finally:
        shown.finish()
    log.info(
        "imported %d sessions, %d turns (%d turns already shipped by the daemon left out,"
        " --resend sends them; %d copies of history already shipped left out)",
        len(sessions),
        total,
        daemon.left_out,
        history.skipped,
    )
    _report_open(still_open, "not imported")
    for sink in outputs:
        sink.close()
    return EX_TEMPFAIL if failed else 0


def preview(settings: Settings, paths: Sequence[Path], resend: bool = False) -> int:
    """`tailerd preview`: exactly the spans that would be sent, after redaction; sends nothing."""
    redactor = build_redactor(settings)
    emitter = Emitter(include_content=redactor.keeps_content)
    out = sys.stdout
    still_open: OpenFiles = []
    files = _files(paths, settings)
    history, daemon = _history(settings, resend)
    for turns in _sessions(settings, files, still_open, history, daemon):
        for turn in turns:
            for span in emitter.emit(redactor.apply(turn)):
                out.write(orjson.dumps(span_record(span)).decode() + "\n")
    counts = redactor.counts()
    if counts:
        log.info("redacted: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if daemon.left_out:
        log.info(
            "%d turns already shipped by the daemon left out (--resend shows them)", daemon.left_out
        )
    if history.skipped:
        log.info("%d copies of history already shipped left out", history.skipped)
    _report_open(still_open, "not shown")
    return 0


def _report_open(still_open: OpenFiles, fate: str) -> None:
    """Say how many turns are still open, in which files, and what they wait for."""
    if not still_open:
        return
    count = sum(len(turns) for _, turns, _ in still_open)
    log.info("%d turns still open in %d files (%s: not finished yet)", count, len(still_open), fate)
    for line in open_turn_lines(still_open, time.time()):
        log.info("open: %s", line)


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
