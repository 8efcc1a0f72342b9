"""goose (block/goose): one SQLite database per user, `~/.local/share/goose/sessions/sessions.db`
(`$XDG_DATA_HOME/goose/sessions/`, or `$GOOSE_PATH_ROOT/data/sessions/`; see agent_homes.py),
written by the running agent. Read through tailerd/edges/agent_db (read-only, per-session
cursors); this package only turns rows into turns.

Schema (block/goose `crates/goose/src/session/session_manager.rs`, schema version 5, read at
commit 0164300649cf5e4ab327105d9155779ab8bfde4b; the real database in
../shared/fixtures/agents/goose has exactly these tables): `sessions(id "YYYYMMDD_N", name,
description, user_set_name, session_type, working_dir, created_at, updated_at, extension_data,
total_tokens, input_tokens, output_tokens, accumulated_total_tokens, accumulated_input_tokens,
accumulated_output_tokens, schedule_id, recipe_json, user_recipe_values_json)` and
`messages(id AUTOINCREMENT, session_id, role "user"|"assistant", content_json,
created_timestamp (epoch seconds), timestamp, tokens, metadata_json)`. Later schemas add
`sessions.provider_name`, `sessions.model_config_json` (6) and `messages.message_id` (7): used
when present. The JSON shapes are in content.py.

What goose records and what it does not (schema 5; later schemas, read when present, in
brackets: block/goose `session_manager.rs` migrations 6-16):
* No tokens per message (`add_message` never writes `messages.tokens`) and no model per message
  [`metadata_json.inference` names the model and provider of each model message]. Chat spans
  carry `tailerd.usage.recorded = false` and the model when one is known (the message's, else
  `sessions.model_config_json`'s [6]).
* Tokens per session, cumulative (`accumulated_input_tokens`, `accumulated_output_tokens`):
  shipped once, as their growth since the last read, on a synthetic `session_totals` turn
  (the pattern of formats/copilot_cli), when no turn of the session is open.
  [15: `usage_ledger` holds every provider call's model, tokens (cache reads/writes too) and
  goose's own cost: usage.py puts them on the chat spans instead, and no totals turn is sent
  for a session with ledger rows; one with none (older than the ledger) still gets its totals,
  once it is `idle_close` quiet.]
* No cost [13/15: goose's own, from the ledger, as `gen_ai.usage.cost`, `tailerd.cost.source =
  "agent"`]; otherwise tailerd prices the tokens when the model is known.
* Sub-agents run in sessions of their own (`session_type = "sub_agent"`), linked to no tool
  call [15: `parent_session_id` names the calling session, shipped as
  `goose.parent_session_id`]: they are shipped as their own sessions, not nested. Every session
  type is shipped (`user`, `scheduled`, `sub_agent`, `hidden`, `acp`), each turn saying which.
* `working_dir` is `tailerd.cwd`; `name` (older: `description`) is the session title.
"""

from __future__ import annotations

import sqlite3
from pathlib import PurePath

from tailerd.edges.agent_db.protocol import DatabaseFormat, SessionQuery, SessionRead
from tailerd.formats.goose.turns import read_session, session_versions
from tailerd.formats.options import IDLE_CLOSE_ONLY

DATABASE_NAME = "sessions.db"
# the directory above sessions/: <data dir>/goose, or $GOOSE_PATH_ROOT/data
DATA_DIRS = frozenset({"goose", "data"})


class GooseFormat(DatabaseFormat):
    name = "goose"

    def reads_database(self, path: PurePath) -> bool:
        """`.../goose/sessions/sessions.db` or `$GOOSE_PATH_ROOT/data/sessions/sessions.db`."""
        return (
            path.name == DATABASE_NAME
            and path.parent.name == "sessions"
            and path.parent.parent.name in DATA_DIRS
        )

    def session_versions(self, db: sqlite3.Connection) -> dict[str, str]:
        return session_versions(db)

    def read_query(self, query: SessionQuery) -> SessionRead:
        return read_session(query)


FORMAT = GooseFormat()
# The options this format reads (`[format_options.<name>]`), checked by formats/options.py
OPTIONS = IDLE_CLOSE_ONLY
