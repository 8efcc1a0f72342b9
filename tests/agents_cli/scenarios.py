"""One scripted scenario per agent CLI: prompts, the model's replies, and how to run the CLI.

Every scenario does the same work in a temporary HOME whose working directory holds
`notes.txt` ("alpha\\nbeta\\n"): turn 1 lists the directory (`ls`) and reads the file
(`cat notes.txt`) with the CLI's own shell tool, then (where the agent has sub-agents) starts a
sub-agent that runs `wc -l notes.txt` itself; turn 2 continues the same session (each CLI's
resume flag) with a plain answer. Every reply carries distinct token counts, so the oracle —
the script — names each LLM call tailerd must ship.

Network: each CLI gets only the scripted server's URL; the variables and settings that switch
off its telemetry, update checks and other nonessential traffic are set here and listed per
agent in `NO_TRAFFIC`. HTTP(S)_PROXY point at the scripted server itself (NO_PROXY=127.0.0.1):
a proxy-honouring client that still tries another host is refused there and the host recorded
(`Server.blocked`); strace (tests/agents_cli/harness.py) catches clients that ignore proxies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agents_cli.model_server import SIDE_TEXT, Reply, ToolCall, Usage

NOTES = "alpha\nbeta\n"
PROMPTS = ("Look around this directory and count the lines of notes.txt.", "Anything else?")

# what each agent is told so that it sends nothing but model requests (to the scripted server)
NO_TRAFFIC: dict[str, dict[str, str]] = {
    "claude-code": {
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    },
    "codex": {},  # config.toml: check_for_update_on_startup = false, analytics/feedback off
    "gemini": {"GEMINI_CLI_TRUST_WORKSPACE": "true"},  # settings.json: no updates, no stats
    "qwen": {"QWEN_CODE_SUPPRESS_YOLO_WARNING": "1"},  # settings.json: no updates/stats/memory
    "pi": {"PI_OFFLINE": "1", "PI_TELEMETRY": "0", "PI_SKIP_VERSION_CHECK": "1"},
    "opencode": {
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    },  # opencode.json: autoupdate false, share disabled
}


@dataclass(frozen=True)
class Scenario:
    """An agent CLI's script and how to drive it.

    `replies[i]` are the replies of turn i in request order (a sub-agent's requests come
    where the CLI makes them: the scenarios run sub-agents in the foreground).
    `subagent_tools` are tool names that start a sub-agent (tailerd ships them as
    `invoke_agent` spans, not as `execute_tool`); `subagent_sessions` counts sub-agents the
    format ships as sessions of their own (one more root span each). `refused`: hosts the CLI
    still tries through its proxy whatever it is told (refused there; any other host fails
    the test). `prepare(home, url)` writes the CLI's settings and returns its environment;
    `command(binary, turn, prompt)` is the argv of turn `turn`.
    """

    agent: str
    format: str
    model: str
    watch: str
    replies: tuple[tuple[Reply, ...], ...]
    prepare: Callable[[Path, str], dict[str, str]]
    command: Callable[[Path, int, str], list[str]]
    subagent_tools: frozenset[str] = frozenset()
    subagent_sessions: int = 0
    tailerd_config: str = ""
    side: Callable[[dict[str, Any]], str | None] | None = None
    side_text: str = SIDE_TEXT
    refused: frozenset[str] = frozenset()
    prompts: tuple[str, ...] = PROMPTS

    @property
    def all_replies(self) -> list[Reply]:
        return [r for turn in self.replies for r in turn]


def _base_env(home: Path, agent: str, url: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "NO_PROXY": "127.0.0.1,localhost",
        **NO_TRAFFIC[agent],
    }


SUBAGENT_GEMINI = {"agent_name": "generalist", "prompt": "Count the lines of notes.txt"}
# run_in_background false: the sub-agent runs before the parent's next request (the default is
# background, which makes the order of the two agents' requests a race)
SUBAGENT_QWEN = {
    "description": "Count lines",
    "prompt": "Count the lines of notes.txt",
    "subagent_type": "general-purpose",
    "run_in_background": False,
}


def _u(n: int, cached: int = 0, written: int = 0) -> Usage:
    """Distinct, recognisable usage: input 100n+1…, output 10n+3, the given cache parts."""
    return Usage(input=100 * n + 1, output=10 * n + 3, cache_read=cached, cache_write=written)


# ---- Claude Code -----------------------------------------------------------------------------


def _claude_prepare(home: Path, url: str) -> dict[str, str]:
    return {
        **_base_env(home, "claude-code", url),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "scripted",
    }


def _claude_command(binary: Path, turn: int, prompt: str) -> list[str]:
    # root may not use --dangerously-skip-permissions; allowing the two tools is enough
    resume = ["--continue"] if turn else []
    return [str(binary), "-p", *resume, prompt, "--allowedTools", "Bash", "Agent"]


CLAUDE = Scenario(
    agent="claude-code",
    format="claude-code",
    model="claude-opus-5-5",
    watch=".claude/projects",
    replies=(
        (
            Reply(
                _u(1, 1000, 200),
                "Listing first.",
                (ToolCall("Bash", {"command": "ls", "description": "List files"}, "toolu_s01"),),
            ),
            Reply(
                _u(2, 1100),
                "",
                (
                    ToolCall(
                        "Bash",
                        {"command": "cat notes.txt", "description": "Show notes"},
                        "toolu_s02",
                    ),
                ),
            ),
            Reply(
                _u(3, 1200),
                "",
                (
                    ToolCall(
                        "Agent",
                        {
                            "description": "Count lines",
                            "prompt": "Count the lines of notes.txt",
                            "subagent_type": "general-purpose",
                            "run_in_background": False,
                        },
                        "toolu_s03",
                    ),
                ),
            ),
            # the sub-agent's two requests
            Reply(
                _u(4, 0, 300),
                "",
                (
                    ToolCall(
                        "Bash",
                        {"command": "wc -l notes.txt", "description": "Count lines"},
                        "toolu_s04",
                    ),
                ),
            ),
            Reply(_u(5, 300), "notes.txt has 2 lines."),
            Reply(_u(6, 1300), "notes.txt and 2 lines in it."),
        ),
        (Reply(_u(7, 1400), "Nothing else."),),
    ),
    prepare=_claude_prepare,
    command=_claude_command,
    subagent_tools=frozenset({"Agent"}),
    # `claude -p` writes no turn_duration: the last turn ends after idle_close of quiet
    tailerd_config="[format_options.claude-code]\nidle_close = 2.0\n",
)


# ---- Codex -----------------------------------------------------------------------------------


def _codex_prepare(home: Path, url: str) -> dict[str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        'model = "gpt-5-codex"\n'
        'model_provider = "scripted"\n'
        "check_for_update_on_startup = false\n"
        "[analytics]\nenabled = false\n"
        "[feedback]\nenabled = false\n"
        # with these on, codex 0.169 tried github.com, api.github.com and chatgpt.com each run
        "[features]\nplugins = false\nremote_plugin = false\nplugin_sharing = false\n"
        "apps = false\nin_app_updates = false\ntool_suggest = false\n"
        "[model_providers.scripted]\n"
        'name = "scripted"\n'
        f'base_url = "{url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "SCRIPTED_API_KEY"\n'
    )
    return {**_base_env(home, "codex", url), "CODEX_HOME": str(codex_home), "SCRIPTED_API_KEY": "x"}


def _codex_command(binary: Path, turn: int, prompt: str) -> list[str]:
    flags = ["--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    if turn:
        return [str(binary), "exec", "resume", "--last", *flags, prompt]
    return [str(binary), "exec", *flags, prompt]


CODEX = Scenario(
    agent="codex",
    format="codex",
    model="gpt-5-codex",
    watch=".codex/sessions",
    replies=(
        (
            Reply(_u(1), "Listing first.", (ToolCall("exec_command", {"cmd": "ls"}, "call_s01"),)),
            Reply(
                _u(2, 512), "", (ToolCall("exec_command", {"cmd": "cat notes.txt"}, "call_s02"),)
            ),
            Reply(_u(3, 1024), "notes.txt has 2 lines."),
        ),
        (Reply(_u(4, 1536), "Nothing else."),),
    ),
    prepare=_codex_prepare,
    command=_codex_command,
)


# ---- Gemini CLI and Qwen Code (a Gemini CLI fork speaking OpenAI Chat Completions) ------------


def _gemini_settings(home: Path, folder: str, auth: str, extra: dict[str, Any]) -> None:
    settings = {
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "security": {"auth": {"selectedType": auth}},
        **extra,
    }
    (home / folder).mkdir(parents=True, exist_ok=True)
    (home / folder / "settings.json").write_text(json.dumps(settings))


def _gemini_prepare(home: Path, url: str) -> dict[str, str]:
    _gemini_settings(home, ".gemini", "gemini-api-key", {})
    return {**_base_env(home, "gemini", url), "GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": url}


def _gemini_command(binary: Path, turn: int, prompt: str) -> list[str]:
    resume = ["--resume", "latest"] if turn else []
    return [str(binary), *resume, "-p", prompt, "--yolo", "-m", "gemini-2.5-pro"]


GEMINI = Scenario(
    agent="gemini",
    format="gemini",
    model="gemini-2.5-pro",
    watch=".gemini/tmp",
    replies=(
        (
            Reply(
                _u(1),
                "Listing first.",
                (ToolCall("run_shell_command", {"command": "ls"}, "gem_s01"),),
            ),
            Reply(
                _u(2, 64),
                "",
                (ToolCall("run_shell_command", {"command": "cat notes.txt"}, "gem_s02"),),
            ),
            Reply(_u(3, 128), "", (ToolCall("invoke_agent", SUBAGENT_GEMINI, "gem_s03"),)),
            # the sub-agent "generalist": it must end with its complete_task tool
            Reply(
                _u(4),
                "",
                (ToolCall("run_shell_command", {"command": "wc -l notes.txt"}, "gem_s04"),),
            ),
            Reply(
                _u(5, 64),
                "",
                (ToolCall("complete_task", {"result": {"response": "2 lines."}}, "gem_s05"),),
            ),
            Reply(_u(6, 192), "notes.txt has 2 lines."),
        ),
        (Reply(_u(7, 256), "Nothing else."),),
    ),
    # Gemini CLI records a sub-agent in chats/<session>/<id>.jsonl ("kind": "subagent");
    # tailerd ships it as a session of its own (formats/gemini.py), its invoke_agent as a tool
    subagent_sessions=1,
    prepare=_gemini_prepare,
    command=_gemini_command,
    # a Gemini turn ends at the next prompt or after idle_close of quiet
    tailerd_config="[format_options.gemini]\nidle_close = 2.0\n",
)


def _qwen_prepare(home: Path, url: str) -> dict[str, str]:
    # memory.enableManagedAutoMemory: after each turn Qwen Code otherwise runs a billed
    # "memory extraction" sub-agent call that its chat transcript never records
    _gemini_settings(home, ".qwen", "openai", {"memory": {"enableManagedAutoMemory": False}})
    return {
        **_base_env(home, "qwen", url),
        "OPENAI_BASE_URL": f"{url}/v1",
        "OPENAI_API_KEY": "x",
        "OPENAI_MODEL": "qwen3-coder-plus",
    }


def _qwen_command(binary: Path, turn: int, prompt: str) -> list[str]:
    resume = ["--continue"] if turn else []
    return [str(binary), *resume, "-p", prompt, "--yolo"]


QWEN = Scenario(
    agent="qwen",
    format="qwen-code",
    model="qwen3-coder-plus",
    watch=".qwen/projects",
    replies=(
        (
            Reply(
                _u(1),
                "Listing first.",
                (ToolCall("run_shell_command", {"command": "ls"}, "call_q01"),),
            ),
            Reply(
                _u(2, 64),
                "",
                (ToolCall("run_shell_command", {"command": "cat notes.txt"}, "call_q02"),),
            ),
            Reply(_u(3, 128), "", (ToolCall("agent", SUBAGENT_QWEN, "call_q03"),)),
            # the sub-agent (subagents/<session>/agent-general-purpose-call_q03.jsonl)
            Reply(
                _u(4),
                "",
                (ToolCall("run_shell_command", {"command": "wc -l notes.txt"}, "call_q04"),),
            ),
            Reply(_u(5, 64), "notes.txt has 2 lines."),
            Reply(_u(6, 192), "notes.txt and 2 lines in it."),
        ),
        (Reply(_u(7, 256), "Nothing else."),),
    ),
    subagent_tools=frozenset({"agent"}),
    prepare=_qwen_prepare,
    command=_qwen_command,
    tailerd_config="[format_options.qwen-code]\nidle_close = 2.0\n",
)


# ---- pi --------------------------------------------------------------------------------------


def _pi_prepare(home: Path, url: str) -> dict[str, str]:
    agent_dir = home / ".pi" / "agent"
    agent_dir.mkdir(parents=True, exist_ok=True)
    provider = {
        "baseUrl": f"{url}/v1",
        "api": "openai-completions",
        "apiKey": "x",
        "compat": {"supportsDeveloperRole": False, "supportsReasoningEffort": False},
        "models": [{"id": "scripted-model"}],
    }
    (agent_dir / "models.json").write_text(json.dumps({"providers": {"scripted": provider}}))
    (agent_dir / "settings.json").write_text(json.dumps({"enableInstallTelemetry": False}))
    return _base_env(home, "pi", url)


def _pi_command(binary: Path, turn: int, prompt: str) -> list[str]:
    resume = ["--continue"] if turn else []
    model = ["--provider", "scripted", "--model", "scripted-model"]
    return [str(binary), "--offline", *resume, "-p", prompt, *model]


PI = Scenario(
    agent="pi",
    format="pi",
    model="scripted-model",
    watch=".pi/agent/sessions",
    replies=(
        (
            Reply(_u(1), "Listing first.", (ToolCall("bash", {"command": "ls"}, "call_p01"),)),
            Reply(_u(2, 64), "", (ToolCall("bash", {"command": "cat notes.txt"}, "call_p02"),)),
            Reply(_u(3, 128), "notes.txt has 2 lines."),
        ),
        (Reply(_u(4, 256), "Nothing else."),),
    ),
    prepare=_pi_prepare,
    command=_pi_command,
)

# ---- OpenCode (SQLite: ~/.local/share/opencode/opencode.db) --------------------------------


def _opencode_prepare(home: Path, url: str) -> dict[str, str]:
    config_dir = home / ".config" / "opencode"
    config_dir.mkdir(parents=True, exist_ok=True)
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "Scripted",
        "options": {"baseURL": f"{url}/v1", "apiKey": "x"},
        "models": {"scripted-model": {"name": "Scripted", "tool_call": True}},
    }
    config = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "model": "scripted/scripted-model",
        "small_model": "scripted/scripted-model",
        "provider": {"scripted": provider},
    }
    (config_dir / "opencode.json").write_text(json.dumps(config))
    return _base_env(home, "opencode", url)


def _opencode_command(binary: Path, turn: int, prompt: str) -> list[str]:
    resume = ["--continue"] if turn else []
    return [str(binary), "run", *resume, prompt]


OPENCODE = Scenario(
    agent="opencode",
    format="opencode",
    model="scripted-model",
    watch=".local/share/opencode",
    replies=(
        (
            Reply(
                _u(1),
                "Listing first.",
                (ToolCall("bash", {"command": "ls", "description": "List files"}, "call_o01"),),
            ),
            Reply(
                _u(2, 64),
                "",
                (
                    ToolCall(
                        "bash",
                        {"command": "cat notes.txt", "description": "Show notes"},
                        "call_o02",
                    ),
                ),
            ),
            Reply(
                _u(3, 128),
                "",
                (
                    ToolCall(
                        "task",
                        {
                            "description": "Count lines",
                            "prompt": "Count the lines of notes.txt",
                            "subagent_type": "general",
                        },
                        "call_o03",
                    ),
                ),
            ),
            # the sub-agent (a child session)
            Reply(
                _u(4),
                "",
                (
                    ToolCall(
                        "bash",
                        {"command": "wc -l notes.txt", "description": "Count lines"},
                        "call_o04",
                    ),
                ),
            ),
            Reply(_u(5, 64), "notes.txt has 2 lines."),
            Reply(_u(6, 192), "notes.txt and 2 lines in it."),
        ),
        (Reply(_u(7, 256), "Nothing else."),),
    ),
    prepare=_opencode_prepare,
    command=_opencode_command,
    subagent_tools=frozenset({"task"}),
    # the request without tools is OpenCode's title generator
    side_text="Scripted session title",
    # it installs @opencode-ai/plugin into its config directory in the background (npm registry)
    # on every start; no setting turns that off in 1.18.33. Refused, the run goes on.
    refused=frozenset({"registry.npmjs.org:443"}),
)

SCENARIOS: dict[str, Scenario] = {s.agent: s for s in (CLAUDE, CODEX, GEMINI, QWEN, PI, OPENCODE)}
