"""The Sierra REST client (items, API v6): client-credentials tokens, listings that survive a moving offset
ordering, single reads, the barcode query and partial PUTs.

Retries, rate limiting, deadlines, origin checks and scrubbing come from the core's `HttpClient`.
Knows nothing of SQLite; the shapes it expects are in `sierra-api.md` and `tests/fixtures/sierra/`.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from syncctl.core.errors import NotFoundError, RemoteError, RoleError
from syncctl.core.http import HttpClient, RateLimiter
from syncctl.core.sanitize import Scrubber
from syncctl.core.settings import RetryPolicy

log = logging.getLogger("syncctl.sierra")

Item = dict[str, Any]

# What a listing asks for (sierra-api.md); every read asks for the same set, so a record read to confirm a
# delete or after a write has exactly the columns a listed one has.
ITEM_FIELDS = (
    "id", "updatedDate", "createdDate", "deleted", "bibIds", "location", "status", "barcode", "callNumber",
    "itemType", "fixedFields", "varFields",
)  # fmt: skip
RENEW_BEFORE_S = 60.0  # a token this close to its expiry is replaced before it is sent
STALLED_PAGES = 10  # full pages in a row without one new item: the server ignores the offset
_ITEM_LINK = re.compile(r"/items/(\d+)/?$")


@dataclass
class ListingPage:
    """One answer of a listing, with the items it had not returned before."""

    entries: list[Item]
    total: int | None
    unstable: bool = False  # the answer could not be checked against the previous one (ids not ascending)


class ClientCredentials:
    """OAuth2 client credentials: one bearer token, fetched when first needed, replaced shortly before it
    expires and once after a 401. The token lives only in memory and in the scrubber."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0

    def headers(self) -> Mapping[str, str]:
        if self._token is None or self._clock() >= self._expires_at:
            self._take_new()
        return {"Authorization": f"Bearer {self._token}"}

    def renew(self) -> bool:
        self._take_new()
        return True

    def _take_new(self) -> None:
        token, lifetime = self._fetch()
        self._token = token
        self._expires_at = self._clock() + max(0.0, lifetime - RENEW_BEFORE_S)


def item_id(entry: Any) -> int:
    """An item's id as the integer the mirror keys it by; Sierra sends it as a string of digits."""
    raw = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**63:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    raise ValueError(f"not an item id: {raw!r}")


