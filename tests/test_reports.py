"""`tailerd sessions` and `show` on a real store filled by a real `--once` run.

Expected values are hand counts from the shipped example logs (examples/logs), not tailerd's
output. Session ra-0001 (examples/logs/research-agent/session-r1.jsonl), counted with
`grep -o '"usage":{[^}]*}' session-r1.jsonl`:
  LLM calls: 1200 in (of which 900 cache reads) / 80 out, sub-agent 3000 / 150, 1500 / 120,
  1700 / 9, 1800 / 40 -> input 9200 with cache, uncached 9200 - 900 = 8300, cache read 900,
  output 80 + 150 + 120 + 9 + 40 = 399; 3 turns (t3 has no turn_end: closed as interrupted after
  the native format's idle_close, 600 s, so the copy's mtimes are set an hour back).
Sessions' last span ends (ended_at of their last record): ra-0001 09:05:02, wb-7f3a 10:01:03
(its last llm span), wb-91c2 11:30:04, all on 2026-11-24.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_tailerd, tailerd_env


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(state dir, data dir) after `--once` over the example logs, each file quiet for 1 h."""
    root = tmp_path_factory.mktemp("reports")
    logs = root / "logs"
    shutil.copytree(EXAMPLES, logs)
    hour_ago = time.time() - 3600
    for path in logs.rglob("*.jsonl"):
        os.utime(path, (hour_ago, hour_ago))
    state, data = root / "state", root / "data"
    result = run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", data)
    assert result.returncode == 0, result.stderr
    return state, data


def _sessions(state: Path, *args: str) -> list[dict[str, object]]:
    # --state-dir alone: the data dir is the one the daemon recorded there
    result = run_tailerd("sessions", "--state-dir", state, "--json", *args)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_tokens_are_split_and_the_state_dir_alone_finds_the_store(
    store: tuple[Path, Path],
) -> None:
    state, _ = store
    rows = {r["session_id"]: r for r in _sessions(state)}
    assert set(rows) == {"ra-0001", "wb-7f3a", "wb-91c2"}
    ra = rows["ra-0001"]
    assert ra["turns"] == 3
    assert ra["title"] == "Survey of log shippers"  # its turn_start's session_name
    assert ra["models"] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert (ra["input_tokens"], ra["uncached_input_tokens"]) == (9200, 8300)
    assert (ra["cache_read_tokens"], ra["cache_write_tokens"], ra["output_tokens"]) == (900, 0, 399)
    assert ra["agent"] == "research-agent"
    assert (ra["first"], ra["last"]) == ("2026-11-24T09:00:00Z", "2026-11-24T09:05:02Z")


def test_filters_sort_and_limit(store: tuple[Path, Path]) -> None:
    state, _ = store

    def ids(*args: str) -> list[object]:
        return [r["session_id"] for r in _sessions(state, *args)]

    assert ids() == ["ra-0001", "wb-7f3a", "wb-91c2"]  # by last activity, newest last
    assert ids("--agent", "weather-bot") == ["wb-7f3a", "wb-91c2"]
    assert ids("--since", "2026-11-24T10:00") == ["wb-7f3a", "wb-91c2"]
    assert ids("--since", "2026-11-24T11:00:00Z") == ["wb-91c2"]
    assert ids("--since", "1h") == []  # the examples are from 2026-11-24
    assert ids("--since", "5000w") == ["ra-0001", "wb-7f3a", "wb-91c2"]  # ~96 years back
    assert ids("--sort", "turns", "--limit", "1") == ["ra-0001"]  # 3 turns vs 2 and 1
    assert ids("--limit", "1") == ["wb-91c2"]
    bad = run_tailerd("sessions", "--state-dir", state, "--since", "yesterday-ish")
    assert bad.returncode == 78 and "--since 'yesterday-ish'" in bad.stderr


def test_cost_is_summed_and_unpriced_calls_are_never_zero(tmp_path: Path) -> None:
    """A store with hand-written chat spans: $0.50 + $0.25 priced, one unpriced call."""
    from tailerd.sinks.local import connect

    db = connect(tmp_path / "tailerd.db")

    def span(span_id: str, parent: str | None, op: str, attrs: dict[str, object]) -> None:
        db.execute(
            "INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?,?)",
            (span_id, "t1", parent, op, op, "s1", "bot", 1, 2, json.dumps(attrs)),
        )

    span("root", None, "invoke_agent", {"tailerd.cwd": "/home/me/proj"})
    span("c1", "root", "chat", {"gen_ai.usage.cost": 0.5, "gen_ai.usage.input_tokens": 10})
    span("c2", "root", "chat", {"gen_ai.usage.cost": 0.25})
    span("c3", "root", "chat", {"tailerd.cost.unpriced": True, "gen_ai.request.model": "x"})
    db.commit()
    db.close()
    result = run_tailerd("sessions", "--data-dir", tmp_path, "--state-dir", tmp_path, "--json")
    (row,) = json.loads(result.stdout)
    assert (row["cost_usd"], row["priced_calls"], row["unpriced_calls"]) == (0.75, 2, 1)
    assert row["project"] == "/home/me/proj"
    text = run_tailerd("sessions", "--data-dir", tmp_path, "--state-dir", tmp_path).stdout
    assert "$0.7500+" in text and "no known price" in text


