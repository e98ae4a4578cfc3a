"""Task events as a source: files of the to-do service's events in, `tasks` and `task_events` out.

One-way in: nothing is ever pushed, so the tables collect no local edits. A run is an ingest of the inbox
(`ingest.run_ingest`); `syncctl tasks ingest` runs the same code on the files it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncctl.connectors.tasks import config
from syncctl.connectors.tasks.inbox import Inbox
from syncctl.connectors.tasks.ingest import run_ingest
from syncctl.connectors.tasks.store import TASK_EVENTS, TASKS
from syncctl.core.connector import Connector
from syncctl.core.db import Database
from syncctl.core.engine import RunContext
from syncctl.core.runs import State


class TasksConnector(Connector):
    name = "tasks"
    title = "Task events"
    settings = config.SETTINGS
    tables = (TASKS, TASK_EVENTS)
    mass_delete_noun = "tasks"

    def load(self, values: Mapping[str, str]) -> config.Settings:
        return config.settings_from(values)

    def sync(self, ctx: RunContext) -> None:
        run_ingest(ctx, ctx.config)

    def status(self, ctx_db: Database) -> dict[str, Any]:
        """Files waiting in `rejected/` (as `health` and the metrics expect), and the last rejection."""
        state = State(ctx_db, self.name)
        details: dict[str, Any] = {}
        inbox = state.get("inbox")
        if isinstance(inbox, str) and inbox:
            folder = Inbox(Path(inbox))
            details["rejected_files"] = folder.rejected_count()
            details["rejected_folder"] = str(folder.rejected)
        last = state.get("last_rejected")
        if last:
            details["last_rejected"] = last
        return details


CONNECTOR = TasksConnector()
