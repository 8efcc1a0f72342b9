"""Corpora the benchmark reads: Claude Code replicas and generated native-format trees.

The Claude Code corpus is the shared fixtures copied `replicas` times into the layout ccusage
expects (`<root>/projects/<project>/<session>.jsonl`). Replica k rewrites every identifier the
tools deduplicate by (UUIDs: session ids, record `uuid`s; `msg_…`, `req_…`, `toolu_…` ids)
through a hash keyed by k, with the same length and alphabet, so every replica is a distinct
set of sessions of exactly the fixtures' size. It is built once under bench/.cache and reused
while the fixtures and the generator are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.live_daemon import turn_line

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "agents" / "claude-code"
CACHE = REPO / "bench" / ".cache"
GENERATOR_VERSION = "2"

_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PREFIXED = re.compile(rb"\b(msg|req|toolu)_([A-Za-z0-9]{12,})")
_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Corpus:
    """A built corpus: `root` (CLAUDE_CONFIG_DIR), `projects` (what tailerd watches), totals."""

    root: Path
    files: int
    bytes: int
    replicas: int

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    def paths(self) -> list[Path]:
        return sorted(p for p in self.projects.rglob("*.jsonl") if p.is_file())


def _digest(replica: int, ident: bytes, size: int) -> bytes:
    return hashlib.blake2b(b"%d:" % replica + ident, digest_size=size).digest()


def rewrite_uuid(replica: int, uuid: bytes) -> bytes:
    """A UUID-shaped string (36 bytes) mapped deterministically for replica `replica`."""
    h = _digest(replica, uuid.lower(), 16).hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:32]))


def rewrite_prefixed(replica: int, prefix: bytes, body: bytes) -> bytes:
    """`msg_…`/`req_…`/`toolu_…`: same prefix, a base62 body of the same length."""
    n = int.from_bytes(_digest(replica, prefix + body, 48), "big")
    out = bytearray()
    for _ in range(len(body)):
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return prefix + b"_" + bytes(out)


def rewrite(replica: int, data: bytes) -> bytes:
    """`data` with every identifier replaced for `replica`; the length is unchanged."""
    memo: dict[bytes, bytes] = {}

    def uuid(m: re.Match[bytes]) -> bytes:
        key = m.group(0)
        if key not in memo:
            memo[key] = rewrite_uuid(replica, key)
        return memo[key]

    def prefixed(m: re.Match[bytes]) -> bytes:
        key = m.group(0)
        if key not in memo:
            memo[key] = rewrite_prefixed(replica, m.group(1), m.group(2))
        return memo[key]

    return _PREFIXED.sub(prefixed, _UUID.sub(uuid, data))


def _fixture_files() -> list[tuple[str, Path]]:
    """(project name, file) for every transcript in the fixtures, sub-agent files included."""
    out = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        rel = path.relative_to(FIXTURES)
        out.append((rel.parts[0], path))
    return out


def _target(root: Path, replica: int, group: str, path: Path) -> Path:
    """Where replica `replica` of fixture `path` goes: one project directory per group."""
    group_dir = FIXTURES / group
    # A group that is itself a project directory (one level deeper) keeps that level flat.
    rel = path.relative_to(group_dir)
    parts = [p.encode() for p in rel.parts]
    if len(parts) > 1 and parts[0].startswith(b"-"):
        group, parts = f"{group}{parts[0].decode()}", parts[1:]
    renamed = [_UUID.sub(lambda m: rewrite_uuid(replica, m.group(0)), p).decode() for p in parts]
    return root / "projects" / f"r{replica:03d}-{group}" / Path(*renamed)


def fixture_bytes() -> int:
    return sum(p.stat().st_size for _, p in _fixture_files())


def _fingerprint(replicas: int) -> str:
    h = hashlib.sha256(GENERATOR_VERSION.encode() + b"%d" % replicas)
    for group, path in _fixture_files():
        st = path.stat()
        h.update(f"{group}|{path.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def claude_corpus(target_mb: float) -> Corpus:
    """The Claude Code corpus of about `target_mb` MB (10**6 bytes), built or reused."""
    replicas = max(1, round(target_mb * 1e6 / fixture_bytes()))
    root = CACHE / "corpus" / f"claude-{replicas}-{_fingerprint(replicas)}"
    done = root / "complete.json"
    if done.exists():
        meta = json.loads(done.read_text())
        return Corpus(root, meta["files"], meta["bytes"], replicas)
    if root.exists():
        shutil.rmtree(root)
    files = total = 0
    for k in range(replicas):
        for group, path in _fixture_files():
            dest = _target(root, k, group, path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = rewrite(k, path.read_bytes())
            dest.write_bytes(data)
            # Old history, as on a real host: keep the fixture's mtime, so a session's last
            # turn is already quiet (idle-closed) rather than looking like one still running.
            st = path.stat()
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
            files += 1
            total += len(data)
    done.write_text(json.dumps({"files": files, "bytes": total, "replicas": replicas}))
    return Corpus(root, files, total, replicas)


def drop_page_cache(paths: list[Path]) -> None:
    """Ask the kernel to forget these files' cached pages (cold-ish reads; no root needed)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --- native-format corpora, generated on the fly ---------------------------------------------


def native_tree(root: Path, files: int, per_dir: int, turns_per_file: int = 2) -> int:
    """Write `files` native files, `per_dir` per directory, `turns_per_file` turns each.

    Returns the bytes written. Session ids are the file's position, so all are distinct.
    """
    total = 0
    for i in range(files):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        data = b"".join(turn_line(f"s{i}", f"t{j}") for j in range(turns_per_file))
        (d / f"f{i:06d}.jsonl").write_bytes(data)
        total += len(data)
    return total


def native_lines(session: str, target_bytes: int) -> Iterator[bytes]:
    """Native one-line turns of one session, about `target_bytes` in all (whole lines)."""
    written = i = 0
    pad = "x" * 600  # a realistic answer length, so lines are ~1 KB like real turns
    while written < target_bytes:
        line = turn_line(session, f"t{i}", llm_calls=2, note=pad)
        written += len(line)
        i += 1
        yield line


def write_native_file(path: Path, target_bytes: int, session: str = "big") -> tuple[int, int]:
    """One native file of about `target_bytes`; returns (bytes, turns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    total = turns = 0
    with path.open("wb") as fh:
        chunk: list[bytes] = []
        for line in native_lines(session, target_bytes):
            chunk.append(line)
            total += len(line)
            turns += 1
            if len(chunk) >= 4096:
                fh.write(b"".join(chunk))
                chunk.clear()
        fh.write(b"".join(chunk))
    return total, turns
