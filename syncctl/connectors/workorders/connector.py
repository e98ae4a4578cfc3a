"""Work orders as a source (system 5): a client's JSON files in one folder, local changes out to another.

A folder-based source writes its own `sync` (see `sync.py`) on the core's run, lock, history and outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncctl.connectors.workorders import config
from syncctl.connectors.workorders.store import WORKORDERS, status_details
from syncctl.connectors.workorders.sync import sync_workorders
from syncctl.core.connector import Connector
from syncctl.core.db import Database
from syncctl.core.engine import RunContext


class WorkordersConnector(Connector):
    name = "workorders"
    title = "Work orders"
    settings = config.SETTINGS
    tables = (WORKORDERS,)
    mass_delete_noun = "work orders"

    def load(self, values: Mapping[str, str]) -> config.Settings:
        return config.settings_from(values)

    def sync(self, ctx: RunContext) -> None:
        sync_workorders(ctx, ctx.config)

    def status(self, ctx_db: Database) -> dict[str, Any]:
        return status_details(ctx_db)


CONNECTOR = WorkordersConnector()
