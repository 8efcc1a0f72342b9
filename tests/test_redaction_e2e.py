"""No secret from the corpus reaches the receiver, wherever it sits in a logged turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_tailerd
from tests.otlp_receiver import Receiver
from tests.test_redaction import ENTRIES, render


def native_turn(n: int, place: str, text: str) -> dict[str, Any]:
    turn: dict[str, Any] = {
        "type": "turn",
        "session_id": "secrets",
        "turn_id": str(n),
        "messages": [{"role": "user", "content": "fix the deploy"}],
        "output_messages": [{"role": "assistant", "content": "done"}],
        "spans": [],
    }
    llm: dict[str, Any] = {"type": "llm", "model": "m", "input_messages": [], "reasoning": ""}
    tool: dict[str, Any] = {"type": "tool", "name": "Bash", "arguments": "{}", "result": ""}
    if place == "prompt":
        turn["messages"][0]["content"] = text
    elif place == "output":
        turn["output_messages"][0]["content"] = text
    elif place == "tool_arguments":
        tool["arguments"] = text
    elif place == "tool_result":
        tool["result"] = text
    elif place == "llm_input":
        llm["input_messages"] = [{"role": "user", "content": text}]
    elif place == "reasoning":
        llm["reasoning"] = text
    elif place == "attribute":
        turn["hook_payload"] = {"nested": [text]}
    elif place in {"subagent_input", "subagent_output"}:
        role = "user" if place == "subagent_input" else "assistant"
        inner = {"type": "llm", "model": "h", "input_messages": [{"role": role, "content": text}]}
        turn["spans"].append({"type": "subagent", "name": "Explore", "spans": [inner]})
    else:
        raise AssertionError(f"corpus place not mapped in this test: {place}")
    turn["spans"] += [llm, tool]
    return turn


def test_no_corpus_secret_reaches_the_receiver(tmp_path: Path, receiver: Receiver):
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [json.dumps(native_turn(n, e["place"], render(e))) for n, e in enumerate(ENTRIES)]
    (logs / "secrets.jsonl").write_text("\n".join(lines) + "\n")
    result = run_tailerd(
        "--watch",
        logs,
        "--once",
        "--sink",
        "otlp",
        "--otlp-endpoint",
        receiver.url,
        "--state-dir",
        tmp_path / "s",
    )
    assert result.returncode == 0, result.stderr
    assert len(receiver.roots()) == len(ENTRIES)
    wire = b"".join(receiver.bodies)
    for entry in ENTRIES:
        for secret in entry["secrets"]:
            assert secret["distinctive"].encode() not in wire, (entry["id"], secret["kind"])
            assert f"[REDACTED:{secret['kind']}]".encode() in wire, entry["id"]
    logs_text = result.stderr + result.stdout
    assert not any(s["distinctive"] in logs_text for e in ENTRIES for s in e["secrets"])
