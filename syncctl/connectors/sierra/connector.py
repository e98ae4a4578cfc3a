"""Sierra as a source: the `sierra_items` table and the item resource behind it, declared for the core's sync
template (a timestamp cursor on updatedDate, deletes listed by day, local edits queued and pushed in
limited batches).
"""

from __future__ import annotations

import calendar
import datetime
import json
import logging
import math
import re
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from syncctl.connectors.sierra import config, items
from syncctl.connectors.sierra.client import ListingPage, SierraClient, item_id
from syncctl.core.connector import Connector, Page, Resource
from syncctl.core.db import Database
from syncctl.core.errors import RemoteError
from syncctl.core.http import RateLimiter
from syncctl.core.mirror import Key, MirrorTable, Record, TableSpec

log = logging.getLogger("syncctl.sierra")

ITEMS = TableSpec(
    name="sierra_items",
    source="sierra",
    key="id",
    key_type="INTEGER",
    known={
        "id": "int",
        "updatedDate": "str",
        "createdDate": "str",
        "deleted": "bool",
        "bibIds": "json",
        "location": "json",
        "status": "json",
        "barcode": "str",
        "callNumber": "str",
        "itemType": "str",
        "fixedFields": "json",
        "varFields": "json",
    },
    writable=items.is_writable,
    cursor_field="updatedDate",
    indexes=(("barcode",),),
)

# Seconds added to a listing's duration when re-reading what changed during it (clock skew, rounding).
CATCH_UP_MARGIN_S = 5
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def stamp_number(text: Any) -> int:
    """An updatedDate as a comparable integer (YYYYMMDDhhmmss); -1 for anything else."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        return -1
    return int(text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19])


def shift_timestamp(text: str, seconds: int) -> str:
    second = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) + seconds
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


class Seen:
    """The versions (id, updatedDate) a listing returned, 16 bytes each, so the catch-up after it can tell
    a newer version from one already listed without holding a million records."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._stamps = array("q")
        self._unordered: dict[int, int] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        number, stamp = record["id"], stamp_number(record.get("updatedDate"))
        if not self._ids or number > self._ids[-1]:
            self._ids.append(number)
            self._stamps.append(stamp)
        else:
            self._unordered[number] = stamp

    def has(self, record: Mapping[str, Any]) -> bool:
        number, stamp = record["id"], stamp_number(record.get("updatedDate"))
        if number in self._unordered:
            return self._unordered[number] == stamp
        position = bisect_left(self._ids, number)
        return position < len(self._ids) and self._ids[position] == number and self._stamps[position] == stamp


