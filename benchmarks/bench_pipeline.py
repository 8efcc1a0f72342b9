"""Side-by-side throughput of tailerd's pipeline stages, as ratios to plain baselines.

    .venv/bin/python benchmarks/bench_pipeline.py [TURNS]

Each row adds one stage to the one above, over the same synthetic native-format file (one
`turn` line per turn: a prompt, an answer, 2 LLM calls and 1 tool call, ~2.5 KB). Baselines:
`read + split + orjson.loads` (the single-core ceiling measured in platform-notes §6) and a bare
`weave.log_turn` with pre-built weave objects into an in-memory exporter. Not part of CI.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

os.environ["WANDB_ERROR_REPORTING"] = "false"

from tailerd.core.framing import LineFramer
from tailerd.domain import Line, Turn
from tailerd.emitter import Emitter
from tailerd.formats.base import Source
from tailerd.formats.native import NativeParser
from tailerd.redaction import Redactor
from tailerd.sinks.local import LocalSink

TEXT = "Let me look at the failing test in tests/test_checkpoint.py and the fixture it uses. " * 8


def make_file(path: Path, turns: int) -> int:
    with path.open("wb") as fh:
        for n in range(turns):
            line = {
                "type": "turn",
                "session_id": f"s{n // 20}",
                "turn_id": str(n),
                "agent_name": "bench-agent",
                "model": "gpt-4o",
                "messages": [
                    {"role": "user", "content": TEXT},
                    {"role": "assistant", "content": TEXT},
                ],
                "spans": [
                    {
                        "type": "llm",
                        "model": "gpt-4o",
                        "usage": {"input_tokens": 900, "output_tokens": 80},
                        "started_at": "2026-11-24T10:00:00Z",
                        "ended_at": "2026-11-24T10:00:01Z",
                    },
                    {
                        "type": "tool",
                        "name": "bash",
                        "arguments": '{"cmd": "pytest -x"}',
                        "result": TEXT,
                        "started_at": "2026-11-24T10:00:01Z",
                        "ended_at": "2026-11-24T10:00:02Z",
                    },
                    {
                        "type": "llm",
                        "model": "gpt-4o",
                        "usage": {"input_tokens": 1200, "output_tokens": 40},
                        "started_at": "2026-11-24T10:00:02Z",
                        "ended_at": "2026-11-24T10:00:03Z",
                    },
                ],
                "started_at": "2026-11-24T10:00:00Z",
                "ended_at": "2026-11-24T10:00:03Z",
            }
            fh.write(orjson.dumps(line) + b"\n")
    return path.stat().st_size


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    turns = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "bench.jsonl"
    size = make_file(path, turns)
    data = path.read_bytes()

    def baseline() -> int:
        return sum(1 for raw in data.split(b"\n") if raw and orjson.loads(raw))

    def frame() -> list[Line]:
        return [x for x in LineFramer().feed(data) if isinstance(x, Line)]

    def parse() -> list[Turn]:
        parser = NativeParser(Source(str(path)))
        return [t for line in frame() for t in parser.feed(line) if isinstance(t, Turn)]

    redactor = Redactor()
    emitter = Emitter()
    parsed = parse()

    def emit_only() -> int:
        return sum(len(emitter.emit(t)) for t in parsed)

    rows: list[tuple[str, Callable[[], int]]] = [
        ("read+split+orjson.loads (baseline)", baseline),
        ("+ LineFramer", lambda: len(frame())),
        ("+ native parse (pydantic)", lambda: len(parse())),
        ("+ redaction", lambda: len([redactor.apply(t) for t in parse()])),
        ("emit via weave.log_turn only", emit_only),
    ]
    import weave

    def bare_log_turn() -> int:
        llm = weave.LLM(model="gpt-4o", usage=weave.Usage(input_tokens=900, output_tokens=80))
        tool = weave.Tool(name="bash", arguments='{"cmd": "pytest -x"}', result=TEXT)
        for _ in parsed:
            weave.log_turn(
                conversation_id="s",
                agent_name="bench-agent",
                model="gpt-4o",
                messages=[weave.Message(role="user", content=TEXT)],
                output_messages=[weave.Message(role="assistant", content=TEXT)],
                spans=[llm, tool, llm],
            )
        return len(parsed)

    rows.insert(4, ("bare weave.log_turn (baseline 2)", bare_log_turn))
    sink = LocalSink(tmp / "bench.db")
    spans = [s for t in parsed[:1000] for s in emitter.emit(t)]
    rows.append(("local sink insert (1000 turns)", lambda: (sink.send(spans), len(spans))[1]))

    print(f"{turns} turns, {size / 1e6:.1f} MB, python {sys.version.split()[0]}")
    base = None
    for name, fn in rows:
        seconds, count = timed(fn)
        per_turn = seconds / turns * 1e6
        base = base or seconds
        print(
            f"{name:<38} {seconds * 1000:9.1f} ms  {per_turn:8.1f} us/turn  x{seconds / base:6.2f}"
        )
    print(f"(count check: {count})")


if __name__ == "__main__":
    main()
