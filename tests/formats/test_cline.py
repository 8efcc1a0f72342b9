"""Cline CLI / SDK sessions, against the real sample in ../shared/fixtures/agents/cline/.

Hand counts over session.messages.json (F) with jq:
  `jq '.messages|length' F` -> 32 messages
  prompts, `jq -r '.messages[]|select(.role=="user")|select(any(.content[];
      .type=="tool_result")|not)|.id' F` -> 5: msg_mr9sjimy_1, msg_mr9soyef_1, msg_mr9sqnuq_1,
      msg_mr9szmu2_2q, msg_mrb7vknq_4n
  the message sequence (P prompt, a assistant, r tool results) is
      PararaParaParararararaParararaPa -> chat spans per turn 3, 2, 6, 4, 1 (16 in all)
  `jq -r '.messages[]|select(.role=="assistant")|.modelInfo.id' F | uniq -c`
      -> 15 anthropic/claude-opus-4.8-fast, then 1 mistralai/voxtral-small-24b-2507
  `jq -r '.messages[]|.content[]|select(.type=="tool_use")|.name' F | sort | uniq -c`
      -> editor 4, read_files 6, run_commands 1 (11); per turn 2, 1, 5, 3, 0 (read off the ids)
  metrics sums (`jq '[...|.metrics] | map(.inputTokens)|add'` etc.): input 630254,
      output 4395, cache reads 534435, cache writes 0, cost 2.036022565 USD
Manifest session.json: title "can you update @apps/...comes afte (fork)", cwd
/Users/example/dev/cline, forked from 1784094053271_p8pzo.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailerd import formats
from tailerd.domain import LLMCall, ToolCall
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.cline import FORMAT, turns_from_document
from tests.agents_cli import install
from tests.agents_cli import model_server as scripted
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import document_format_of, mutated_lines

FIXTURE = FIXTURES / "cline" / "cline-cline" / "sdk" / "packages" / "core" / "fixtures" / "session"
SESSION = "1784094124598_rruoq"  # session.json session_id and messages sessionId
CWD = "/Users/example/dev/cline"
PARENT = "1784094053271_p8pzo"


def cline_home(root: Path) -> Path:
    """The fixture where the Cline CLI writes it: ~/.cline/data/sessions/<id>/<id>.*.json."""
    dest = root / ".cline" / "data" / "sessions" / SESSION
    dest.mkdir(parents=True)
    shutil.copyfile(FIXTURE / "session.json", dest / f"{SESSION}.json")
    shutil.copyfile(FIXTURE / "session.messages.json", dest / f"{SESSION}.messages.json")
    return dest / f"{SESSION}.messages.json"


def source(path: Path) -> Source:
    return Source(str(path), read_related=read_related, find_related=find_related)


def test_real_session_by_hand(tmp_path: Path) -> None:
    path = cline_home(tmp_path)
    turns = turns_from_document(path.read_bytes(), source(path), final=True)
    assert [t.key.rsplit("|", 1)[1] for t in turns] == [
        "msg_mr9sjimy_1",
        "msg_mr9soyef_1",
        "msg_mr9sqnuq_1",
        "msg_mr9szmu2_2q",
        "msg_mrb7vknq_4n",
    ]
    chats = [[s for s in t.spans if isinstance(s, LLMCall)] for t in turns]
    tools = [[s for s in t.spans if isinstance(s, ToolCall)] for t in turns]
    assert [len(c) for c in chats] == [3, 2, 6, 4, 1]
    assert [len(t) for t in tools] == [2, 1, 5, 3, 0]
    names = sorted(t.name for ts in tools for t in ts)
    assert names == sorted(["editor"] * 4 + ["read_files"] * 6 + ["run_commands"])
    every = [c for cs in chats for c in cs]
    assert sum(c.usage.input_tokens for c in every) == 630254
    assert sum(c.usage.output_tokens for c in every) == 4395
    assert sum(c.usage.cache_read_input_tokens for c in every) == 534435
    assert sum(c.attributes["gen_ai.usage.cost"] for c in every) == pytest.approx(2.036022565)
    assert [c.model for c in every].count("anthropic/claude-opus-4.8-fast") == 15
    assert turns[-1].model == "mistralai/voxtral-small-24b-2507"  # the model switch
    assert all(t.result for ts in tools for t in ts)
    assert all(t.session_id == SESSION for t in turns)
    first = turns[0]
    assert first.session_name.endswith("comes afte (fork)")
    assert first.attributes["tailerd.cwd"] == CWD
    assert first.attributes["cline.forked_from"] == PARENT
    assert first.messages[0].content.startswith("can you update @apps/examples/")
    assert first.messages[1].content.startswith("File: /Users/example/dev/cline/apps/")
    assert turns[-1].messages[0].content == "hello"
    assert turns[-1].output_messages[0].content == "Hello! How can I assist you today?"
    # ts 1783376868634 ms = 2026-07-06T22:27:48.634Z (date -u -d @1783376868.634)
    assert first.started_at is not None
    assert first.started_at.isoformat() == "2026-07-06T22:27:48.634000+00:00"
    assert "cline:message:msg_mr9sjimy_1" in first.identities


def test_the_last_turn_waits_for_quiet_or_the_end_of_the_cli(tmp_path: Path) -> None:
    path = cline_home(tmp_path)
    data = path.read_bytes()
    # the sample's manifest records the process's end (ended_at, status completed): all 5 final
    assert len(turns_from_document(data, source(path), final=False)) == 5
    manifest = path.with_name(f"{SESSION}.json")
    running = json.loads(manifest.read_text())
    del running["ended_at"], running["exit_code"]
    running["status"] = "running"
    manifest.write_text(json.dumps(running))
    open_turns = turns_from_document(data, source(path), final=False)
    assert len(open_turns) == 4  # the last turn may still grow
    # a rewrite that appends messages keeps the keys of the turns already sent
    doc = json.loads(data)
    doc["messages"].append(
        {"id": "msg_new", "role": "user", "ts": 1783463100000, "content": "again"}
    )
    grown = turns_from_document(json.dumps(doc).encode(), source(path), final=False)
    assert [t.key for t in grown[:5]] == [t.key for t in open_turns] + [grown[4].key]
    assert len(grown) == 5
    assert turns_from_document(data[:1000], source(path), final=True) == []  # half-written


def test_claims_before_gemini(tmp_path: Path) -> None:
    path = cline_home(tmp_path)
    fmt = formats.choose(PurePath(path), path.read_bytes()[:65536])
    assert fmt is not None and fmt.name == "cline"
    assert not FORMAT.claims(PurePath(path.with_name(f"{SESSION}.json")), b'{"version": 1}')


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    mutated_lines([(FIXTURE / "session.messages.json").read_bytes().replace(b"\n", b" ")]),
    st.booleans(),
)
def test_no_wrong_type_escapes_a_document(lines: list[bytes], final: bool) -> None:
    path = PurePath("/h/.cline/data/sessions/x/x.messages.json")
    assert document_format_of(lines[0], path, final) == "cline"


def test_once_ships_the_session_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cline_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: the last turn is finished
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", home / ".cline", "--once", "--state-dir", state, "--data-dir", state
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    ops = [op for op, _, _ in rows]
    assert ops.count("chat") == 16 and ops.count("execute_tool") == 11
    assert len(rows) == 5 + 16 + 11
    assert {sid for _, sid, _ in rows} == {SESSION}
    chats = [json.loads(a) for op, _, a in rows if op == "chat"]
    assert sum(int(a["gen_ai.usage.input_tokens"]) for a in chats) == 630254
    assert sum(float(a["gen_ai.usage.cost"]) for a in chats) == pytest.approx(2.036022565)
    # Cline's own bill is the price: never also marked unpriced, never re-priced
    assert not any(a.get("tailerd.cost.unpriced") for a in chats)
    assert {a["tailerd.cost.source"] for a in chats} == {"agent"}


# ---- the real Cline CLI against a scripted model server ------------------------------------

CLINE_CLI = "3.0.65"  # npm `cline`, the newest on 2026-11-30
# The script is the oracle: one prompt, two tool calls the CLI really runs (a shell command,
# then reading the file it wrote), an answer. OpenAI Chat Completions reports the prompt as
# input + cache reads, so tailerd's input tokens are Usage.prompt.
SCRIPT = [
    scripted.Reply(scripted.Usage(1200, 40, cache_read=300), "I'll write it.", (
        scripted.ToolCall("run_commands", {"commands": ["echo hello > a.txt"]}, "toolu_01A"),
    )),
    scripted.Reply(scripted.Usage(1300, 30, cache_read=1200), "", (
        scripted.ToolCall("read_files", {"files": [{"path": "a.txt"}]}, "toolu_01B"),
    )),
    scripted.Reply(scripted.Usage(1400, 20, cache_read=1300), "Done: a.txt says hello."),
]  # fmt: skip
PROMPT = "create a.txt with hello and read it back"


def cline_cli() -> Path:
    """The real CLI at CLINE_CLI, installed once from npm (tests/agents_cli/install.py)."""
    try:
        return install.install("cline", CLINE_CLI)
    except install.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def stop_hub(home: Path, work: Path) -> None:
    """Cline starts a background hub daemon (pid in locks/hub/production.json), sometimes
    after the CLI exited: wait for it a little and stop it, checking it is this test's."""
    lock = home / ".cline" / "data" / "locks" / "hub" / "production.json"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not lock.exists():
        time.sleep(0.2)
    try:
        pid = int(json.loads(lock.read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return
    if b"--cline-hub-daemon" in cmdline and str(work).encode() in cmdline:
        os.kill(pid, signal.SIGTERM)


def test_real_cline_cli_session_is_shipped_as_scripted(tmp_path: Path) -> None:
    binary = cline_cli()
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir(parents=True)
    (home / "tmp").mkdir(parents=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "CLINE_NO_AUTO_UPDATE": "1",
        # anything but the local model server fails instead of leaving the machine
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with scripted.running(SCRIPT, "gpt-4.1") as server:
        try:
            auth = [binary, "auth", "-p", "openai", "-k", "sk-test", "-b", f"{server.url}/v1"]
            run = subprocess.run(
                [*map(str, auth), "-m", "gpt-4.1"], cwd=work, env=env, capture_output=True,
                text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-500:]
            run = subprocess.run(
                [str(binary), PROMPT], cwd=work, env=env, capture_output=True, text=True,
                timeout=300, check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-1000:]
        finally:
            stop_hub(home, work)
        assert server.answered == 3 and server.overruns == 0
    assert (work / "a.txt").read_text() == "hello\n"  # the CLI really ran the command
    (messages,) = (home / ".cline" / "data" / "sessions").glob("*/*.messages.json")
    # written a moment ago: the last turn is final because the manifest records the CLI's end
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", home / ".cline", "--once", "--state-dir", state, "--data-dir", state
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT operation, attributes FROM spans").fetchall()
    attrs = [(op, json.loads(a)) for op, a in rows]
    chats = [a for op, a in attrs if op == "chat"]
    tools = [a for op, a in attrs if op == "execute_tool"]
    roots = [a for op, a in attrs if op not in ("chat", "execute_tool")]
    assert (len(roots), len(chats), len(tools)) == (1, 3, 2)
    assert sum(int(a["gen_ai.usage.input_tokens"]) for a in chats) == sum(
        r.usage.prompt for r in SCRIPT
    )
    assert sum(int(a["gen_ai.usage.output_tokens"]) for a in chats) == sum(
        r.usage.output for r in SCRIPT
    )
    assert sorted(a["gen_ai.tool.name"] for a in tools) == ["read_files", "run_commands"]
    (turn,) = turns_from_document(messages.read_bytes(), source(messages), final=True)
    assert turn.messages[0].content == PROMPT  # the <user_input> wrapper removed
    assert turn.attributes["tailerd.cwd"] == str(work)
    assert turn.session_name == PROMPT
