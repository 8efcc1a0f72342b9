"""Driving a running `tailerd` for the live and fault tests: start it, watch it, stop or kill it.

Also the native turn lines those tests write, and the questions they ask the receiver. Every
turn line carries a `test_turn` label (kept as an attribute of the turn's root span) and a
known number of `llm` calls, so the expected spans are counted from what the test wrote.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import popen_tailerd
from tests.otlp_receiver import Receiver

LABEL = "test_turn"


def turn_line(session: str, label: str, llm_calls: int = 1, **extra: Any) -> bytes:
    """One finished native turn on one line: a root span plus `llm_calls` chat spans."""
    record = {
        "type": "turn",
        "session_id": session,
        "turn_id": label,
        LABEL: label,
        "messages": [
            {"role": "user", "content": f"question {label}"},
            {"role": "assistant", "content": f"answer {label}"},
        ],
        "spans": [{"type": "llm", "model": "m", "usage": {"input_tokens": 3}}] * llm_calls,
        **extra,
    }
    return json.dumps(record).encode() + b"\n"


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def write_config(path: Path, **settings: float) -> Path:
    path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    return path


def labels(receiver: Receiver) -> list[str]:
    """The label of every root span received, duplicates included, in arrival order."""
    return [str(r["attributes"].get(LABEL)) for r in receiver.roots()]


def has_labels(wanted: set[str]) -> Callable[[Receiver], bool]:
    return lambda rec: wanted <= set(labels(rec))


def trace_ids_by_label(receiver: Receiver) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in receiver.roots():
        out.setdefault(str(r["attributes"].get(LABEL)), set()).add(r["trace_id"])
    return out


def duplicate_span_ids(receiver: Receiver) -> int:
    return sum(n - 1 for n in Counter(receiver.span_ids()).values())


def poll(predicate: Callable[[], bool], timeout: float, every: float = 0.002) -> float | None:
    """Seconds until `predicate()` held, polling every few ms; None on timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(every)


def quiet(receiver: Receiver, for_seconds: float, timeout: float) -> bool:
    """True once nothing new has arrived at the receiver for `for_seconds`."""
    deadline = time.monotonic() + timeout
    seen, since = len(receiver.spans), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if len(receiver.spans) != seen:
            seen, since = len(receiver.spans), time.monotonic()
        elif time.monotonic() - since >= for_seconds:
            return True
    return False


class RunningTailerd:
    """A `tailerd` subprocess whose stderr is drained by a thread (a full pipe would block it)."""

    def __init__(self, *args: str | Path, preexec_fn: Callable[[], None] | None = None) -> None:
        self.proc: subprocess.Popen[str] = popen_tailerd(*args, preexec_fn=preexec_fn)
        self.stderr: list[str] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    @property
    def log(self) -> str:
        self._drain.join(timeout=0 if self.proc.poll() is None else 5)
        return "".join(self.stderr)

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Test clean-up: make sure the process is gone, whatever happened."""
        if self.proc.poll() is None:
            self.kill()
        self._drain.join(timeout=5)


def otlp_daemon(watch: Path, state: Path, url: str, *extra: str | Path) -> RunningTailerd:
    return RunningTailerd(
        "--watch", watch, "--state-dir", state, "--data-dir", state,
        "--sink", "otlp", "--otlp-endpoint", url, *extra,
    )  # fmt: skip


def spans_of(i: int) -> int:
    """Turn `t{i}` written by `write_turns` has a root span and `i % 3` chat spans."""
    return 1 + i % 3


def write_turns(logs: Path, count: int, seconds: float, seed: int) -> None:
    """Be an agent: append turns `t0`..`t{count-1}` to three files over about `seconds`.

    One file appears, in a new directory, halfway through; about one line in five is written
    in two parts with a pause between.
    """
    rng = random.Random(seed)
    paths = [logs / "a.jsonl", logs / "b.jsonl", logs / "later" / "c.jsonl"]
    for i in range(count):
        if i == count // 2:
            paths[2].parent.mkdir(exist_ok=True)
        path = rng.choice(paths if i >= count // 2 else paths[:2])
        line = turn_line(path.stem, f"t{i}", llm_calls=spans_of(i) - 1)
        cut = rng.randrange(1, len(line)) if rng.random() < 0.2 else len(line)
        append(path, line[:cut])
        if cut < len(line):
            time.sleep(rng.uniform(0, 0.05))
            append(path, line[cut:])
        time.sleep(rng.uniform(0, 2 * seconds / count))


if __name__ == "__main__":  # the writer process of tests/test_faults.py
    write_turns(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