def test_piped_output_is_plain_and_a_terminal_gets_a_table(store: tuple[Path, Path]) -> None:
    state, _ = store
    piped = run_tailerd("sessions", "--state-dir", state)
    header, *rows = piped.stdout.splitlines()
    assert header.split()[:4] == ["SESSION", "TITLE", "PROJECT", "AGENT"]
    assert "─" not in piped.stdout and "\x1b[" not in piped.stdout
    ra = next(r for r in rows if r.startswith("ra-0001"))
    assert " 8300 " in ra and " 900 " in ra and " 399 " in ra  # uncached in, cache read, out
    assert "Survey of log shippers" in ra

    wide = _on_a_terminal(state, 200)
    assert "─" in wide and "Survey of log shippers" in wide  # rich's table rule
    assert "claude-haiku-4-5, claude-sonnet-4-5" in wide and "11-24 09:00" in wide
    narrow = _on_a_terminal(state, 80)  # fewer columns, none cut
    assert max(len(line) for line in narrow.splitlines()) <= 80
    row = next(line for line in narrow.splitlines() if "ra-0001" in line)
    assert row.split()[-5:] == ["3", "8300", "399", "$0.0237", "11-24", "09:05"][-5:]


def _on_a_terminal(state: Path, columns: int) -> str:
    leader, follower = pty.openpty()
    cmd = [sys.executable, "-m", "tailerd", "sessions", "--state-dir", str(state)]
    env = tailerd_env(COLUMNS=str(columns), LINES="50")
    proc = subprocess.run(
        cmd, stdout=follower, stderr=subprocess.PIPE, env=env, timeout=60, check=False
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.returncode == 0, proc.stderr
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode())


def test_show_takes_a_unique_prefix_of_a_session_id(store: tuple[Path, Path]) -> None:
    state, _ = store
    shown = run_tailerd("show", "wb-7", "--state-dir", state)
    assert shown.returncode == 0 and shown.stdout.startswith("session: wb-7f3a "), shown.stderr
    several = run_tailerd("show", "wb", "--state-dir", state)
    assert several.returncode == 66 and "starts several sessions" in several.stderr
    none = run_tailerd("show", "wb_%", "--state-dir", state)  # LIKE's wildcards are literal
    assert none.returncode == 66 and "no session 'wb_%'" in none.stderr


def test_show_has_prompt_calls_full_arguments_capped_results_errors_and_totals(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    argument = {"path": "/srv/" + "a" * 300}  # a 300-character argument: never cut
    result = "r" * 2000  # capped at 600 characters with a marker
    turn = {
        "type": "turn",
        "session_id": "s1",
        "turn_id": "1",
        "agent_name": "bot",
        "messages": [{"role": "user", "content": "read it"}],
        "spans": [
            {"type": "llm", "model": "gpt-4o", "usage": {"input_tokens": 100, "output_tokens": 7}},
            {"type": "tool", "name": "read", "arguments": argument, "result": result},
            {"type": "tool", "name": "rm", "arguments": {}, "result": "denied", "is_error": True},
        ],
        "started_at": "2026-11-24T10:00:00Z",
        "ended_at": "2026-11-24T10:00:03Z",
    }
    (logs / "a.jsonl").write_text(json.dumps(turn) + "\n")
    state = tmp_path / "s"
    # Its own data dir (a test never writes the machine's default store); show finds it
    # from the state dir alone, where the daemon recorded it.
    data = tmp_path / "data"
    assert (
        run_tailerd("--watch", logs, "--once", "--state-dir", state, "--data-dir", data).returncode
        == 0
    )
    shown = run_tailerd("show", "s1", "--state-dir", state)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "user: read it" in text
    unwrapped = "".join(text.split())  # wrapping only adds newlines and indents
    assert "a" * 300 in unwrapped  # wrapped over lines, not cut
    assert "r" * 600 + "…[1,400morechars;--jsonshowsall]" in unwrapped
    assert "r" * 601 not in unwrapped
    assert "ERROR" in next(line for line in text.splitlines() if "tool: rm" in line)
    assert "1 LLM call, 2 tool calls (1 failed)" in text and "in 100" in text and "out 7" in text
    assert max(len(line) for line in text.splitlines()) <= 100  # piped: 100 columns
    as_json = json.loads(run_tailerd("show", "s1", "--state-dir", state, "--json").stdout)
    (root,) = as_json
    assert {"span_id", "trace_id", "name", "attributes", "children"} <= set(root)
    assert root["totals"]["tool_errors"] == 1 and root["totals"]["input_tokens"] == 100
    read = next(c for c in root["children"] if c["attributes"].get("gen_ai.tool.name") == "read")
    assert read["attributes"]["gen_ai.tool.call.result"] == result  # --json: never capped


def test_show_nests_sub_agents(store: tuple[Path, Path]) -> None:
    state, _ = store
    text = run_tailerd("show", "ra-0001", "--state-dir", state).stdout.splitlines()
    at = next(i for i, line in enumerate(text) if "sub-agent: doc-reader" in line)
    indent = len(text[at]) - len(text[at].lstrip())
    assert text[at + 2].startswith(" " * (indent + 2) + "llm: claude-haiku-4-5: in 3000")
    assert sum("turn total:" in line for line in text) == 3


def test_a_read_only_store_is_read(store: tuple[Path, Path]) -> None:
    """A copy of the store in a directory its reader may not write (as an unprivileged user:
    setpriv drops root): read as immutable, not "attempt to write a readonly database"."""
    _, data = store
    top = Path(tempfile.mkdtemp(prefix="tailerd-ro-"))  # /tmp: reachable by that user
    try:
        top.chmod(0o755)
        copy = top / "ro"
        copy.mkdir()
        shutil.copy(data / "tailerd.db", copy / "tailerd.db")
        (copy / "tailerd.db").chmod(0o444)
        copy.chmod(0o555)
        cmd = [sys.executable, "-m", "tailerd", "sessions", "--data-dir", str(copy), "--json"]
        cmd += ["--state-dir", str(copy)]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *cmd]
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=tailerd_env(), timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == 3
    finally:
        (top / "ro").chmod(0o755)
        shutil.rmtree(top)


