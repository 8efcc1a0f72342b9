"""This host's name, as it goes into turn ids (formats.base.Source.local_key) and `host.name`,
and whether spans carry weave's host details.

The kernel's host name unless the operator set `host_name` (TAILERD_HOST_NAME): a pod's host
name changes whenever it is replaced, and ids minted from it would change with it.

weave puts the OS and Python of the host on every span (`weave.os_name`, `weave.os_version`,
`weave.os_release`; `weave.sys_version`, `weave.client_version`, `weave.source`). With
`host_details = false` it does not: weave reads WEAVE_CAPTURE_SYSTEM_INFO and
WEAVE_CAPTURE_CLIENT_INFO (weave/trace/settings.py, weave/utils/capture_info.py).
"""

from __future__ import annotations

import functools
import os
import socket

_configured = ""


def configure(name: str, details: bool = True) -> None:
    """Use `name` (empty: the kernel's); `details`: let weave add the host's OS and Python to
    spans. Called once, from the command line, before any turn."""
    global _configured  # noqa: PLW0603 - one process, one host name
    _configured = name.strip()
    if not details:
        os.environ["WEAVE_CAPTURE_SYSTEM_INFO"] = "false"
        os.environ["WEAVE_CAPTURE_CLIENT_INFO"] = "false"


@functools.cache
def _kernel() -> str:
    return socket.gethostname()


def name() -> str:
    return _configured or _kernel()
