"""Which files under the watched directories are ours: include/exclude globs, recursive."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_INCLUDE = ("*.jsonl", "*.jsonl.zst", "session-*.json")


@dataclass(frozen=True, slots=True)
class Globs:
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()

    def matches(self, root: Path, path: Path) -> bool:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        return _any(self.include, path.name, rel) and not _any(self.exclude, path.name, rel)

    def excludes(self, root: Path, path: Path) -> bool:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        return _any(self.exclude, path.name, rel)


def _any(patterns: Sequence[str], name: str, rel: str) -> bool:
    return any(fnmatch.fnmatchcase(rel if "/" in p else name, p) for p in patterns)


def walk(
    roots: Sequence[Path], globs: Globs, also: Callable[[Path, Path], bool] | None = None
) -> Iterator[tuple[Path, os.stat_result]]:
    """Every matching regular file under the roots (and any other for which `also(root, path)`
    is true), with its stat; vanished files are skipped."""
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            base = Path(dirpath)
            for name in files:
                path = base / name
                if not globs.matches(root, path) and not (also and also(root, path)):
                    continue
                try:
                    st = path.stat()
                except OSError:
                    continue
                yield path, st
