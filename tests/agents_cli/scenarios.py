"""The agent CLIs' scenarios (the frame — `Scenario`, environments — is in scenario.py; Claude
Code's two are in scenarios_claude.py).

Claude Code, Codex, Gemini CLI, Qwen Code, pi and OpenCode each: turn 1 runs `ls` and
`cat notes.txt` with the CLI's own shell tool and (except pi) a sub-agent that runs
`wc -l notes.txt`; turn 2 resumes the session. pi has no sub-agents. Codex's spawned agent runs
beside its parent (its requests are told apart by `lane`), and the parent's `wait_agent` names
the id Codex gave the child at run time (`SPAWNED`, filled in by the server).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.agents_cli.model_server import SPAWNED
from tests.agents_cli.scenario import NOTES, PROMPTS, Scenario, base_env, usage
from tests.agents_cli.scenarios_claude import CLAUDE, CLAUDE_BACKGROUND
from tests.agents_cli.wire import Reply, ToolCall

__all__ = ["NOTES", "PROMPTS", "SCENARIOS", "Scenario"]

SUBAGENT_GEMINI = {"agent_name": "generalist", "prompt": "Count the lines of notes.txt"}
# run_in_background false: the sub-agent runs before the parent's next request (the default is
# background, which makes the order of the two agents' requests a race)
SUBAGENT_QWEN = {
    "description": "Count lines",
    "prompt": "Count the lines of notes.txt",
    "subagent_type": "general-purpose",
    "run_in_background": False,
}


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
    return {**base_env(home, "codex", url), "CODEX_HOME": str(codex_home), "SCRIPTED_API_KEY": "x"}


def _codex_command(binary: Path, turn: int, prompt: str) -> list[str]:
    flags = ["--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    if turn:
        return [str(binary), "exec", "resume", "--last", *flags, prompt]
    return [str(binary), "exec", *flags, prompt]


SUBAGENT_CODEX = "Count the lines of notes.txt"
# Codex's sub-agent tools live in the Responses namespace `multi_agent_v1`
SPAWN, WAIT = "multi_agent_v1.spawn_agent", "multi_agent_v1.wait_agent"


def _codex_lane(body: dict[str, Any]) -> str:
    """ "sub" for the spawned agent's requests: its input starts from the spawn message alone
    (no fork of the parent's history, which holds the parent's prompt)."""
    text = json.dumps(body.get("input") or [])
    return "sub" if SUBAGENT_CODEX in text and PROMPTS[0] not in text else ""


CODEX = Scenario(
    agent="codex",
    format="codex",
    model="gpt-5-codex",
    watch=".codex/sessions",
    replies=(
        (
            Reply(
                usage(1), "Listing first.", (ToolCall("exec_command", {"cmd": "ls"}, "call_s01"),)
            ),
            Reply(
                usage(2, 512), "", (ToolCall("exec_command", {"cmd": "cat notes.txt"}, "call_s02"),)
            ),
            Reply(usage(3, 1024), "", (ToolCall(SPAWN, {"message": SUBAGENT_CODEX}, "call_s03"),)),
            # the spawned agent runs beside its parent: its own lane
            Reply(
                usage(4),
                "",
                (ToolCall("exec_command", {"cmd": "wc -l notes.txt"}, "call_s04"),),
                lane="sub",
            ),
            Reply(usage(5, 64), "notes.txt has 2 lines.", lane="sub"),
            # the parent waits for it by the id spawn_agent returned (filled in by the server)
            Reply(usage(6, 1536), "", (ToolCall(WAIT, {"targets": [SPAWNED]}, "call_s05"),)),
            Reply(usage(7, 2048), "notes.txt has 2 lines."),
        ),
        (Reply(usage(8, 2560), "Nothing else."),),
    ),
    prepare=_codex_prepare,
    command=_codex_command,
    subagent_tools=frozenset({"spawn_agent"}),
    lane=_codex_lane,
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
    return {**base_env(home, "gemini", url), "GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": url}


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
                usage(1),
                "Listing first.",
                (ToolCall("run_shell_command", {"command": "ls"}, "gem_s01"),),
            ),
            Reply(
                usage(2, 64),
                "",
                (ToolCall("run_shell_command", {"command": "cat notes.txt"}, "gem_s02"),),
            ),
            Reply(usage(3, 128), "", (ToolCall("invoke_agent", SUBAGENT_GEMINI, "gem_s03"),)),
            # the sub-agent "generalist": it must end with its complete_task tool
            Reply(
                usage(4),
                "",
                (ToolCall("run_shell_command", {"command": "wc -l notes.txt"}, "gem_s04"),),
            ),
            Reply(
                usage(5, 64),
                "",
                (ToolCall("complete_task", {"result": {"response": "2 lines."}}, "gem_s05"),),
            ),
            Reply(usage(6, 192), "notes.txt has 2 lines."),
        ),
        (Reply(usage(7, 256), "Nothing else."),),
    ),
    # Gemini CLI records a sub-agent in chats/<session>/<id>.jsonl ("kind": "subagent");
    # tailerd ships it as a session of its own (formats/gemini.py), its invoke_agent as a tool
    extra_turns=1,
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
        **base_env(home, "qwen", url),
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
                usage(1),
                "Listing first.",
                (ToolCall("run_shell_command", {"command": "ls"}, "call_q01"),),
            ),
            Reply(
                usage(2, 64),
                "",
                (ToolCall("run_shell_command", {"command": "cat notes.txt"}, "call_q02"),),
            ),
            Reply(usage(3, 128), "", (ToolCall("agent", SUBAGENT_QWEN, "call_q03"),)),
            # the sub-agent (subagents/<session>/agent-general-purpose-call_q03.jsonl)
            Reply(
                usage(4),
                "",
                (ToolCall("run_shell_command", {"command": "wc -l notes.txt"}, "call_q04"),),
            ),
            Reply(usage(5, 64), "notes.txt has 2 lines."),
            Reply(usage(6, 192), "notes.txt and 2 lines in it."),
        ),
        (Reply(usage(7, 256), "Nothing else."),),
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
    return base_env(home, "pi", url)


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
            Reply(usage(1), "Listing first.", (ToolCall("bash", {"command": "ls"}, "call_p01"),)),
            Reply(usage(2, 64), "", (ToolCall("bash", {"command": "cat notes.txt"}, "call_p02"),)),
            Reply(usage(3, 128), "notes.txt has 2 lines."),
        ),
        (Reply(usage(4, 256), "Nothing else."),),
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
    return base_env(home, "opencode", url)


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
                usage(1),
                "Listing first.",
                (ToolCall("bash", {"command": "ls", "description": "List files"}, "call_o01"),),
            ),
            Reply(
                usage(2, 64),
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
                usage(3, 128),
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
                usage(4),
                "",
                (
                    ToolCall(
                        "bash",
                        {"command": "wc -l notes.txt", "description": "Count lines"},
                        "call_o04",
                    ),
                ),
            ),
            Reply(usage(5, 64), "notes.txt has 2 lines."),
            Reply(usage(6, 192), "notes.txt and 2 lines in it."),
        ),
        (Reply(usage(7, 256), "Nothing else."),),
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


SCENARIOS: dict[str, Scenario] = {
    s.key: s for s in (CLAUDE, CLAUDE_BACKGROUND, CODEX, GEMINI, QWEN, PI, OPENCODE)
}
