"""Guarded formats: no record in any format can make tailerd exit.

Format code is pure but not infallible: a record with a field of an unexpected JSON type (a
Gemini `"functionResponse": "oops"`) can raise deep inside a format. Unguarded, that exception
would stop tailerd, and the restart would read the same line again: a crash loop. The registry
(`tailerd.formats`) therefore hands out only `GuardedFormat`s, which turn every exception a
format raises into a counted outcome:

* `claims` / `reads_whole` / `is_auxiliary` raising -> False ("not mine"), counted in
  `GuardedFormat.failures`.
* `new_parser` raising -> `FormatStartError` (a ConfigError): a format that cannot start is
  misconfigured, not fed bad data, so the file's lines are not dead-lettered and its checkpoint
  does not move; the daemon leaves the file unread (status shows why) and a restart with the
  configuration fixed reads it all. One ERROR line per format, not per file.
* `parser.feed(line)` raising -> `[DeadLetter(line.start, line.end, "<format> failed on this
  record: <ExcType>: <message>")]`; the parser keeps its state and the file goes on.
* `close_idle` raising -> `[]`; `pending_from` raising -> the most conservative offset known
  (see `GuardedParser.pending_from`), so the checkpoint never passes an open turn because of an
  error; `snapshot` raising -> `{}`.
* A failure that made the format drop the turn it had open (e.g. it raised while building the
  turn it was closing) also turns that turn's bytes into a dead letter (see `GuardedParser`).
* `document_turns` raising -> no turns; the failure is kept as one DeadLetter for the whole
  document (`GuardedDocumentFormat.document_items` returns it, `document_turns` logs it).

Every caught exception is logged at DEBUG with its traceback (it is probably a bug in tailerd;
the user already sees one WARNING line per dead letter from the daemon).

Quarantine. A format that keeps failing on one file is not given every further line of it: the
parser is quarantined when `QUARANTINE_CONSECUTIVE` (50) records in a row failed, or when more
than half of the first `QUARANTINE_WINDOW` (200) records failed. 50 in a row cannot be a few odd
records (real transcripts in the fixtures have no run of even 5 malformed records), and the
half-of-200 rule catches a format that fails on every other record (e.g. every tool result)
without letting one early burst of bad records decide alone. Once quarantined, every further line
becomes one DeadLetter "quarantined: <reason>" without calling the format, the turn that was still
open becomes one DeadLetter over its bytes (so the checkpoint can move on and nothing is silently
dropped), and one WARNING names the file and the format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, cast

from tailerd.domain import DeadLetter, Line, Turn
from tailerd.errors import ConfigError
from tailerd.formats.base import DocumentFormat, Format, Source, TurnParser

log = logging.getLogger("tailerd")

QUARANTINE_CONSECUTIVE = 50  # records in a row that failed
QUARANTINE_WINDOW = 200  # first records of a file over which the failure share is judged
QUARANTINE_SHARE = 0.5  # more than this share of the window failed
_MESSAGE_CAP = 200  # characters of an exception message kept in a dead letter's reason


class FormatStartError(ConfigError):
    """A format could not make a parser for a file (`<format> could not start: <ExcType>:
    <message>`): a configuration problem, so the file is left unread rather than quarantined."""


def describe(exc: BaseException) -> str:
    """`ExcType: first line of the message`, at most about 200 characters, for a reason text."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > _MESSAGE_CAP:
        message = message[:_MESSAGE_CAP] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _debug(what: str, fmt_name: str, path: str) -> None:
    log.debug("format %s raised in %s path=%s", fmt_name, what, path, exc_info=True)


