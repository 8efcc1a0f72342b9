"""OpenCode (anomalyco/opencode, formerly sst/opencode): one SQLite database per user,
`~/.local/share/opencode/opencode.db` (`$XDG_DATA_HOME/opencode/`; other release channels
`opencode-<channel>.db`), in WAL mode, written by the running agent. Read through
tailerd/edges/agent_db (read-only with its WAL, per-session cursors); this module only turns
rows into turns.

Schema (anomalyco/opencode `packages/opencode/src/session/session.sql.ts`, the Drizzle tables
behind `packages/opencode/migration/`): `session(id, project_id, parent_id, directory, title,
time_created, time_updated, ...)`, `message(id, session_id, time_created, time_updated, data)`
and `part(id, message_id, session_id, time_created, time_updated, data)`, `data` being JSON
(`packages/opencode/src/session/message-v2.ts`): a message's `role` `user` or `assistant`
(with `modelID`, `providerID`, `path.cwd`, `time.completed`, `finish`, `tokens`, `cost`); parts
`text`, `reasoning`, `tool` {callID, tool, state {status, input, output | error, time}},
`step-start`, `step-finish` {reason, tokens {input, output, reasoning, cache {read, write}},
cost}, `file`, `patch`, `subtask`, `compaction`, ... Times are epoch milliseconds.

Shipped: one LLM call per `step-finish` part (an assistant message without one is one call
with the message's tokens), with its tokens (OpenCode's `input` excludes cache reads and
writes; Weave's input_tokens includes them) and OpenCode's own cost as `tailerd.opencode.cost`;
tool calls with input, output, error and times; sub-agents (the `task` tool) are child sessions
(`parent_id`; the tool's `state.metadata.sessionId` names the child) nested under the tool call
as a SubAgentCall, never shipped alone; the session title and `session.directory` as cwd.
A turn ends when its last assistant message finished for a reason other than `tool-calls`
(OpenCode's own loop rule, `packages/opencode/src/session/prompt.ts`), at the next user
message, or after `idle_close` seconds of quiet.

Modules: `turns` builds turns from rows whatever their source; `database` reads them from
`opencode.db`; `storage` is a second format, `opencode-storage`, reading the older JSON
`storage/` tree (OpenCode before 1.2) through the same builder, so both mint the same ids.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import PurePath

from tailerd.edges.agent_db.protocol import DatabaseFormat, SessionQuery, SessionRead
from tailerd.formats.opencode.database import read_session, session_versions
from tailerd.formats.options import IDLE_CLOSE_ONLY

DATABASE_NAME = re.compile(r"opencode(-[A-Za-z0-9._-]+)?\.db")


class OpenCodeFormat(DatabaseFormat):
    name = "opencode"

    def reads_database(self, path: PurePath) -> bool:
        """`<data dir>/opencode/opencode[-<channel>].db`, never Crush's `.opencode/opencode.db`."""
        return path.parent.name == "opencode" and DATABASE_NAME.fullmatch(path.name) is not None

    def session_versions(self, db: sqlite3.Connection) -> dict[str, str]:
        return session_versions(db)

    def read_query(self, query: SessionQuery) -> SessionRead:
        return read_session(query)


FORMAT = OpenCodeFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
