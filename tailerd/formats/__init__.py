"""Agent formats, one module each. A new format is one new file plus one line in FORMATS.

Every format the registry hands out (FORMATS, BY_NAME, `choose`, `configured`) is wrapped by
`formats.guard`, so no record, in any format, can raise out of a format into tailerd."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from tailerd.errors import ConfigError
from tailerd.formats import (
    amp,
    claude_code,
    cline,
    codex,
    copilot_cli,
    crush,
    cursor,
    droid,
    gemini,
    goose,
    native,
    opencode,
    openhands,
    pi,
    qwen,
)
from tailerd.formats.base import Format
from tailerd.formats.guard import guard
from tailerd.formats.mapped import OPTIONS as MAPPED_OPTIONS
from tailerd.formats.mapped import formats_from_config
from tailerd.formats.opencode import storage as opencode_storage
from tailerd.formats.options import OptionSchema, check

# Order matters: the first format whose `claims` accepts a file wins; native comes last
# because its test (a `type` key we know) is the least specific.
FORMATS: tuple[Format, ...] = tuple(
    guard(f)
    for f in (
        qwen.FORMAT,  # before claude_code: its records have Claude's keys
        claude_code.FORMAT,
        codex.FORMAT,
        cline.FORMAT,  # before gemini: a messages.json also has `sessionId` and `messages`
        amp.FORMAT,  # by path (.../threads/T-<id>.json) and head; before gemini's .json test
        gemini.FORMAT,
        cursor.FORMAT,
        droid.FORMAT,
        openhands.FORMAT,
        copilot_cli.FORMAT,
        pi.FORMAT,
        crush.FORMAT,  # by path (.opencode/opencode.db, .crush/crush.db) and SQLite header
        opencode.FORMAT,  # by path (<data dir>/opencode/opencode[-<channel>].db) and header
        opencode_storage.FORMAT,  # by path (.../storage/session/<project>/ses_<id>.json)
        goose.FORMAT,  # by path (<data dir>/goose/sessions/sessions.db) and header
        native.FORMAT,
    )
)
BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
# Format name -> the options it reads (`[format_options.<name>]`; see formats/options.py).
OPTIONS: dict[str, OptionSchema] = {
    module.FORMAT.name: module.OPTIONS
    for module in (
        qwen,
        claude_code,
        codex,
        cline,
        amp,
        gemini,
        cursor,
        droid,
        openhands,
        copilot_cli,
        pi,
        crush,
        opencode,
        opencode_storage,
        goose,
        native,
    )
}


def check_options(
    format_options: Mapping[str, Any], raw_mappings: Sequence[Mapping[str, Any]]
) -> None:
    """Raise formats.options.OptionError for the first `format_options` table or value no
    format reads or accepts; the configured [[mapping]] names are formats too."""
    names = [m.get("name") for m in raw_mappings]
    mapped = {name: MAPPED_OPTIONS for name in names if isinstance(name, str)}
    check(format_options, {**mapped, **OPTIONS})


def choose(
    path: PurePath, head: bytes, forced: str | None = None, extra: tuple[Format, ...] = ()
) -> Format | None:
    """The format of a file, from its path and first bytes; None when no format claims it yet.
    `extra` are configured mappings: they come first, being the operator's explicit choice.
    The result is always a guarded format (formats.guard)."""
    candidates = (*(guard(f) for f in extra), *FORMATS)
    if forced:
        return next(f for f in candidates if f.name == forced)
    for fmt in candidates:
        if fmt.claims(path, head):
            return fmt
    return None


def configured(raw_mappings: Sequence[Mapping[str, Any]], forced: str | None) -> tuple[Format, ...]:
    """Formats from the config's [[mapping]] tables, guarded; checks --format names one."""
    mapped = tuple(guard(f) for f in formats_from_config([dict(m) for m in raw_mappings]))
    clash = sorted({f.name for f in mapped} & set(BY_NAME))
    if clash:
        raise ConfigError(f"mapping name {clash[0]!r} is a built-in format; choose another")
    names = [*BY_NAME, *(f.name for f in mapped)]
    if forced and forced not in names:
        raise ConfigError(f"unknown format {forced!r} (have: {', '.join(names)})")
    return mapped


def is_auxiliary(path: PurePath) -> bool:
    return any(fmt.is_auxiliary(path) for fmt in FORMATS)


def reads_whole(path: PurePath) -> bool:
    """True when a format reads this file whole (formats.base.DocumentFormat): it has no first
    line to wait for (OpenHands writes base_state.json as one line without a newline)."""
    for fmt in FORMATS:
        test = getattr(fmt, "reads_whole", None)
        if callable(test) and test(path) is True:
            return True
    return False


def reader_of(path: PurePath) -> PurePath | None:
    """The file whose format reads this auxiliary file (an OpenHands event file ->
    its conversation's base_state.json), or None: a change to it means re-reading that file."""
    for fmt in FORMATS:
        reader = getattr(fmt, "reader_of", None)
        found = reader(path) if callable(reader) else None
        if isinstance(found, PurePath):
            return found
    return None
