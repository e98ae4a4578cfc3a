"""The Intempus REST client: ApiKey auth, cursor paging with an offset fallback, `id__in` reads.

Retries, rate limiting, deadlines, origin checks and scrubbing come from the core's `HttpClient`.
Knows nothing of SQLite.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from syncctl.connectors.intempus.config import Settings
from syncctl.core.errors import NotFoundError, RemoteError, ValidationError
from syncctl.core.http import (
    HttpClient,
    RateLimiter,
    StaticAuth,
    TransientError,
    describe_error_body,
)
from syncctl.core.sanitize import Scrubber
from syncctl.core.settings import RetryPolicy

__all__ = ["Case", "IntempusClient", "Page", "RateLimiter", "TransientError", "describe_error_body"]

log = logging.getLogger("syncctl.client")

Case = dict[str, Any]
ID_BATCH = 100
MAX_TIMESTAMP = 2**63 - 1


@dataclass
class Page:
    objects: list[Case]
    url: str
    logical_timestamp: int | None  # the response's Logical-Timestamp header: highest committed counter
    total_count: int | None = None


class IntempusClient(HttpClient):
    remote_name = "Intempus"

    def __init__(
        self,
        base_uri: str,
        user: str,
        key: str,
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
        scrubber.add(key, user=user)
        super().__init__(
            base_uri,
            auth=StaticAuth({"Authorization": f"ApiKey {user}:{key}"}),
            secrets=scrubber,
            timeout=timeout,
            retry=retry,
            limiter=limiter,
            session=session,
            sleep=sleep,
            clock=clock,
        )
        self.page_size = page_size
        self.cursor_paging: bool | None = None  # unknown until the server answers

    @classmethod
    def from_settings(cls, settings: Settings, *, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> IntempusClient:  # fmt: skip
        return cls(
            settings.api_uri,
            settings.api_user,
            settings.api_key,
            page_size=settings.page_size,
            timeout=(settings.connect_timeout, settings.read_timeout),
            retry=settings.retry,
            limiter=RateLimiter(settings.max_requests_per_minute, clock=clock, sleep=sleep),
            sleep=sleep,
        )

    def auth_failure(self, status: int) -> str:
        return (
            "authentication failed: Intempus refused INTEMPUS_API_USER/INTEMPUS_API_KEY "
            f"({status} from {self.host})"
        )

    def raise_for_status(self, status: int, where: str, detail: str, url: str) -> None:
        if status == 404:
            raise NotFoundError(self.message(f"not found: {where}"), status=status, url=url)
        if status == 400:
            raise ValidationError(
                self.message(f"Intempus refused {where}: {detail or 'bad request'}"), status=status, url=url
            )

    def _json(self, response: requests.Response) -> Any:
        return self.json(response)

    def _case(self, data: Any, url: str) -> Case:
        if not isinstance(data, dict) or not isinstance(data.get("id"), int) or isinstance(data["id"], bool):
            raise RemoteError(
                self.message(f"Intempus answered a case without an integer id at {url}"), url=url
            )
        if not 0 < data["id"] <= MAX_TIMESTAMP:
            raise RemoteError(self.message(f"Intempus answered a case id out of range at {url}"), url=url)
        return data

    # -- listing ---------------------------------------------------------------------------------------

    def iter_pages(self, *, since: int | None = None) -> Iterator[Page]:
        """Yield list pages one at a time, following `meta.next`; never holds more than one page."""
        params: dict[str, Any] = {"limit": self.page_size}
        if since is not None:
            params["logical_timestamp__gt"] = since
        first_url = f"{self.base_uri}/case/"
        if self.cursor_paging is not False:
            try:
                page, next_url = self._fetch_page(first_url, {**params, "pagination_type": "cursor"})
                self.cursor_paging = True
            except ValidationError:
                log.info("Intempus refused cursor paging; falling back to offset paging")
                self.cursor_paging = False
        if self.cursor_paging is False:
            page, next_url = self._fetch_page(first_url, {**params, "offset": 0})
        yield page
        seen_urls = {page.url}
        while next_url:
            if next_url in seen_urls:
                raise RemoteError(self.message(f"Intempus paging loops back to {next_url}"), url=next_url)
            seen_urls.add(next_url)
            page, next_url = self._fetch_page(next_url, None)
            yield page

    def _fetch_page(self, url: str, params: dict[str, Any] | None) -> tuple[Page, str | None]:
        response = self.request("GET", url, params=params)
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise RemoteError(
                self.message(f"Intempus answered a list without 'objects' at {response.url}"),
                url=response.url,
            )
        objects = [self._case(item, response.url) for item in data["objects"]]
        meta = data["meta"] if isinstance(data.get("meta"), dict) else {}
        next_path = meta.get("next")
        if next_path is not None and not isinstance(next_path, str):
            raise RemoteError(
                self.message(f"Intempus answered a malformed meta.next at {response.url}"), url=response.url
            )
        # Never send the API key anywhere but the configured scheme, host and port.
        next_url = self.follow(response.url, next_path) if next_path else None
        total = meta.get("total_count")
        total = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None
        page = Page(
            objects, response.url, logical_timestamp(response.headers.get("Logical-Timestamp", "")), total
        )
        return page, next_url

    def find_cases(self, ids: Iterable[int], *, canary: int | None = None) -> list[Case]:
        """The cases among `ids` that Intempus still has, read with `id__in` listings in batches.

        An id missing from an answer counts as gone only when the answer is trustworthy: with a
        `canary` (an id known to exist), the canary must come back; without one, each missing id is
        confirmed with its own GET. A refused or ignored filter falls back to one GET per id.
        """
        wanted = sorted(set(ids))
        found: list[Case] = []
        for start in range(0, len(wanted), ID_BATCH):
            found.extend(self._find_batch(wanted[start : start + ID_BATCH], canary))
        return found

    def _find_batch(self, batch: list[int], canary: int | None) -> list[Case]:
        asked = sorted({*batch, canary}) if canary is not None else batch
        params = {"id__in": ",".join(map(str, asked)), "limit": len(asked)}
        try:
            page, next_url = self._fetch_page(f"{self.base_uri}/case/", params)
        except ValidationError:
            page, next_url = None, None
        answered = {case["id"]: case for case in page.objects} if page else {}
        if page is None or next_url is not None or not answered.keys() <= set(asked):
            missing = batch  # the filter was refused or ignored: ask for each id on its own
        elif canary is not None and canary not in answered:
            missing = batch  # the answer left out a case that exists: it cannot prove anything gone
        else:
            missing = [] if canary is not None else [i for i in batch if i not in answered]
        confirmed = (self.find_case(case_id) for case_id in missing)
        kept = [answered[i] for i in batch if i in answered and i not in missing]
        return kept + [case for case in confirmed if case is not None]

    # -- one case --------------------------------------------------------------------------------------

    def case_url(self, case_id: int) -> str:
        return f"{self.base_uri}/case/{case_id}/"

    def get_case(self, case_id: int) -> Case:
        url = self.case_url(case_id)
        return self._case(self._json(self.request("GET", url)), url)

    def find_case(self, case_id: int) -> Case | None:
        try:
            return self.get_case(case_id)
        except NotFoundError:
            return None

    def create_case(self, fields: dict[str, Any], *, creation_id: str | None) -> Case:
        """POST a case; retried only with a `creation_id`, which makes a repeated POST safe."""
        body = dict(fields)
        if creation_id is not None:
            body["creation_id"] = creation_id
        url = f"{self.base_uri}/case/"
        response = self.request("POST", url, body=body, retryable=creation_id is not None)
        return self._case(self._json(response), url)

    def update_case(self, case_id: int, fields: dict[str, Any]) -> Case:
        url = self.case_url(case_id)
        return self._case(self._json(self.request("PUT", url, body=fields)), url)

    def delete_case(self, case_id: int) -> bool:
        """Delete one case; False when Intempus no longer had it (which counts as done)."""
        try:
            self.request("DELETE", self.case_url(case_id))
        except NotFoundError:
            return False
        return True


def logical_timestamp(header: str) -> int | None:
    """The Logical-Timestamp header as a counter, or None when it is not one ("²", "1e23", 2**70...)."""
    text = header.strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_TIMESTAMP else None
