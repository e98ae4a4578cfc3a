"""The Intempus REST client: auth, paging, retries, rate limit. Knows nothing of SQLite."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from syncctl.core.errors import AuthError, NotFoundError, RemoteError, ValidationError
from syncctl.core.settings import RetryPolicy, Settings

log = logging.getLogger("syncctl.client")

Case = dict[str, Any]
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
ID_BATCH = 100


class TransientError(RemoteError):
    """A failure worth retrying: connection trouble, timeouts, 429 and 5xx."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


@dataclass
class Page:
    objects: list[Case]
    url: str
    logical_timestamp: int | None  # the response's Logical-Timestamp header: highest committed counter
    total_count: int | None = None


class RateLimiter:
    """Token bucket: bursts up to the per-minute budget, then one request per 60/budget seconds."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(per_minute)
        self._updated = clock()

    def acquire(self) -> None:
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = self._clock()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._updated) * rate)
        self._updated = now
        if self._tokens < 1.0:
            wait = (1.0 - self._tokens) / rate
            self._sleep(wait)
            self._tokens = 1.0
            self._updated = self._clock()
        self._tokens -= 1.0


def describe_error_body(body: bytes) -> str:
    """The remote's own message from any of Intempus' error shapes; never a raw dump."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        if text.lstrip().startswith("<"):
            return "an HTML error page"
        return text.splitlines()[0][:200]
    parts: list[str] = []

    def collect(value: Any, prefix: str = "") -> None:
        if isinstance(value, str):
            parts.append(f"{prefix}{value}")
        elif isinstance(value, list):
            for item in value:
                collect(item, prefix)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in ("error", "error_message", "message", "detail") or isinstance(item, dict):
                    collect(item, prefix)
                else:
                    collect(item, f"{key}: ")
        elif value is not None:
            parts.append(f"{prefix}{value}")

    collect(data)
    return "; ".join(parts)[:300]


def _retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class IntempusClient:
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
    ) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.host = urlsplit(self.base_uri).netloc
        self.page_size = page_size
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(0)
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"ApiKey {user}:{key}"
        # Error bodies are shown to people and stored in the run log: a server that echoes the
        # request's headers must not make them carry the key.
        self._secrets = [secret for secret in (f"{user}:{key}", key) if key]
        self.session.headers["Accept"] = "application/json"
        self._sleep = sleep
        self.cursor_paging: bool | None = None  # unknown until the server answers
        self.requests_sent = 0

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

    def close(self) -> None:
        self.session.close()

    # -- one request, with retries ---------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, self.retry.retry_after_cap)
        # Exponential backoff with jitter, so many cron jobs hitting one API do not retry in lockstep.
        initial = self.retry.backoff_initial
        exponential = initial * 2.0 ** (state.attempt_number - 1)
        return float(min(self.retry.backoff_max, exponential + random.uniform(0, initial)))

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("attempt %d failed (%s); retrying in %.1fs", state.attempt_number, error, delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        retryable: bool = True,
    ) -> requests.Response:
        """Send one request; transient failures are retried when the request is safe to repeat."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts if retryable else 1)
            | stop_after_delay(self.retry.max_seconds),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._send_once, method, url, params, body)

    def _send_once(
        self, method: str, url: str, params: dict[str, Any] | None, body: dict[str, Any] | None
    ) -> requests.Response:
        self.limiter.acquire()
        self.requests_sent += 1
        try:
            response = self.session.request(method, url, params=params, json=body, timeout=self.timeout)
        except requests.Timeout:
            raise TransientError(f"{self.host} did not answer in time ({method} {url})", url=url) from None
        except requests.ConnectionError as exc:
            what = "broke off the response" if "IncompleteRead" in str(exc) else "cannot be reached"
            raise TransientError(f"{self.host} {what} ({method} {url})", url=url) from None
        except requests.RequestException as exc:
            raise TransientError(
                f"{self.host} sent a broken response to {method} {url} ({exc.__class__.__name__})", url=url
            ) from None
        status = response.status_code
        if status < 400:
            return response
        message = self._scrub(describe_error_body(response.content))
        suffix = f": {message}" if message else ""
        if status == 401:
            raise AuthError(
                "authentication failed: Intempus refused INTEMPUS_API_USER/INTEMPUS_API_KEY "
                f"(401 from {self.host})",
                status=status,
                url=url,
            )
        if status in RETRYABLE_STATUS:
            raise TransientError(
                f"{self.host} answered {status} to {method} {url}{suffix}",
                status=status,
                url=url,
                retry_after=_retry_after_seconds(response) if status in (429, 503) else None,
            )
        if status == 404:
            raise NotFoundError(f"not found: {method} {url}", status=status, url=url)
        if status == 400:
            raise ValidationError(
                f"Intempus refused {method} {url}: {message or 'bad request'}", status=status, url=url
            )
        raise RemoteError(f"{self.host} answered {status} to {method} {url}{suffix}", status=status, url=url)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _json(self, response: requests.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            what = self._scrub(describe_error_body(response.content)) or "an empty body"
            raise RemoteError(
                f"Intempus answered {what!s} instead of JSON at {response.url}", url=response.url
            ) from None

    def _case(self, data: Any, url: str) -> Case:
        if not isinstance(data, dict) or not isinstance(data.get("id"), int) or isinstance(data["id"], bool):
            raise RemoteError(f"Intempus answered a case without an integer id at {url}", url=url)
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
                raise RemoteError(f"Intempus paging loops back to {next_url}", url=next_url)
            seen_urls.add(next_url)
            page, next_url = self._fetch_page(next_url, None)
            yield page

    def _fetch_page(self, url: str, params: dict[str, Any] | None) -> tuple[Page, str | None]:
        response = self.request("GET", url, params=params)
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise RemoteError(
                f"Intempus answered a list without 'objects' at {response.url}", url=response.url
            )
        objects = [self._case(item, response.url) for item in data["objects"]]
        meta = data["meta"] if isinstance(data.get("meta"), dict) else {}
        next_path = meta.get("next")
        if next_path is not None and not isinstance(next_path, str):
            raise RemoteError(f"Intempus answered a malformed meta.next at {response.url}", url=response.url)
        header = response.headers.get("Logical-Timestamp", "")
        stamp = int(header) if header.strip().isdigit() else None
        next_url = urljoin(response.url, next_path) if next_path else None
        if next_url is not None and urlsplit(next_url).netloc != self.host:
            # Never send the API key to another host, whatever a response claims.
            raise RemoteError(f"Intempus' meta.next points to another host: {next_url}", url=response.url)
        total = meta.get("total_count")
        page = Page(objects, response.url, stamp, total if isinstance(total, int) else None)
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