class SierraClient(HttpClient):
    remote_name = "Sierra"

    def __init__(
        self,
        endpoint: str,
        client_key: str,
        client_secret: str,
        *,
        page_size: int = 1000,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        scrubber = Scrubber()
        scrubber.add(client_secret, user=client_key)
        self.credentials = ClientCredentials(self._fetch_token, clock)
        super().__init__(
            endpoint,
            auth=self.credentials,
            secrets=scrubber,
            timeout=timeout,
            retry=retry,
            limiter=limiter,
            session=session,
            sleep=sleep,
            clock=clock,
        )
        self._basic = base64.b64encode(f"{client_key}:{client_secret}".encode()).decode()
        # One item of overlap between pages needs at least two a page.
        self.page_size = max(2, page_size)
        self.tokens_fetched = 0

    # -- errors and tokens -----------------------------------------------------------------------------

    def auth_failure(self, status: int) -> str:
        return (
            "authentication failed: Sierra refused SIERRA_API_CLIENT_KEY/SIERRA_API_CLIENT_SECRET or the"
            f" token issued for them ({status} from {self.host})"
        )

    def raise_for_status(self, status: int, where: str, detail: str, url: str) -> None:
        if status == 403 and where.startswith("PUT "):
            raise RoleError(
                self.message(
                    f"Sierra does not let this API client update items ({where}: {detail or 'forbidden'});"
                    " nothing was changed"
                )
            )
        super().raise_for_status(status, where, detail, url)

    def _fetch_token(self) -> tuple[str, float]:
        response = self.request(
            "POST",
            self.url("token"),
            data={"grant_type": "client_credentials"},
            authenticated=False,
            headers={"Authorization": f"Basic {self._basic}"},
        )
        data = self.json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise RemoteError(self.message(f"Sierra answered {response.url} without an access_token"))
        lifetime = data.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 3600.0
        self.scrub_token(token)
        self.tokens_fetched += 1
        log.debug("fetched a Sierra access token valid for %ss", lifetime)
        return token, float(lifetime)

    def scrub_token(self, token: str) -> None:
        self.scrub.add(token)

    # -- listings --------------------------------------------------------------------------------------

    def iter_items(self, updated: tuple[str | None, str | None] | None = None) -> Iterator[ListingPage]:
        """Every live item (or those whose updatedDate lies in `updated`, both ends inclusive), in id order.

        Offset paging over a set that changes while it is read shifts: an item deleted (or leaving the
        range) before the offset makes the next page skip one, one added makes it repeat one. Each page
        therefore starts one item early: when its first item is not the last one listed, the listing has
        moved, and the client steps back until the answer starts at or before that item. Items at or
        below the last id listed are dropped, so nothing is skipped and nothing is listed twice.
        """
        params: dict[str, Any] = {"fields": ",".join(ITEM_FIELDS)}
        if updated is not None:
            params["updatedDate"] = f"[{updated[0] or ''},{updated[1] or ''}]"
        yield from self._iter_listing(params)

    def iter_deleted(self, since_day: str | None) -> Iterator[ListingPage]:
        """Deleted items `{id, deletedDate, deleted}`, by day (both ends inclusive), in id order."""
        params: dict[str, Any] = {"deleted": "true"}
        if since_day is not None:
            params["deletedDate"] = f"[{since_day},]"
        yield from self._iter_listing(params)

    def _iter_listing(self, params: dict[str, Any]) -> Iterator[ListingPage]:
        limit = self.page_size
        offset = 0
        last_id: int | None = None
        stalled = 0
        while True:
            entries, total = self._fetch_listing(params, offset, limit)
            ids = self._ids(entries)
            unstable = False
            if last_id is None:
                fresh = entries
            elif ids != sorted(ids):
                # Not in id order after all: only the positional overlap can be checked.
                log.warning("Sierra listed items out of id order; this listing may have missed some")
                unstable = True
                fresh = entries[1:] if ids and ids[0] == last_id else entries
            else:
                if offset > 0 and (not ids or ids[0] > last_id):
                    entries, total, offset = self._step_back(params, offset, limit, last_id)
                    ids = self._ids(entries)
                fresh = [entry for entry, number in zip(entries, ids, strict=True) if number > last_id]
            if fresh or last_id is None:
                yield ListingPage(fresh, total, unstable)
            if len(entries) < limit:
                return
            stalled = 0 if fresh else stalled + 1
            if stalled >= STALLED_PAGES:
                raise RemoteError(
                    self.message(
                        f"Sierra keeps answering items already listed (offset {offset}); stopped so the"
                        " listing cannot loop forever"
                    )
                )
            offset += len(entries) - 1
            last_id = ids[-1] if last_id is None else max(last_id, ids[-1])

    def _step_back(
        self, params: dict[str, Any], offset: int, limit: int, last_id: int
    ) -> tuple[list[Item], int | None, int]:
        """Re-read from earlier offsets until the answer starts at or before `last_id` (or at offset 0)."""
        step = max(1, limit // 10)  # a shift is usually an item or two: a small step finds the place
        log.info("Sierra's listing moved while it was read; re-reading from an earlier offset")
        while True:
            offset = max(0, offset - step)
            entries, total = self._fetch_listing(params, offset, limit)
            ids = self._ids(entries)
            if offset == 0 or (ids and ids[0] <= last_id):
                return entries, total, offset
            step *= 2

    def _ids(self, entries: list[Item]) -> list[int]:
        try:
            return [item_id(entry) for entry in entries]
        except ValueError as exc:
            raise RemoteError(self.message(f"Sierra listed an item without a usable id: {exc}")) from None

    def _fetch_listing(
        self, params: dict[str, Any], offset: int, limit: int
    ) -> tuple[list[Item], int | None]:
        """One listing request. A 404 is an empty answer: some servers say "Record not found" for a
        listing with no entries (a quiet day's updatedDate range, an offset past the end)."""
        url = self.url("items/")
        try:
            response = self.request("GET", url, params={**params, "offset": offset, "limit": limit})
        except NotFoundError:
            log.debug("Sierra answered 404 to a listing at offset %d: taken as no entries", offset)
            return [], None
        data = self.json(response)
        if not isinstance(data, dict) or not isinstance(data.get("entries", []), list):
            raise RemoteError(self.message(f"Sierra answered a listing without 'entries' at {response.url}"))
        entries = data.get("entries", [])
        if not all(isinstance(entry, dict) for entry in entries):
            raise RemoteError(
                self.message(f"Sierra answered a listing with malformed entries at {response.url}")
            )
        total = data.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            total = None
        return entries, total

    # -- single items ----------------------------------------------------------------------------------

    def item_url(self, number: int) -> str:
        return self.url(f"items/{number}")

    def get_item(self, number: int) -> Item:
        """One item with the listing's fields; NotFoundError when Sierra does not have it."""
        response = self.request("GET", self.item_url(number), params={"fields": ",".join(ITEM_FIELDS)})
        data = self.json(response)
        if not isinstance(data, dict):
            raise RemoteError(self.message(f"Sierra answered {response.url} with something not an item"))
        try:
            item_id(data)
        except ValueError:
            raise RemoteError(
                self.message(f"Sierra answered an item without a usable id at {response.url}")
            ) from None
        return data

    def find_item(self, number: int) -> Item | None:
        """The live item, or None when Sierra no longer has it (404, or a record marked deleted)."""
        try:
            item = self.get_item(number)
        except NotFoundError:
            return None
        return None if item.get("deleted") is True else item

    def update_item(self, number: int, body: dict[str, Any]) -> None:
        """A partial PUT (204). Repeating it is harmless: every value in the body is absolute."""
        self.request("PUT", self.item_url(number), body=body)

    def query_barcode(self, barcode: str, *, limit: int = 10) -> list[int]:
        """The ids of the items Sierra finds for an exact barcode (the `b` varField)."""
        query = {
            "target": {"record": {"type": "item"}, "field": {"tag": "b"}},
            "expr": {"op": "equals", "operands": [barcode]},
        }
        url = self.url("items/query")
        try:
            response = self.request("POST", url, params={"offset": 0, "limit": limit}, body=query)
        except NotFoundError:
            return []
        data = self.json(response)
        entries = data.get("entries", []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise RemoteError(self.message(f"Sierra answered a query without 'entries' at {response.url}"))
        found: list[int] = []
        for entry in entries:
            link = entry.get("link") if isinstance(entry, dict) else None
            if not isinstance(link, str):
                raise RemoteError(self.message(f"Sierra answered a query entry without a link at {url}"))
            # The link is followed only on the configured origin: the token goes nowhere else.
            matched = _ITEM_LINK.search(urlsplit(self.follow(response.url, link)).path)
            if matched is None:
                raise RemoteError(self.message(f"Sierra answered a query link that is not an item: {link}"))
            found.append(int(matched.group(1)))
        return found
