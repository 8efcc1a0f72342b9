"""Factory Droid sessions, against the real sample in ../shared/fixtures/agents/droid/.

Hand counts over droid-session.jsonl (12 lines) and droid-session.settings.json:
  `jq -r '[.type, (.message.role // "-")] | join(" ")' F | sort | uniq -c`
      -> 1 session_start, 5 message/assistant, 5 message/user, 2 todo_state
  `jq -r 'select(.message.role=="user") | .message.content[] | .type' F | sort | uniq -c`
      -> 2 text (both in the first user message: the prompt and the @index.ts attachment),
         5 tool_result: so 1 prompt, 1 turn
  `jq -r '... select(.type=="tool_use") | .name' F | sort | uniq -c` and
  `grep -o '"type":"tool_use"' F | wc -l` -> 5 tool calls: ApplyPatch 1, Read 2, TodoWrite 2
  (SOURCE.txt's "6 assistant messages with 7 tool_use" does not match the file; the file wins)
  no tool_result has `is_error` (jq: 5 x null).
  settings tokenUsage: input 6743, output 1450, cacheCreation 0, cacheRead 42496, thinking 1088
      -> Weave input_tokens = 6743 + 42496 + 0 = 49239; output 1450; reasoning 1088.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path, PurePath

import pytest

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, ToolCall, Turn
from tailerd.edges.related_files import find_related, read_related
from tailerd.formats.base import Source
from tailerd.formats.droid import FORMAT
from tests.agents_cli import install
from tests.agents_cli import model_server as scripted
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import Sample, check_wrong_types, once_into_store

FIXTURE = FIXTURES / "droid" / "git-ai-project-git-ai" / "tests" / "fixtures"
SESSION = "052cb8d0-4616-488a-99fe-bfbbbe9429b3"  # session_start.id on line 1
CWD = "/Users/testuser/projects/testing-git"  # session_start.cwd on line 1
TITLE = 'Update the first comment in @index.ts to "DROID3"'  # session_start.title (sessionTitle
# is Droid's placeholder "New Session")


def droid_home(root: Path) -> Path:
    """The fixture copied where Droid writes it: ~/.factory/sessions/<cwd-slug>/<uuid>.jsonl."""
    dest = root / ".factory" / "sessions" / "-Users-testuser-projects-testing-git"
    dest.mkdir(parents=True)
    shutil.copyfile(FIXTURE / "droid-session.jsonl", dest / f"{SESSION}.jsonl")
    shutil.copyfile(FIXTURE / "droid-session.settings.json", dest / f"{SESSION}.settings.json")
    return dest / f"{SESSION}.jsonl"


def parse(path: Path, data: bytes | None = None, context: dict | None = None) -> list[Turn]:
    source = Source(str(path), read_related=read_related, find_related=find_related)
    parser = FORMAT.new_parser(source, context)
    out: list[Turn] = []
    for item in LineFramer().feed(path.read_bytes() if data is None else data):
        assert isinstance(item, Line)
        out.extend(t for t in parser.feed(item) if isinstance(t, Turn))
    out.extend(parser.close_idle(1e9))
    return out


def test_real_session_by_hand(tmp_path: Path) -> None:
    (turn,) = parse(droid_home(tmp_path))
    chats = [s for s in turn.spans if isinstance(s, LLMCall)]
    tools = [s for s in turn.spans if isinstance(s, ToolCall)]
    assert len(chats) == 5
    assert sorted(t.name for t in tools) == ["ApplyPatch", "Read", "Read", "TodoWrite", "TodoWrite"]
    assert all(t.result for t in tools) and not any(t.is_error for t in tools)
    assert tools[0].result == "// DROID2\nconsole.log('Hello');\n"  # line 5, first tool_result
    assert turn.session_id == SESSION
    assert turn.session_name == TITLE
    assert turn.attributes["tailerd.cwd"] == CWD
    assert turn.model == "custom:BYOK-GPT-5-MINI-0"
    assert chats[0].provider_name == "openai"  # settings providerLock
    assert turn.messages[0].content.startswith(TITLE)
    assert turn.output_messages[0].content.startswith("# Update complete")
    assert turn.started_at is not None and turn.started_at.isoformat().startswith(
        "2026-01-28T16:57:01.391"
    )
    assert turn.identities == ("droid:message:2e651873-0881-4fbe-80b0-92d59a21074e",)
    # the session's tokens, once, on the turn's last chat span
    last = chats[-1]
    assert last.attributes["tailerd.usage.scope"] == "turn"
    assert (last.usage.input_tokens, last.usage.output_tokens) == (49239, 1450)
    assert (last.usage.cache_read_input_tokens, last.usage.reasoning_tokens) == (42496, 1088)
    assert all(c.usage.input_tokens == 0 for c in chats[:-1])
    assert all(c.attributes["tailerd.usage.recorded"] is False for c in chats[:-1])


def test_cumulative_totals_are_attributed_as_deltas(tmp_path: Path) -> None:
    """A second turn gets only what the settings totals grew by since the first."""
    path = droid_home(tmp_path)
    settings_file = path.with_name(f"{SESSION}.settings.json")
    source = Source(str(path), read_related=read_related)
    parser = FORMAT.new_parser(source, None)
    data = path.read_bytes()
    for item in LineFramer().feed(data):
        assert isinstance(item, Line)
        parser.feed(item)
    (first,) = parser.close_idle(1e9)
    snapshot = parser.snapshot()
    raw = json.loads(settings_file.read_text())
    raw["tokenUsage"]["inputTokens"] += 100  # the second turn: 100 in, 7 out, 900 cache reads
    raw["tokenUsage"]["outputTokens"] += 7
    raw["tokenUsage"]["cacheReadTokens"] += 900
    settings_file.write_text(json.dumps(raw))
    more = (
        b'{"type":"message","id":"p2","timestamp":"2026-01-28T17:00:00Z","message":{"role":"user",'
        b'"content":[{"type":"text","text":"thanks"}]}}\n'
        b'{"type":"message","id":"a2","timestamp":"2026-01-28T17:00:02Z","message":{"role":'
        b'"assistant","content":[{"type":"text","text":"welcome"}]}}\n'
    )
    resumed = FORMAT.new_parser(source, json.loads(json.dumps(snapshot)))  # as a checkpoint
    for item in LineFramer(offset=len(data)).feed(more):
        assert isinstance(item, Line)
        resumed.feed(item)
    (second,) = resumed.close_idle(1e9)
    (chat,) = [s for s in second.spans if isinstance(s, LLMCall)]
    assert (chat.usage.input_tokens, chat.usage.output_tokens) == (100 + 900, 7)
    assert second.session_name == TITLE and second.attributes["tailerd.cwd"] == CWD
    assert first.key != second.key


def test_missing_settings_says_usage_not_recorded(tmp_path: Path) -> None:
    path = droid_home(tmp_path)
    path.with_name(f"{SESSION}.settings.json").unlink()
    (turn,) = parse(path)
    assert turn.attributes["tailerd.usage.recorded"] is False
    assert all(s.usage.input_tokens == 0 for s in turn.spans if isinstance(s, LLMCall))


def test_claims(tmp_path: Path) -> None:
    path = droid_home(tmp_path)
    head = path.read_bytes()[:4096]
    assert formats.choose(PurePath(path), head).name == "droid"  # type: ignore[union-attr]
    native = b'{"type":"session_start","session_id":"s1"}\n'
    assert not FORMAT.claims(PurePath(path), native)


def test_no_wrong_type_escapes(tmp_path: Path) -> None:
    sample = Sample("droid", droid_home(tmp_path))
    check_wrong_types(sample, 60, unguarded=FORMAT)  # and the format itself, unguarded


def test_once_ships_the_session_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    droid_home(home)
    for p in home.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))  # long quiet: the turn is finished
    with sqlite3.connect(once_into_store(home / ".factory", tmp_path)) as db:
        rows = db.execute("SELECT operation, session_id, attributes FROM spans").fetchall()
    ops = sorted(op for op, _, _ in rows)
    assert ops.count("chat") == 5 and ops.count("execute_tool") == 5 and len(rows) == 11
    assert {sid for _, sid, _ in rows} == {SESSION}
    chats = [json.loads(a) for op, _, a in rows if op == "chat"]
    assert sum(int(a.get("gen_ai.usage.input_tokens", 0)) for a in chats) == 49239
    assert sum(int(a.get("gen_ai.usage.output_tokens", 0)) for a in chats) == 1450


# ---- the real Droid CLI against a scripted model server -------------------------------------

DROID_CLI = "0.215.0"  # npm `droid`, the newest on 2026-11-30
PROMPT = "create a.txt with hello and read it back"


def script(work: Path) -> list[scripted.Reply]:
    """The oracle: two tool calls the CLI really runs (a shell command, reading its output
    file), then an answer; Chat Completions reports prompts as input + cache reads."""
    return [
        scripted.Reply(scripted.Usage(1200, 40, cache_read=300), "Writing it.", (
            scripted.ToolCall("Execute", {
                "command": "echo hello > a.txt", "riskLevel": "low",
                "riskLevelReason": "writes one file",
            }, "call_1"),
        )),
        scripted.Reply(scripted.Usage(1300, 30, cache_read=1200), "", (
            scripted.ToolCall("Read", {"file_path": str(work / "a.txt")}, "call_2"),
        )),
        scripted.Reply(scripted.Usage(1400, 20, cache_read=1300), "Done: a.txt says hello."),
    ]  # fmt: skip


def droid_cli() -> Path:
    """The real CLI at DROID_CLI, installed once from npm (tests/agents_cli/install.py)."""
    try:
        return install.install("droid", DROID_CLI)
    except install.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def test_real_droid_cli_session_is_shipped_as_scripted(tmp_path: Path) -> None:
    """One turn: a second one (`droid exec -s <session>`) needs Factory's cloud sync
    (CloudSyncService: "Unable to connect") and cannot run offline."""
    binary = droid_cli()
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir(parents=True)
    (home / ".factory").mkdir(parents=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        # anything but the local model server fails instead of leaving the machine
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    replies = script(work)
    with scripted.running(replies, "gpt-4.1") as server:
        custom = {  # Droid's bring-your-own-key model, pointed at the scripted server
            "model": "gpt-4.1",
            "displayName": "Scripted",
            "baseUrl": f"{server.url}/v1",
            "apiKey": "sk-test",
            "provider": "generic-chat-completion-api",
            "maxOutputTokens": 4096,
        }
        (home / ".factory" / "settings.json").write_text(json.dumps({"customModels": [custom]}))
        run = subprocess.run(
            [str(binary), "exec", "--auto", "high", "-m", "custom:Scripted-0", PROMPT],
            cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert run.returncode == 0, (run.stdout[-500:], run.stderr[-1000:])
        assert server.answered == 3 and server.overruns == 0
    assert (work / "a.txt").read_text() == "hello\n"  # the CLI really ran the command
    (transcript,) = (home / ".factory" / "sessions").glob("*/*.jsonl")
    # written a moment ago: the turn must close on Droid's own agent_turn_outcome, not on quiet
    state = tmp_path / "state"
    result = run_tailerd(
        "--watch", home / ".factory" / "sessions", "--once", "--state-dir", state,
        "--data-dir", state,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT operation, attributes FROM spans").fetchall()
    attrs = [(op, json.loads(a)) for op, a in rows]
    chats = [a for op, a in attrs if op == "chat"]
    tools = [a for op, a in attrs if op == "execute_tool"]
    assert (len(rows), len(chats), len(tools)) == (1 + 3 + 2, 3, 2)
    assert sum(int(a.get("gen_ai.usage.input_tokens", 0)) for a in chats) == sum(
        r.usage.prompt for r in replies
    )
    assert sum(int(a.get("gen_ai.usage.output_tokens", 0)) for a in chats) == sum(
        r.usage.output for r in replies
    )
    assert sorted(a["gen_ai.tool.name"] for a in tools) == ["Execute", "Read"]
    (turn,) = parse(transcript)  # the notice and the system-reminder context start no turn
    assert turn.messages[0].content == PROMPT
    assert turn.attributes["droid.turn_outcome"] == "completed" and not turn.interrupted
    assert turn.attributes["tailerd.cwd"] == str(work)
