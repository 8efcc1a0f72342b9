"""Cursor CLI transcripts, against the real sample in ../shared/fixtures/agents/cursor/.

Hand counts over the fixture (cursor-session-simple.jsonl, 11 lines):
  `jq -r .role F | sort | uniq -c`  -> 1 user, 10 assistant
  `jq -r '.message.content[]|select(.type=="tool_use")|.name' F | sort | uniq -c`
      -> Grep 1, Read 3, WebFetch 1, WebSearch 4, Write 1 (10 tool calls)
So: 1 turn, 10 chat spans (one per assistant line), 10 tool spans, no tokens anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path, PurePath

from tailerd import formats
from tailerd.core.framing import LineFramer
from tailerd.domain import Line, LLMCall, ToolCall, Turn
from tailerd.formats.base import Source
from tailerd.formats.cursor import FORMAT
from tests.conftest import FIXTURES, run_tailerd
from tests.formats.test_wrong_types import Sample, check_wrong_types, once_into_store

FIXTURE = FIXTURES / "cursor" / "git-ai-project-git-ai" / "tests" / "fixtures"
SAMPLE = FIXTURE / "cursor-session-simple.jsonl"
SESSION = "6f1c6a52-2d1e-4d2c-9a57-0b1f3f0c2a11"  # a uuid of our choosing for the copy
PROJECT = "Users-aidancunniffe-Desktop-testing-gitflows-git-ai"


def cursor_home(root: Path) -> Path:
    """The fixture copied where Cursor writes it: ~/.cursor/projects/<slug>/agent-transcripts/."""
    dest = root / ".cursor" / "projects" / PROJECT / "agent-transcripts" / SESSION
    dest.mkdir(parents=True)
    path = dest / f"{SESSION}.jsonl"
    shutil.copyfile(SAMPLE, path)
    return path


def parse(path: Path, data: bytes | None = None, quiet: float = 1e9) -> list[Turn]:
    parser = FORMAT.new_parser(Source(str(path)), None)
    out: list[Turn] = []
    for item in LineFramer().feed(path.read_bytes() if data is None else data):
        assert isinstance(item, Line)
        out.extend(t for t in parser.feed(item) if isinstance(t, Turn))
    out.extend(parser.close_idle(quiet))
    return out


def test_real_transcript_by_hand(tmp_path: Path) -> None:
    path = cursor_home(tmp_path)
    (turn,) = parse(path)
    chats = [s for s in turn.spans if isinstance(s, LLMCall)]
    tools = [s for s in turn.spans if isinstance(s, ToolCall)]
    assert len(chats) == 10
    assert sorted(t.name for t in tools) == sorted(
        ["Grep", *["Read"] * 3, "WebFetch", *["WebSearch"] * 4, "Write"]
    )
    # the prompt without its <user_query> wrapper (line 1 of the fixture, read by eye)
    assert turn.messages[0].content == "Generate a file with all the HBO shows from the 90's in it"
    assert turn.output_messages[0].content.startswith("Here\u2019s what I added.")
    assert turn.session_id == SESSION
    assert turn.start == 0 and turn.end == SAMPLE.stat().st_size
    # what Cursor does not record is said, not guessed
    assert turn.started_at is None and turn.ended_at is None
    assert turn.attributes["tailerd.timestamps.recorded"] is False
    assert turn.attributes["tailerd.usage.recorded"] is False
    assert turn.attributes["cursor.project"] == PROJECT
    assert all(c.attributes["tailerd.usage.recorded"] is False for c in chats)
    assert all(c.usage.input_tokens == 0 and c.usage.output_tokens == 0 for c in chats)
    assert all(t.attributes["tailerd.tool.result_recorded"] is False for t in tools)
    first_read = json.loads(tools[0].arguments)
    assert first_read["limit"] == 40  # line 2: Read {"path": .../pbs-shows-1990s.txt, "limit": 40}


def test_a_turn_waits_for_the_next_prompt_or_quiet(tmp_path: Path) -> None:
    path = cursor_home(tmp_path)
    assert parse(path, quiet=5.0) == []  # 5 s of quiet is not 30
    second = b'{"role":"user","message":{"content":[{"type":"text","text":"again"}]}}\n'
    data = path.read_bytes() + second
    turns = parse(path, data, quiet=0.0)
    assert len(turns) == 1  # the first closed by the second prompt; the second still open
    turns = parse(path, data)
    assert [t.messages[0].content for t in turns][1] == "again"
    assert turns[1].start == SAMPLE.stat().st_size
    assert len({t.key for t in turns}) == 2


def test_claims_only_cursor_transcripts(tmp_path: Path) -> None:
    path = cursor_home(tmp_path)
    head = path.read_bytes()[:4096]
    assert formats.choose(PurePath(path), head).name == "cursor"  # type: ignore[union-attr]
    assert not FORMAT.claims(PurePath("/x/projects/p/session.jsonl"), head)
    claude = b'{"type":"user","uuid":"u1","message":{"role":"user","content":"hi"}}\n'
    assert not FORMAT.claims(PurePath(path), claude)


def test_no_wrong_type_escapes(tmp_path: Path) -> None:
    sample = Sample("cursor", cursor_home(tmp_path))
    check_wrong_types(sample, 60, unguarded=FORMAT)  # and the format itself, unguarded


def test_once_ships_the_session_into_the_local_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cursor_home(home)
    old = 1_700_000_000  # well past the 30 s quiet that closes the last turn
    for p in home.rglob("*"):
        os.utime(p, (old, old))
    with sqlite3.connect(once_into_store(home / ".cursor", tmp_path)) as db:
        rows = db.execute("SELECT operation, session_id FROM spans").fetchall()
        times = db.execute("SELECT DISTINCT start_ns, end_ns FROM spans").fetchall()
        (root,) = db.execute("SELECT attributes FROM spans WHERE parent_span_id IS NULL")
    ops = sorted(op for op, _ in rows)
    assert ops.count("chat") == 10 and ops.count("execute_tool") == 10
    assert {sid for _, sid in rows} == {SESSION}
    assert len(rows) == 21  # the turn's root + 10 chat + 10 tool spans
    # Cursor records no time: every span is placed at the file's mtime (set above), said so.
    assert times == [(old * 10**9, old * 10**9)]
    attributes = json.loads(root[0])
    assert attributes["tailerd.timestamps.source"] == "file_mtime"
    assert attributes["tailerd.timestamps.recorded"] is False


def test_newer_lines_tool_results_and_turn_ended(tmp_path: Path) -> None:
    """Shapes of newer transcripts (no licensed sample: written here by hand after a reader's
    description): a `user` line of `tool_result` blocks is no prompt and fills the tool
    spans; `{"type": "turn_ended"}` finishes the turn at once; other markers are skipped."""
    path = cursor_home(tmp_path)
    lines = [
        {"role": "user", "message": {"content": [{"type": "text", "text": "list files"}]}},
        {"role": "assistant", "message": {"content": [
            {"type": "tool_use", "id": "t1", "name": "Shell", "input": {"command": "ls"}},
            {"type": "tool_use", "name": "Read", "input": {"path": "a"}},
        ]}},
        {"role": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "a\nb"},
            {"type": "tool_result", "content": [{"type": "text", "text": "A"}], "is_error": True},
        ]}},
        {"type": "some_future_marker"},
        {"role": "assistant", "message": {"content": [{"type": "text", "text": "two files"}]}},
        {"type": "turn_ended", "status": "completed"},
    ]  # fmt: skip
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    (turn,) = parse(path, data, quiet=0.0)  # closed by turn_ended, no quiet needed
    shell, read = [s for s in turn.spans if isinstance(s, ToolCall)]
    assert (shell.result, shell.is_error, read.result, read.is_error) == ("a\nb", False, "A", True)
    assert "tailerd.tool.result_recorded" not in shell.attributes
    assert len([s for s in turn.spans if isinstance(s, LLMCall)]) == 2
    assert turn.output_messages[0].content == "two files"
    assert turn.attributes["cursor.turn_status"] == "completed" and not turn.interrupted
    assert turn.end == len(data)


def test_preview_places_the_turn_at_the_files_mtime(tmp_path: Path) -> None:
    """`preview` (and `import`) read the file whole: the same time, from the file's stat."""
    path = cursor_home(tmp_path / "home")
    when = 1_750_000_000  # 2025-06-15, set below; Cursor wrote no time into the file
    os.utime(path, (when, when))
    shown = run_tailerd("preview", path, "--state-dir", tmp_path / "state")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(records) == 21  # as in the local store above
    assert {(r["start_ns"], r["end_ns"]) for r in records} == {(when * 10**9, when * 10**9)}
    (root,) = [r for r in records if r["parent_span_id"] is None]
    assert root["attributes"]["tailerd.timestamps.source"] == "file_mtime"
