"""The wheel: built offline from the checkout, installed into a fresh venv, it runs the example.

The fresh venv gets only the wheel (`pip install --no-deps --no-index`); its dependencies come
from the project venv's site-packages, added as a plain path in a .pth file (not as a site dir,
so the project venv's editable install of tailerd is not picked up: tailerd comes from the wheel,
which the test checks). No network is used.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from importlib.metadata import distributions
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow

# Hand counts over examples/logs: finished turns per session (ra-0001's t3 has no turn_end yet).
EXAMPLE_SESSIONS = {"wb-7f3a": 2, "wb-91c2": 1, "ra-0001": 2}
# What must travel in the wheel besides the modules.
PACKAGE_DATA = {
    "tailerd/py.typed",
    "tailerd/schema/native.schema.json",
    "tailerd-0.1.0.data/data/share/tailerd/systemd/tailerd.service",
    "tailerd-0.1.0.data/data/share/tailerd/systemd/tailerd-user.service",
    "tailerd-0.1.0.data/data/share/tailerd/tailerd.toml",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    src = build / "src"
    # A copy, so the build leaves nothing (build/, *.egg-info) in the shared checkout.
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "bench*"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = out.glob("tailerd-*.whl")
    return found


def requirements(wheel: Path) -> set[str]:
    """The distribution names the wheel's METADATA requires (without extras), normalised."""
    with zipfile.ZipFile(wheel) as zf:
        meta = Parser().parsestr(zf.read("tailerd-0.1.0.dist-info/METADATA").decode())
    names = set()
    for req in meta.get_all("Requires-Dist") or []:
        if "extra ==" in req:
            continue
        names.add(normalise(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]))
    return names


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules() -> set[str]:
    """Third-party modules (dotted names) imported anywhere in tailerd/, read with ast."""
    found = set()
    for path in (ROOT / "tailerd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from opentelemetry import trace`: the submodule, where the name is one
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    skip = set(sys.stdlib_module_names) | {"tailerd", "__future__"}
    return {m for m in found if m.split(".")[0] not in skip}


def owner(module: str, by_file: dict[str, str]) -> str | None:
    """The installed distribution whose files hold `module` (namespace packages such as
    `opentelemetry` are shared by several, so the file decides, not the top-level name)."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # `from a.b import name` where a.b is a module: name is not
        spec = None
    if spec is None or spec.origin is None:
        parent = module.rpartition(".")[0]
        return owner(parent, by_file) if parent else None
    return by_file.get(os.path.normpath(spec.origin))


def files_by_owner() -> dict[str, str]:
    """Every file of every installed distribution -> the distribution's normalised name."""
    found = {}
    for dist in distributions():
        name = normalise(dist.metadata["Name"])
        for file in dist.files or []:
            found[os.path.normpath(str(dist.locate_file(file)))] = name
    return found


def test_the_wheel_carries_its_package_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        assert set(zf.namelist()) >= PACKAGE_DATA


def test_every_imported_package_is_declared(wheel: Path) -> None:
    """Each third-party module tailerd imports belongs to a distribution the wheel requires
    (systemd-python is the `systemd` extra; tomli only below Python 3.11)."""
    optional = {"systemd", "tomli"}
    declared = requirements(wheel)
    by_file = files_by_owner()
    modules = [m for m in imported_modules() if m.split(".")[0] not in optional]
    owners = {m: owner(m, by_file) for m in modules}
    assert [m for m, d in owners.items() if d is None] == []
    assert {m: d for m, d in owners.items() if d not in declared} == {}
    # the ones issue 11 found arriving only through weave
    assert {"opentelemetry-sdk", "opentelemetry-proto"} <= set(owners.values())


def test_wheel_in_a_fresh_venv_runs_the_example(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    (purelib / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TAILERD_"))}
    env.pop("STATE_DIRECTORY", None)
    env.update(WANDB_ERROR_REPORTING="false", HOME=str(tmp_path / "home"))

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=180, env=env,
            check=False, cwd=tmp_path,
        )  # fmt: skip

    where = run(python, "-c", "import tailerd, tailerd.service_install as s; "
                "print(tailerd.__file__); print(s.templates_dir())")  # fmt: skip
    module, templates = where.stdout.split()
    assert Path(module).is_relative_to(venv), where
    assert Path(templates) == venv / "share" / "tailerd" / "systemd"

    logs = tmp_path / "logs"
    shutil.copytree(EXAMPLES, logs, copy_function=shutil.copyfile)
    state = tmp_path / "state"
    tailerd = venv / "bin" / "tailerd"
    once = run(tailerd, "--once", "--watch", logs, "--state-dir", state, "--data-dir", state)
    assert once.returncode == 0, once.stderr
    listed = run(tailerd, "sessions", "--state-dir", state, "--data-dir", state, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {s["session_id"]: s["turns"] for s in json.loads(listed.stdout)} == EXAMPLE_SESSIONS

    # The installed unit template runs the installed executable.
    (tmp_path / "home" / ".codex" / "sessions").mkdir(parents=True)
    unit = run(tailerd, "service", "install", "--user", "--dry-run")
    assert unit.returncode == 0, unit.stderr
    assert f"ExecStart={tailerd} --config " in unit.stdout