class SierraRemote:
    """The item resource over SierraClient, in the shape the sync template drives."""

    def __init__(
        self,
        client: SierraClient,
        rules: items.UpdateRules | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.rules = rules or items.UpdateRules()
        self._clock = clock
        self._current: dict[int, Record] = {}  # the items as the last `find` read them: the PUT's "before"
        self._server_time: str | None = None  # the latest updatedDate known: Sierra's clock, roughly

    # -- pulling ---------------------------------------------------------------------------------------

    def list_pages(self, since: Any) -> Iterator[Page]:
        """Items updated at or after `since` (every item for None), then a catch-up of what changed while
        they were listed.

        The listing is in id order, the cursor is by updatedDate: an item updated during the listing
        after its page was read keeps its old version here, while items updated after it, further on,
        carry the cursor past its new updatedDate. Every such update happened after the listing began,
        so the client re-reads the updatedDate range [newest seen - listing time - margin, newest seen]
        and adds any newer version to the last page (which always brings new items, so the template
        takes it as progress). Updates after the newest seen are left to the next run's boundary.
        """
        if since is not None and not _TIMESTAMP.fullmatch(str(since)):
            log.warning("the stored Sierra cursor %r is not a timestamp; listing every item", str(since)[:40])
            since = None
        started = self._clock()
        seen = Seen()
        newest: str | None = None
        held: Page | None = None
        first = True
        for listing in self.client.iter_items(None if since is None else (since, None)):
            records = [items.to_record(entry, item_id(entry)) for entry in listing.entries]
            for record in records:
                seen.add(record)
                stamp = record.get("updatedDate")
                if stamp_number(stamp) > stamp_number(newest):
                    newest = stamp
            if held is not None:
                yield held
            held = Page(records, self._total(listing) if first else None, unstable=listing.unstable)
            first = False
        self._server_time = max(filter(None, (since, newest, self._server_time)), default=None)
        if held is None:
            return
        if newest is not None and held.records:
            elapsed = math.ceil(max(0.0, self._clock() - started))
            start = shift_timestamp(newest, -(elapsed + CATCH_UP_MARGIN_S))
            if since is not None and stamp_number(start) < stamp_number(since):
                start = str(since)
            self._catch_up(held, seen, start, newest)
        yield held

    def _total(self, listing: ListingPage) -> int | None:
        """The listing's size for progress; None when `total` may be this answer's own count (a reported
        quirk: a full first page whose total equals its length could be either)."""
        total, count = listing.total, len(listing.entries)
        if total is None or (total == count and count >= self.client.page_size):
            return None
        return total

    def _catch_up(self, held: Page, seen: Seen, start: str, end: str) -> None:
        positions = {record["id"]: n for n, record in enumerate(held.records)}
        added = 0
        for listing in self.client.iter_items((start, end)):
            held.unstable = held.unstable or listing.unstable
            for entry in listing.entries:
                record = items.to_record(entry, item_id(entry))
                if seen.has(record):
                    continue
                seen.add(record)
                added += 1
                if record["id"] in positions:
                    held.records[positions[record["id"]]] = record
                else:
                    positions[record["id"]] = len(held.records)
                    held.records.append(record)
        if added:
            log.info("%d item(s) changed while Sierra was listed; their new versions are stored", added)

    def list_deleted(self, since: Any) -> Iterator[list[Key]]:
        """Ids Sierra lists as deleted on or after the day `since` (every deleted item for None)."""
        day = str(since) if since is not None and _DAY.fullmatch(str(since)) else None
        for listing in self.client.iter_deleted(day):
            yield [item_id(entry) for entry in listing.entries]

    def deleted_marker(self) -> str | None:
        """The day the next deleted listing starts from: the day before Sierra's latest known time.

        deletedDate is a day in the server's own time zone while updatedDate is UTC; a day's margin keeps
        every time zone's "today" in the next listing, and re-reading a day of deletes costs little.
        """
        if self._server_time is None:
            return None
        day = datetime.date.fromisoformat(self._server_time[:10]) - datetime.timedelta(days=1)
        return day.isoformat()

    def find(self, keys: Sequence[Key], *, canary: Key | None = None) -> list[Record]:
        """The live items among `keys`, each read on its own (the documented single-item read)."""
        found: list[Record] = []
        self._current = {}
        for key in keys:
            entry = self.client.find_item(int(key))
            if entry is not None:
                record = items.to_record(entry, item_id(entry))
                self._current[record["id"]] = record
                found.append(record)
        return found

    # -- pushing ---------------------------------------------------------------------------------------

    def check_write(self) -> None:
        return None  # Sierra says 403 to a PUT the API client may not make; that is reported then

    def create(self, body: dict[str, Any], *, creation_id: str | None) -> Key:
        raise RemoteError("Sierra items cannot be created from syncctl; the library system owns them")

    def update(self, key: Key, body: dict[str, Any]) -> None:
        if not body:
            log.info("nothing of the local change to item %s can be written to Sierra", key)
            return
        self.client.update_item(int(key), body)

    def delete(self, key: Key) -> bool:
        raise RemoteError("Sierra items cannot be deleted from syncctl; the library system owns them")

    def body(self, table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        values = {name: table.to_api(name, value) for name, value in row.items()}
        chosen = (
            list(names) if names is not None else [n for n in items.WRITABLE if values.get(n) is not None]
        )
        number = int(row[table.key])
        current = self._current.get(number)
        if current is None:
            current = self.client.find_item(number)
        return items.put_body(values, chosen, current, self.rules, edit_base(table, number))


def edit_base(table: MirrorTable, number: int) -> Record | None:
    """The item as it was mirrored when the queued edit was made (the outbox's merge base), as JSON values;
    None when unknown. Read-only use of the core's outbox, for the fixed-field diff in `items.put_body`."""
    found = table.db.scalar(
        "SELECT base FROM _syncctl_pending WHERE table_name = ? AND record_id = ?", (table.name, number)
    )
    try:
        base = json.loads(found) if isinstance(found, str) else None
    except ValueError:
        return None
    if not isinstance(base, dict):
        return None
    return {name: table.to_api(name, value) for name, value in base.items()}


class SierraConnector(Connector):
    name = "sierra"
    title = "Sierra"
    settings = config.SETTINGS
    tables = (ITEMS,)
    mass_delete_noun = "items"

    def load(self, values: Mapping[str, str]) -> config.Settings:
        return config.settings_from(values)

    @contextmanager
    def resources(
        self, settings: config.Settings, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Iterator[list[Resource]]:
        with self.open_remote(settings, sleep=sleep, clock=clock) as remote:
            yield [
                Resource(
                    ITEMS,
                    remote,
                    cursor="timestamp",
                    push="queued",
                    push_limit=settings.batch_limit,
                    deletes_incremental=True,
                )
            ]

    @contextmanager
    def open_remote(
        self,
        settings: config.Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], datetime.date] = datetime.date.today,
    ) -> Iterator[SierraRemote]:
        client = SierraClient(
            settings.endpoint,
            settings.client_key,
            settings.client_secret,
            page_size=settings.page_size,
            timeout=(settings.connect_timeout, settings.read_timeout),
            retry=settings.retry,
            limiter=RateLimiter(settings.max_requests_per_minute, clock=clock, sleep=sleep),
            sleep=sleep,
            clock=clock,
        )
        rules = items.UpdateRules(
            set_invda=settings.set_invda,
            set_iuse3=settings.set_iuse3,
            invda_field=settings.invda_field,
            today=today,
        )
        try:
            yield SierraRemote(client, rules, clock=clock)
        finally:
            client.close()

    def status(self, ctx_db: Database) -> dict[str, Any]:
        from syncctl.connectors.sierra.queue import queue_status

        return queue_status(ctx_db)


CONNECTOR = SierraConnector()
