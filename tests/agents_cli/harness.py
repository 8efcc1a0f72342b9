"""Running a scenario's real CLI against its scripted server, and what tailerd stored of it.

`run_cli` plays every turn of a scenario in a temporary HOME (working directory `HOME/work`
holding `notes.txt`); `expected` is what the script says tailerd must ship; `stored` reads the
same shape from tailerd's local store (`tailerd.db`, table `spans`).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.agents_cli import model_server
from tests.agents_cli.scenario import NOTES, Scenario
from tests.conftest import run_tailerd

CLI_TIMEOUT = 120.0
# seconds: the CLI's files are left quiet for longer than the scenarios' idle_close (2 s)
SETTLE = 2.5


@dataclass(frozen=True)
class Shipped:
    """What one scenario amounts to in spans.

    `turns`: root `invoke_agent` spans; `chats`: (input tokens incl. cache, output tokens) of
    every chat span, sorted; `tools`: names of `execute_tool` spans with counts; `subagents`:
    nested `invoke_agent` spans.
    """

    turns: int
    chats: tuple[tuple[int, int], ...]
    tools: tuple[tuple[str, int], ...]
    subagents: int


def expected(scenario: Scenario) -> Shipped:
    """The oracle: counted from the scenario's script alone."""
    replies = scenario.all_replies
    calls = [c.name.rpartition(".")[2] for r in replies for c in r.tool_calls]  # no namespace
    return Shipped(
        turns=len(scenario.prompts) + scenario.extra_turns,
        chats=tuple(sorted((r.usage.prompt, r.usage.output) for r in replies)),
        tools=tuple(sorted(Counter(c for c in calls if c not in scenario.subagent_tools).items())),
        subagents=sum(c in scenario.subagent_tools for c in calls) + scenario.extra_subagent_spans,
    )


def stored(db: Path) -> Shipped:
    """The same counts from tailerd's local store (an empty result when there is no store)."""
    if not db.exists():
        return Shipped(0, (), (), 0)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT operation, name, parent_span_id, attributes FROM spans"
        ).fetchall()
    chats, tools, turns, subagents = [], Counter[str](), 0, 0
    for operation, name, parent, attributes in rows:
        attrs = json.loads(attributes)
        if operation == "chat":
            chats.append(
                (
                    int(attrs.get("gen_ai.usage.input_tokens", 0)),
                    int(attrs.get("gen_ai.usage.output_tokens", 0)),
                )
            )
        elif operation == "execute_tool":
            tools[str(attrs.get("gen_ai.tool.name") or name.removeprefix("execute_tool "))] += 1
        elif operation == "invoke_agent":
            if parent is None:
                turns += 1
            else:
                subagents += 1
    return Shipped(turns, tuple(sorted(chats)), tuple(sorted(tools.items())), subagents)


def traced(trace: Path) -> list[str]:
    """The strace prefix recording every connect/sendto of the CLI and its children into
    `trace` (nothing when strace is not installed)."""
    strace = shutil.which("strace")
    if strace is None:
        return []
    return [strace, "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmmsg",
            "-o", str(trace)]  # fmt: skip


_INET = re.compile(
    r"sin6?_port=htons\((\d+)\), (?:sin_addr=inet_addr\(|inet_pton\(AF_INET6?, )\"([^\"]+)\""
)


def destinations(home: Path) -> set[tuple[str, int]]:
    """(address, port) of every internet socket the CLI runs in `home` connected or sent to."""
    found: set[tuple[str, int]] = set()
    for trace in home.glob("connect-*.trace"):
        for port, address in _INET.findall(trace.read_text(errors="replace")):
            found.add((address, int(port)))
    return found


def prepare_home(home: Path) -> Path:
    """The temporary HOME with its working directory `work/notes.txt`; the working directory."""
    work = home / "work"
    work.mkdir(parents=True)
    (home / "tmp").mkdir()
    (work / "notes.txt").write_text(NOTES)
    return work


def run_cli(
    scenario: Scenario, binary: Path, home: Path, server: model_server.Server
) -> list[subprocess.CompletedProcess[str]]:
    """Every turn of the scenario, one CLI process each, in `home/work`. Raises
    AssertionError (with the CLI's output) when a turn fails, when the CLI tried to reach
    anything but the scripted server on 127.0.0.1 (through its proxy: hosts not in
    `scenario.refused`; or, under strace, any other address or a DNS query), or when the script
    is not used up."""
    work = home / "work"
    env = scenario.prepare(home, server.url)
    done = []
    for turn, prompt in enumerate(scenario.prompts):
        result = subprocess.run(
            [*traced(home / f"connect-{turn}.trace"), *scenario.command(binary, turn, prompt)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        done.append(result)
        assert result.returncode == 0, (
            f"{scenario.agent} turn {turn} exited {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    tried = {b.split()[1].removeprefix("http://").split("/")[0] for b in server.blocked}
    assert tried <= scenario.refused, f"{scenario.agent} tried to reach {sorted(tried)}"
    elsewhere = {(a, p) for a, p in destinations(home) if a != "127.0.0.1" or p == 53}
    assert not elsewhere, f"{scenario.agent} connected to {sorted(elsewhere)} (strace)"
    assert (server.answered, server.overruns) == (len(scenario.all_replies), 0), (
        f"{scenario.agent} used {server.answered} of {len(scenario.all_replies)} scripted replies"
        f" and asked {server.overruns} more; side requests: {server.side}"
    )
    return done


def tailerd_config(scenario: Scenario, folder: Path) -> Path:
    """The scenario's tailerd config file (its format options) written into `folder`."""
    path = folder / "tailerd.toml"
    path.write_text(scenario.tailerd_config)
    return path


def status_counts(state: Path) -> tuple[int, dict[str, int]]:
    """(dead letters, unknown record types with counts) summed over `tailerd status` files."""
    done = run_tailerd("status", "--state-dir", state, "--json")
    files = json.loads(done.stdout)["files"]
    unknown: Counter[str] = Counter()
    for f in files:
        unknown.update(f.get("unknown_record_types") or {})
    return sum(int(f["dead_letters"]) for f in files), dict(unknown)


@dataclass(frozen=True)
class Outcome:
    """One scenario played and read back with `tailerd --once`."""

    want: Shipped
    got: Shipped
    dead_letters: int
    unknown: dict[str, int]
    tailerd: subprocess.CompletedProcess[str]
    side: tuple[str, ...]


def play_and_read_once(scenario: Scenario, binary: Path, folder: Path) -> Outcome:
    """Play the scenario's CLI in `folder/home`, then `tailerd --once` into `folder/state`.
    Raises AssertionError when the CLI fails or leaves the script unused (see `run_cli`)."""
    home = folder / "home"
    prepare_home(home)
    with model_server.running(
        scenario.all_replies,
        scenario.model,
        scenario.side,
        scenario.side_text,
        scenario.lane,
    ) as server:
        run_cli(scenario, binary, home, server)
    time.sleep(SETTLE)
    state = folder / "state"
    result = run_tailerd(
        "--once", "--watch", home / scenario.watch, "--state-dir", state, "--data-dir", state,
        "--config", tailerd_config(scenario, folder),
    )  # fmt: skip
    dead, unknown = status_counts(state)
    return Outcome(
        expected(scenario), stored(state / "tailerd.db"), dead, unknown, result, tuple(server.side)
    )
