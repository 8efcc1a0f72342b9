"""`tailerd doctor`: is this machine ready, and what would tailerd find? One line per check.

Checks, in order: the watch roots the settings name or else each supported agent's home (files,
bytes, the format tailerd detects; then a note on project-local databases), every configured
sink probed for real (an empty OTLP export request, which a receiver answers 200; the local
store opened for writing), the state dir
(exists, private, checkpoints readable, a daemon running on it), the descriptor limit and the
inotify watch limit against what the roots need, and the installed weave.

A check is `ok`, `note` (nothing wrong: something to know), `warn` (works, but look) or `fail`
(tailerd will not do what you expect); the command exits 1 when any check failed. Given watch
roots (--watch, `watch`), doctor checks those alone, as the daemon would watch only them.
"""

from __future__ import annotations

import os
import resource
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePath
from typing import Literal

from tailerd import agent_homes
from tailerd.edges.discovery import Globs
from tailerd.settings import Settings

Level = Literal["ok", "note", "warn", "fail"]  # note: nothing wrong, something to know
WALK_CAP = 200_000  # entries visited per root before the counts are reported as "at least"
INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
TESTED_WEAVE = ("0.52", "0.55")  # [low, high): the bound in pyproject.toml


@dataclass(frozen=True, slots=True)
class Check:
    level: Level
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.level:<4}  {self.what}: {self.detail}"


@dataclass
class TreeCount:
    files: int = 0
    bytes: int = 0
    directories: int = 0
    capped: bool = False
    sample: Path | None = None  # the first matching file, to guess the format from


def count_tree(root: Path, include: Sequence[str], exclude: Sequence[str]) -> TreeCount:
    """Matching files, their bytes and the directories under `root` (an inotify watch each)."""
    globs = Globs(tuple(include), tuple(exclude))
    count = TreeCount()
    stack = [root]
    visited = 0
    while stack:
        directory = stack.pop()
        count.directories += 1
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            visited += 1
            if visited > WALK_CAP:
                count.capped = True
                return count
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file() and globs.match(str(root), entry.path):
                    count.files += 1
                    count.bytes += entry.stat().st_size
                    if count.sample is None:
                        count.sample = Path(entry.path)
            except OSError:
                continue
    return count


def _guess_format(sample: Path | None) -> str:
    if sample is None:
        return "no transcript yet"
    from tailerd.formats import choose

    try:
        with sample.open("rb") as fh:
            head = fh.read(64 * 1024)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    fmt = choose(PurePath(sample), head)
    return fmt.name if fmt is not None else "format not recognised"


