"""Intempus as a source: the `cases` table and the remote behind it, declared for the core's sync template."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from syncctl.connectors.intempus import config, fields
from syncctl.connectors.intempus.client import IntempusClient
from syncctl.core.connector import Connector, Page, Resource
from syncctl.core.engine import writable_body
from syncctl.core.http import RateLimiter
from syncctl.core.mirror import Key, MirrorTable, Record, TableSpec

log = logging.getLogger("syncctl.intempus")

CASES = TableSpec(
    name="cases",
    source="intempus",
    key="id",
    key_type="INTEGER",
    known=fields.KNOWN,
    writable=fields.is_writable,
    cursor_field="logical_timestamp",
)


class IntempusRemote:
    """The case resource over IntempusClient, in the shape the sync template drives."""

    def __init__(self, client: IntempusClient) -> None:
        self.client = client

    def list_pages(self, since: Any) -> Iterator[Page]:
        total: int | None = None
        for number, page in enumerate(self.client.iter_pages(since=since)):
            if number == 0:
                total = page.total_count
            # Offset paging that sees the result set change size may have skipped a case.
            unstable = number > 0 and page.total_count != total and not self.client.cursor_paging
            yield Page(
                page.objects, page.total_count, page.logical_timestamp if number == 0 else None, unstable
            )

    def find(self, keys: Sequence[Key], *, canary: Key | None = None) -> list[Record]:
        return self.client.find_cases((int(k) for k in keys), canary=None if canary is None else int(canary))

    def check_write(self) -> None:
        return None  # an Intempus API key that can read can write

    def create(self, body: dict[str, Any], *, creation_id: str | None) -> Key:
        created = self.client.create_case(body, creation_id=creation_id)
        return int(created["id"])

    def update(self, key: Key, body: dict[str, Any]) -> None:
        self.client.update_case(int(key), body)

    def delete(self, key: Key) -> bool:
        return self.client.delete_case(int(key))

    def body(self, table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        return writable_body(table, row, names)


class IntempusConnector(Connector):
    name = "intempus"
    title = "Intempus"
    settings = config.SETTINGS
    tables = (CASES,)
    mass_delete_noun = "cases"

    def load(self, values: Mapping[str, str]) -> config.Settings:
        return config.settings_from(values)

    @contextmanager
    def resources(
        self, settings: config.Settings, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Iterator[list[Resource]]:
        with self.open_remote(settings, sleep=sleep) as remote:
            yield [Resource(CASES, remote, cursor="version", push="two_way")]

    @contextmanager
    def open_remote(
        self, settings: config.Settings, *, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[IntempusRemote]:
        client = IntempusClient(
            settings.api_uri,
            settings.api_user,
            settings.api_key,
            page_size=settings.page_size,
            timeout=(settings.connect_timeout, settings.read_timeout),
            retry=settings.retry,
            limiter=RateLimiter(settings.max_requests_per_minute, sleep=sleep),
            sleep=sleep,
        )
        try:
            yield IntempusRemote(client)
        finally:
            client.close()


CONNECTOR = IntempusConnector()
