"""Claude Code's scenarios: a foreground `Agent` sub-agent, and the default background one.

Claude Code 2.1.328 (`claude -p`, Anthropic Messages with SSE), as root: `--allowedTools Bash
Agent` instead of `--dangerously-skip-permissions`, which root may not use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.agents_cli.scenario import PROMPTS, Scenario, base_env, usage
from tests.agents_cli.wire import Reply, ToolCall

SUBAGENT_CLAUDE_BACKGROUND = {
    "description": "Count lines",
    "prompt": "Count the lines of notes.txt",
    "subagent_type": "general-purpose",
}


# ---- Claude Code -----------------------------------------------------------------------------


def _claude_prepare(home: Path, url: str) -> dict[str, str]:
    return {
        **base_env(home, "claude-code", url),
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
                usage(1, 1000, 200),
                "Listing first.",
                (ToolCall("Bash", {"command": "ls", "description": "List files"}, "toolu_s01"),),
            ),
            Reply(
                usage(2, 1100),
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
                usage(3, 1200),
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
                usage(4, 0, 300),
                "",
                (
                    ToolCall(
                        "Bash",
                        {"command": "wc -l notes.txt", "description": "Count lines"},
                        "toolu_s04",
                    ),
                ),
            ),
            Reply(usage(5, 300), "notes.txt has 2 lines."),
            Reply(usage(6, 1300), "notes.txt and 2 lines in it."),
        ),
        (Reply(usage(7, 1400), "Nothing else."),),
    ),
    prepare=_claude_prepare,
    command=_claude_command,
    subagent_tools=frozenset({"Agent"}),
    # `claude -p` writes no turn_duration: the last turn ends after idle_close of quiet
    tailerd_config="[format_options.claude-code]\nidle_close = 2.0\n",
)


def _claude_lane(body: dict[str, Any]) -> str:
    """ "sub" for the background sub-agent's requests (its conversation starts from its prompt)."""
    text = json.dumps(body.get("messages") or [])
    return "sub" if SUBAGENT_CLAUDE_BACKGROUND["prompt"] in text and PROMPTS[0] not in text else ""


# Claude Code's default: the Agent tool answers "Async agent launched" at once and the turn
# ends; the sub-agent runs beside the session, and its completion notice
# (<task-notification>) makes Claude Code ask the model once more.
CLAUDE_BACKGROUND = Scenario(
    agent="claude-code",
    name="claude-code-background",
    format="claude-code",
    model="claude-opus-5-5",
    watch=".claude/projects",
    prompts=PROMPTS[:1],
    replies=(
        (
            Reply(
                usage(1, 1000, 200),
                "",
                (ToolCall("Agent", SUBAGENT_CLAUDE_BACKGROUND, "toolu_b01"),),
            ),
            Reply(
                usage(2, 0, 300),
                "",
                (
                    ToolCall(
                        "Bash", {"command": "wc -l notes.txt", "description": "Count"}, "toolu_b02"
                    ),
                ),
                lane="sub",
            ),
            Reply(usage(3, 300), "notes.txt has 2 lines.", lane="sub"),
            Reply(usage(4, 1100), "Counting in the background."),
            # after the completion notice
            Reply(usage(5, 1200), "The count is in: 2 lines."),
        ),
    ),
    prepare=_claude_prepare,
    command=_claude_command,
    subagent_tools=frozenset({"Agent"}),
    # the sub-agent's synthetic `background_subagent` turn, the notice's turn (README)
    extra_turns=2,
    extra_subagent_spans=1,
    lane=_claude_lane,
    tailerd_config="[format_options.claude-code]\nidle_close = 2.0\n",
)