def test_the_recorded_data_dir_is_written(store: tuple[Path, Path]) -> None:
    state, data = store
    assert (state / "data-dir").read_text().strip() == str(data)
    assert sqlite3.connect(data / "tailerd.db").execute("SELECT 1").fetchone() == (1,)


FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "agents"


def test_a_claude_code_session_splits_cache_reads_and_writes(tmp_path: Path) -> None:
    """marot-spotter/short.jsonl: one API response (msg_01MKH1cc…, 5 lines) whose usage is,
    by `jq -r 'select(.type=="assistant") | .message.usage' short.jsonl | sort -u`,
    input 3, cache read 11515, cache write 13835, output 13; every record's cwd is
    /home/marco/projects/spotter. IN TOK used to show 25,353 (with the cache): now 3."""
    source = FIXTURES / "claude-code" / "marot-spotter" / "short.jsonl"
    project = tmp_path / "home" / ".claude" / "projects" / "-home-marco-projects-spotter"
    project.mkdir(parents=True)
    copy = project / "55604662-cf2a-4331-851a-ec234028f8ca.jsonl"
    shutil.copyfile(source, copy)
    day_ago = time.time() - 86400
    os.utime(copy, (day_ago, day_ago))
    state = tmp_path / "s"
    where = ("--state-dir", state, "--data-dir", state)
    result = run_tailerd("--watch", project.parent, "--once", *where, "-q")
    assert result.returncode == 0, result.stderr
    (row,) = _sessions(state)
    assert row["agent"] == "claude-code" and row["project"] == "/home/marco/projects/spotter"
    assert (row["uncached_input_tokens"], row["cache_read_tokens"]) == (3, 11515)
    assert (row["cache_write_tokens"], row["output_tokens"]) == (13835, 13)
    assert row["input_tokens"] == 3 + 11515 + 13835  # Weave's convention, kept in --json
    assert row["models"] == ["claude-opus-4-6"]


def _costs(doc: object) -> list[float]:
    """Every float under a key naming a cost (cost_usd, gen_ai.usage.cost), at any depth."""
    if isinstance(doc, dict):
        found = [v for k, v in doc.items() if "cost" in k and isinstance(v, float)]
        return found + [c for v in doc.values() for c in _costs(v)]
    if isinstance(doc, list):
        return [c for v in doc for c in _costs(v)]
    return []


def test_costs_in_json_carry_no_float_noise(store: tuple[Path, Path]) -> None:
    """Fresh-user review: sessions said 0.023655000000000002 for wb-7f3a + wb-91c2's weather
    bot (gpt-4o 630*2.50 + 60*10 = 2,175 and so on per million: never more than 10 decimals
    in the published prices times whole tokens)."""
    state, data = store
    docs = [_sessions(state)]
    shown = run_tailerd("show", "ra-0001", "--state-dir", state, "--json")
    docs.append(json.loads(shown.stdout))
    for by in ("day", "session", "model"):
        used = run_tailerd("usage", "--data-dir", data, "--by", by, "--json")
        docs.append(json.loads(used.stdout))
    costs = [c for doc in docs for c in _costs(doc)]
    assert len(costs) > 10
    noisy = [c for c in costs if Decimal(repr(c)).as_tuple().exponent < -10]  # type: ignore[operator]
    assert noisy == []
