"""`tailerd check-config`: the effective configuration, secrets masked, with where each value
not left at its default came from; or the one-line error (exit 78) a start would give.

It checks what a start checks before touching any state: the layers (tailerd/settings.py), the
`[[mapping]]` tables, the redaction patterns and, for the otlp sink, the endpoint. It opens no
store, takes no lock and contacts no sink.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import tomli_w

from tailerd import formats, settings
from tailerd.content_policy import build_redactor
from tailerd.edges.discovery import Globs
from tailerd.edges.state_dir import resolve_data_dir, resolve_state_dir

MASK = "********"
# A key whose value is a credential: masked wherever it appears (otlp_headers: every value).
SECRET_KEY = re.compile(r"key|token|secret|password|passwd|authorization|credential", re.I)


def mask(value: Any, masked: bool = False) -> Any:
    """`value` with every credential replaced by MASK: all values under a key matching
    SECRET_KEY (or below `otlp_headers`), recursively through tables and lists."""
    if isinstance(value, Mapping):
        return {
            k: mask(v, masked or bool(SECRET_KEY.search(str(k))) or k == "otlp_headers")
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask(v, masked) for v in value]
    return MASK if masked and value not in ("", None) else value


# One file each registered format reads, named and placed as its agent writes it (each
# format's `claims` docstring, README's agents table), relative to a watched directory: how
# `unreachable` tells which formats an `include` setting leaves unread.
SAMPLE_FILES = {
    "qwen-code": "-home-me-project/chats/0a1b.jsonl",
    "claude-code": "-home-me-project/0a1b.jsonl",
    "codex": "2026/01/01/rollout-2026-01-01T00-00-00-0a1b.jsonl",
    "cline": "0a1b/0a1b.messages.json",
    "amp": "T-0a1b.json",
    "gemini": "0a1b/chats/session-2026-01-01T00-00-0a1b.json",
    "cursor": "-home-me-project/agent-transcripts/0a1b.jsonl",
    "droid": "-home-me-project/0a1b.jsonl",
    "openhands": "0a1b/base_state.json",
    "copilot-cli": "0a1b/events.jsonl",
    "pi": "--home-me-project--/2026-01-01T00-00-00_0a1b.jsonl",
    "crush": "project/.crush/crush.db",
    "opencode": "opencode.db",
    "opencode-storage": "storage/session/global/ses_0a1b.json",
    "goose": "sessions.db",
    "native": "agent.jsonl",
}


def unreachable(include: Sequence[str]) -> list[str]:
    """The registered formats (FORMATS order) none of whose files `include` matches: they
    would never be read. Empty for the default include."""
    globs = Globs(tuple(include))
    names = [f.name for f in formats.FORMATS]
    return [
        n for n in names if n in SAMPLE_FILES and not globs.match("/w", "/w/" + SAMPLE_FILES[n])
    ]


def include_warning(include: Sequence[str], forced_format: str | None) -> str | None:
    """One line when `include` leaves registered formats unread (none with a forced
    `format`: then only that format is read anyway), else None."""
    lost = [] if forced_format else unreachable(include)
    if not lost:
        return None
    return (
        f"include = {list(include)} matches no file of {', '.join(lost)}: their sessions are"
        " never read; leave `include` unset (the default covers every agent) or add their globs"
        " (README, Configuration)"
    )


def effective(config_file: Path | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """{"settings": the effective settings (secrets masked), "sources": dotted key -> where it
    came from, "config_file": the file read (str) or None, "paths": the state and data
    directories they resolve to, "warnings": lines about settings that work but lose data
    (include_warning)}. ConfigError: the error a start with these settings would
    stop with."""
    cfg, origin = settings.layered(config_file, flags)
    formats.configured(cfg.mapping, cfg.format)
    build_redactor(cfg)
    if "otlp" in cfg.sinks:
        from tailerd.sinks.otlp import endpoint_from_env

        endpoint_from_env(cfg.otlp_endpoint)
    state_dir = resolve_state_dir(cfg.state_dir)
    return {
        "settings": mask(cfg.model_dump(mode="json", exclude_none=True)),
        "sources": {  # values, not the tables that hold them
            key: settings.describe(kind, key, config_file)
            for key, kind in sorted(origin.items())
            if not any(other.startswith(key + ".") for other in origin)
        },
        "config_file": str(config_file) if config_file else None,
        "warnings": [w for w in [include_warning(cfg.include, cfg.format)] if w],
        "paths": {
            "state_dir": str(state_dir),
            "data_dir": str(resolve_data_dir(cfg.data_dir, state_dir)),
        },
    }


def render_toml(doc: dict[str, Any]) -> str:
    """The settings as a TOML file that tailerd would accept, sources and paths as comments."""
    lines = ["# tailerd: effective configuration (defaults < config file < TAILERD_* < flags)"]
    read = (
        doc["config_file"]
        or "none (no --config, $TAILERD_CONFIG or ~/.config/tailerd/tailerd.toml)"
    )
    lines += [f"# config file read: {read}"]
    lines += [f"# {key} {source}" for key, source in doc["sources"].items()]
    lines += [f"# resolved {key}: {path}" for key, path in doc["paths"].items()]
    lines += [f"# warning: {warning}" for warning in doc["warnings"]]
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(doc["settings"])


def run(config_file: Path | None, flags: Mapping[str, Any], as_json: bool) -> int:
    """Print the effective configuration; 0. Errors are raised as ConfigError (exit 78)."""
    doc = effective(config_file, flags)
    for warning in doc["warnings"]:
        sys.stderr.write(f"tailerd: warning: {warning}\n")
    if as_json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_toml(doc))
    return 0