class GuardedParser:
    """A TurnParser that never raises, wrapping one format's parser for one file.

    `quarantined` is None while the format is trusted, else the reason (a one-line str);
    `failures` counts every exception the format raised for this file. Unknown attributes
    (e.g. `unknown_types`, `ignored`) are read from the wrapped parser.

    A failure can also lose the turn the format had open (a format that fails while building
    the turn it is closing). Those bytes become a dead letter too: at once when `feed` fails;
    when `close_idle` fails, the dead letter waits in `take_dead_letters()` (or is returned
    ahead of the next `feed`'s output) and `pending_from` stays at its first byte until then,
    so the checkpoint never passes bytes that are neither a turn nor a dead letter.
    """

    def __init__(
        self, fmt_name: str, path: str, inner: TurnParser | None, quarantined: str | None = None
    ) -> None:
        self.format_name = fmt_name
        self.path = path
        self.inner = inner
        self.quarantined: str | None = None
        self.failures = 0
        self._records = 0
        self._consecutive = 0
        self._window_failures = 0
        self._fed_end = 0  # end of the last line fed
        self._last_pending: int | None = None
        self._unconfirmed_from: int | None = None  # first line fed since the last pending_from
        self._last_snapshot: dict[str, Any] = {}
        self._unreported: list[DeadLetter] = []
        if quarantined is not None or inner is None:
            self._quarantine(quarantined or "no parser")

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, pickle): never recurse
            raise AttributeError(name)
        return getattr(self.inner, name)

    # ---- TurnParser ---------------------------------------------------------------------------

    def feed(self, line: Line) -> list[Turn | DeadLetter]:
        """Turns and dead letters for one line; a failure is a DeadLetter over [start, end)
        (plus one over the open turn it made the format drop, if any)."""
        out: list[Turn | DeadLetter] = list(self.take_dead_letters())
        self._fed_end = max(self._fed_end, line.end)
        if self.quarantined is not None or self.inner is None:
            out.append(DeadLetter(line.start, line.end, f"quarantined: {self.quarantined}"))
            return out
        open_before = self.pending_from()
        self._unconfirmed_from = line.start
        self._records += 1
        try:
            out.extend(self.inner.feed(line))
        except Exception as exc:
            _debug("feed", self.format_name, self.path)
            out.extend(self._failed(line, open_before, exc))
            return out
        self._consecutive = 0
        return out

    def close_idle(self, quiet_for: float) -> list[Turn]:
        """Turns the format closes after `quiet_for` seconds of quiet; [] if it raises."""
        if self.quarantined is not None or self.inner is None:
            return []
        open_before = self.pending_from()
        try:
            return self.inner.close_idle(quiet_for)
        except Exception as exc:
            _debug("close_idle", self.format_name, self.path)
            self.failures += 1
            if open_before is not None and self._dropped(open_before):
                reason = f"{self.format_name} failed closing this turn: {describe(exc)}"
                self._unreported.append(DeadLetter(open_before, self._fed_end, reason))
            return []

    def pending_from(self) -> int | None:
        """First byte of the oldest open turn. If the format raises, the smallest of the last
        value it returned and the first line fed since: no open turn can start before that.
        Never past a dead letter not yet handed out (see class doc)."""
        value: int | None = None
        if self.quarantined is None and self.inner is not None:
            try:
                value = self.inner.pending_from()
            except Exception:
                _debug("pending_from", self.format_name, self.path)
                self.failures += 1
                known = [v for v in (self._last_pending, self._unconfirmed_from) if v is not None]
                value = min(known) if known else None
            else:
                self._unconfirmed_from = None
            self._last_pending = value
        held = [v for v in (value, *(d.start for d in self._unreported)) if v is not None]
        return min(held) if held else None

    def snapshot(self) -> dict[str, Any]:
        """The format's resume context; {} if it raises; the last good one once quarantined."""
        if self.quarantined is not None or self.inner is None:
            return dict(self._last_snapshot)
        try:
            snap = self.inner.snapshot()
        except Exception:
            _debug("snapshot", self.format_name, self.path)
            self.failures += 1
            return {}
        self._last_snapshot = snap
        return snap

    def take_dead_letters(self) -> list[DeadLetter]:
        """Dead letters from failures outside `feed` (an open turn lost when `close_idle`
        failed), handed out once; `feed` also returns them ahead of its own output."""
        taken, self._unreported = self._unreported, []
        return taken

    # ---- failures and quarantine --------------------------------------------------------------

    def _dropped(self, open_before: int) -> bool:
        """Did the failure lose the turn that was open from `open_before`?"""
        after = self.pending_from()
        return after is None or after > open_before

    def _failed(self, line: Line, open_before: int | None, exc: Exception) -> list[DeadLetter]:
        self.failures += 1
        self._consecutive += 1
        if self._records <= QUARANTINE_WINDOW:
            self._window_failures += 1
        out = []
        if open_before is not None and open_before < line.start and self._dropped(open_before):
            reason = f"{self.format_name} dropped this open turn: {describe(exc)}"
            out.append(DeadLetter(open_before, line.start, reason))
        reason = f"{self.format_name} failed on this record: {describe(exc)}"
        out.append(DeadLetter(line.start, line.end, reason))
        if self._consecutive >= QUARANTINE_CONSECUTIVE:
            why = f"{self._consecutive} records in a row"
        elif self._window_failures > QUARANTINE_WINDOW * QUARANTINE_SHARE:
            why = f"{self._window_failures} of the first {self._records} records"
        else:
            return out
        reason = f"{self.format_name} failed on {why} (last: {describe(exc)})"
        out.extend(self._quarantine(reason, until=line.start))
        return out

    def _quarantine(self, reason: str, until: int = 0) -> list[DeadLetter]:
        """Stop calling the format for this file. The turn still open (from its first byte up
        to `until`, the failing line's start) can never finish: it becomes one dead letter."""
        open_from = self.pending_from()
        self.quarantined = reason
        log.warning("quarantined path=%s format=%s reason=%s", self.path, self.format_name, reason)
        held = [d.start for d in self._unreported]
        if open_from is not None and open_from not in held and open_from < until:
            return [DeadLetter(open_from, until, f"quarantined: {reason}; open turn abandoned")]
        return []