def _n(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


WATCH = "watch"  # the agent name of a root given with --watch or `watch` (tailerd/cli.py)
MISSING_WATCH_ROOT = (
    "does not exist: check the path (`tailerd --once` stops on it with exit 66; the daemon"
    " waits for it), or create it"
)


def agent_checks(
    settings: Settings, roots: Sequence[agent_homes.Root]
) -> Iterator[tuple[Check, TreeCount]]:
    for root in roots:
        where = f"{root.agent} {root.path}" + (
            f" (from ${root.why})" if root.why != "default" else ""
        )
        if not root.path.exists() and root.agent == WATCH:  # given by hand: likely a typo
            yield Check("warn", where, MISSING_WATCH_ROOT), TreeCount()
            continue
        if not root.path.exists():
            yield Check("ok", where, "not here (watched for, picked up if it appears)"), TreeCount()
            continue
        if not os.access(root.path, os.R_OK | os.X_OK):
            yield Check("fail", where, "not readable by this user"), TreeCount()
            continue
        count = count_tree(root.path, settings.include, settings.exclude)
        more = "at least " if count.capped else ""
        detail = (
            f"{more}{_n(count.files, 'file')}, {_size(count.bytes)}, "
            f"{_n(count.directories, 'directory', 'directories')}, "
            f"format {_guess_format(count.sample)}"
        )
        yield Check("ok", where, detail), count


def sink_checks(settings: Settings, data_dir: Path) -> Iterator[Check]:
    """Each configured sink, built as the daemon builds it, sent an empty batch."""
    from tailerd import sinks
    from tailerd.domain import Delivered
    from tailerd.errors import TailerdError
    from tailerd.sinks.local import DB_FILE

    if "local" in settings.sinks and not (data_dir / DB_FILE).exists():
        # Probing would create the store; say where it will be and whether it can be.
        parent = next((p for p in (data_dir, *data_dir.parents) if p.exists()), data_dir)
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            yield Check("ok", "sink local", f"{data_dir / DB_FILE} will be created at first turn")
        else:
            yield Check("fail", "sink local", f"cannot create {data_dir}: {parent} not writable")
        settings = settings.model_copy(
            update={"sinks": [s for s in settings.sinks if s != "local"]}
        )
    try:
        built = sinks.build(settings, data_dir)
    except (TailerdError, OSError, sqlite3.Error) as exc:
        yield Check("fail", "sinks", str(exc))
        return
    for sink in built:
        where = f"sink {sink.name}"
        target = getattr(sink, "endpoint", None) or getattr(sink, "path", None)
        try:
            outcome = sink.send([])
        except (OSError, sqlite3.Error) as exc:
            yield Check("fail", where, f"{target}: {exc}")
            continue
        finally:
            sink.close()
        if isinstance(outcome, Delivered):
            yield Check("ok", where, f"{target or 'stdout'} accepts an export")
        else:
            yield Check("fail", where, outcome.reason)


def state_checks(state_dir: Path) -> Iterator[Check]:
    from tailerd.edges.checkpoint_store import FILE_NAME as DB_FILE

    where = f"state dir {state_dir}"
    if not state_dir.exists():
        yield Check("ok", where, "not created yet (tailerd creates it, mode 0700)")
        return
    if not state_dir.is_dir():
        yield Check("fail", where, "is not a directory")
        return
    st = state_dir.stat()
    if st.st_uid != os.geteuid():
        yield Check("warn", where, f"owned by uid {st.st_uid}, not this user ({os.geteuid()})")
    elif st.st_mode & 0o077:
        yield Check(
            "warn", where, f"mode {st.st_mode & 0o777:04o}: others can read it (0700 expected)"
        )
    elif not os.access(state_dir, os.W_OK):
        yield Check("fail", where, "not writable by this user")
    else:
        yield Check("ok", where, "private (0700) and writable")
    db = state_dir / DB_FILE
    if db.exists():
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as exc:
            verdict = str(exc)
        level: Level = "ok" if verdict == "ok" else "fail"
        yield Check(level, f"checkpoints {db}", "intact" if verdict == "ok" else verdict)


def limit_checks(settings: Settings, directories: int) -> Iterator[Check]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    pool = min(settings.max_open_files, max(soft // 2, 1))
    detail = f"ulimit -n {soft} (hard {hard}): {pool} descriptors for reading files"
    if pool < settings.max_open_files:
        detail += f", fewer than max_open_files {settings.max_open_files}: raise ulimit -n"
        yield Check("warn", "descriptors", detail)
    else:
        yield Check("ok", "descriptors", detail)
    try:
        watches = int(INOTIFY_WATCHES.read_text().strip())
    except (OSError, ValueError):
        yield Check("warn", "inotify", f"cannot read {INOTIFY_WATCHES}; tailerd may have to poll")
        return
    detail = (
        f"fs.inotify.max_user_watches {watches}, the watch roots have {directories} directories"
    )
    if directories > watches:
        yield Check(
            "warn",
            "inotify",
            detail + ": tailerd falls back to polling; raise it with "
            f"`sysctl fs.inotify.max_user_watches={directories * 2}`",
        )
    else:
        yield Check("ok", "inotify", detail + " (other programs share the limit)")


def weave_check() -> Check:
    try:
        version = metadata.version("weave")
    except metadata.PackageNotFoundError:
        return Check("fail", "weave", "not installed: reinstall tailerd")
    low, high = TESTED_WEAVE
    key = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    in_range = tuple(map(int, low.split("."))) <= key < tuple(map(int, high.split(".")))
    if in_range:
        return Check("ok", "weave", f"{version} (tested: >={low},<{high})")
    return Check("warn", "weave", f"{version}, outside the tested >={low},<{high}")


# Databases an agent keeps inside each project, not in a home (formats/crush DATABASE_NAMES):
# zero configuration cannot know where the projects are.
PROJECT_DATABASES = (
    "Crush <project>/.crush/crush.db and Go OpenCode <project>/.opencode/opencode.db live in"
    " each project, not in a home: zero configuration does not find them; add"
    " --watch <your projects dir>"
)


def run(
    settings: Settings,
    state_dir: Path,
    data_dir: Path,
    roots: Sequence[agent_homes.Root],
    zero_config: bool = False,
) -> list[Check]:
    """Every check, in the order people read them. `roots`: what tailerd would follow with
    these settings (the watch roots given, a missing one a `warn`; else the agent homes:
    `zero_config`, which adds a note on project-local databases when OpenCode's home is among
    them, as it is with every agent)."""
    checks: list[Check] = []
    directories = 0
    for check, count in agent_checks(settings, roots):
        checks.append(check)
        directories += count.directories
    if not any(r.path.is_dir() for r in roots):
        checks.append(
            Check(
                "warn", "transcripts", "no agent home and no watch root exists yet: nothing to ship"
            )
        )
    if zero_config and any(r.agent == "opencode" for r in roots):  # all agents, or OpenCode's
        checks.append(Check("note", "project databases", PROJECT_DATABASES))
    checks.extend(sink_checks(settings, data_dir))
    checks.extend(state_checks(state_dir))
    checks.extend(limit_checks(settings, directories))
    checks.append(weave_check())
    return checks
