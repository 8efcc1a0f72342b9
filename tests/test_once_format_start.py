"""`--once` when a format cannot start (FormatStartError, formats/guard.py): the files it left
unread make the run fail with one line naming the format and the files, exit 78 (EX_CONFIG,
README's exit code table), after the other files' turns were delivered and committed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tailerd import cli, service
from tailerd.edges.checkpoint_store import CheckpointStore
from tailerd.errors import EX_CONFIG
from tailerd.formats.guard import FormatStartError
from tailerd.settings import Settings
from tests.conftest import FIXTURES
from tests.live_daemon import turn_line

CODEX_SESSIONS = FIXTURES / "codex" / "madshn-localpush" / "raw" / "sessions"


def test_once_fails_naming_the_format_and_its_unread_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    watch, state = tmp_path / "watch", tmp_path / "state"
    shutil.copytree(CODEX_SESSIONS, watch)
    rollouts = sorted(p.name for p in watch.iterdir())  # 4 rollouts (ls of the fixture)
    (watch / "native.jsonl").write_bytes(turn_line("s1", "a1") + turn_line("s1", "a2"))
    # Settings built directly skip the layered check (a bad option there is refused before
    # reading, test_format_options): the guard is what this run meets.
    settings = Settings(
        watch=(watch,),
        state_dir=state,
        data_dir=state,
        format_options={"codex": {"idle_close": "abc"}},
        once=True,
        once_timeout=5,
    )
    with pytest.raises(FormatStartError) as caught:
        service.run(settings)
    message = str(caught.value)
    assert message.startswith("codex could not start: ValueError"), message
    # the first three rollouts by path are named, then the fourth counted
    named = [name for name in rollouts if name in message]
    assert named == rollouts[:3] and message.count(" and 1 more") == 1, message
    assert "\n" not in message
    # the native file's two turns were delivered and committed before the run failed
    checkpoints = {Path(cp.path).name: cp for cp in CheckpointStore(state).load().values()}
    native = (watch / "native.jsonl").stat().st_size
    assert checkpoints["native.jsonl"].offset == native
    assert all(checkpoints[name].offset == 0 for name in rollouts if name in checkpoints)
    # the command line says it in one line, with the config-error exit code
    capsys.readouterr()
    assert cli._one_line(caught.value) == EX_CONFIG == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tailerd: codex could not start"), err
