"""External oracle: tailerd's token totals over the shared fixtures equal ccusage 20's.

ccusage is installed pinned from npm (`ccusage@20.0.24` with its Linux binary
`@ccusage/ccusage-linux-x64@20.0.24`; the newest release has no Linux binary in the registry)
by the benchmark's installer (bench/ccusage.py, into bench/.cache/npm, gitignored), and run
`--offline` with HOME set to an empty directory so that it sees only the corpus named by
CLAUDE_CONFIG_DIR / CODEX_HOME. Without npm the test is skipped, except in CI, where it fails.
tailerd runs `--once` into its local store over the same files; its totals are the
`gen_ai.usage.*` attributes of the stored chat spans.

Claude Code: equal exactly. Until issue 8 tailerd was 524 output / 306,726 input tokens short
on one copy of the fixtures (hand-traced): 509 / 23,560 in 16 Warmup sidechains, 8 / 173,514 in
the compaction summariser `agent-acompact-e1f845.jsonl`, and 7 / 109,652 in five sub-agent
calls of `marot-spotter/subagent.jsonl` that exist only inside its `agent_progress` records
(the sub-agent's transcript is not in the fixtures; their message ids appear in no other file).
ccusage's `daily` report counts those five calls; its `session` report does not (it shows
454,704 / 1,586 for that file, `daily` 564,356 / 1,593): they are billed, so `daily` is right
and is the oracle here.

Codex: equal except for one documented difference, asserted exactly: the fixture
`Mai0313-VibeCodingTracker/codex_session_rate_limits.synthetic.jsonl` is a hand-made file of
bare `token_count` events with no `session_meta` (its second total is 200 input tokens, no
output); no tailerd format claims it, ccusage counts it. The unfinished rollout
(`…T13-19-38-…`) has a turn with no `task_complete`; it is closed by `abandon_close`, set here
to one hour (the files are aged two hours), so that its tokens are counted.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bench import ccusage as pinned_ccusage
from tests.conftest import run_tailerd

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "agents"
# the Codex fixture no tailerd format claims (see the module docstring): input, output
CODEX_UNCLAIMED = (200, 0)


def ccusage() -> Path:
    """The pinned ccusage launcher (installed once, shared with the benchmark); without npm
    the test is skipped, except in CI, which must provide it."""
    if shutil.which("npm") is None and os.environ.get("CI"):
        pytest.fail("npm not found: CI must provide it for the ccusage oracle")
    try:
        return pinned_ccusage.install()
    except pinned_ccusage.Unavailable as exc:
        if shutil.which("npm") is None:
            pytest.skip(f"the ccusage oracle needs npm: {exc}")
        pytest.fail(str(exc))


def run_ccusage(tmp_path: Path, *args: str, **env: str) -> dict[str, Any]:
    home = tmp_path / "empty-home"
    home.mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "CODEX_"))}
    environ.update(HOME=str(home), NO_COLOR="1", **env)
    done = subprocess.run(
        [str(ccusage()), *args, "--json", "--offline"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def age(root: Path) -> None:
    old = time.time() - 2 * 3600
    for path in root.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)
            os.utime(path, (old, old))


def claude_layout(root: Path) -> Path:
    """Every shared Claude Code fixture under `root/projects/<project>/` (as ccusage expects;
    a fixture group that holds a project directory becomes `<group><project>`)."""
    base = FIXTURES / "claude-code"
    for path in sorted(base.rglob("*.jsonl")):
        group, *rest = path.relative_to(base).parts
        if len(rest) > 1 and rest[0].startswith("-"):
            group, rest = group + rest[0], rest[1:]
        dest = root / "projects" / group / Path(*rest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        meta = path.with_suffix(".meta.json")
        if meta.exists():
            shutil.copyfile(meta, dest.with_suffix(".meta.json"))
    age(root)
    return root / "projects"


def codex_layout(root: Path) -> Path:
    """Every shared Codex fixture flat under `root/sessions/` (CODEX_HOME)."""
    base = FIXTURES / "codex"
    sessions = root / "sessions"
    sessions.mkdir(parents=True)
    for path in sorted(base.rglob("*.jsonl")):
        shutil.copyfile(path, sessions / "_".join(path.relative_to(base).parts))
    age(root)
    return sessions


def tailerd_tokens(watch: Path, state: Path, *extra: str | Path) -> tuple[int, int]:
    """(input incl. cache, output) summed over the chat spans `tailerd --once` stored."""
    result = run_tailerd(
        "--watch", watch, "--once", "--state-dir", state, "--data-dir", state, *extra, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "0 unacknowledged" in result.stderr
    with sqlite3.connect(state / "tailerd.db") as db:
        rows = db.execute("SELECT attributes FROM spans WHERE operation = 'chat'").fetchall()
    attrs = [json.loads(a) for (a,) in rows]
    return (
        sum(a.get("gen_ai.usage.input_tokens", 0) for a in attrs),
        sum(a.get("gen_ai.usage.output_tokens", 0) for a in attrs),
    )


def test_claude_code_totals_equal_ccusage(tmp_path: Path) -> None:
    projects = claude_layout(tmp_path / "claude")
    totals = run_ccusage(tmp_path, "claude", "daily", CLAUDE_CONFIG_DIR=str(tmp_path / "claude"))[
        "totals"
    ]
    theirs = (
        totals["inputTokens"] + totals["cacheReadTokens"] + totals["cacheCreationTokens"],
        totals["outputTokens"],
    )
    assert theirs[1] > 30_000  # the corpus was found (about 36.8k output tokens)
    assert tailerd_tokens(projects, tmp_path / "state") == theirs


def test_codex_totals_equal_ccusage(tmp_path: Path) -> None:
    sessions = codex_layout(tmp_path / "codex")
    totals = run_ccusage(tmp_path, "codex", "daily", CODEX_HOME=str(tmp_path / "codex"))["totals"]
    # ccusage codex: inputTokens excludes the cached part, cacheReadTokens is that part
    theirs = (totals["inputTokens"] + totals["cacheReadTokens"], totals["outputTokens"])
    assert theirs[1] > 100_000  # the corpus was found (about 198k output tokens)
    config = tmp_path / "codex.toml"
    config.write_text("[format_options.codex]\nabandon_close = 3600.0\n")
    ours = tailerd_tokens(sessions, tmp_path / "state", "--config", config)
    assert (ours[0] + CODEX_UNCLAIMED[0], ours[1] + CODEX_UNCLAIMED[1]) == theirs
