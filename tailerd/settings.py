"""Settings: defaults < TOML config file < command-line flags; one frozen, strict model."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tailerd.edges.discovery import DEFAULT_INCLUDE
from tailerd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SinkName = Literal["local", "otlp", "console", "weave"]
SINK_NAMES: tuple[str, ...] = get_args(SinkName)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedactionSettings(_Strict):
    enabled: bool = True
    content: Literal["full", "redacted", "none"] = "redacted"
    patterns: dict[str, str] = Field(default_factory=dict)  # kind -> regex
    max_attribute_chars: int = Field(default=64 * 1024, ge=256)


class Settings(_Strict):
    watch: tuple[Path, ...] = ()
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    format: str | None = None
    agent_name: str = ""
    sinks: tuple[SinkName, ...] = ("local",)
    state_dir: Path | None = None
    data_dir: Path | None = None
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    project: str | None = None  # weave sink: entity/project
    once: bool = False
    once_timeout: float = Field(default=60.0, gt=0)
    # The slow safety net: a walk of the watched trees (inotify does the per-file work).
    rescan_interval: float = Field(default=60.0, gt=0)
    max_open_files: int = Field(default=256, ge=4)  # descriptors held for reading files
    idle_fd_close: float = Field(default=30.0, ge=0)  # seconds a read file keeps its descriptor
    # seconds a shipped turn's identities stay in the host-wide history index (tailerd/history.py)
    history_retention: float = Field(default=30 * 86400.0, gt=0)
    checkpoint_interval: float = Field(default=0.0, ge=0)  # 0: after every acknowledged batch
    shutdown_timeout: float = Field(default=10.0, ge=0)
    # bytes read from one file before others get a turn; with max_pending_spans, what bounds
    # memory: the spans of the turns read wait for acknowledgement (2 MiB, 4096: ~140 MB RSS)
    read_budget: int = Field(default=2 << 20, ge=4096)
    max_line_bytes: int = Field(default=64 << 20, ge=1024)
    batch_spans: int = Field(default=512, ge=1)
    max_pending_spans: int = Field(default=4096, ge=1)
    format_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    mapping: tuple[dict[str, Any], ...] = ()  # [[mapping]] tables: see formats/mapped.py
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    verbose: bool = False

    @field_validator("watch")
    @classmethod
    def _watch_dirs_exist(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        for path in value:
            try:
                if not path.is_dir():
                    raise ValueError(f"not a directory: {path}")
                os.scandir(path).close()
            except OSError as exc:
                raise ValueError(f"cannot read directory {path}: {exc.strerror}") from None
        return tuple(p.resolve() for p in value)


def load_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.start})") from None


def build(config_file: Path | None, overrides: Mapping[str, Any]) -> Settings:
    values: dict[str, Any] = load_file(config_file) if config_file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        source = f" (in {config_file})" if config_file else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {where}{source}: {message}") from None