class GuardedFormat:
    """A Format whose every method, and every parser it makes, never raises (see module doc).

    `name` is the wrapped format's; `failures` counts exceptions from `claims`/`is_auxiliary`;
    other attributes are read from the wrapped format."""

    def __init__(self, inner: Format) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.failures = 0
        self.start_failures = 0  # files this format could not start on (FormatStartError)

    def __getattr__(self, name: str) -> Any:
        # Never forward the whole-document methods: only GuardedDocumentFormat has them, guarded
        # (edges.related_files.as_document tests for `reads_whole`).
        if name in ("inner", "reads_whole", "document_turns", "document_items"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"GuardedFormat({self.inner!r})"

    def _flag(self, what: str, path: PurePath, test: Callable[[], bool]) -> bool:
        try:
            return bool(test())
        except Exception:
            _debug(what, self.name, str(path))
            self.failures += 1
            return False

    def claims(self, path: PurePath, head: bytes) -> bool:
        """The format's claim; False (counted) if it raises."""
        return self._flag("claims", path, lambda: self.inner.claims(path, head))

    def is_auxiliary(self, path: PurePath) -> bool:
        """The format's answer; False (counted) if it raises."""
        return self._flag("is_auxiliary", path, lambda: self.inner.is_auxiliary(path))

    def new_parser(self, source: Source, context: Mapping[str, Any] | None) -> GuardedParser:
        """A GuardedParser. FormatStartError if the format cannot make a parser (logged as
        one ERROR line the first time for this format, counted in `start_failures`)."""
        try:
            inner = self.inner.new_parser(source, context)
        except Exception as exc:
            _debug("new_parser", self.name, source.path)
            reason = f"{self.name} could not start: {describe(exc)}"
            if not self.start_failures:
                log.error(
                    "%s; its files are left unread until a restart (path=%s)", reason, source.path
                )
            self.start_failures += 1
            raise FormatStartError(reason) from None
        return GuardedParser(self.name, source.path, inner)


class GuardedDocumentFormat(GuardedFormat):
    """A guarded format some of whose files are rewritten whole (formats.base.DocumentFormat)."""

    def __init__(self, inner: Format) -> None:
        super().__init__(inner)
        self._reported: dict[str, int] = {}  # path -> hash of the broken document last reported
        self._document = cast(DocumentFormat, inner)  # guard() checked it has both methods

    def reads_whole(self, path: PurePath) -> bool:
        """The format's answer; False (counted) if it raises."""
        return self._flag("reads_whole", path, lambda: self._document.reads_whole(path))

    def document_items(
        self, data: bytes, source: Source, *, final: bool
    ) -> list[Turn | DeadLetter]:
        """The document's finished turns, or, if the format raises, one DeadLetter over
        [0, len(data)) saying why."""
        try:
            turns = self._document.document_turns(data, source, final=final)
        except Exception as exc:
            _debug("document_turns", self.name, source.path)
            self.failures += 1
            reason = f"{self.name} failed on this document: {describe(exc)}"
            return [DeadLetter(0, len(data), reason)]
        return list(turns)

    def document_turns(self, data: bytes, source: Source, *, final: bool) -> list[Turn]:
        """The document's finished turns; [] if the format raises (the failure is logged as one
        dead letter line, once per distinct document content and path)."""
        turns: list[Turn] = []
        for item in self.document_items(data, source, final=final):
            if isinstance(item, DeadLetter):
                self._report_document(source.path, item, hash(data))
            else:
                turns.append(item)
        return turns

    def _report_document(self, path: str, letter: DeadLetter, digest: int) -> None:
        if self._reported.get(path) == digest:
            return  # the same broken document re-read (it is re-read on every change)
        self._reported[path] = digest
        log.warning("dead letter path=%s offset=%d reason=%s", path, letter.start, letter.reason)


def guard(fmt: Format) -> GuardedFormat:
    """`fmt` wrapped (once: a GuardedFormat is returned as it is). The wrapper has
    `reads_whole`/`document_turns` exactly when `fmt` has both."""
    if isinstance(fmt, GuardedFormat):
        return fmt
    if callable(getattr(fmt, "reads_whole", None)) and callable(
        getattr(fmt, "document_turns", None)
    ):
        return GuardedDocumentFormat(fmt)
    return GuardedFormat(fmt)


def unguarded(fmt: Format) -> Format:
    """The format inside a GuardedFormat (for measurements of the raw formats)."""
    return fmt.inner if isinstance(fmt, GuardedFormat) else fmt
