"""`tailerd check-config`: the effective configuration, secrets masked, with where each value
not left at its default came from; or the one-line error (exit 78) a start would give.

It checks what a start checks before touching any state: the layers (tailerd/settings.py), the
`[[mapping]]` tables, the redaction patterns and, for the otlp sink, the endpoint. It opens no
store, takes no lock and contacts no sink.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import tomli_w

from tailerd import formats, settings
from tailerd.content_policy import build_redactor
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


def effective(config_file: Path | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """{"settings": the effective settings (secrets masked), "sources": dotted key -> where it
    came from, "config_file": the file read (str) or None, "paths": the state and data
    directories they resolve to}. ConfigError: the error a start with these settings would
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
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(doc["settings"])


def run(config_file: Path | None, flags: Mapping[str, Any], as_json: bool) -> int:
    """Print the effective configuration; 0. Errors are raised as ConfigError (exit 78)."""
    doc = effective(config_file, flags)
    if as_json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_toml(doc))
    return 0
