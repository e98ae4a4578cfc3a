"""The grid as a source: `grid_components` and `grid_measurements`, and the remote behind each, declared for
the core's sync template (push local edits, then pull; full listings detect deletes, incremental ones list
by `version_gt`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from syncctl.connectors.grid import config
from syncctl.connectors.grid.client import GridClient
from syncctl.connectors.grid.tables import COMPONENTS, MEASUREMENTS, TABLES, open_tables
from syncctl.core.connector import Connector, Page, Resource
from syncctl.core.engine import RunContext, sync_resources, writable_body
from syncctl.core.mirror import Key, MirrorTable, Record

log = logging.getLogger("syncctl.grid")

SPOT_CHECKS = 8  # records gone from a complete listing that are read one by one before the rest are trusted


class GridRemote:
    """One grid resource (`components` or `measurements`) in the shape the sync template drives."""

    def __init__(self, client: GridClient, resource: str) -> None:
        self.client = client
        self.resource = resource
        # The highest id a complete full listing returned, or None while no listing has completed.
        self.listed_through: int | None = None

    def list_pages(self, since: Any) -> Iterator[Page]:
        self.listed_through = None
        highest = 0
        for number, page in enumerate(self.client.iter_pages(self.resource, version_gt=since)):
            if page.records:
                highest = max(highest, page.records[-1]["id"])
            yield Page(page.records, None, page.max_version if number == 0 else None)
        if since is None:
            self.listed_through = highest

    def find(self, keys: Sequence[Key], *, canary: Key | None = None) -> list[Record]:
        """The records among `keys` the API still has.

        After a complete full listing (`canary` given: the engine is confirming deletes) the listing itself
        is the evidence for the ids it passed: it pages by an id cursor, not by offsets, and ids are never
        reused, so a record that existed while the listing ran was returned. A few of those ids are still
        read one by one, and if any of them exists after all, every id is. Ids above the listing's last one
        (created since) are always read. So deleting a component with 30,000 measurements costs a handful
        of requests, not 30,000.
        """
        wanted = sorted({int(k) for k in keys})
        through = self.listed_through
        if canary is None or through is None or len(wanted) <= SPOT_CHECKS:
            return self._read_each(wanted)
        passed = [k for k in wanted if k <= through]
        later = [k for k in wanted if k > through]
        step = max(1, len(passed) // SPOT_CHECKS)
        sample = passed[::step][:SPOT_CHECKS]
        found = self._read_each(sample)
        if found:
            log.warning(
                "%d %s missing from a complete listing still exist; reading each of the %d missing",
                len(found),
                self.resource,
                len(passed),
            )
            return self._read_each(passed + later)
        return self._read_each(later)

    def _read_each(self, keys: Sequence[int]) -> list[Record]:
        found = (self.client.find(self.resource, key) for key in keys)
        return [record for record in found if record is not None]

    def check_write(self) -> None:
        self.client.check_write()

    def create(self, body: dict[str, Any], *, creation_id: str | None) -> Key:
        created = self.client.create(self.resource, [body])
        return int(created[0]["id"])

    def update(self, key: Key, body: dict[str, Any]) -> None:
        self.client.update(self.resource, int(key), body)

    def delete(self, key: Key) -> bool:
        return self.client.delete(self.resource, int(key))

    def body(self, table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        return writable_body(table, row, names)


class GridConnector(Connector):
    name = "grid"
    title = "the grid API"
    settings = config.SETTINGS
    tables = TABLES
    mass_delete_noun = "records"

    def load(self, values: Mapping[str, str]) -> config.Settings:
        return config.settings_from(values)

    def sync(self, ctx: RunContext) -> None:
        """The core's template, once the tables and the KPI report's daily sums are in place."""
        open_tables(ctx.db, keep_deleted=ctx.options.keep_deleted)
        with self.resources(ctx.config, ctx.clock, ctx.sleep) as resources:
            sync_resources(ctx, resources)

    @contextmanager
    def resources(
        self, settings: config.Settings, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Iterator[list[Resource]]:
        # One client for both resources: one token per run.
        with self.open_client(settings, sleep=sleep) as client:
            yield [
                Resource(COMPONENTS, GridRemote(client, "components"), cursor="version", push="two_way"),
                Resource(MEASUREMENTS, GridRemote(client, "measurements"), cursor="version", push="two_way"),
            ]

    @contextmanager
    def open_client(
        self, settings: config.Settings, *, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[GridClient]:
        client = GridClient.from_settings(settings, sleep=sleep)
        try:
            yield client
        finally:
            client.close()


CONNECTOR = GridConnector()
