"""Settings, in layers: defaults < TOML config file < `TAILERD_*` environment < command-line
flags. One frozen, strict model (`Settings`); `build` is the one place the layers meet.

Environment variables name a field with the prefix `TAILERD_`, upper-case; a nested field with
`__` (`TAILERD_REDACTION__CONTENT=none`). A list is JSON (`TAILERD_WATCH='["/a","/b"]'`) or
comma-separated (`TAILERD_SINKS=local,otlp`); a table is JSON
(`TAILERD_OTLP_HEADERS='{"x-team":"agents"}'`). The environment is parsed by pydantic-settings'
`EnvSettingsSource`; the file by `tomllib`. Every error is one `ConfigError` line naming where
the bad value came from (the file, the variable or the flag).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from tailerd.edges.discovery import DEFAULT_INCLUDE
from tailerd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SinkName = Literal["local", "otlp", "console", "weave"]
SINK_NAMES: tuple[str, ...] = get_args(SinkName)
ENV_PREFIX = "TAILERD_"
ENV_NESTED = "__"
# Flags whose name is not the field's (`--sink` fills `sinks`).
FLAG_NAMES = {"sinks": "--sink"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedactionSettings(_Strict):
    enabled: bool = True
    content: Literal["full", "redacted", "none"] = "redacted"
    patterns: dict[str, str] = Field(default_factory=dict)  # kind -> regex
    max_attribute_chars: int = Field(default=64 * 1024, ge=256)


class Settings(BaseSettings):
    """The effective configuration. Constructing it directly reads no environment (tests and
    library users get exactly what they pass); `build` adds the file and environment layers."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED,
        case_sensitive=False,
    )

    watch: tuple[Path, ...] = ()
    # With no watch roots: the homes of these agents (empty: every supported agent), found by
    # tailerd/agent_homes.py, waited for when not there yet.
    agents: tuple[str, ...] = ()
    # This host's name in turn ids and `host.name` (default: the kernel's). Set it where the
    # kernel's changes with every restart, e.g. a Kubernetes pod: the node's name.
    host_name: str = ""
    # weave's host details on every span (weave.os_name/os_version/os_release, weave.sys_version,
    # weave.client_version): false leaves them out (tailerd/edges/host.py)
    host_details: bool = True
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
    # "inotify": the kernel names each changed file (a walk every rescan_interval is the safety
    # net); "poll": a walk every poll_interval seconds (NFS, overlay, FUSE: no inotify there).
    watch_mode: Literal["inotify", "poll"] = "inotify"
    poll_interval: float = Field(default=2.0, gt=0)
    # The slow safety net: a walk of the watched trees (inotify does the per-file work).
    rescan_interval: float = Field(default=60.0, gt=0)
    max_open_files: int = Field(default=256, ge=4)  # descriptors held for reading files
    idle_fd_close: float = Field(default=30.0, ge=0)  # seconds a read file keeps its descriptor
    # seconds a shipped turn's identities stay in the host-wide history index (tailerd/history.py)
    history_retention: float = Field(default=30 * 86400.0, gt=0)
    checkpoint_interval: float = Field(default=0.0, ge=0)  # 0: after every acknowledged batch
    shutdown_timeout: float = Field(default=10.0, ge=0)
    # seconds between refreshes of status.json's mtime (one utime, no data), for `tailerd
    # status --alive` (a Kubernetes liveness probe, a cron check); 0: off, a caught-up daemon
    # then writes nothing. 15 s: `--alive 30` (twice the interval) holds on a healthy daemon.
    heartbeat_interval: float = Field(default=15.0, ge=0)
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # `build` layers file and environment itself, knowing sources

    @field_validator("agents")
    @classmethod
    def _known_agents(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from tailerd.agent_homes import parse_agents

        return tuple(parse_agents(",".join(value))) if value else value

    @field_validator("watch")
    @classmethod
    def _watch_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        """A root that is a file is an error; one that does not exist yet, or cannot be read
        now, is the watcher's to wait for and warn about (tailerd/tracking.py)."""
        roots = []
        for raw in value:
            path = raw.expanduser()
            if path.exists() and not path.is_dir():
                raise ValueError(f"not a directory: {path}")
            roots.append(path.resolve())
        return tuple(dict.fromkeys(roots))


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, with lists also accepted comma-separated."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            looks_json = isinstance(value, str) and value.lstrip()[:1] in ("[", "{")
            if get_origin(field.annotation) is tuple and isinstance(value, str) and not looks_json:
                return [part.strip() for part in value.split(",") if part.strip()]
            var = f"{ENV_PREFIX}{field_name.upper()}"
            raise ConfigError(f"environment variable {var} is not valid JSON: {value!r}") from None


def load_file(path: Path) -> dict[str, Any]:
    """The TOML file as a table. ConfigError (one line, naming the file) if it cannot be read."""
    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {exc.start})") from None


CONFIG_ENV = "TAILERD_CONFIG"
CONFIG_NAME = "tailerd.toml"


def config_file(given: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to read: `given` (--config) if set; else `$TAILERD_CONFIG` if set (an
    empty value: no file); else the user's `<platformdirs user config dir>/tailerd.toml`
    (`~/.config/tailerd/tailerd.toml`) when it exists; else None (defaults and environment)."""
    if given is not None:
        return given
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    if named is not None:
        return Path(named).expanduser() if named.strip() else None
    default = platformdirs.user_config_path("tailerd") / CONFIG_NAME
    return default if default.is_file() else None


def environment_layer(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings given by `TAILERD_*` variables (default: this process's environment)."""
    source = _Environment(Settings)
    if environ is not None:
        source.env_vars = {k.lower(): v for k, v in environ.items()}
    try:
        values = dict(source())
    except SettingsError as exc:  # a table that is not JSON
        raise ConfigError(f"invalid environment: {exc}") from None
    if isinstance(values.get("format_options"), dict):
        values["format_options"] = _typed(values["format_options"])
    return values


def _typed(table: dict[str, Any]) -> dict[str, Any]:
    """Format options are free-form: a value given by a variable of its own
    (`TAILERD_FORMAT_OPTIONS__CODEX__IDLE_CLOSE=5`) is read as JSON when it is JSON (5, true),
    else kept as text."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out[key] = _typed(value)
        elif isinstance(value, str):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", ENV_NESTED).upper()


def flags_layer(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given as flags: every model field set (not None) in `values` (an
    argparse namespace's `vars`); other keys (`json`, `paths`) are not settings."""
    return {k: v for k, v in values.items() if k in Settings.model_fields and v is not None}


Layer = tuple[str, dict[str, Any]]  # (kind: "file" | "env" | "flag", values)


def _merge(layers: list[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """Later layers win; tables (redaction, format_options, otlp_headers) merge key by key.
    Also where each value came from, by dotted key."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(into: dict[str, Any], key: str, value: Any, kind: str, prefix: str) -> None:
        dotted = prefix + key
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = dict(into[key])
            for k, v in value.items():
                put(into[key], str(k), v, kind, dotted + ".")
            return
        into[key] = value
        for other in [o for o in origin if o.startswith(dotted + ".")]:
            del origin[other]
        mark(dotted, value, kind)

    def mark(dotted: str, value: Any, kind: str) -> None:
        origin[dotted] = kind
        if isinstance(value, dict):
            for k, v in value.items():
                mark(f"{dotted}.{k}", v, kind)

    for kind, values in layers:
        for key, value in values.items():
            put(merged, key, value, kind, "")
    return merged, origin


def describe(kind: str, dotted: str, config_file: Path | None) -> str:
    """Where a value came from, for messages: the file, the variable or the flag."""
    if kind == "file":
        return f"in {config_file}"
    if kind == "env":
        return f"from environment variable {env_name(dotted)}"
    return f"from flag {flag_name(dotted.split('.', maxsplit=1)[0])}"


def layered(
    config_file: Path | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, dict[str, str]]:
    """The effective settings, and where each value not left at its default came from
    (dotted key -> "file" | "env" | "flag"). ConfigError: one line naming the source."""
    layers: list[Layer] = []
    if config_file is not None:
        layers.append(("file", load_file(config_file)))
    layers.append(("env", environment_layer(environ)))
    layers.append(("flag", flags_layer(flags)))
    merged, origin = _merge(layers)
    try:
        cfg = Settings(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        where = ".".join(loc) or "config"
        # the deepest key some layer set (`sinks` for the error at `sinks.0`)
        given = (".".join(loc[:n]) for n in range(len(loc), 0, -1))
        key = next((k for k in given if k in origin), where)
        kind = origin.get(key, "file" if config_file else "flag")
        message = first["msg"].removeprefix("Value error, ")
        source = describe(kind, key, config_file)
        if first["type"] == "extra_forbidden" and loc:
            raise ConfigError(f"{unknown_setting(loc)} ({source})") from None
        raise ConfigError(f"invalid setting {where} ({source}): {message}") from None
    _check_combination(cfg, origin, config_file)
    return cfg, origin


def unknown_setting(loc: Sequence[str]) -> str:
    """`unknown setting `heartbeat` (did you mean heartbeat_interval?)` for the dotted key
    `loc` no settings model knows; the suggestions are difflib's closest field names."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:  # the model holding the key (a section such as [otlp])
        field = model.model_fields.get(part)
        inner = None if field is None else field.annotation
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            break
        model = inner
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=2, cutoff=0.6)
    if not close:
        close = [f for f in model.model_fields if f.startswith(loc[-1]) or loc[-1] in f][:2]
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"unknown setting `{'.'.join(loc)}`{hint}"


def _check_combination(cfg: Settings, origin: dict[str, str], config_file: Path | None) -> None:
    """What each field's own validator cannot see: `format_options` against the formats
    (built-in and [[mapping]]) and the options they read, and `agents` with `watch`."""
    from tailerd.formats import check_options
    from tailerd.formats.options import OptionError

    try:
        check_options(cfg.format_options, cfg.mapping)
    except OptionError as exc:
        parts = ["format_options", *exc.key.split(".")]
        given = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
        key = next((k for k in given if k in origin), "format_options")
        source = describe(origin.get(key, "file"), key, config_file)
        raise ConfigError(f"invalid setting format_options.{exc.key} ({source}): {exc}") from None
    if cfg.agents and cfg.watch:
        if origin.get("agents") == "flag" and origin.get("watch") == "flag":
            raise ConfigError(
                "--agents chooses agent homes; with --watch DIR it has nothing to choose: drop one"
            )
        agents = describe(origin.get("agents", "file"), "agents", config_file)
        watch = describe(origin.get("watch", "file"), "watch", config_file)
        raise ConfigError(
            f"agents ({agents}) chooses agent homes; with watch ({watch}) it has nothing to"
            " choose: drop one"
        )


def build(config_file: Path | None, overrides: Mapping[str, Any]) -> Settings:
    """Settings from the layers: defaults < `config_file` < `TAILERD_*` < `overrides` (flags)."""
    return layered(config_file, overrides)[0]
