"""Destinations, one module each. A new sink is one new file plus one line in SINKS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tailerd.settings import Settings
from tailerd.sinks.base import Sink


def _local(settings: Settings, data_dir: Path) -> Sink:
    import sqlite3

    from tailerd.edges.state_dir import unusable
    from tailerd.errors import StateCorruptError
    from tailerd.sinks.local import DB_FILE, LocalSink

    path = data_dir / DB_FILE
    try:
        return LocalSink(path)
    except sqlite3.OperationalError as exc:  # cannot open or write: a place, not the data
        raise unusable("data dir", data_dir, str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise StateCorruptError(
            f"local store {path} is unreadable ({exc}); move it aside to start a new one"
        ) from None
    except (OSError, sqlite3.Error) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise unusable("data dir", data_dir, str(why)) from None


def _otlp(settings: Settings, data_dir: Path) -> Sink:
    from tailerd.sinks.otlp import OtlpSink, endpoint_from_env, headers_from_env

    headers = {**headers_from_env(), **settings.otlp_headers}
    return OtlpSink(endpoint_from_env(settings.otlp_endpoint), headers)


def _console(settings: Settings, data_dir: Path) -> Sink:
    from tailerd.sinks.console import ConsoleSink

    return ConsoleSink()


def _weave(settings: Settings, data_dir: Path) -> Sink:
    from tailerd.sinks.weave import (
        WeaveSink,
        resolve_api_key,
        resolve_endpoint,
        resolve_project,
    )

    entity, project = resolve_project(settings.project)
    sink = WeaveSink(resolve_endpoint(), resolve_api_key(), entity, project)
    sink.check_credentials()
    return sink


SINKS: dict[str, Callable[[Settings, Path], Sink]] = {
    "local": _local,
    "otlp": _otlp,
    "console": _console,
    "weave": _weave,
}


def build(settings: Settings, data_dir: Path) -> list[Sink]:
    from tailerd.errors import ConfigError

    sinks = []
    for name in dict.fromkeys(settings.sinks):
        if name not in SINKS:
            raise ConfigError(f"sink {name!r} is not available (have: {', '.join(SINKS)})")
        sinks.append(SINKS[name](settings, data_dir))
    return sinks
