"""Throughput of the redaction stage on realistic agent text, with and without secrets:
the pure-Python trigger scan (engine "regex", the fallback) against Hyperscan, side by side.

    .venv/bin/python benchmarks/bench_redaction.py

The clean corpus is every string value in the real agent transcripts under
../shared/fixtures/agents (prompts, tool arguments, tool outputs, file contents); when they are
absent a synthetic corpus of agent-like text is used instead. The "with secrets" corpus is the same
text with a fake secret from tests/data/secrets_corpus.json spliced into every 10th string.

Rows: one `redact_text` call per string; one `redact_many` call per JSONL record (the strings of
one transcript line, as a turn hands them over); the two engines' outputs are checked equal.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tailerd.domain import LLMCall, Message, ToolCall, Turn  # noqa: E402
from tailerd.redaction import Redactor  # noqa: E402

FIXTURES = REPO / ".." / "shared" / "fixtures" / "agents"
SECRETS = REPO / "tests" / "data" / "secrets_corpus.json"
SYNTHETIC = [
    "I'll start by reading the configuration module to understand how the loader works.",
    '{"command": "pytest -q tests/test_loader.py", "description": "Run the loader tests"}',
    "     1\timport os\n     2\tfrom pathlib import Path\n     3\t\n     4\tdef load(path):\n"
    "     5\t    token = get_token()\n     6\t    return Path(path).read_text()\n" * 20,
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nAuthor: Dev <dev@example.com>\n" * 10,
    '{"usage": {"input_tokens": 1234, "output_tokens": 56}, "id": "msg_01XyZ"}',
]


def string_leaves(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from string_leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from string_leaves(value)


def clean_corpus() -> tuple[list[list[str]], str]:
    """Strings of the fixtures, grouped per JSONL record."""
    records: list[list[str]] = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            try:
                records.append(list(string_leaves(json.loads(line))))
            except ValueError:
                continue
    if records:
        return records, f"strings from {FIXTURES.resolve()}"
    return [SYNTHETIC] * 2000, "synthetic agent text"


def with_secrets(texts: list[str]) -> list[str]:
    entries = json.loads(SECRETS.read_text("utf-8"))["entries"]
    samples = []
    for entry in entries:
        text = json.dumps(entry["template"])
        for i, secret in enumerate(entry["secrets"]):
            text = text.replace(f"{{s{i}}}", "".join(secret["parts"]))
        samples.append(text)
    return [
        f"{text}\n{samples[i // 10 % len(samples)]}" if i % 10 == 0 else text
        for i, text in enumerate(texts)
    ]


def throughput(
    batches: list[Any], runs: tuple[Callable[[Any], Any], ...], size: int, repeat: int
) -> list[float]:
    """MB/s of each run over all batches; runs alternate, best of `repeat` (the box is shared)."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            for batch in batches:
                run(batch)
            best[i] = min(best[i], time.perf_counter() - started)
    return [size / b / 1e6 for b in best]


def per_string(redactor: Redactor) -> Callable[[list[str]], list[str]]:
    return lambda batch: [redactor.redact_text(t) for t in batch]


def as_turn(record: list[str]) -> Turn:
    """A record's strings as one turn: the first is the prompt, the rest tool results."""
    tools = tuple(ToolCall(name="Bash", result=text) for text in record[1:])
    return Turn(key="k", session_id="s", start=0, end=1, messages=(Message("user", record[0]),),
                spans=(LLMCall(model="m"), *tools))  # fmt: skip


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    records, source = clean_corpus()
    records = [r for r in records if r]
    dirty_strings = with_secrets([t for r in records for t in r])
    dirty, at = [], 0
    for record in records:
        dirty.append(dirty_strings[at : at + len(record)])
        at += len(record)
    old = Redactor(max_attribute_chars=10**9, engine="regex")
    new = Redactor(max_attribute_chars=10**9, engine="hyperscan")
    strings = sum(len(r) for r in records)
    mb = sum(len(t.encode()) for r in records for t in r) / 1e6
    print(f"corpus: {strings} {source} in {len(records)} records, {mb:.1f} MB; best of {repeat}")
    print(f"{'':50s} {'regex (old)':>13s} {'hyperscan':>13s} {'ratio':>6s}")
    for name, batches in (("clean", records), ("with secrets (1 in 10)", dirty)):
        flat = [t for batch in batches for t in batch]
        size = sum(len(t.encode()) for t in flat)
        assert new.redact_many(flat) == [old.redact_text(t) for t in flat], name
        turns = [as_turn(batch) for batch in batches]
        rows = (
            ("redact_text per string", (per_string(old), per_string(new)), batches),
            ("redact_many per record", (old.redact_many, new.redact_many), batches),
            ("apply, one turn per record", (old.apply, new.apply), turns),
        )
        for how, runs, work in rows:
            before, after = throughput(work, runs, size, repeat)
            print(
                f"{name + ', ' + how:50s} {before:8.1f} MB/s {after:8.1f} MB/s"
                f" {after / before:5.1f}x"
            )
    same = "same" if new.counts() == old.counts() else "DIFFERENT"
    print(f"redactions per kind ({same} on both engines): {sorted(new.counts().items())}")


if __name__ == "__main__":
    main()
