"""Where tailerd looks for each agent with no --watch: defaults under $HOME, the agents' own
override variables (the expected paths are the agents' documented layouts, written out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailerd import agent_homes
from tailerd.formats import BY_NAME

HOME = Path("/home/dev")


def _paths(env: dict[str, str], agents: list[str] | None = None) -> set[Path]:
    return {r.path for r in agent_homes.roots(agents, env, HOME)}


def test_defaults_are_each_agents_documented_home() -> None:
    assert _paths({}) == {
        HOME / ".claude/projects",
        HOME / ".config/claude/projects",
        HOME / ".codex/sessions",
        HOME / ".codex/archived_sessions",
        HOME / ".gemini/tmp",
        HOME / ".copilot/session-state",
        HOME / ".qwen/projects",
        HOME / ".pi/agent/sessions",
        HOME / ".local/share/opencode",
        HOME / ".cursor/projects",
        HOME / ".factory/sessions",
        HOME / ".openhands/conversations",
        HOME / ".cline/data/sessions",
        HOME / ".local/share/amp/threads",
        HOME / ".local/share/goose/sessions",
    }


@pytest.mark.parametrize(
    ("agent", "env", "expected"),
    [
        ("claude-code", {"CLAUDE_CONFIG_DIR": "/w/claude"}, {"/w/claude/projects"}),
        ("codex", {"CODEX_HOME": "/w/codex"}, {"/w/codex/sessions", "/w/codex/archived_sessions"}),
        ("gemini", {"GEMINI_CLI_HOME": "/w/g"}, {"/w/g/.gemini/tmp"}),  # a home, not ~/.gemini
        ("copilot-cli", {"COPILOT_HOME": "/w/cp"}, {"/w/cp/session-state"}),
        ("qwen-code", {"QWEN_HOME": "/w/q"}, {"/w/q/projects"}),
        ("qwen-code", {"QWEN_HOME": "/w/q", "QWEN_RUNTIME_DIR": "/r"}, {"/r/projects"}),
        ("pi", {"PI_CODING_AGENT_DIR": "~/pi"}, {"/home/dev/pi/sessions"}),
        ("pi", {"PI_CODING_AGENT_SESSION_DIR": "/s", "PI_CODING_AGENT_DIR": "/x"}, {"/s"}),
        ("opencode", {"XDG_DATA_HOME": "/d"}, {"/d/opencode"}),
        ("openhands", {"OPENHANDS_PERSISTENCE_DIR": "/oh"}, {"/oh/conversations"}),
        ("cline", {"CLINE_DIR": "/c"}, {"/c/data/sessions"}),
        ("cline", {"CLINE_DATA_DIR": "/cd", "CLINE_DIR": "/c"}, {"/cd/sessions"}),
        ("amp", {"XDG_DATA_HOME": "/d"}, {"/d/amp/threads"}),
        ("goose", {"XDG_DATA_HOME": "/d"}, {"/d/goose/sessions"}),
        ("goose", {"GOOSE_PATH_ROOT": "/g", "XDG_DATA_HOME": "/d"}, {"/g/data/sessions"}),
    ],
)
def test_an_agents_own_override_variable_moves_its_home(
    agent: str, env: dict[str, str], expected: set[str]
) -> None:
    assert _paths(env, [agent]) == {Path(p) for p in expected}


def test_a_blank_override_is_ignored() -> None:
    assert _paths({"CODEX_HOME": "  "}, ["codex"]) == {
        HOME / ".codex/sessions",
        HOME / ".codex/archived_sessions",
    }


def test_present_keeps_only_existing_directories(tmp_path: Path) -> None:
    (tmp_path / ".codex" / "sessions").mkdir(parents=True)
    found = agent_homes.present(agent_homes.roots(None, {}, tmp_path))
    assert [(r.agent, r.path) for r in found] == [("codex", tmp_path / ".codex/sessions")]


def test_agents_list_is_checked() -> None:
    assert agent_homes.parse_agents("claude-code, codex") == ["claude-code", "codex"]
    with pytest.raises(ValueError, match="unknown agent 'claud'"):
        agent_homes.parse_agents("claud")


def test_every_home_names_a_registered_format() -> None:
    missing = {f for h in agent_homes.AGENT_HOMES for f in h.formats if f not in BY_NAME}
    assert not missing
