"""Where each supported agent keeps its transcripts, honouring the agent's own override variables.

`tailerd` with no `--watch` watches every root `roots()` returns: the homes that exist now, and
the ones that do not exist yet (waited for, so an agent installed later is picked up). Each
agent's override variable is the one the agent itself reads (cited per entry), so a user who
moved an agent's home does not have to tell tailerd twice.

Pure: `roots(env, home)` only builds paths; `present(...)` stats them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailerd.settings import Settings


@dataclass(frozen=True, slots=True)
class AgentHome:
    """One agent's transcript directories.

    `env`: (variable, sub-path under it) pairs, tried in order; the first one set wins.
    `default`: the sub-path under the user's home used when no variable is set.
    `formats`: the tailerd format names that read these files.
    """

    agent: str
    display: str
    formats: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    default: tuple[str, ...]
    source: str  # where the agent reads the variable: the citation for the rule above


AGENT_HOMES: tuple[AgentHome, ...] = (
    AgentHome(
        "claude-code", "Claude Code", ("claude-code",),
        env=(("CLAUDE_CONFIG_DIR", "projects"),),
        default=(".claude/projects", ".config/claude/projects"),
        source="Claude Code docs, settings: CLAUDE_CONFIG_DIR moves ~/.claude (ccusage "
        "src/data-loader.ts getClaudePaths also reads ~/.config/claude)",
    ),
    AgentHome(
        "codex", "Codex CLI", ("codex",),
        env=(("CODEX_HOME", "sessions"), ("CODEX_HOME", "archived_sessions")),
        default=(".codex/sessions", ".codex/archived_sessions"),
        source="openai/codex codex-rs/utils/home-dir/src/lib.rs find_codex_home(): $CODEX_HOME",
    ),
    AgentHome(
        "gemini", "Gemini CLI", ("gemini",),
        env=(("GEMINI_CLI_HOME", ".gemini/tmp"),),
        default=(".gemini/tmp",),
        source="google-gemini/gemini-cli packages/core/src/utils/paths.ts homedir(): "
        "$GEMINI_CLI_HOME replaces the home directory",
    ),
    AgentHome(
        "copilot-cli", "GitHub Copilot CLI", ("copilot-cli",),
        env=(("COPILOT_HOME", "session-state"),),
        default=(".copilot/session-state",),
        source="GitHub Copilot CLI docs, configuration directory: COPILOT_HOME replaces "
        "~/.copilot (`--config-dir` deprecated in its favour)",
    ),
    AgentHome(
        "qwen-code", "Qwen Code", ("qwen-code",),
        env=(("QWEN_RUNTIME_DIR", "projects"), ("QWEN_HOME", "projects")),
        default=(".qwen/projects",),
        source="QwenLM/qwen-code packages/core/src/config/storage.ts getGlobalQwenDir(): "
        "$QWEN_HOME replaces ~/.qwen; $QWEN_RUNTIME_DIR the runtime base (projects/chats)",
    ),
    AgentHome(
        "pi", "pi", ("pi",),
        env=(("PI_CODING_AGENT_SESSION_DIR", ""), ("PI_CODING_AGENT_DIR", "sessions")),
        default=(".pi/agent/sessions",),
        source="badlogic/pi-mono packages/coding-agent/src/config.ts getAgentDir(): "
        "$PI_CODING_AGENT_DIR (default ~/.pi/agent), sessions under it",
    ),
    AgentHome(
        "opencode", "OpenCode", ("opencode", "opencode-storage"),
        env=(("XDG_DATA_HOME", "opencode"),),
        default=(".local/share/opencode",),
        source="sst/opencode packages/opencode/src/global/index.ts: xdg-basedir data "
        "directory + /opencode (opencode.db; before 1.2 the JSON tree storage/, under the "
        "same root)",
    ),
    AgentHome(
        "cursor", "Cursor CLI", ("cursor",),
        env=(("CURSOR_CONFIG_DIR", "projects"),),
        default=(".cursor/projects",),
        source="Cursor CLI docs (cursor.com/docs/cli/reference): CURSOR_CONFIG_DIR relocates "
        "~/.cursor",
    ),
    AgentHome(
        "droid", "Factory Droid", ("droid",),
        env=(),
        default=(".factory/sessions",),
        source="Factory Droid writes ~/.factory/sessions/<cwd-slug>/ (no override found)",
    ),
    AgentHome(
        "openhands", "OpenHands", ("openhands",),
        env=(("OPENHANDS_CONVERSATIONS_DIR", ""), ("OPENHANDS_PERSISTENCE_DIR", "conversations")),
        default=(".openhands/conversations",),
        source="OpenHands CLI README: OPENHANDS_PERSISTENCE_DIR (default ~/.openhands), "
        "OPENHANDS_CONVERSATIONS_DIR",
    ),
    AgentHome(
        "cline", "Cline", ("cline",),
        env=(("CLINE_DATA_DIR", "sessions"), ("CLINE_DIR", "data/sessions")),
        default=(".cline/data/sessions",),
        source="cline/cline CLI: CLINE_DIR (default ~/.cline), CLINE_DATA_DIR (default "
        "$CLINE_DIR/data)",
    ),
    AgentHome(
        "amp", "Amp", ("amp",),
        env=(("XDG_DATA_HOME", "amp/threads"),),
        default=(".local/share/amp/threads",),
        source="@sourcegraph/amp 0.0.1771243550-geaf318 dist/main.js: threads under "
        "($XDG_DATA_HOME or ~/.local/share)/amp/threads (AMP_HOME moves only the install, "
        "~/.amp)",
    ),
    AgentHome(
        "goose", "goose", ("goose",),
        env=(("GOOSE_PATH_ROOT", "data/sessions"), ("XDG_DATA_HOME", "goose/sessions")),
        default=(".local/share/goose/sessions",),
        source="block/goose crates/goose/src/config/paths.rs Paths::data_dir(): "
        "$GOOSE_PATH_ROOT/data, else etcetera's XDG data dir + /goose; "
        "session/session_manager.rs: <data dir>/sessions/sessions.db",
    ),
)  # fmt: skip

BY_AGENT: dict[str, AgentHome] = {h.agent: h for h in AGENT_HOMES}


@dataclass(frozen=True, slots=True)
class Root:
    agent: str
    path: Path
    why: str  # "CODEX_HOME" or "default": how the path was found


def _expand(value: str, home: Path) -> Path:
    if value == "~" or value.startswith("~/"):
        return home / value[2:]
    return Path(value)


def roots_of(entry: AgentHome, env: Mapping[str, str], home: Path) -> list[Root]:
    """The directories of one agent: from its override variable(s) when one is set (every
    sub-path of that variable), else the defaults under `home`."""
    chosen = next((var for var, _ in entry.env if env.get(var, "").strip()), None)
    if chosen is not None:
        base = _expand(env[chosen].strip(), home)
        subs = [sub for var, sub in entry.env if var == chosen]
        return [Root(entry.agent, base / sub if sub else base, chosen) for sub in subs]
    return [Root(entry.agent, home / rel, "default") for rel in entry.default]


def roots(
    agents: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> list[Root]:
    """Every supported agent's transcript directories (or only `agents`'), whether they exist
    yet or not. Raises KeyError naming an unknown agent."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    entries = AGENT_HOMES if agents is None else [BY_AGENT[a] for a in agents]
    found: list[Root] = []
    seen: set[Path] = set()
    for entry in entries:
        for root in roots_of(entry, env, home):
            if root.path not in seen:
                seen.add(root.path)
                found.append(root)
    return found


def present(candidates: Iterable[Root]) -> list[Root]:
    """Those of `candidates` that are directories now."""
    return [r for r in candidates if r.path.is_dir()]


def parse_agents(value: str) -> list[str]:
    """`--agents claude-code,codex` -> ["claude-code", "codex"]; ValueError names an unknown one
    and lists the known ones."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_AGENT]
    if unknown or not names:
        known = ", ".join(BY_AGENT)
        raise ValueError(f"unknown agent {unknown[0]!r} (known: {known})" if unknown else known)
    return names


def home_paths(env: Mapping[str, str] | None = None, home: Path | None = None) -> frozenset[Path]:
    """Every agent's transcript directories: roots a missing one of which is no warning."""
    return frozenset(r.path for r in roots(None, env, home))


def with_agent_homes(settings: Settings) -> Settings:
    """Zero configuration: with no watch roots, every supported agent's home (`agents` narrows
    them), whether it exists yet or not; settings that name roots are returned as they are."""
    if settings.watch:
        return settings
    found = roots(settings.agents or None)
    return settings.model_copy(update={"watch": tuple(r.path for r in found)})
