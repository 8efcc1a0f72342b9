"""This host's name, as it goes into turn ids (formats.base.Source.local_key) and `host.name`.

The kernel's host name unless the operator set `host_name` (TAILERD_HOST_NAME): a pod's host
name changes whenever it is replaced, and ids minted from it would change with it.
"""

from __future__ import annotations

import functools
import socket

_configured = ""


def configure(name: str) -> None:
    """Use `name` (empty: the kernel's). Called once, from the command line, before any turn."""
    global _configured  # noqa: PLW0603 - one process, one host name
    _configured = name.strip()


@functools.cache
def _kernel() -> str:
    return socket.gethostname()


def name() -> str:
    return _configured or _kernel()
