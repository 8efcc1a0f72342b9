"""OpenCode before its SQLite migration: the same script as `scenarios.OPENCODE`, played by
opencode-ai 1.1.65, which keeps everything in the JSON `storage/` tree.

1.1.65 is the newest version in the npm registry that writes `storage/` (the next one there,
1.2.1, moved to `opencode.db` and migrates the tree into it on first start:
anomalyco/opencode `packages/opencode/src/storage/json-migration.ts`). It reads the same
`opencode.json` as 1.18.33; the one difference seen on the wire is that it also tries to
download ripgrep from github.com at start (`RipgrepDownloadFailedError` in its log when refused;
the run goes on). `python -m tests.agents_cli.scenarios_opencode_storage <dir>` plays it into
`<dir>/home` (how tests/data/opencode-storage/ was produced).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from tests.agents_cli import install, model_server
from tests.agents_cli.harness import prepare_home, run_cli
from tests.agents_cli.scenarios import SCENARIOS

VERSION = "1.1.65"
OPENCODE_STORAGE = dataclasses.replace(
    SCENARIOS["opencode"],
    name="opencode-storage",
    format="opencode-storage",
    watch=".local/share/opencode/storage",
    refused=SCENARIOS["opencode"].refused | {"github.com:443"},
)


def play(folder: Path, version: str = VERSION) -> Path:
    """Install opencode-ai@`version` (cached) and play the scenario in `folder/home`; the
    home. Raises install.Unavailable, or AssertionError when the CLI fails (see run_cli)."""
    binary = install.install("opencode", version)
    home = folder / "home"
    prepare_home(home)
    s = OPENCODE_STORAGE
    with model_server.running(s.all_replies, s.model, s.side, s.side_text, s.lane) as server:
        run_cli(s, binary, home, server)
    return home


if __name__ == "__main__":
    print(play(Path(sys.argv[1])))
