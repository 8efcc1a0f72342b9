"""The files a format may reach besides the one it parses (a sub-agent transcript, a spilled tool
result, a Codex child thread), and the `Source` that hands them to a parser."""

from __future__ import annotations

from pathlib import Path, PurePath

from tailerd.edges import host
from tailerd.formats.base import DEFAULT_DOCUMENT_IDLE_CLOSE, DocumentFormat, Format, Source
from tailerd.settings import Settings


def read_related(path: str, cap: int) -> bytes | None:
    """Up to `cap` bytes of a neighbouring file; None when it cannot be read."""
    try:
        with Path(path).open("rb") as fh:
            return fh.read(cap)
    except OSError:
        return None


def find_related(root: str, pattern: str) -> list[str]:
    """Files under `root` whose name matches `pattern` (recursively), sorted."""
    try:
        return sorted(str(p) for p in Path(root).rglob(pattern) if p.is_file())
    except OSError:
        return []


def source_for(path: Path, fmt: Format, settings: Settings) -> Source:
    options = settings.format_options.get(fmt.name, {})
    return Source(str(path), settings.agent_name, options, read_related, find_related, host.name())


def as_document(fmt: Format, path: Path) -> DocumentFormat | None:
    """The format, if this file of it is rewritten whole (see formats.base.DocumentFormat)."""
    reads_whole = getattr(fmt, "reads_whole", None)
    if reads_whole is not None and reads_whole(PurePath(path)):
        return fmt  # type: ignore[return-value]  # it has reads_whole, so it is a DocumentFormat
    return None


def document_idle_close(fmt: Format, settings: Settings) -> float:
    """Quiet seconds after which a rewritten-whole file's last turn counts as finished."""
    options = settings.format_options.get(fmt.name, {})
    return float(options.get("idle_close", DEFAULT_DOCUMENT_IDLE_CLOSE))
