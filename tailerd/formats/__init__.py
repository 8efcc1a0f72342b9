"""Agent formats, one module each. A new format is one new file plus one line in FORMATS."""

from __future__ import annotations

from pathlib import PurePath

from tailerd.formats import claude_code, codex, gemini, native
from tailerd.formats.base import Format

# Order matters: the first format whose `claims` accepts a file wins; native comes last
# because its test (a `type` key we know) is the least specific.
FORMATS: tuple[Format, ...] = (
    claude_code.FORMAT,
    codex.FORMAT,
    gemini.FORMAT,
    native.FORMAT,
)
BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}


def choose(path: PurePath, head: bytes, forced: str | None = None) -> Format | None:
    """The format of a file, from its path and first bytes; None when no format claims it yet."""
    if forced:
        return BY_NAME[forced]
    for fmt in FORMATS:
        if fmt.claims(path, head):
            return fmt
    return None


def is_auxiliary(path: PurePath) -> bool:
    return any(fmt.is_auxiliary(path) for fmt in FORMATS)
