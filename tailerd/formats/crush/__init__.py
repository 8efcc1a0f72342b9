"""Crush (charmbracelet/crush) and its predecessor, the Go OpenCode (opencode-ai/opencode): one
SQLite database per project, `.crush/crush.db` (Crush) or `.opencode/opencode.db` (opencode-go),
in WAL mode, written by the running agent. Read through tailerd/edges/agent_db (read-only with
its WAL, per-session cursors); this module only turns rows into turns.

Schema (opencode-ai/opencode `internal/db/migrations/20250424200609_initial.sql`, kept by Crush
in charmbracelet/crush `internal/db/migrations/20250424200609_initial.sql`):
`sessions(id, parent_session_id, title, message_count, prompt_tokens, completion_tokens, cost,
updated_at, created_at)` and `messages(id, session_id, role, parts, model, created_at,
updated_at, finished_at)`; later Crush migrations add columns (`messages.provider`,
`sessions.workspace_cwd`, ...), used when present. `parts` is a JSON array of
`{"type": ..., "data": ...}` (charmbracelet/crush `internal/message/content.go`): `text`
{text}, `reasoning` {thinking}, `tool_call` {id, name, input}, `tool_result` {tool_call_id,
content, is_error}, `finish` {reason, time}, `image_url`, `binary`.

What the agent records and what it does not (cost.py): no tokens per call, and per session only
the cost (cumulative, sub-agents' included) and the LAST call's token counts (not totals). Chat
spans carry `tailerd.usage.recorded = false`; the session's cost is shipped once, as its growth
since the last read, on a session-totals chat span of the last turn read (or of a synthetic
`session_totals` turn when it grew with no new turn), as the agent's own (`tailerd.cost.source =
"agent"`). Both agents' databases are labelled agent `crush` (`opencode` is the TypeScript
OpenCode, formats/opencode). Times are unix seconds (the schema's comments say milliseconds;
both are read). The working directory is not stored by opencode-go: the project directory
holding `.opencode/` is the agent's working directory (its data dir is relative to it), so
`tailerd.cwd` is that directory (or Crush's `sessions.workspace_cwd` when present). Sub-agents
(the `agent` tool) are child sessions whose id is the tool call's id (`parent_session_id` = the
calling session): they are nested under that tool call as a SubAgentCall, never shipped alone.
"""

from __future__ import annotations

import sqlite3
from pathlib import PurePath

from tailerd.edges.agent_db.protocol import DatabaseFormat, SessionQuery, SessionRead
from tailerd.formats.crush.turns import read_session, session_versions
from tailerd.formats.options import IDLE_CLOSE_ONLY

DATABASE_NAMES = {(".opencode", "opencode.db"), (".crush", "crush.db")}


class CrushFormat(DatabaseFormat):
    name = "crush"

    def reads_database(self, path: PurePath) -> bool:
        return (path.parent.name, path.name) in DATABASE_NAMES

    def session_versions(self, db: sqlite3.Connection) -> dict[str, str]:
        return session_versions(db)

    def read_query(self, query: SessionQuery) -> SessionRead:
        return read_session(query)


FORMAT = CrushFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
