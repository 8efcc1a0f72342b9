"""Throughput of the redaction stage on realistic agent text, with and without secrets.

    .venv/bin/python benchmarks/bench_redaction.py

The clean corpus is every string value in the real agent transcripts under
../shared/fixtures/agents (prompts, tool arguments, tool outputs, file contents); when they are
absent a synthetic corpus of agent-like text is used instead. The "with secrets" corpus is the same
text with a fake secret from tests/data/secrets_corpus.json spliced into every 10th string.
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


def clean_corpus() -> tuple[list[str], str]:
    texts: list[str] = []
    for path in sorted(FIXTURES.rglob("*.jsonl")):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            try:
                texts.extend(string_leaves(json.loads(line)))
            except ValueError:
                continue
    if texts:
        return texts, f"strings from {FIXTURES.resolve()}"
    return SYNTHETIC * 2000, "synthetic agent text"


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


def throughput(texts: list[str], redact: Callable[[str], str], repeat: int = 3) -> float:
    size = sum(len(t.encode()) for t in texts)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            redact(text)
        best = min(best, time.perf_counter() - started)
    return size / best / 1e6


def main() -> None:
    clean, source = clean_corpus()
    dirty = with_secrets(clean)
    redactor = Redactor(max_attribute_chars=10**9)
    mb = sum(len(t.encode()) for t in clean) / 1e6
    print(f"corpus: {len(clean)} {source}, {mb:.1f} MB")
    print(f"clean text:             {throughput(clean, redactor.redact_text):7.1f} MB/s")
    print(f"with secrets (1 in 10): {throughput(dirty, redactor.redact_text):7.1f} MB/s")
    chunks = ["\n".join(clean[i : i + 200]) for i in range(0, len(clean), 200)]
    print(f"clean, 200 strings/call: {throughput(chunks, redactor.redact_text):6.1f} MB/s")
    everything = Redactor(max_attribute_chars=10**9)
    print(
        "clean, no pre-check:    "
        f"{throughput(clean, lambda t: everything.scrub(t, precheck=False)):7.1f} MB/s"
    )
    print(f"redactions per kind (with secrets): {sorted(redactor.counts().items())}")


if __name__ == "__main__":
    main()
