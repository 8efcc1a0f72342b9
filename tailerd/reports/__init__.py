"""Read-only views for people: `tailerd sessions`, `show`, `status`, `dead-letters`.

They read the local store and the state directory while a daemon may be running, and never
take its lock. `store` reads the local store, `sessions_view` and `show_view` draw it, `state`
reads the state directory.
"""

from __future__ import annotations

from tailerd.reports.state import dead_letters, render_status, status
from tailerd.reports.store import session_spans, sessions

__all__ = ["dead_letters", "render_status", "session_spans", "sessions", "status"]
