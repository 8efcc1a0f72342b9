"""Honest ends (issue 8 kind 7): turns still open are reported, with their file and what would
close them, at the end of `--once`, in `tailerd status`, and by `preview` and `import`.

Expected offsets are found in the files by the tests themselves (the byte where the open turn's
first line starts), never taken from tailerd's output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tailerd.domain import Line
from tailerd.formats import gemini, native
from tailerd.formats.base import Source
from tailerd.pipeline import FilePipeline
from tailerd.settings import Settings
from tailerd.status import close_rule, open_turns
from tests.conftest import ROOT, run_tailerd

CLAUDE_A = (
    ROOT.parent / "shared/cases/claude-resume-copies-history/input/.claude/projects"
    / "-home-dev-calc/adc10fa5-0000-4000-8000-00000000000a.jsonl"
)  # fmt: skip


def line_offset(path: Path, needle: bytes) -> int:
    """Byte offset of the first line containing `needle` (counted over the raw bytes)."""
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        if needle in line:
            return offset
        offset += len(line)
    raise AssertionError(f"{needle!r} not in {path}")


def test_once_names_the_open_turn_its_file_and_its_close_rule(logs, tmp_path):
    # examples/logs: research-agent's t3 has a turn_start and no turn_end (test_once's count);
    # the files were just copied, so it is 600 s from native's idle close.
    state = tmp_path / "state"
    session = logs / "research-agent" / "session-r1.jsonl"
    t3 = line_offset(session, b'"type":"turn_start","session_id":"ra-0001","turn_id":"t3"')
    result = run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    assert "0 unacknowledged, 1 turns still open in 1 files" in result.stderr
    assert (
        f"open: {session}: 1 open turn from byte {t3}, waiting for turn_end, session_end or"
        " 600 s of quiet"
    ) in result.stderr
    status = json.loads(run_tailerd("status", "--json", "--state-dir", state).stdout)
    (entry,) = [f for f in status["files"] if f["path"] == str(session)]
    assert entry["open_turns"] == [
        {"from": t3, "closes_on": "turn_end, session_end or 600 s of quiet"}
    ]
    assert entry["open_since"] is not None and entry["quiet_since"] is not None
    text = run_tailerd("status", "--state-dir", state).stdout
    assert f"turn open from byte {t3} since " in text
    assert "(not sent yet), waiting for turn_end, session_end or 600 s of quiet" in text


def test_once_lists_at_most_ten_files_then_how_many_more(tmp_path):
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    for i in range(12):  # 12 files, each with one started turn and no end
        start = {"type": "turn_start", "session_id": f"s{i}", "turn_id": "t1",
                 "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        (logs / f"f{i:02d}.jsonl").write_text(json.dumps(start) + "\n")
    result = run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", state)
    assert result.returncode == 0, result.stderr
    assert "12 turns still open in 12 files" in result.stderr
    listed = [line for line in result.stderr.splitlines() if "INFO open: " in line]
    assert len(listed) == 11
    assert listed[-1].endswith("and 2 more files with open turns")
    assert all(": 1 open turn from byte 0, waiting for turn_end" in x for x in listed[:10])


def test_claude_falls_back_to_pending_from_and_its_idle_close(tmp_path):
    # The case's file A: one prompt and one answer, no turn_duration: a fresh copy is open,
    # closed by Claude Code's rules (30 s of quiet by default), from byte 0.
    logs, state = tmp_path / "logs" / "-home-dev-calc", tmp_path / "state"
    logs.mkdir(parents=True)
    copy = logs / CLAUDE_A.name
    shutil.copyfile(CLAUDE_A, copy)
    dirs = ("--state-dir", state, "--data-dir", state)
    result = run_tailerd("--watch", logs.parent, "--once", *dirs)
    assert result.returncode == 0, result.stderr
    assert f"open: {copy}: 1 open turn from byte 0, waiting for turn_duration" in result.stderr
    assert "else 30 s of quiet with no tool call waiting (21600 s with one)" in result.stderr


def test_preview_and_import_report_open_turns(logs, tmp_path):
    session = logs / "research-agent" / "session-r1.jsonl"
    t3 = line_offset(session, b'"turn_id":"t3"')
    preview = run_tailerd("preview", logs, "--state-dir", tmp_path / "s")
    assert preview.returncode == 0, preview.stderr
    assert "1 turns still open in 1 files (not shown: not finished yet)" in preview.stderr
    assert f"open: {session}: 1 open turn from byte {t3}" in preview.stderr
    dirs = ("--state-dir", tmp_path / "s", "--data-dir", tmp_path / "s")
    imported = run_tailerd("import", logs, *dirs)
    assert imported.returncode == 0, imported.stderr
    assert "1 turns still open in 1 files (not imported: not finished yet)" in imported.stderr


def test_close_rules_say_the_configured_settings():
    settings = Settings(format_options={"codex": {"abandon_close": 7200, "idle_close": 5}})
    rule = close_rule("codex", settings)
    assert rule.startswith("task_complete or turn_aborted; else 7200 s of quiet (abandon_close)")
    assert "the next prompt or 5 s of quiet" in rule
    assert "21600 s" in close_rule("codex", Settings())  # the default: 6 hours


def feed(parser: object, lines: list[bytes]) -> None:
    offset = 0
    for data in lines:
        parser.feed(Line(offset, offset + len(data), data))  # type: ignore[attr-defined]
        offset += len(data)


def test_native_parser_lists_each_open_turn_oldest_first():
    a = b'{"type":"turn_start","session_id":"s1","turn_id":"a"}\n'  # bytes 0..53
    b = b'{"type":"turn_start","session_id":"s2","turn_id":"b"}\n'
    parser = native.FORMAT.new_parser(Source("/x.jsonl", options={"idle_close": 90}), None)
    feed(parser, [a, b])
    rule = "turn_end, session_end or 90 s of quiet"
    assert parser.open_turns() == [(0, rule), (len(a), rule)]  # type: ignore[attr-defined]


def test_gemini_parser_and_document_open_turns(tmp_path):
    meta = b'{"sessionId":"s","projectHash":"p"}\n'
    user = b'{"id":"u1","type":"user","content":"hi"}\n'
    parser = gemini.FORMAT.new_parser(Source("/chats/session-1.jsonl"), None)
    feed(parser, [meta, user])
    assert parser.open_turns() == [  # type: ignore[attr-defined]
        (len(meta), "the next user message or 30 s of quiet")
    ]
    doc = tmp_path / "chats" / "session-1.json"
    doc.parent.mkdir()
    doc.write_text('{"sessionId":"s","projectHash":"p","messages":[]}')
    pipe = FilePipeline.at(doc, Settings())
    assert pipe.choose(doc.read_bytes(), (), whole=True)
    assert open_turns(pipe, Settings()) == [
        (0, "the last turn of the rewritten document, if unfinished: 30 s of quiet")
    ]
