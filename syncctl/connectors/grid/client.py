"""The grid data API over HTTP (`grid-api.md`): an OAuth2 password-flow token with scopes, cursor listings,
one-object reads and writes, and batches of measurements whose lost answers are checked, not repeated.

Retries, rate limiting, deadlines, origin checks and scrubbing come from the core's `HttpClient`. The token
is asked for once per client (one run or one command), renewed once after a 401, held in memory only, and
scrubbed from every message like the password. Knows nothing of SQLite.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from syncctl.connectors.grid import fields
from syncctl.connectors.grid.config import Settings
from syncctl.core.errors import NotFoundError, RemoteError, RoleError
from syncctl.core.http import HttpClient, RateLimiter, TransientError
from syncctl.core.sanitize import Scrubber
from syncctl.core.settings import RetryPolicy

log = logging.getLogger("syncctl.grid")

Record = dict[str, Any]
SCOPES = ("user", "manager")  # ask for every scope a run may need: the answer says which were granted
WRITE_SCOPE = "manager"
MAX_BATCH = 1000  # measurements per POST: the API's limit, and all-or-nothing


@dataclass
class ListPage:
    records: list[Record]
    max_version: int  # the highest version committed when the listing began
    next: str | None


class PasswordToken:
    """The `Auth` of the core's HttpClient for the grid: a bearer token from the password grant.

    Fetched on first use (a token request is not a write, so `check_write` may cause it), renewed when the
    client meets a 401; a token that was refused right after it was issued is not asked for again.
    """

    def __init__(self, fetch: Callable[[], tuple[str, frozenset[str]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self.granted: frozenset[str] | None = None
        self.fetched = 0  # how many tokens this client asked for

    def headers(self) -> Mapping[str, str]:
        if self._token is None:
            self._obtain()
        return {"Authorization": f"Bearer {self._token}"}

    def renew(self) -> bool:
        if self._token is None:
            return False  # the token request itself failed: asking again would fail the same way
        self._obtain()
        return True

    def scopes(self) -> frozenset[str]:
        if self.granted is None:
            self._obtain()
        assert self.granted is not None
        return self.granted

    def _obtain(self) -> None:
        self._token = None
        token, granted = self._fetch()
        self.fetched += 1
        self._token, self.granted = token, granted


class GridClient(HttpClient):
    remote_name = "the grid API"

    def __init__(
        self,
        base_uri: str,
        user: str,
        password: str,
        *,
        page_size: int = 10_000,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        scrubber = Scrubber()
        scrubber.add(password, user=user)
        self.token = PasswordToken(self._request_token)
        super().__init__(
            base_uri,
            auth=self.token,
            secrets=scrubber,
            timeout=timeout,
            retry=retry,
            limiter=limiter,
            session=session,
            sleep=sleep,
            clock=clock,
        )
        self.user = user
        self._password = password
        self.page_size = page_size

    @classmethod
    def from_settings(cls, settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> GridClient:
        return cls(
            settings.api_uri,
            settings.api_user,
            settings.api_password,
            page_size=settings.page_size,
            timeout=(settings.connect_timeout, settings.read_timeout),
            retry=settings.retry,
            limiter=RateLimiter(settings.max_requests_per_minute, sleep=sleep),
            sleep=sleep,
        )

    # -- the token -----------------------------------------------------------------------------------------

    def _request_token(self) -> tuple[str, frozenset[str]]:
        form = {
            "grant_type": "password",
            "username": self.user,
            "password": self._password,
            "scope": " ".join(SCOPES),
        }
        url = self.url("token")
        response = self.request("POST", url, data=form, authenticated=False)
        data = self.json(response)
        token = data.get("access_token") if isinstance(data, dict) else None
        kind = data.get("token_type", "bearer") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not isinstance(kind, str) or kind.lower() != "bearer":
            raise RemoteError(self.message(f"the grid API answered no bearer token at {url}"), url=url)
        self.scrub.add(token)
        scope = data.get("scope")
        # RFC 6749 5.1: a token answer without `scope` granted what was asked for.
        granted = frozenset(scope.split()) if isinstance(scope, str) else frozenset(SCOPES)
        log.info("grid token for %s granted scopes: %s", self.user, " ".join(sorted(granted)) or "none")
        return token, granted

    def auth_failure(self, status: int) -> str:
        return (
            "authentication failed: the grid API refused GRID_API_USER/GRID_API_PASSWORD "
            f"({status} from {self.host})"
        )

    def check_write(self) -> None:
        """RoleError (exit 77) unless the token carries the `manager` scope; only a token request is sent."""
        granted = self.token.scopes()
        if WRITE_SCOPE not in granted:
            shown = " ".join(sorted(granted)) or "none"
            raise RoleError(
                f"the grid account {self.user!r} was not granted the {WRITE_SCOPE} scope (granted: {shown}),"
                " so it may read but not write; nothing was sent"
            )

    def raise_for_status(self, status: int, where: str, detail: str, url: str) -> None:
        if status == 403:
            raise RoleError(
                self.message(
                    f"the grid API refused {where}: {detail or 'Not enough permissions'}"
                    f" (the account {self.user!r} lacks the scope it needs)"
                )
            )
        super().raise_for_status(status, where, detail, url)

    # -- reading ---------------------------------------------------------------------------------------------

    def _record(self, data: Any, url: str) -> Record:
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("id"), int)
            or isinstance(data["id"], bool)
            or not 0 < data["id"] <= fields.MAX_ID
        ):
            raise RemoteError(self.message(f"the grid API answered an object without a valid id at {url}"))
        return data

    def list_page(self, resource: str, *, version_gt: int | None, after: str | None, limit: int) -> ListPage:
        params: dict[str, Any] = {"limit": limit}
        if version_gt is not None:
            params["version_gt"] = version_gt
        if after is not None:
            params["after"] = after
        url = self.url(resource)
        response = self.request("GET", url, params=params)
        data = self.json(response)
        listed = data.get("data") if isinstance(data, dict) else None
        top = data.get("max_version") if isinstance(data, dict) else None
        following = data.get("next") if isinstance(data, dict) else None
        if (
            not isinstance(listed, list)
            or not isinstance(top, int)
            or isinstance(top, bool)
            or not 0 <= top <= fields.MAX_ID
            or not (following is None or (isinstance(following, str) and following))
        ):
            raise RemoteError(
                self.message(f"the grid API answered a listing without data, next and max_version at {url}")
            )
        # One pass in a generator instead of a call per record: a page holds 10,000 of them.
        if not all(type(item) is dict and type(item.get("id")) is int and 0 < item["id"] <= fields.MAX_ID
                   for item in listed):  # fmt: skip
            raise RemoteError(self.message(f"the grid API listed an object without a valid id at {url}"))
        return ListPage(listed, top, following)

    def iter_pages(self, resource: str, *, version_gt: int | None = None) -> Iterator[ListPage]:
        """Every page of a listing (all objects, or those changed after `version_gt`), one at a time."""
        after: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_page(resource, version_gt=version_gt, after=after, limit=self.page_size)
            yield page
            if page.next is None:
                return
            if page.next in seen:
                raise RemoteError(self.message(f"the grid API's {resource} listing loops back to a cursor"))
            seen.add(page.next)
            after = page.next

    def max_version(self, resource: str) -> int:
        """The version counter now: a one-object listing says it."""
        return self.list_page(resource, version_gt=None, after=None, limit=1).max_version

    def get(self, resource: str, object_id: int) -> Record:
        url = self.url(f"{resource}/{object_id}")
        return self._record(self.json(self.request("GET", url)), url)

    def find(self, resource: str, object_id: int) -> Record | None:
        try:
            return self.get(resource, object_id)
        except NotFoundError:
            return None

    # -- writing -------------------------------------------------------------------------------------------

    def update(self, resource: str, object_id: int, body: Mapping[str, Any]) -> Record:
        """A partial update; repeating it after a lost answer sets the same values, so it is retried."""
        url = self.url(f"{resource}/{object_id}")
        return self._record(self.json(self.request("PUT", url, body=dict(body))), url)

    def delete(self, resource: str, object_id: int) -> bool:
        """Delete one object (a component takes its measurements with it); False when it was not there."""
        try:
            self.request("DELETE", self.url(f"{resource}/{object_id}"))
        except NotFoundError:
            return False
        return True

    def create(
        self, resource: str, bodies: Sequence[Mapping[str, Any]], *, since: int | None = None
    ) -> list[Record]:
        """Create objects (measurements: one all-or-nothing batch of at most 1000; components: one) and
        return them as stored, in order.

        The API has no idempotency key, so a POST is never repeated blindly: when its answer is lost
        (timeout, reset, 5xx, 429) a `version_gt` listing from the version before the POST shows what
        landed, and only what is missing is sent again. `since` is that version when the caller knows it
        (the highest version of its previous batch); otherwise it is read first.
        """
        if resource == "components" and len(bodies) != 1:
            raise ValueError("components are created one at a time")
        if len(bodies) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} measurements a batch")
        if not bodies:
            return []
        before = self.max_version(resource) if since is None else since
        created: dict[int, Record] = {}  # position in `bodies` -> stored object
        attempt = 0
        while True:
            missing = [i for i in range(len(bodies)) if i not in created]
            try:
                stored = self._post(resource, [bodies[i] for i in missing])
            except TransientError as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                delay = self._delay(exc, attempt)
                log.warning(
                    "a create of %d %s got no sure answer (%s); checking what landed before sending"
                    " the rest%s",
                    len(missing),
                    resource,
                    exc,
                    f" in {delay:.1f}s" if delay else "",
                )
                self._sleep(delay)
                landed = self._landed(resource, [(i, bodies[i]) for i in missing], before)
                created.update(landed)
                if len(created) == len(bodies):
                    log.info("all %d %s had landed; nothing sent again", len(landed), resource)
                    break
                continue
            created.update(zip(missing, stored, strict=True))
            break
        return [created[i] for i in range(len(bodies))]

    def _delay(self, error: TransientError, attempt: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.retry.retry_after_cap)
        initial = self.retry.backoff_initial
        return float(min(self.retry.backoff_max, initial * 2.0 ** (attempt - 1) + random.uniform(0, initial)))

    def _post(self, resource: str, bodies: list[Mapping[str, Any]]) -> list[Record]:
        url = self.url(resource)
        payload: Any = [dict(b) for b in bodies] if resource == "measurements" else dict(bodies[0])
        data = self.json(self.request("POST", url, body=payload, retryable=False))
        items = data if isinstance(data, list) else [data]
        if len(items) != len(bodies):
            raise RemoteError(
                self.message(
                    f"the grid API answered {len(items)} objects to a create of {len(bodies)} at {url}"
                )
            )
        return [self._record(item, url) for item in items]

    def _landed(
        self, resource: str, wanted: list[tuple[int, Mapping[str, Any]]], before: int
    ) -> dict[int, Record]:
        """Which of the bodies (by position) are among the objects created or changed after `before`.

        An object matches a body when every field sent has the value stored (numbers as numbers,
        timestamps as the API's UTC text, which is how they were sent); each object matches one body.
        """
        by_content: dict[tuple[Any, ...], list[int]] = {}
        names = sorted({name for _, body in wanted for name in body})
        for position, body in wanted:
            by_content.setdefault(_content(body, names), []).append(position)
        remaining = Counter({key: len(positions) for key, positions in by_content.items()})
        landed: dict[int, Record] = {}
        for page in self.iter_pages(resource, version_gt=before):
            for record in page.records:
                key = _content(record, names)
                if remaining.get(key, 0) > 0:
                    positions = by_content[key]
                    landed[positions[len(positions) - remaining[key]]] = record
                    remaining[key] -= 1
        return landed


def _content(record: Mapping[str, Any], names: list[str]) -> tuple[Any, ...]:
    """The values of `names`, comparable between a body and a stored object (5 and 5.0 are one number)."""
    values: list[Any] = []
    for name in names:
        value = record.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
        elif name == "timestamp" and isinstance(value, str):
            with contextlib.suppress(ValueError):  # a local row may hold another spelling of the time
                value = fields.normal_timestamp(value)
        values.append(value)
    return tuple(values)
