"""What a scripted scenario is: prompts, the model's replies, how to run the CLI, its environment.

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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.agents_cli.model_server import SIDE_TEXT
from tests.agents_cli.wire import Reply, Usage

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
    `invoke_agent` spans, not as `execute_tool`); `extra_turns` counts turns the agent starts
    by itself beyond the prompts (a sub-agent the format ships as a session of its own; a
    background sub-agent's own turn and the turn its completion notice starts), and
    `extra_subagent_spans` invoke_agent spans beyond one per sub-agent call (a background
    sub-agent has one in the spawning turn and one in its own). `name` tells two scenarios of
    one agent apart (default: the agent). `refused`: hosts the CLI
    still tries through its proxy whatever it is told (refused there; any other host fails
    the test). `lane(request)` names the agent asking when a sub-agent runs beside its parent
    (see `Reply.lane`). `prepare(home, url)` writes the CLI's settings and returns its environment;
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
    extra_turns: int = 0
    extra_subagent_spans: int = 0
    name: str = ""
    tailerd_config: str = ""
    side: Callable[[dict[str, Any]], str | None] | None = None
    side_text: str = SIDE_TEXT
    refused: frozenset[str] = frozenset()
    lane: Callable[[dict[str, Any]], str] | None = None
    prompts: tuple[str, ...] = PROMPTS

    @property
    def key(self) -> str:
        return self.name or self.agent

    @property
    def all_replies(self) -> list[Reply]:
        return [r for turn in self.replies for r in turn]


def base_env(home: Path, agent: str, url: str) -> dict[str, str]:
    """The CLI's whole environment (nothing inherited): HOME and XDG folders in `home`, the
    scripted server `url` as HTTP(S) proxy, and the agent's `NO_TRAFFIC` switches."""
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


def usage(n: int, cached: int = 0, written: int = 0) -> Usage:
    """Distinct, recognisable usage: input 100n+1…, output 10n+3, the given cache parts."""
    return Usage(input=100 * n + 1, output=10 * n + 3, cache_read=cached, cache_write=written)
